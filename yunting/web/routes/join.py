"""The participant's identity check: a one-time code to their phone or email, then verified.

Authenticated by the join token (``Authorization: Bearer yt1.…``). The browser join flow
(device check, lobby) builds on these two calls.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, StringConstraints

from yunting.hearing.errors import PermissionDeniedError
from yunting.hearing.model import Actor, ActorKind, ParticipantState
from yunting.identity.errors import NoContactError
from yunting.identity.otp import OtpPurpose
from yunting.service_delivery.ports import Channel
from yunting.web.deps import AnyActor, Resources
from yunting.web.schemas import ERRORS, Strict

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
