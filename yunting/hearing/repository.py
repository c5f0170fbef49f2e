"""SQL for the hearing area. Functions take an open connection; the service owns transactions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from yunting.hearing.model import (
    Case,
    CaseStatus,
    Court,
    Hearing,
    HearingState,
    Participant,
    ParticipantState,
    Party,
    PartySide,
    Person,
    Role,
)
from yunting.hearing.tables import (
    attendance_log,
    audit_events,
    cases,
    courts,
    hearings,
    join_tokens,
    participants,
    parties,
    persons,
)
from yunting.infra.clock import as_utc


def _court(row: Row[Any]) -> Court:
    return Court(id=row.id, name=row.name, code=row.code)


def _person(row: Row[Any]) -> Person:
    return Person(
        id=row.id,
        court_id=row.court_id,
        name=row.name,
        phone=row.phone,
        email=row.email,
        id_number_last4=row.id_number_last4,
    )


def _case(row: Row[Any]) -> Case:
    return Case(
        id=row.id,
        court_id=row.court_id,
        number=row.number,
        title=row.title,
        cause=row.cause,
        status=CaseStatus(row.status),
        created_at=as_utc(row.created_at),
    )


def _party(row: Row[Any]) -> Party:
    return Party(
        id=row.id,
        case_id=row.case_id,
        person_id=row.person_id,
        side=PartySide(row.side),
        counsel_person_id=row.counsel_person_id,
    )


def _hearing(row: Row[Any]) -> Hearing:
    return Hearing(
        id=row.id,
        case_id=row.case_id,
        court_id=row.court_id,
        scheduled_start=as_utc(row.scheduled_start),
        expected_minutes=row.expected_minutes,
        is_public=row.is_public,
        recording_required=row.recording_required,
        state=HearingState(row.state),
        title=row.title,
        locked=row.locked,
        recording_shared=row.recording_shared,
    )


def _participant(row: Row[Any]) -> Participant:
    return Participant(
        id=row.id,
        hearing_id=row.hearing_id,
        person_id=row.person_id,
        role=Role(row.role),
        state=ParticipantState(row.state),
        display_name=row.display_name,
        party_id=row.party_id,
    )


# Courts ---------------------------------------------------------------------------------------


async def insert_court(conn: AsyncConnection, court: Court) -> None:
    await conn.execute(insert(courts).values(id=court.id, name=court.name, code=court.code))


async def get_court(conn: AsyncConnection, court_id: UUID) -> Court | None:
    row = (await conn.execute(select(courts).where(courts.c.id == court_id))).first()
    return _court(row) if row else None


async def get_court_by_code(conn: AsyncConnection, code: str) -> Court | None:
    row = (await conn.execute(select(courts).where(courts.c.code == code))).first()
    return _court(row) if row else None


# Persons --------------------------------------------------------------------------------------


async def insert_person(conn: AsyncConnection, person: Person, *, at: datetime) -> None:
    await conn.execute(
        insert(persons).values(
            id=person.id,
            court_id=person.court_id,
            name=person.name,
            phone=person.phone,
            email=person.email,
            id_number_last4=person.id_number_last4,
            created_at=at,
        )
    )


async def get_person(conn: AsyncConnection, person_id: UUID) -> Person | None:
    row = (await conn.execute(select(persons).where(persons.c.id == person_id))).first()
    return _person(row) if row else None


async def get_persons(conn: AsyncConnection, ids: Sequence[UUID]) -> dict[UUID, Person]:
    if not ids:
        return {}
    rows = (await conn.execute(select(persons).where(persons.c.id.in_(list(ids))))).all()
    return {row.id: _person(row) for row in rows}


# Cases ----------------------------------------------------------------------------------------


async def insert_case(conn: AsyncConnection, case: Case, *, created_by: UUID | None) -> None:
    await conn.execute(
        insert(cases).values(
            id=case.id,
            court_id=case.court_id,
            number=case.number,
            title=case.title,
            cause=case.cause,
            status=case.status.value,
            created_at=case.created_at,
            created_by=created_by,
        )
    )


async def case_number_exists(conn: AsyncConnection, court_id: UUID, number: str) -> bool:
    query = select(func.count()).where(cases.c.court_id == court_id, cases.c.number == number)
    return bool((await conn.execute(query)).scalar_one())


async def get_case(conn: AsyncConnection, case_id: UUID) -> Case | None:
    row = (await conn.execute(select(cases).where(cases.c.id == case_id))).first()
    return _case(row) if row else None


async def list_cases(
    conn: AsyncConnection, court_id: UUID, *, limit: int, offset: int
) -> list[Case]:
    query = (
        select(cases)
        .where(cases.c.court_id == court_id)
        .order_by(cases.c.created_at.desc(), cases.c.number)
        .limit(limit)
        .offset(offset)
    )
    return [_case(row) for row in (await conn.execute(query)).all()]


# Parties --------------------------------------------------------------------------------------


async def insert_party(conn: AsyncConnection, party: Party) -> None:
    await conn.execute(
        insert(parties).values(
            id=party.id,
            case_id=party.case_id,
            person_id=party.person_id,
            side=party.side.value,
            counsel_person_id=party.counsel_person_id,
        )
    )


async def list_parties(conn: AsyncConnection, case_id: UUID) -> list[Party]:
    query = select(parties).where(parties.c.case_id == case_id).order_by(parties.c.side)
    return [_party(row) for row in (await conn.execute(query)).all()]


async def get_party(conn: AsyncConnection, party_id: UUID) -> Party | None:
    row = (await conn.execute(select(parties).where(parties.c.id == party_id))).first()
    return _party(row) if row else None


# Hearings -------------------------------------------------------------------------------------


async def insert_hearing(conn: AsyncConnection, hearing: Hearing, *, at: datetime) -> None:
    await conn.execute(
        insert(hearings).values(
            id=hearing.id,
            case_id=hearing.case_id,
            court_id=hearing.court_id,
            title=hearing.title,
            scheduled_start=hearing.scheduled_start,
            expected_minutes=hearing.expected_minutes,
            is_public=hearing.is_public,
            recording_required=hearing.recording_required,
            state=hearing.state.value,
            locked=hearing.locked,
            recording_shared=hearing.recording_shared,
            created_at=at,
        )
    )


async def get_hearing(
    conn: AsyncConnection, hearing_id: UUID, *, for_update: bool = False
) -> Hearing | None:
    query = select(hearings).where(hearings.c.id == hearing_id)
    if for_update:
        # Row lock on PostgreSQL; SQLite already holds its write lock (BEGIN IMMEDIATE).
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return _hearing(row) if row else None


async def list_hearings_between(
    conn: AsyncConnection, court_id: UUID, start: datetime, end: datetime
) -> list[Hearing]:
    query = (
        select(hearings)
        .where(
            hearings.c.court_id == court_id,
            hearings.c.scheduled_start >= start,
            hearings.c.scheduled_start < end,
        )
        .order_by(hearings.c.scheduled_start)
    )
    return [_hearing(row) for row in (await conn.execute(query)).all()]


async def list_hearings_for_case(conn: AsyncConnection, case_id: UUID) -> list[Hearing]:
    query = (
        select(hearings).where(hearings.c.case_id == case_id).order_by(hearings.c.scheduled_start)
    )
    return [_hearing(row) for row in (await conn.execute(query)).all()]


async def set_hearing_state(
    conn: AsyncConnection, hearing_id: UUID, *, expected: HearingState, new: HearingState
) -> bool:
    """Compare-and-set: returns False if the state was no longer ``expected``."""
    result = await conn.execute(
        update(hearings)
        .where(hearings.c.id == hearing_id, hearings.c.state == expected.value)
        .values(state=new.value)
    )
    return result.rowcount == 1


async def set_hearing_locked(conn: AsyncConnection, hearing_id: UUID, *, locked: bool) -> None:
    await conn.execute(update(hearings).where(hearings.c.id == hearing_id).values(locked=locked))


async def set_recording_shared(conn: AsyncConnection, hearing_id: UUID, *, shared: bool) -> None:
    await conn.execute(
        update(hearings).where(hearings.c.id == hearing_id).values(recording_shared=shared)
    )


# Participants ---------------------------------------------------------------------------------


async def insert_participant(
    conn: AsyncConnection, participant: Participant, *, at: datetime
) -> None:
    await conn.execute(
        insert(participants).values(
            id=participant.id,
            hearing_id=participant.hearing_id,
            person_id=participant.person_id,
            party_id=participant.party_id,
            role=participant.role.value,
            state=participant.state.value,
            display_name=participant.display_name,
            created_at=at,
        )
    )


async def participant_exists(
    conn: AsyncConnection, hearing_id: UUID, person_id: UUID, role: Role
) -> bool:
    query = select(func.count()).where(
        participants.c.hearing_id == hearing_id,
        participants.c.person_id == person_id,
        participants.c.role == role.value,
    )
    return bool((await conn.execute(query)).scalar_one())


async def get_participant(
    conn: AsyncConnection, participant_id: UUID, *, for_update: bool = False
) -> Participant | None:
    query = select(participants).where(participants.c.id == participant_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return _participant(row) if row else None


async def list_participants(conn: AsyncConnection, hearing_id: UUID) -> list[Participant]:
    query = (
        select(participants)
        .where(participants.c.hearing_id == hearing_id)
        .order_by(participants.c.created_at, participants.c.id)
    )
    return [_participant(row) for row in (await conn.execute(query)).all()]


async def list_participants_for_hearings(
    conn: AsyncConnection, hearing_ids: Sequence[UUID]
) -> dict[UUID, list[Participant]]:
    result: dict[UUID, list[Participant]] = {hid: [] for hid in hearing_ids}
    if not hearing_ids:
        return result
    query = (
        select(participants)
        .where(participants.c.hearing_id.in_(list(hearing_ids)))
        .order_by(participants.c.created_at, participants.c.id)
    )
    for row in (await conn.execute(query)).all():
        result[row.hearing_id].append(_participant(row))
    return result


async def set_participant_state(
    conn: AsyncConnection,
    participant_id: UUID,
    *,
    expected: ParticipantState,
    new: ParticipantState,
) -> bool:
    result = await conn.execute(
        update(participants)
        .where(participants.c.id == participant_id, participants.c.state == expected.value)
        .values(state=new.value)
    )
    return result.rowcount == 1


# Join tokens ----------------------------------------------------------------------------------


async def insert_join_token(
    conn: AsyncConnection,
    *,
    jti: str,
    participant_id: UUID,
    hearing_id: UUID,
    issued_at: datetime,
    expires_at: datetime,
    issued_by: UUID | None,
) -> None:
    await conn.execute(
        insert(join_tokens).values(
            jti=jti,
            participant_id=participant_id,
            hearing_id=hearing_id,
            issued_at=issued_at,
            expires_at=expires_at,
            issued_by=issued_by,
        )
    )


async def get_join_token_row(conn: AsyncConnection, jti: str) -> Row[Any] | None:
    return (await conn.execute(select(join_tokens).where(join_tokens.c.jti == jti))).first()


async def revoke_join_tokens(
    conn: AsyncConnection, participant_id: UUID, *, at: datetime, by: UUID | None
) -> int:
    result = await conn.execute(
        update(join_tokens)
        .where(join_tokens.c.participant_id == participant_id, join_tokens.c.revoked_at.is_(None))
        .values(revoked_at=at, revoked_by=by)
    )
    return int(result.rowcount)


async def count_active_join_tokens(
    conn: AsyncConnection, participant_id: UUID, *, now: datetime
) -> int:
    query = select(func.count()).where(
        join_tokens.c.participant_id == participant_id,
        join_tokens.c.revoked_at.is_(None),
        join_tokens.c.expires_at > now,
    )
    return int((await conn.execute(query)).scalar_one())


# Audit ----------------------------------------------------------------------------------------


async def insert_audit_event(
    conn: AsyncConnection,
    *,
    at: datetime,
    entity: str,
    entity_id: UUID,
    hearing_id: UUID | None,
    case_id: UUID | None,
    action: str,
    from_state: str | None,
    to_state: str | None,
    actor_kind: str,
    actor_id: UUID | None,
    reason: str,
) -> None:
    await conn.execute(
        insert(audit_events).values(
            at=at,
            entity=entity,
            entity_id=entity_id,
            hearing_id=hearing_id,
            case_id=case_id,
            action=action,
            from_state=from_state,
            to_state=to_state,
            actor_kind=actor_kind,
            actor_id=actor_id,
            reason=reason,
        )
    )


async def list_audit_events(conn: AsyncConnection, hearing_id: UUID) -> list[Row[Any]]:
    query = (
        select(audit_events)
        .where(audit_events.c.hearing_id == hearing_id)
        .order_by(audit_events.c.id)
    )
    return list((await conn.execute(query)).all())


async def insert_attendance(
    conn: AsyncConnection,
    *,
    at: datetime,
    hearing_id: UUID,
    participant_id: UUID,
    event: str,
    reason: str,
) -> None:
    await conn.execute(
        insert(attendance_log).values(
            at=at,
            hearing_id=hearing_id,
            participant_id=participant_id,
            event=event,
            reason=reason,
        )
    )


async def list_attendance(conn: AsyncConnection, hearing_id: UUID) -> list[Row[Any]]:
    query = (
        select(attendance_log)
        .where(attendance_log.c.hearing_id == hearing_id)
        .order_by(attendance_log.c.id)
    )
    return list((await conn.execute(query)).all())
