"""Demo data for the embedded default: a court, a judge and a clerk, a case, today's hearing,
and the case's judgment (for the electronic service demo).

Idempotent: running it again changes nothing, except that a hearing is added for today when the
demo case has none today (so the clerk's day view always has something to show).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from uuid import UUID
from zoneinfo import ZoneInfo

from yunting.hearing.model import PartySide, Role, StaffRole
from yunting.hearing.service import HearingService
from yunting.infra.clock import Clock
from yunting.infra.demo_judgment import DEMO_JUDGMENT_TITLE, demo_judgment_pdf
from yunting.service_delivery.documents import DocumentKind
from yunting.service_delivery.service import ServiceDeliveryService
from yunting.staff.service import StaffService

logger = logging.getLogger(__name__)

DEMO_COURT_CODE = "ZJ0192"
DEMO_CASE_NUMBER = "(2026)浙0192民初1234号"
DEMO_JUDGE = "judge"
DEMO_CLERK = "clerk"


@dataclass(frozen=True, slots=True)
class DemoResult:
    court_id: UUID
    case_id: UUID
    hearing_id: UUID
    created: bool


async def seed_demo(
    *,
    hearings: HearingService,
    staff: StaffService,
    clock: Clock,
    court_name: str,
    password: str,
    tz: ZoneInfo,
) -> DemoResult:
    court = await hearings.ensure_court(name=court_name, code=DEMO_COURT_CODE)
    created = False
    for username, name, staff_role in (
        (DEMO_JUDGE, "王芳", StaffRole.JUDGE),
        (DEMO_CLERK, "李静", StaffRole.CLERK),
    ):
        if await staff.get_user_by_username(username=username) is None:
            await staff.create_user(
                court_id=court.id,
                username=username,
                display_name=name,
                role=staff_role,
                password=password,
            )
            created = True
    clerk_user = await staff.get_user_by_username(username=DEMO_CLERK)
    judge_user = await staff.get_user_by_username(username=DEMO_JUDGE)
    if clerk_user is None or judge_user is None:  # created just above
        raise RuntimeError("demo users missing after creation")
    clerk = clerk_user.actor()

    existing = [
        c for c in await hearings.list_cases(actor=clerk, limit=200) if c.number == DEMO_CASE_NUMBER
    ]
    if existing:
        case = existing[0]
    else:
        case = await hearings.create_case(
            actor=clerk,
            number=DEMO_CASE_NUMBER,
            title="张伟诉杭州某电子商务有限公司网络购物合同纠纷",
            cause="网络购物合同纠纷",
        )
        created = True

    parties = await hearings.list_parties(actor=clerk, case_id=case.id)
    if not parties:
        plaintiff = await hearings.create_person(
            actor=clerk,
            name="张伟",
            phone="13800000001",
            email="zhangwei@example.com",
            id_number_last4="1234",
        )
        counsel = await hearings.create_person(
            actor=clerk,
            name="陈律师",
            phone="13800000002",
            email="chen.lawyer@example.com",
            id_number_last4="5678",
        )
        defendant = await hearings.create_person(
            actor=clerk,
            name="杭州某电子商务有限公司（代表人 刘洋）",
            phone="13800000003",
            email="legal@shop.example.com",
            id_number_last4="9012",
        )
        await hearings.add_party(
            actor=clerk,
            case_id=case.id,
            person_id=plaintiff.id,
            side=PartySide.PLAINTIFF,
            counsel_person_id=counsel.id,
        )
        await hearings.add_party(
            actor=clerk, case_id=case.id, person_id=defendant.id, side=PartySide.DEFENDANT
        )
        parties = await hearings.list_parties(actor=clerk, case_id=case.id)

    today = clock.now().astimezone(tz).date()
    todays = [
        h
        for h in await hearings.list_hearings_for_case(actor=clerk, case_id=case.id)
        if h.scheduled_start.astimezone(tz).date() == today
    ]
    if todays:
        return DemoResult(court.id, case.id, todays[0].id, created)

    # The next half hour from now, so the hearing is "upcoming" when someone tries the demo.
    local_now = clock.now().astimezone(tz)
    start = datetime.combine(today, time(local_now.hour, 0), tzinfo=tz) + timedelta(
        minutes=30 if local_now.minute < 30 else 60
    )
    if start.date() != today:
        start = datetime.combine(today, time(23, 30), tzinfo=tz)
    hearing = await hearings.schedule_hearing(
        actor=clerk,
        case_id=case.id,
        scheduled_start=start,
        expected_minutes=60,
        is_public=True,
        title="第一次开庭",
    )
    # Staff join the hearing room as the person their account is linked to.
    staff_person: dict[UUID, UUID] = {}
    for user in (judge_user, clerk_user):
        if user.person_id is None:
            person = await hearings.create_person(
                actor=clerk, name=user.display_name, phone=None, email=None, id_number_last4=None
            )
            await staff.link_person(user_id=user.id, person_id=person.id)
            staff_person[user.id] = person.id
        else:
            staff_person[user.id] = user.person_id
    await hearings.add_participant(
        actor=clerk,
        hearing_id=hearing.id,
        person_id=staff_person[judge_user.id],
        role=Role.JUDGE,
        display_name=f"审判员 {judge_user.display_name}",
    )
    await hearings.add_participant(
        actor=clerk,
        hearing_id=hearing.id,
        person_id=staff_person[clerk_user.id],
        role=Role.CLERK,
        display_name=f"书记员 {clerk_user.display_name}",
    )
    for party in parties:
        role = Role.PLAINTIFF if party.side is PartySide.PLAINTIFF else Role.DEFENDANT
        await hearings.add_participant(
            actor=clerk,
            hearing_id=hearing.id,
            person_id=party.person_id,
            role=role,
            party_id=party.id,
        )
        if party.counsel_person_id is not None:
            counsel_person = await hearings.get_person(
                actor=clerk, person_id=party.counsel_person_id
            )
            counsel_name = counsel_person.name
            await hearings.add_participant(
                actor=clerk,
                hearing_id=hearing.id,
                person_id=party.counsel_person_id,
                role=Role.COUNSEL,
                party_id=party.id,
                display_name=f"{counsel_name}（代理人）",
            )
    logger.info("demo hearing %s scheduled", hearing.id, extra={"hearing_id": str(hearing.id)})
    return DemoResult(court.id, case.id, hearing.id, True)


async def seed_demo_judgment(
    *,
    delivery: ServiceDeliveryService,
    hearings: HearingService,
    staff: StaffService,
    court_name: str,
    font_path: Path,
    spool_dir: Path,
) -> bool:
    """The demo case's judgment among its documents, for the clerk to serve (the electronic
    service demo). Idempotent: nothing is added when the case has a judgment already."""
    clerk_user = await staff.get_user_by_username(username=DEMO_CLERK)
    if clerk_user is None:
        return False
    clerk = clerk_user.actor()
    case = next(
        c for c in await hearings.list_cases(actor=clerk, limit=200) if c.number == DEMO_CASE_NUMBER
    )
    documents = await delivery.list_documents(actor=clerk, case_id=case.id)
    if any(d.kind == DocumentKind.JUDGMENT for d in documents):
        return False
    data = demo_judgment_pdf(court_name=court_name, case_number=case.number, font_path=font_path)
    source = await asyncio.to_thread(_spool, spool_dir, data)
    try:
        await delivery.upload_document(
            actor=clerk,
            case_id=case.id,
            kind=DocumentKind.JUDGMENT,
            title=DEMO_JUDGMENT_TITLE,
            filename="民事判决书.pdf",
            source=source,
        )
    finally:
        await asyncio.to_thread(source.unlink, missing_ok=True)
    logger.info("demo judgment stored")
    return True


def _spool(spool_dir: Path, data: bytes) -> Path:
    spool_dir.mkdir(parents=True, exist_ok=True)
    source = spool_dir / "demo-judgment.pdf"
    source.write_bytes(data)
    return source
