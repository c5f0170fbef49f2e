"""Hearing use cases against real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from yunting.hearing.errors import (
    ConflictError,
    IllegalTransitionError,
    InvalidTokenError,
    NotFoundError,
    PermissionDeniedError,
)
from yunting.hearing.model import (
    Grants,
    HearingAction,
    HearingState,
    ParticipantState,
    PartySide,
    Permission,
    Role,
)
from yunting.hearing.service import HearingService
from yunting.hearing.tables import audit_events
from yunting.hearing.tables import hearings as hearings_table
from yunting.hearing.tokens import JoinClaims, derive_key, encode_join_token
from yunting.infra.clock import FrozenClock
from yunting.infra.db import Database
from yunting.infra.errors import InvalidInputError
from yunting.infra.ledger import build_ledger
from yunting.infra.settings import Settings
from yunting.service_delivery.outbox import OutboxSender

from .conftest import SECRET, CourtWorld, add_person_participant


async def _state(db: Database, hearing_id: uuid.UUID) -> str:
    async with db.read() as conn:
        query = select(hearings_table.c.state).where(hearings_table.c.id == hearing_id)
        return str((await conn.execute(query)).scalar_one())


async def _audit_count(db: Database) -> int:
    async with db.read() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(audit_events))).scalar_one()
        )


async def test_full_lifecycle_writes_one_audit_event_per_change(
    hearings: HearingService, world: CourtWorld, database: Database
) -> None:
    judge = world.judge_actor
    steps = [
        (world.clerk_actor, HearingAction.OPEN_LOBBY, HearingState.OPEN),
        (judge, HearingAction.START, HearingState.IN_SESSION),
        (judge, HearingAction.PAUSE, HearingState.PAUSED),
        (judge, HearingAction.RESUME, HearingState.IN_SESSION),
        (world.clerk_actor, HearingAction.SUSPEND, HearingState.SUSPENDED),
        (judge, HearingAction.RESUME, HearingState.IN_SESSION),
        (judge, HearingAction.CLOSE, HearingState.CLOSED),
    ]
    for actor, action, expected in steps:
        t = await hearings.change_hearing_state(
            actor=actor, hearing_id=world.hearing_id, action=action, reason=f"r-{action}"
        )
        assert t.to_state is expected
        assert await _state(database, world.hearing_id) == expected.value

    trail = await hearings.audit_trail(actor=world.clerk_actor, hearing_id=world.hearing_id)
    changes = [(e["action"], e["from_state"], e["to_state"]) for e in trail]
    assert changes == [
        ("hearing.schedule", None, "scheduled"),
        ("hearing.open_lobby", "scheduled", "open"),
        ("hearing.start", "open", "in_session"),
        ("hearing.pause", "in_session", "paused"),
        ("hearing.resume", "paused", "in_session"),
        ("hearing.suspend", "in_session", "suspended"),
        ("hearing.resume", "suspended", "in_session"),
        ("hearing.close", "in_session", "closed"),
    ]
    assert trail[2]["actor_id"] == world.judge.id
    assert trail[2]["reason"] == "r-start"


async def test_illegal_transition_changes_nothing(
    hearings: HearingService, world: CourtWorld, database: Database
) -> None:
    before = await _audit_count(database)
    with pytest.raises(IllegalTransitionError):
        await hearings.change_hearing_state(
            actor=world.judge_actor, hearing_id=world.hearing_id, action=HearingAction.START
        )
    assert await _state(database, world.hearing_id) == "scheduled"
    assert await _audit_count(database) == before


async def test_clerk_may_not_start_and_nothing_changes(
    hearings: HearingService, world: CourtWorld, database: Database
) -> None:
    await hearings.change_hearing_state(
        actor=world.clerk_actor, hearing_id=world.hearing_id, action=HearingAction.OPEN_LOBBY
    )
    with pytest.raises(PermissionDeniedError, match=str(Permission.HEARING_START)):
        await hearings.change_hearing_state(
            actor=world.clerk_actor, hearing_id=world.hearing_id, action=HearingAction.START
        )
    assert await _state(database, world.hearing_id) == "open"


async def test_other_court_sees_nothing(hearings: HearingService, world: CourtWorld) -> None:
    other = world.other_clerk.actor()
    with pytest.raises(NotFoundError):
        await hearings.get_case(actor=other, case_id=world.case_id)
    with pytest.raises(NotFoundError):
        await hearings.get_hearing(actor=other, hearing_id=world.hearing_id)
    with pytest.raises(NotFoundError):
        await hearings.change_hearing_state(
            actor=other, hearing_id=world.hearing_id, action=HearingAction.OPEN_LOBBY
        )
    assert await hearings.list_cases(actor=other) == []


async def test_concurrent_state_changes_exactly_one_wins(
    hearings: HearingService, world: CourtWorld, database: Database
) -> None:
    await hearings.change_hearing_state(
        actor=world.clerk_actor, hearing_id=world.hearing_id, action=HearingAction.OPEN_LOBBY
    )
    results = await asyncio.gather(
        *[
            hearings.change_hearing_state(
                actor=world.judge_actor, hearing_id=world.hearing_id, action=HearingAction.START
            )
            for _ in range(5)
        ],
        return_exceptions=True,
    )
    successes = [r for r in results if not isinstance(r, BaseException)]
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(successes) == 1
    assert all(isinstance(f, IllegalTransitionError | ConflictError) for f in failures), failures
    trail = await hearings.audit_trail(actor=world.clerk_actor, hearing_id=world.hearing_id)
    assert [e["action"] for e in trail].count("hearing.start") == 1


async def test_case_numbers_are_validated_and_unique(
    hearings: HearingService, world: CourtWorld
) -> None:
    with pytest.raises(ConflictError):
        await hearings.create_case(
            actor=world.clerk_actor, number="(2026)浙0192民初1234号", title="x", cause="y"
        )
    for bad in ("1234", "(26)浙民初1号", "(2026)浙0192民初号"):
        with pytest.raises(InvalidInputError):
            await hearings.create_case(actor=world.clerk_actor, number=bad, title="x", cause="y")
    # Full-width brackets, as often typed on Chinese keyboards.
    case = await hearings.create_case(
        actor=world.clerk_actor, number="（2026）浙0192民初7号", title="x", cause="y"
    )
    assert case.number == "（2026）浙0192民初7号"
    # The same number is fine in another court.
    other = await hearings.create_case(
        actor=world.other_clerk.actor(), number="(2026)浙0192民初1234号", title="x", cause="y"
    )
    assert other.court_id != case.court_id


async def test_judge_may_not_create_cases(hearings: HearingService, world: CourtWorld) -> None:
    with pytest.raises(PermissionDeniedError):
        await hearings.create_case(
            actor=world.judge_actor, number="(2026)浙0192民初9号", title="x", cause="y"
        )


async def test_day_view_uses_the_court_time_zone(
    hearings: HearingService, world: CourtWorld, clock: FrozenClock
) -> None:
    # clock is 2026-11-24 01:30 UTC = 09:30 in Beijing; the world's hearing is at 10:30 local.
    case = await hearings.get_case(actor=world.clerk_actor, case_id=world.case_id)
    late = datetime(2026, 11, 24, 23, 30, tzinfo=ZoneInfo("Asia/Shanghai"))  # 15:30 UTC
    await hearings.schedule_hearing(
        actor=world.clerk_actor,
        case_id=case.id,
        scheduled_start=late,
        expected_minutes=30,
        is_public=False,
    )
    day = await hearings.list_hearings_for_day(actor=world.clerk_actor, day=date(2026, 11, 24))
    assert [h.scheduled_start for h, _ in day] == sorted(h.scheduled_start for h, _ in day)
    assert len(day) == 2
    assert (
        await hearings.list_hearings_for_day(actor=world.clerk_actor, day=date(2026, 11, 25)) == []
    )
    assert (
        await hearings.list_hearings_for_day(
            actor=world.other_clerk.actor(), day=date(2026, 11, 24)
        )
        == []
    )


async def test_participants_follow_their_state_machine(
    hearings: HearingService, world: CourtWorld
) -> None:
    p = await add_person_participant(hearings, world, role=Role.PLAINTIFF, side=PartySide.PLAINTIFF)
    assert p.state is ParticipantState.INVITED
    clerk = world.clerk_actor
    await hearings.change_participant_state(
        actor=clerk, participant_id=p.id, to=ParticipantState.IN_LOBBY, action="participant.join"
    )
    await hearings.change_participant_state(
        actor=clerk,
        participant_id=p.id,
        to=ParticipantState.IN_HEARING,
        action="lobby.admit",
        permission=Permission.LOBBY_ADMIT,
    )
    with pytest.raises(PermissionDeniedError):
        await hearings.change_participant_state(
            actor=clerk,
            participant_id=p.id,
            to=ParticipantState.REMOVED,
            action="participant.remove",
            permission=Permission.PARTICIPANT_REMOVE,
        )
    await hearings.change_participant_state(
        actor=world.judge_actor,
        participant_id=p.id,
        to=ParticipantState.REMOVED,
        action="participant.remove",
        permission=Permission.PARTICIPANT_REMOVE,
        reason="disrupted the hearing",
    )
    with pytest.raises(IllegalTransitionError):
        await hearings.change_participant_state(
            actor=world.judge_actor,
            participant_id=p.id,
            to=ParticipantState.IN_LOBBY,
            action="lobby.rejoin",
        )
    trail = await hearings.audit_trail(actor=clerk, hearing_id=world.hearing_id)
    moves = [(e["from_state"], e["to_state"]) for e in trail if e["entity"] == "participant"]
    assert moves[-3:] == [
        ("invited", "in_lobby"),
        ("in_lobby", "in_hearing"),
        ("in_hearing", "removed"),
    ]


async def test_observers_only_in_public_hearings_and_no_duplicates(
    hearings: HearingService, world: CourtWorld, clock: FrozenClock
) -> None:
    private = await hearings.schedule_hearing(
        actor=world.clerk_actor,
        case_id=world.case_id,
        scheduled_start=clock.now() + timedelta(days=1),
        expected_minutes=30,
        is_public=False,
    )
    person = await hearings.create_person(
        actor=world.clerk_actor, name="旁听人", phone=None, email=None, id_number_last4=None
    )
    with pytest.raises(ConflictError, match="public"):
        await hearings.add_participant(
            actor=world.clerk_actor, hearing_id=private.id, person_id=person.id, role=Role.OBSERVER
        )
    await hearings.add_participant(
        actor=world.clerk_actor,
        hearing_id=world.hearing_id,
        person_id=person.id,
        role=Role.OBSERVER,
    )
    with pytest.raises(ConflictError, match="already"):
        await hearings.add_participant(
            actor=world.clerk_actor,
            hearing_id=world.hearing_id,
            person_id=person.id,
            role=Role.OBSERVER,
        )


async def test_join_token_issue_verify_revoke_expire(
    hearings: HearingService, world: CourtWorld, clock: FrozenClock
) -> None:
    p = await add_person_participant(hearings, world, role=Role.WITNESS)
    link = await hearings.issue_join_link(actor=world.clerk_actor, participant_id=p.id)
    assert link.url == f"http://court.test/j/{link.token}"
    claims = await hearings.verify_join_token(token=link.token)
    assert (claims.participant_id, claims.hearing_id, claims.role) == (
        p.id,
        world.hearing_id,
        Role.WITNESS,
    )
    assert claims.grants.may_publish
    assert not claims.grants.may_control

    actor = hearings.actor_for(claims, court_id=world.clerk.court_id)
    detail = await hearings.get_hearing(actor=actor, hearing_id=world.hearing_id)
    assert detail.hearing.id == world.hearing_id
    with pytest.raises(NotFoundError):
        await hearings.get_case(actor=actor, case_id=world.case_id)

    second = await hearings.issue_join_link(actor=world.clerk_actor, participant_id=p.id)
    assert await hearings.revoke_join_links(actor=world.clerk_actor, participant_id=p.id) == 2
    for token in (link.token, second.token):
        with pytest.raises(InvalidTokenError) as info:
            await hearings.verify_join_token(token=token)
        assert info.value.reason == "revoked"

    third = await hearings.issue_join_link(actor=world.clerk_actor, participant_id=p.id)
    # The link lives until a day after the hearing's scheduled end (start +1 h, 60 min).
    assert third.expires_at <= clock.now() + timedelta(hours=2, days=1)
    clock.advance(timedelta(hours=2, days=1).total_seconds())
    with pytest.raises(InvalidTokenError) as info:
        await hearings.verify_join_token(token=third.token)
    assert info.value.reason == "expired"


async def test_token_of_removed_participant_or_closed_hearing_is_refused(
    hearings: HearingService, world: CourtWorld
) -> None:
    p = await add_person_participant(hearings, world, role=Role.WITNESS)
    link = await hearings.issue_join_link(actor=world.clerk_actor, participant_id=p.id)
    await hearings.change_participant_state(
        actor=world.judge_actor,
        participant_id=p.id,
        to=ParticipantState.REMOVED,
        action="participant.remove",
        permission=Permission.PARTICIPANT_REMOVE,
    )
    with pytest.raises(InvalidTokenError) as info:
        await hearings.verify_join_token(token=link.token)
    assert info.value.reason == "removed"
    with pytest.raises(ConflictError):
        await hearings.issue_join_link(actor=world.clerk_actor, participant_id=p.id)

    q = await add_person_participant(hearings, world, role=Role.COUNSEL, name="陈律师")
    qlink = await hearings.issue_join_link(actor=world.clerk_actor, participant_id=q.id)
    await hearings.change_hearing_state(
        actor=world.judge_actor, hearing_id=world.hearing_id, action=HearingAction.CANCEL
    )
    with pytest.raises(InvalidTokenError) as info:
        await hearings.verify_join_token(token=qlink.token)
    assert info.value.reason == "hearing_over"


async def test_token_unknown_to_the_database_is_refused(
    hearings: HearingService, world: CourtWorld, database: Database, clock: FrozenClock
) -> None:
    # Signed with the right key but never recorded (e.g. the row was deleted): refused.
    p = await add_person_participant(hearings, world, role=Role.WITNESS)
    forged = encode_join_token(
        JoinClaims(
            jti="never-issued",
            hearing_id=world.hearing_id,
            participant_id=p.id,
            role=Role.JUDGE,
            grants=Grants.for_role(Role.JUDGE),
            issued_at=clock.now(),
            expires_at=clock.now() + timedelta(hours=1),
        ),
        key=derive_key(SECRET, "join-token"),
    )
    with pytest.raises(InvalidTokenError):
        await hearings.verify_join_token(token=forged)


async def test_notices_go_to_the_outbox_with_working_links(
    hearings: HearingService, world: CourtWorld, outbox: OutboxSender
) -> None:
    plaintiff = await add_person_participant(
        hearings, world, role=Role.PLAINTIFF, side=PartySide.PLAINTIFF
    )
    await add_person_participant(
        hearings, world, role=Role.WITNESS, name="证人", phone=None, email="w@example.com"
    )
    results = await hearings.send_hearing_notices(
        actor=world.clerk_actor, hearing_id=world.hearing_id, sender=outbox
    )
    assert sorted(r.channel.value for r in results) == ["email", "email", "sms"]
    messages = await outbox.list_recent()
    assert len(messages) == 3
    sms = next(m for m in messages if m.channel.value == "sms")
    assert sms.recipient == "13800000001"
    assert "(2026)浙0192民初1234号" in sms.body
    token = sms.body.rsplit("/j/", 1)[1].strip()
    claims = await hearings.verify_join_token(token=token)
    assert claims.participant_id == plaintiff.id
    with pytest.raises(PermissionDeniedError):
        await hearings.send_hearing_notices(
            actor=world.judge_actor, hearing_id=world.hearing_id, sender=outbox
        )


async def test_state_changes_enter_the_ledger_in_the_same_transaction(
    hearings: HearingService,
    world: CourtWorld,
    database: Database,
    clock: FrozenClock,
    tmp_path: Path,
) -> None:
    ledger = build_ledger(Settings(data_dir=tmp_path), database, clock)
    before = (await ledger.head()).size
    await hearings.change_hearing_state(
        actor=world.clerk_actor, hearing_id=world.hearing_id, action=HearingAction.OPEN_LOBBY
    )
    await hearings.change_hearing_state(
        actor=world.judge_actor,
        hearing_id=world.hearing_id,
        action=HearingAction.START,
        reason="all present",
    )
    # A refused change leaves no ledger entry behind.
    with pytest.raises(IllegalTransitionError):
        await hearings.change_hearing_state(
            actor=world.judge_actor, hearing_id=world.hearing_id, action=HearingAction.START
        )
    head = await ledger.head()
    assert head.size == before + 2
    entry = await ledger.get_entry(index=head.size - 1)
    assert entry.kind == "hearing.state_changed"
    assert entry.subject_id == str(world.hearing_id)
    assert entry.case_id == world.case_id
    assert entry.event["from"] == "open"
    assert entry.event["to"] == "in_session"
    assert entry.event["actor_id"] == str(world.judge.id)
    assert entry.event["reason"] == "all present"
    report = await ledger.verify_log()
    assert report.ok, report.issues
    # The case's evidence bundle carries these entries with their proofs.
    bundle = await ledger.export_case(case_id=world.case_id)
    assert len(bundle) > 0
