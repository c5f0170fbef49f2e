"""The participant's join flow: a one-time code to their phone or email, then verified; the
conduct declaration and the result of the browser's device check, for the attendance log.

Authenticated by the join token (``Authorization: Bearer yt1.…``). The browser join flow
(``/j/<token>``: identity, conduct declaration, device check, then the room) builds on these.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, StringConstraints

from yunting.hearing.errors import ConflictError, PermissionDeniedError
from yunting.hearing.model import STAFF_ROLES, Actor, ActorKind, Participant, ParticipantState
from yunting.identity.errors import NoContactError
from yunting.identity.otp import OtpPurpose
from yunting.service_delivery.ports import Channel
from yunting.signaling.outputs import AttendanceEvent, AttendanceReason
from yunting.web.deps import AnyActor, Resources
from yunting.web.schemas import (
    ERRORS,
    Declaration,
    DeclarationOut,
    DeviceCheck,
    DeviceCheckOut,
    Strict,
)

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/join", tags=["join"], responses=ERRORS)

# States from which a correct code moves the participant to "verified".
_NEEDS_VERIFICATION = frozenset({ParticipantState.INVITED, ParticipantState.LEFT})


class CodeRequest(Strict):
    channel: Literal["sms", "email"]


class CodeSent(BaseModel):
    channel: Literal["sms", "email"]
    destination_hint: str
    expires_at: datetime
    resend_after: datetime


class CodeCheck(Strict):
    code: Annotated[str, StringConstraints(min_length=1, max_length=32)]


class Verified(BaseModel):
    participant_id: str
    state: ParticipantState


def _participant_id(actor: Actor) -> UUID:
    if actor.kind is not ActorKind.PARTICIPANT or actor.id is None:
        raise PermissionDeniedError("this call needs a participant's join token")
    return actor.id


@router.post(
    "/code",
    status_code=201,
    summary="Send a one-time code to the participant's phone or email",
    description=(
        "The code is six digits, valid 10 minutes, 5 tries. At most one code a minute and five an "
        "hour per participant (429 with Retry-After beyond that)."
    ),
    responses={429: {"description": "Asked too often"}},
)
async def send_code(body: CodeRequest, actor: AnyActor, resources: Resources) -> CodeSent:
    participant, person = await resources.hearings.get_participant_with_person(
        actor=actor, participant_id=_participant_id(actor)
    )
    channel = Channel(body.channel)
    destination = person.phone if channel is Channel.SMS else person.email
    if not destination:
        raise NoContactError(f"the court has no {channel.value} address for you")
    sent = await resources.identity.send_code(
        purpose=OtpPurpose.JOIN_HEARING,
        subject=str(participant.id),
        channel=channel,
        destination=destination,
        sender=resources.sender,
        text="【云庭】您的庭审身份验证码为 {code}，10分钟内有效。请勿告诉他人。",
    )
    return CodeSent(
        channel=body.channel,
        destination_hint=sent.destination_hint,
        expires_at=sent.expires_at,
        resend_after=sent.resend_after,
    )


@router.post(
    "/verify",
    summary="Check the one-time code; the participant becomes verified",
    description="A code works once. Wrong, expired, used and locked codes get 422 with a reason.",
)
async def verify(body: CodeCheck, actor: AnyActor, resources: Resources) -> Verified:
    participant_id = _participant_id(actor)
    await resources.identity.verify_code(
        purpose=OtpPurpose.JOIN_HEARING, subject=str(participant_id), code=body.code
    )
    participant, _ = await resources.hearings.get_participant_with_person(
        actor=actor, participant_id=participant_id
    )
    state = participant.state
    if state in _NEEDS_VERIFICATION:
        transition = await resources.hearings.change_participant_state(
            actor=actor,
            participant_id=participant.id,
            to=ParticipantState.VERIFIED,
            action="participant.verify",
            reason="one-time code",
        )
        state = transition.to_state
    return Verified(participant_id=str(participant.id), state=state)


async def _verified_participant(actor: Actor, resources: Resources) -> Participant:
    """The participant of a join token, refused (409) while a party has not proved who they
    are: the attendance log is evidence, and nothing goes in it for an unverified person.
    Judge and clerk signed in instead."""
    participant, _ = await resources.hearings.get_participant_with_person(
        actor=actor, participant_id=_participant_id(actor)
    )
    if participant.role not in STAFF_ROLES and participant.state in _NEEDS_VERIFICATION:
        raise ConflictError("verify your identity with a one-time code first")
    return participant


@router.post(
    "/declaration",
    status_code=201,
    summary="Record the participant's conduct declaration (not to record the hearing, ...)",
    description=(
        "Written to the hearing's attendance log as `conduct_declared`, with the version of the "
        "declaration text the participant accepted, so the court can show what they promised "
        "and when. `accepted` must be true. Parties must have verified their identity first "
        "(409 otherwise)."
    ),
)
async def declaration(body: Declaration, actor: AnyActor, resources: Resources) -> DeclarationOut:
    participant = await _verified_participant(actor, resources)
    now = resources.clock.now()
    await resources.hearings.record_attendance(
        hearing_id=participant.hearing_id,
        participant_id=participant.id,
        event=AttendanceEvent.CONDUCT_DECLARED.value,
        reason=body.version,
        at=now,
    )
    return DeclarationOut(participant_id=participant.id, version=body.version, recorded_at=now)


def device_check_result(check: DeviceCheck) -> AttendanceReason:
    """``devices_ok``, or the first problem: refused permissions first (the participant can fix
    them in the browser), then missing devices, then other device errors, then the speaker.

    The court reads this to tell "could not be seen or heard" from "chose not to be".
    """
    problems = (
        (check.camera == "denied", AttendanceReason.CAMERA_DENIED),
        (check.microphone == "denied", AttendanceReason.MICROPHONE_DENIED),
        (check.camera == "missing", AttendanceReason.CAMERA_MISSING),
        (check.microphone == "missing", AttendanceReason.MICROPHONE_MISSING),
        ("error" in (check.camera, check.microphone), AttendanceReason.DEVICE_ERROR),
        (check.speaker == "failed", AttendanceReason.SPEAKER_FAILED),
    )
    return next((reason for found, reason in problems if found), AttendanceReason.DEVICES_OK)


@router.post(
    "/device-check",
    status_code=201,
    summary="Record the result of the browser's camera, microphone and speaker check",
    description=(
        "Written to the hearing's attendance log as `device_check` with `devices_ok` or the first "
        "problem found. The participant may go on to the room either way (audio only, say). "
        "Parties must have verified their identity first (409 otherwise)."
    ),
)
async def device_check(body: DeviceCheck, actor: AnyActor, resources: Resources) -> DeviceCheckOut:
    participant = await _verified_participant(actor, resources)
    result = device_check_result(body)
    now = resources.clock.now()
    await resources.hearings.record_attendance(
        hearing_id=participant.hearing_id,
        participant_id=participant.id,
        event=AttendanceEvent.DEVICE_CHECK.value,
        reason=result.value,
        at=now,
    )
    logger.info(
        "device check recorded: %s",
        result.value,
        extra={"hearing_id": str(participant.hearing_id), "participant_id": str(participant.id)},
    )
    return DeviceCheckOut(participant_id=participant.id, result=result.value, recorded_at=now)
