"""Hearings: scheduling, the day view, lifecycle actions, participants and join links."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from yunting.infra.errors import InvalidInputError
from yunting.web.deps import AnyActor, Resources, Staff
from yunting.web.routes.cases import create_person
from yunting.web.schemas import (
    ERRORS,
    AuditEventOut,
    CaseOut,
    DayHearing,
    DayView,
    HearingCreate,
    HearingDetailOut,
    HearingOut,
    JoinLinkOut,
    LockChange,
    NoticeOut,
    ParticipantCreate,
    ParticipantOut,
    RevokeOut,
    StateChange,
    StateChangeOut,
)

router = APIRouter(prefix="/api", tags=["hearings"], responses=ERRORS)


@router.post("/hearings", status_code=201, summary="Schedule a hearing for a case")
async def schedule_hearing(body: HearingCreate, staff: Staff, resources: Resources) -> HearingOut:
    hearing = await resources.hearings.schedule_hearing(
        actor=staff.actor,
        case_id=body.case_id,
        scheduled_start=body.scheduled_start,
        expected_minutes=body.expected_minutes,
        is_public=body.is_public,
        recording_required=body.recording_required,
        title=body.title,
    )
    return HearingOut.of(hearing)


@router.get(
    "/hearings",
    summary="The hearings of one day",
    description="`day` is a calendar date in the court's time zone; default today.",
)
async def hearings_of_day(
    staff: Staff, resources: Resources, day: Annotated[date | None, Query()] = None
) -> DayView:
    tz = ZoneInfo(resources.settings.court_timezone)
    the_day = day or datetime.now(tz).date()
    found = await resources.hearings.list_hearings_for_day(actor=staff.actor, day=the_day)
    return DayView(
        day=the_day,
        hearings=[
            DayHearing(hearing=HearingOut.of(h), participants=[ParticipantOut.of(p) for p in parts])
            for h, parts in found
        ],
    )


@router.get(
    "/hearings/{hearing_id}",
    summary="One hearing with its case and participants",
    description="Staff of the court, or a participant holding a join token for this hearing.",
)
async def get_hearing(hearing_id: UUID, actor: AnyActor, resources: Resources) -> HearingDetailOut:
    detail = await resources.hearings.get_hearing(actor=actor, hearing_id=hearing_id)
    return HearingDetailOut(
        hearing=HearingOut.of(detail.hearing),
        case=CaseOut.of(detail.case),
        participants=[ParticipantOut.of(p) for p in detail.participants],
    )


@router.post(
    "/hearings/{hearing_id}/state",
    summary="Change the hearing's state (open the lobby, start, pause, suspend, resume, close)",
    description=(
        "Checked against the role's permissions and the state machine: e.g. only the judge "
        "starts, pauses, resumes and closes; the clerk may open the lobby and suspend for a "
        "technical problem. Illegal moves return 409 and change nothing."
    ),
)
async def change_state(
    hearing_id: UUID, body: StateChange, staff: Staff, resources: Resources
) -> StateChangeOut:
    transition = await resources.hearings.change_hearing_state(
        actor=staff.actor, hearing_id=hearing_id, action=body.action, reason=body.reason
    )
    await resources.rooms.hearing_changed(
        hearing_id=hearing_id, action=body.action.value, reason=body.reason, by=None
    )
    return StateChangeOut(
        hearing_id=hearing_id, from_state=transition.from_state, to_state=transition.to_state
    )


@router.post("/hearings/{hearing_id}/lock", summary="Lock or unlock admissions from the lobby")
async def lock(
    hearing_id: UUID, body: LockChange, staff: Staff, resources: Resources
) -> HearingOut:
    await resources.hearings.set_locked(
        actor=staff.actor, hearing_id=hearing_id, locked=body.locked
    )
    await resources.rooms.hearing_changed(
        hearing_id=hearing_id, action="lock" if body.locked else "unlock", reason="", by=None
    )
    detail = await resources.hearings.get_hearing(actor=staff.actor, hearing_id=hearing_id)
    return HearingOut.of(detail.hearing)


@router.get("/hearings/{hearing_id}/participants", summary="Participants of a hearing")
async def list_participants(
    hearing_id: UUID, actor: AnyActor, resources: Resources
) -> list[ParticipantOut]:
    found = await resources.hearings.list_participants(actor=actor, hearing_id=hearing_id)
    return [ParticipantOut.of(p) for p in found]


@router.post(
    "/hearings/{hearing_id}/participants",
    status_code=201,
    summary="Add a participant",
    description="Give `person_id` of an existing person of the court, or `person` to create one.",
)
async def add_participant(
    hearing_id: UUID, body: ParticipantCreate, staff: Staff, resources: Resources
) -> ParticipantOut:
    await resources.hearings.get_hearing(actor=staff.actor, hearing_id=hearing_id)
    person_id = body.person_id
    if body.person is not None:
        person_id = await create_person(resources.hearings, staff.actor, body.person)
    if person_id is None:  # excluded by ParticipantCreate's validator
        raise InvalidInputError("give exactly one of person_id and person")
    participant = await resources.hearings.add_participant(
        actor=staff.actor,
        hearing_id=hearing_id,
        person_id=person_id,
        role=body.role,
        party_id=body.party_id,
        display_name=body.display_name,
    )
    return ParticipantOut.of(participant)


@router.post(
    "/participants/{participant_id}/join-link",
    status_code=201,
    summary="Issue a join link",
    description=(
        "A signed, expiring token bound to the hearing, the participant and its role, with "
        "grants (may_publish, may_subscribe, may_control). Earlier links stay valid until revoked."
    ),
)
async def issue_join_link(participant_id: UUID, staff: Staff, resources: Resources) -> JoinLinkOut:
    link = await resources.hearings.issue_join_link(
        actor=staff.actor, participant_id=participant_id
    )
    return JoinLinkOut(
        participant_id=link.participant_id,
        url=link.url,
        token=link.token,
        expires_at=link.expires_at,
    )


@router.delete(
    "/participants/{participant_id}/join-links",
    summary="Revoke every join link of a participant",
    description="A participant connected to the hearing room with such a link is disconnected.",
)
async def revoke_join_links(participant_id: UUID, staff: Staff, resources: Resources) -> RevokeOut:
    count = await resources.hearings.revoke_join_links(
        actor=staff.actor, participant_id=participant_id
    )
    participant = await resources.hearings.room_participant(participant_id=participant_id)
    # Revoking also ends a live connection: the link no longer admits anyone.
    await resources.rooms.access_revoked(
        hearing_id=participant.hearing_id, participant_id=participant_id
    )
    return RevokeOut(participant_id=participant_id, revoked=count)


@router.post(
    "/hearings/{hearing_id}/notices",
    status_code=201,
    summary="Send hearing notices with join links by SMS and email",
    description="Each non-staff participant gets a fresh join link; messages leave through the "
    "configured sender (the local outbox in the embedded default).",
)
async def send_notices(hearing_id: UUID, staff: Staff, resources: Resources) -> list[NoticeOut]:
    results = await resources.hearings.send_hearing_notices(
        actor=staff.actor, hearing_id=hearing_id, sender=resources.sender
    )
    return [
        NoticeOut(participant_id=r.participant_id, channel=r.channel.value, message_id=r.message_id)
        for r in results
    ]


@router.get("/hearings/{hearing_id}/audit", summary="The hearing's audit trail")
async def audit(hearing_id: UUID, staff: Staff, resources: Resources) -> list[AuditEventOut]:
    rows = await resources.hearings.audit_trail(actor=staff.actor, hearing_id=hearing_id)
    return [AuditEventOut.model_validate(r) for r in rows]
