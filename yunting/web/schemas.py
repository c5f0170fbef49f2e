"""API shapes (separate from tables and domain objects)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, model_validator

from yunting.hearing.model import (
    Case,
    CaseStatus,
    Hearing,
    HearingAction,
    HearingState,
    Participant,
    ParticipantState,
    Party,
    PartySide,
    Person,
    Role,
    StaffRole,
)
from yunting.staff.model import StaffUser


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text300 = Annotated[str, StringConstraints(min_length=1, max_length=300)]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{6,20}$")]
Last4 = Annotated[str, StringConstraints(pattern=r"^[0-9Xx]{4}$")]


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. not_found, forbidden")
    message: str = Field(description="What went wrong, in plain words")


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "Not signed in, or an invalid join token"},
    403: {"model": ErrorResponse, "description": "Role not allowed, or CSRF token missing"},
    404: {"model": ErrorResponse, "description": "No such object in your court"},
    409: {"model": ErrorResponse, "description": "Conflicts with the current state"},
    422: {"model": ErrorResponse, "description": "Invalid input"},
}


# Auth -----------------------------------------------------------------------------------------


class SignInRequest(Strict):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class StaffUserOut(BaseModel):
    id: UUID
    court_id: UUID
    username: str
    display_name: str
    role: StaffRole

    @classmethod
    def of(cls, user: StaffUser) -> StaffUserOut:
        return cls(
            id=user.id,
            court_id=user.court_id,
            username=user.username,
            display_name=user.display_name,
            role=user.role,
        )


class SignInResponse(BaseModel):
    user: StaffUserOut
    session_token: str = Field(
        description="Send as `Authorization: Bearer <token>` from API clients (no CSRF needed)"
    )
    csrf_token: str = Field(
        description="Send as `X-CSRF-Token` on state-changing requests that use the cookie"
    )
    expires_at: datetime


class MeResponse(BaseModel):
    user: StaffUserOut
    csrf_token: str
    expires_at: datetime


# Cases ----------------------------------------------------------------------------------------


class CaseCreate(Strict):
    number: Annotated[
        str,
        StringConstraints(min_length=6, max_length=100),
        Field(examples=["(2026)浙0192民初1234号"]),
    ]
    title: Text300
    cause: Text200 = Field(description="案由, cause of action", examples=["网络购物合同纠纷"])


class CaseOut(BaseModel):
    id: UUID
    number: str
    title: str
    cause: str
    status: CaseStatus
    created_at: datetime

    @classmethod
    def of(cls, case: Case) -> CaseOut:
        return cls(
            id=case.id,
            number=case.number,
            title=case.title,
            cause=case.cause,
            status=case.status,
            created_at=case.created_at,
        )


class PersonCreate(Strict):
    name: Text200
    phone: Phone | None = None
    email: EmailStr | None = None
    id_number_last4: Last4 | None = Field(
        default=None, description="Last four characters of the ID number, for identity checks"
    )


class PersonOut(BaseModel):
    id: UUID
    name: str
    phone: str | None
    email: str | None

    @classmethod
    def of(cls, person: Person) -> PersonOut:
        return cls(id=person.id, name=person.name, phone=person.phone, email=person.email)


class PartyCreate(Strict):
    person: PersonCreate
    side: PartySide
    counsel: PersonCreate | None = None


class PartyOut(BaseModel):
    id: UUID
    side: PartySide
    person_id: UUID
    counsel_person_id: UUID | None

    @classmethod
    def of(cls, party: Party) -> PartyOut:
        return cls(
            id=party.id,
            side=party.side,
            person_id=party.person_id,
            counsel_person_id=party.counsel_person_id,
        )


# Hearings -------------------------------------------------------------------------------------


class HearingCreate(Strict):
    case_id: UUID
    scheduled_start: datetime = Field(description="ISO 8601 with an offset, e.g. +08:00")
    expected_minutes: int = Field(ge=5, le=24 * 60)
    is_public: bool = Field(description="公开审理: observers may watch")
    recording_required: bool = True
    title: Annotated[str, StringConstraints(max_length=300)] = ""


class HearingOut(BaseModel):
    id: UUID
    case_id: UUID
    title: str
    scheduled_start: datetime
    expected_minutes: int
    is_public: bool
    recording_required: bool
    state: HearingState
    locked: bool

    @classmethod
    def of(cls, hearing: Hearing) -> HearingOut:
        return cls(
            id=hearing.id,
            case_id=hearing.case_id,
            title=hearing.title,
            scheduled_start=hearing.scheduled_start,
            expected_minutes=hearing.expected_minutes,
            is_public=hearing.is_public,
            recording_required=hearing.recording_required,
            state=hearing.state,
            locked=hearing.locked,
        )


class ParticipantOut(BaseModel):
    id: UUID
    hearing_id: UUID
    person_id: UUID
    party_id: UUID | None
    role: Role
    state: ParticipantState
    display_name: str

    @classmethod
    def of(cls, p: Participant) -> ParticipantOut:
        return cls(
            id=p.id,
            hearing_id=p.hearing_id,
            person_id=p.person_id,
            party_id=p.party_id,
            role=p.role,
            state=p.state,
            display_name=p.display_name,
        )


class HearingDetailOut(BaseModel):
    hearing: HearingOut
    case: CaseOut
    participants: list[ParticipantOut]


class DayHearing(BaseModel):
    hearing: HearingOut
    participants: list[ParticipantOut]


class DayView(BaseModel):
    day: date
    hearings: list[DayHearing]


class StateChange(Strict):
    action: HearingAction
    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class StateChangeOut(BaseModel):
    hearing_id: UUID
    from_state: HearingState
    to_state: HearingState


class LockChange(Strict):
    locked: bool


class ParticipantCreate(Strict):
    role: Role
    person_id: UUID | None = Field(default=None, description="An existing person of the court")
    person: PersonCreate | None = Field(default=None, description="Or a new person")
    party_id: UUID | None = None
    display_name: Annotated[str, StringConstraints(max_length=200)] = ""

    @model_validator(mode="after")
    def _one_person(self) -> ParticipantCreate:
        if (self.person_id is None) == (self.person is None):
            raise ValueError("give exactly one of person_id and person")
        return self


class JoinLinkOut(BaseModel):
    participant_id: UUID
    url: str
    token: str
    expires_at: datetime


class RevokeOut(BaseModel):
    participant_id: UUID
    revoked: int


class NoticeOut(BaseModel):
    participant_id: UUID
    channel: Literal["sms", "email"]
    message_id: UUID


class AuditEventOut(BaseModel):
    at: datetime
    entity: str
    entity_id: UUID
    action: str
    from_state: str | None
    to_state: str | None
    actor_kind: str
    actor_id: UUID | None
    reason: str


class RoomTokenOut(BaseModel):
    """A join token for the hearing room websocket, for a signed-in judge or clerk."""

    token: str = Field(description="Send it in the `hello` message on `/ws/hearings/{id}`.")
    participant_id: UUID
    role: Role
    expires_at: datetime
    websocket_path: str


class AttendanceOut(BaseModel):
    at: datetime
    participant_id: UUID
    display_name: str
    event: str = Field(description="join_attempt, admitted, disconnected, ... (docs/signaling.md)")
    reason: str = Field(description="network_loss, closed_by_user, removed, token_expired, ...")


# The participant's device check (join flow) ---------------------------------------------------

CameraOrMicrophone = Literal["ok", "denied", "missing", "error"]


class DeviceCheck(Strict):
    """What the browser found: ``denied`` is a refused permission (NotAllowedError),
    ``missing`` no such device (NotFoundError), ``error`` anything else (device busy, ...)."""

    camera: CameraOrMicrophone
    microphone: CameraOrMicrophone
    speaker: Literal["ok", "failed", "not_tested"]


class Declaration(Strict):
    """The participant ticked the conduct declaration of the join page."""

    accepted: Literal[True] = Field(description="Must be true: the declaration was ticked")
    version: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,39}$")] = Field(
        description="Which text was accepted (the join page sends its own, e.g. `conduct-1`)"
    )


class DeclarationOut(BaseModel):
    participant_id: UUID
    version: str
    recorded_at: datetime


class DeviceCheckOut(BaseModel):
    participant_id: UUID
    result: str = Field(
        description=(
            "What the attendance log records: devices_ok, or the first problem of camera_denied, "
            "microphone_denied, camera_missing, microphone_missing, device_error, speaker_failed"
        )
    )
    recorded_at: datetime
