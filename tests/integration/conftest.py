from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from redis.asyncio import Redis

from yunting.hearing.model import Actor, Participant, PartySide, Role, StaffRole
from yunting.hearing.service import HearingService
from yunting.infra.clock import FrozenClock
from yunting.infra.db import Database
from yunting.infra.ledger.evidence import LedgerEvidence
from yunting.infra.settings import Settings
from yunting.service_delivery.outbox import OutboxSender
from yunting.staff.model import StaffUser
from yunting.staff.service import StaffService
from yunting.web.app import create_app

SECRET = "integration-test-secret-0123456789abcdef"


def fast_hasher() -> PasswordHasher:
    # Cheap parameters: the tests exercise our logic, not Argon2's cost.
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def hearings(database: Database, clock: FrozenClock) -> HearingService:
    return HearingService(
        db=database,
        clock=clock,
        secret_key=SECRET,
        public_base_url="http://court.test",
        join_token_ttl=timedelta(days=14),
        court_timezone=ZoneInfo("Asia/Shanghai"),
        evidence=LedgerEvidence(),
    )


@pytest.fixture
def staff(database: Database, clock: FrozenClock) -> StaffService:
    return StaffService(
        db=database, clock=clock, session_ttl=timedelta(hours=12), hasher=fast_hasher()
    )


@pytest.fixture
def outbox(database: Database, clock: FrozenClock) -> OutboxSender:
    return OutboxSender(db=database, clock=clock)


@dataclass
class CourtWorld:
    """Two courts with a clerk and a judge each; a case and hearing in court A."""

    clerk: StaffUser
    judge: StaffUser
    other_clerk: StaffUser
    case_id: UUID
    hearing_id: UUID

    @property
    def clerk_actor(self) -> Actor:
        return self.clerk.actor()

    @property
    def judge_actor(self) -> Actor:
        return self.judge.actor()


@pytest.fixture
async def world(hearings: HearingService, staff: StaffService, clock: FrozenClock) -> CourtWorld:
    court = await hearings.ensure_court(name="杭州互联网法院", code="ZJ0192")
    other = await hearings.ensure_court(name="北京互联网法院", code="BJ0491")
    clerk = await staff.create_user(
        court_id=court.id,
        username="clerk",
        display_name="李静",
        role=StaffRole.CLERK,
        password="clerk-password",
    )
    judge = await staff.create_user(
        court_id=court.id,
        username="judge",
        display_name="王芳",
        role=StaffRole.JUDGE,
        password="judge-password",
    )
    other_clerk = await staff.create_user(
        court_id=other.id,
        username="other-clerk",
        display_name="赵敏",
        role=StaffRole.CLERK,
        password="other-password",
    )
    case = await hearings.create_case(
        actor=clerk.actor(), number="(2026)浙0192民初1234号", title="张伟诉某公司", cause="合同纠纷"
    )
    hearing = await hearings.schedule_hearing(
        actor=clerk.actor(),
        case_id=case.id,
        scheduled_start=clock.now() + timedelta(hours=1),
        expected_minutes=60,
        is_public=True,
    )
    return CourtWorld(clerk, judge, other_clerk, case.id, hearing.id)


async def add_person_participant(
    hearings: HearingService,
    world: CourtWorld,
    *,
    role: Role,
    name: str = "张伟",
    phone: str | None = "13800000001",
    email: str | None = "zw@example.com",
    side: PartySide | None = None,
) -> Participant:
    person = await hearings.create_person(
        actor=world.clerk_actor, name=name, phone=phone, email=email, id_number_last4="1234"
    )
    party_id = None
    if side is not None:
        party = await hearings.add_party(
            actor=world.clerk_actor, case_id=world.case_id, person_id=person.id, side=side
        )
        party_id = party.id
    participant = await hearings.add_participant(
        actor=world.clerk_actor,
        hearing_id=world.hearing_id,
        person_id=person.id,
        role=role,
        party_id=party_id,
    )
    return participant


API_SECRET = "api-test-secret-0123456789abcdef-0123456789"


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient

    async def sign_in(self, username: str, password: str) -> dict[str, Any]:
        r = await self.client.post(
            "/api/auth/sign-in", json={"username": username, "password": password}
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


@pytest.fixture
async def api(database: Database, tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(
        database_url=database.url,
        data_dir=tmp_path,
        secret_key=API_SECRET,  # type: ignore[arg-type]
        public_base_url="http://court.test",
        max_request_bytes=4096,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        resources = app.state.resources
        court = await resources.hearings.ensure_court(name="杭州互联网法院", code="ZJ0192")
        other = await resources.hearings.ensure_court(name="北京互联网法院", code="BJ0491")
        for username, role, court_id in (
            ("clerk", StaffRole.CLERK, court.id),
            ("judge", StaffRole.JUDGE, court.id),
            ("other", StaffRole.CLERK, other.id),
        ):
            await resources.staff.create_user(
                court_id=court_id,
                username=username,
                display_name=username,
                role=role,
                password=f"{username}-password",
            )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://court.test") as client:
            yield Api(app, client)


def bearer(session: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['session_token']}"}


REDIS_URL = os.environ.get("YUNTING_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis() -> AsyncIterator[tuple[Redis, str]]:
    """The real Redis server and a key prefix of this test's own, removed afterwards."""
    client = Redis.from_url(REDIS_URL)
    prefix = f"yunting-test-{uuid.uuid4().hex[:8]}:"
    try:
        yield client, prefix
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
