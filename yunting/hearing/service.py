"""Use cases of the hearing area. Keyword-only; each is one database transaction.

Authorization happens here, against ``Actor.may``: routes and (later) the signaling core call these
functions and never touch tables. Other courts' objects are reported as not found, so ids cannot be
probed across courts.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from yunting.hearing import repository as repo
from yunting.hearing.errors import (
    ConflictError,
    IllegalTransitionError,
    InvalidTokenError,
    NotFoundError,
    PermissionDeniedError,
)
from yunting.hearing.model import (
    ACTION_PERMISSION,
    FINAL_HEARING_STATES,
    RECORD_VIEWER_ROLES,
    STAFF_ROLES,
    Actor,
    ActorKind,
    Case,
    CaseStatus,
    Court,
    Grants,
    Hearing,
    HearingAction,
    HearingState,
    Participant,
    ParticipantState,
    Party,
    PartySide,
    Permission,
    Person,
    Role,
    StaffRole,
    Transition,
    plan_hearing_transition,
    plan_participant_transition,
)
from yunting.hearing.ports import EvidenceLog
from yunting.hearing.tokens import (
    JoinClaims,
    decode_join_token,
    derive_key,
    encode_join_token,
    new_jti,
)
from yunting.infra.clock import Clock, as_utc
from yunting.infra.db import Database
from yunting.infra.errors import InvalidInputError
from yunting.service_delivery.ports import (
    Channel,
    MessagePurpose,
    MessageSender,
    OutgoingMessage,
)

logger = logging.getLogger(__name__)

# "(2026)浙0192民初1234号": year in half- or full-width brackets, court and case-type code, serial.
CASE_NUMBER_RE = re.compile(r"^[(（]\d{4}[)）][\w\u4e00-\u9fff]{1,20}?\d+号$")


@dataclass(frozen=True, slots=True)
class HearingDetail:
    hearing: Hearing
    case: Case
    participants: list[Participant]


@dataclass(frozen=True, slots=True)
class IssuedLink:
    participant_id: UUID
    token: str
    url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class NoticeResult:
    participant_id: UUID
    channel: Channel
    message_id: UUID


@dataclass(frozen=True, slots=True)
class AttendanceRecord:
    at: datetime
    participant_id: UUID
    display_name: str
    event: str
    reason: str


@dataclass(frozen=True, slots=True)
class RoomPass:
    """A staff member's join token for a hearing room, and who they are in it."""

    token: str
    participant_id: UUID
    role: Role
    person_id: UUID
    expires_at: datetime


_ROOM_ROLE_OF_STAFF = {StaffRole.JUDGE: Role.JUDGE, StaffRole.CLERK: Role.CLERK}


class HearingService:
    """Cases, hearings and participants. Built once in the app lifespan."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        secret_key: str,
        public_base_url: str,
        join_token_ttl: timedelta,
        court_timezone: ZoneInfo,
        evidence: EvidenceLog | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._token_key = derive_key(secret_key, "join-token")
        self._base_url = public_base_url.rstrip("/")
        self._join_ttl = join_token_ttl
        self._tz = court_timezone
        self._evidence = evidence

    # Authorization helpers --------------------------------------------------------------------

    @staticmethod
    def _require(
        actor: Actor, permission: Permission, *, court_id: UUID, hearing_id: UUID | None = None
    ) -> None:
        if not actor.may(permission, court_id=court_id, hearing_id=hearing_id):
            raise PermissionDeniedError(f"your role may not {permission}")

    @staticmethod
    def _visible(actor: Actor, *, court_id: UUID, hearing_id: UUID | None = None) -> bool:
        if actor.kind is ActorKind.SYSTEM:
            return True
        if actor.kind is ActorKind.STAFF:
            return actor.court_id == court_id
        return hearing_id is not None and actor.hearing_id == hearing_id

    async def _load_case(self, conn: AsyncConnection, actor: Actor, case_id: UUID) -> Case:
        case = await repo.get_case(conn, case_id)
        if case is None or not self._visible(actor, court_id=case.court_id):
            raise NotFoundError(f"no case {case_id}")
        return case

    async def _load_hearing(
        self, conn: AsyncConnection, actor: Actor, hearing_id: UUID, *, for_update: bool = False
    ) -> Hearing:
        hearing = await repo.get_hearing(conn, hearing_id, for_update=for_update)
        if hearing is None or not self._visible(
            actor, court_id=hearing.court_id, hearing_id=hearing.id
        ):
            raise NotFoundError(f"no hearing {hearing_id}")
        return hearing

    # Courts and persons -----------------------------------------------------------------------

    async def ensure_court(self, *, name: str, code: str) -> Court:
        """Create the court with ``code`` unless it exists (idempotent, for set-up and demo)."""
        async with self._db.transaction() as conn:
            existing = await repo.get_court_by_code(conn, code)
            if existing is not None:
                return existing
            court = Court(id=uuid.uuid4(), name=name, code=code)
            await repo.insert_court(conn, court)
            return court

    async def get_court(self, *, court_id: UUID) -> Court:
        async with self._db.read() as conn:
            court = await repo.get_court(conn, court_id)
        if court is None:
            raise NotFoundError(f"no court {court_id}")
        return court

    async def create_person(
        self,
        *,
        actor: Actor,
        name: str,
        phone: str | None,
        email: str | None,
        id_number_last4: str | None,
    ) -> Person:
        if actor.court_id is None:
            raise PermissionDeniedError("only court staff may register persons")
        self._require(actor, Permission.PARTICIPANT_ADD, court_id=actor.court_id)
        person = Person(
            id=uuid.uuid4(),
            court_id=actor.court_id,
            name=name,
            phone=phone,
            email=email,
            id_number_last4=id_number_last4,
        )
        async with self._db.transaction() as conn:
            await repo.insert_person(conn, person, at=self._clock.now())
        return person

    async def get_person(self, *, actor: Actor, person_id: UUID) -> Person:
        async with self._db.read() as conn:
            person = await repo.get_person(conn, person_id)
        if person is None or not self._visible(actor, court_id=person.court_id):
            raise NotFoundError(f"no person {person_id}")
        return person

    # Cases ------------------------------------------------------------------------------------

    async def create_case(self, *, actor: Actor, number: str, title: str, cause: str) -> Case:
        """Register a case (立案) in the actor's court. Case numbers are unique per court."""
        if actor.court_id is None:
            raise PermissionDeniedError("only court staff may create cases")
        self._require(actor, Permission.CASE_CREATE, court_id=actor.court_id)
        number = number.strip()
        if not CASE_NUMBER_RE.match(number):
            raise InvalidInputError(
                f"case number {number!r} is not of the form (2026)浙0192民初1234号"
            )
        case = Case(
            id=uuid.uuid4(),
            court_id=actor.court_id,
            number=number,
            title=title.strip(),
            cause=cause.strip(),
            status=CaseStatus.OPEN,
            created_at=self._clock.now(),
        )
        async with self._db.transaction() as conn:
            if await repo.case_number_exists(conn, actor.court_id, number):
                raise ConflictError(f"case number {number} already exists in this court")
            await repo.insert_case(conn, case, created_by=actor.id)
            await self._audit(
                conn,
                actor=actor,
                entity="case",
                entity_id=case.id,
                hearing_id=None,
                case_id=case.id,
                action="case.create",
                from_state=None,
                to_state=case.status.value,
                reason="",
            )
        logger.info("case %s created", case.id, extra={"case_id": str(case.id)})
        return case

    async def list_cases(self, *, actor: Actor, limit: int = 50, offset: int = 0) -> list[Case]:
        if actor.court_id is None:
            raise PermissionDeniedError("only court staff may list cases")
        self._require(actor, Permission.CASE_VIEW, court_id=actor.court_id)
        async with self._db.read() as conn:
            return await repo.list_cases(conn, actor.court_id, limit=limit, offset=offset)

    async def get_case(self, *, actor: Actor, case_id: UUID) -> Case:
        async with self._db.read() as conn:
            case = await self._load_case(conn, actor, case_id)
        self._require(actor, Permission.CASE_VIEW, court_id=case.court_id)
        return case

    async def add_party(
        self,
        *,
        actor: Actor,
        case_id: UUID,
        person_id: UUID,
        side: PartySide,
        counsel_person_id: UUID | None = None,
    ) -> Party:
        async with self._db.transaction() as conn:
            case = await self._load_case(conn, actor, case_id)
            self._require(actor, Permission.PARTICIPANT_ADD, court_id=case.court_id)
            for pid in (person_id, counsel_person_id):
                if pid is None:
                    continue
                person = await repo.get_person(conn, pid)
                if person is None or person.court_id != case.court_id:
                    raise NotFoundError(f"no person {pid}")
            party = Party(
                id=uuid.uuid4(),
                case_id=case.id,
                person_id=person_id,
                side=side,
                counsel_person_id=counsel_person_id,
            )
            await repo.insert_party(conn, party)
        return party

    async def list_parties(self, *, actor: Actor, case_id: UUID) -> list[Party]:
        async with self._db.read() as conn:
            case = await self._load_case(conn, actor, case_id)
            self._require(actor, Permission.CASE_VIEW, court_id=case.court_id)
            return await repo.list_parties(conn, case_id)

    # Hearings ---------------------------------------------------------------------------------

    async def schedule_hearing(
        self,
        *,
        actor: Actor,
        case_id: UUID,
        scheduled_start: datetime,
        expected_minutes: int,
        is_public: bool,
        recording_required: bool = True,
        title: str = "",
    ) -> Hearing:
        if scheduled_start.tzinfo is None:
            raise InvalidInputError("scheduled_start must carry a timezone offset")
        if not 5 <= expected_minutes <= 24 * 60:
            raise InvalidInputError(f"expected_minutes must be 5..1440, got {expected_minutes}")
        async with self._db.transaction() as conn:
            case = await self._load_case(conn, actor, case_id)
            self._require(actor, Permission.HEARING_SCHEDULE, court_id=case.court_id)
            if case.status is not CaseStatus.OPEN:
                raise ConflictError(f"case {case.number} is {case.status}; cannot schedule")
            hearing = Hearing(
                id=uuid.uuid4(),
                case_id=case.id,
                court_id=case.court_id,
                scheduled_start=as_utc(scheduled_start),
                expected_minutes=expected_minutes,
                is_public=is_public,
                recording_required=recording_required,
                state=HearingState.SCHEDULED,
                title=title.strip() or case.title,
                locked=False,
            )
            await repo.insert_hearing(conn, hearing, at=self._clock.now())
            await self._audit(
                conn,
                actor=actor,
                entity="hearing",
                entity_id=hearing.id,
                hearing_id=hearing.id,
                case_id=case.id,
                action="hearing.schedule",
                from_state=None,
                to_state=hearing.state.value,
                reason="",
            )
        logger.info("hearing %s scheduled", hearing.id, extra={"hearing_id": str(hearing.id)})
        return hearing

    async def get_hearing(self, *, actor: Actor, hearing_id: UUID) -> HearingDetail:
        async with self._db.read() as conn:
            hearing = await self._load_hearing(conn, actor, hearing_id)
            self._require(
                actor, Permission.HEARING_VIEW, court_id=hearing.court_id, hearing_id=hearing.id
            )
            case = await repo.get_case(conn, hearing.case_id)
            if case is None:  # foreign key makes this impossible; keep mypy and readers honest
                raise NotFoundError(f"no case {hearing.case_id}")
            parts = await repo.list_participants(conn, hearing.id)
        return HearingDetail(hearing=hearing, case=case, participants=parts)

    async def list_hearings_for_day(
        self, *, actor: Actor, day: date
    ) -> list[tuple[Hearing, list[Participant]]]:
        """The hearings of ``day`` in the court's time zone, with their participants."""
        if actor.court_id is None:
            raise PermissionDeniedError("only court staff may see the day's hearings")
        self._require(actor, Permission.HEARING_VIEW, court_id=actor.court_id)
        start = datetime.combine(day, time.min, tzinfo=self._tz)
        end = start + timedelta(days=1)
        async with self._db.read() as conn:
            found = await repo.list_hearings_between(conn, actor.court_id, start, end)
            parts = await repo.list_participants_for_hearings(conn, [h.id for h in found])
        return [(h, parts[h.id]) for h in found]

    async def list_hearings_for_case(self, *, actor: Actor, case_id: UUID) -> list[Hearing]:
        async with self._db.read() as conn:
            case = await self._load_case(conn, actor, case_id)
            self._require(actor, Permission.HEARING_VIEW, court_id=case.court_id)
            return await repo.list_hearings_for_case(conn, case.id)

    async def change_hearing_state(
        self, *, actor: Actor, hearing_id: UUID, action: HearingAction, reason: str = ""
    ) -> Transition[HearingState]:
        """Apply a lifecycle action (start, pause, ...) through the one transition function.

        The new state, its audit event and its ledger entry commit together, before anyone is
        told; a concurrent change makes this fail with ``ConflictError`` instead of overwriting.
        """
        async with self._db.transaction() as conn:
            hearing = await self._load_hearing(conn, actor, hearing_id, for_update=True)
            self._require(
                actor, ACTION_PERMISSION[action], court_id=hearing.court_id, hearing_id=hearing.id
            )
            transition = plan_hearing_transition(
                hearing_id=hearing.id, current=hearing.state, action=action, reason=reason
            )
            changed = await repo.set_hearing_state(
                conn, hearing.id, expected=transition.from_state, new=transition.to_state
            )
            if not changed:
                raise ConflictError("the hearing's state changed meanwhile; reload and retry")
            await self._audit(
                conn,
                actor=actor,
                entity="hearing",
                entity_id=hearing.id,
                hearing_id=hearing.id,
                case_id=hearing.case_id,
                action=f"hearing.{action.value}",
                from_state=transition.from_state.value,
                to_state=transition.to_state.value,
                reason=reason,
                legal_weight=True,
            )
        logger.info(
            "hearing %s: %s -> %s",
            hearing.id,
            transition.from_state,
            transition.to_state,
            extra={"hearing_id": str(hearing.id), "action": action.value},
        )
        return transition

    async def set_locked(self, *, actor: Actor, hearing_id: UUID, locked: bool) -> None:
        """Lock the hearing: nobody new is admitted from the lobby."""
        async with self._db.transaction() as conn:
            hearing = await self._load_hearing(conn, actor, hearing_id, for_update=True)
            self._require(
                actor, Permission.HEARING_LOCK, court_id=hearing.court_id, hearing_id=hearing.id
            )
            if hearing.state in FINAL_HEARING_STATES:
                raise IllegalTransitionError(f"the hearing is {hearing.state}")
            await repo.set_hearing_locked(conn, hearing.id, locked=locked)
            await self._audit_hearing(
                conn,
                actor=actor,
                hearing=hearing,
                action="hearing.lock" if locked else "hearing.unlock",
                reason="",
            )

    async def set_recording_shared(
        self, *, actor: Actor, hearing_id: UUID, shared: bool, reason: str
    ) -> Hearing:
        """Let the hearing's parties open its record, or stop letting them. The presiding judge
        decides (recording control); who and why go into the audit trail."""
        async with self._db.transaction() as conn:
            hearing = await self._load_hearing(conn, actor, hearing_id, for_update=True)
            self._require(
                actor,
                Permission.RECORDING_CONTROL,
                court_id=hearing.court_id,
                hearing_id=hearing.id,
            )
            if hearing.recording_shared != shared:
                await repo.set_recording_shared(conn, hearing.id, shared=shared)
                await self._audit_hearing(
                    conn,
                    actor=actor,
                    hearing=hearing,
                    action="recording.share" if shared else "recording.unshare",
                    reason=reason,
                )
        logger.info(
            "recording of hearing %s %s parties",
            hearing_id,
            "shared with" if shared else "withdrawn from",
            extra={"hearing_id": str(hearing_id)},
        )
        return replace(hearing, recording_shared=shared)

    async def note_record_opened(self, *, participant_id: UUID) -> None:
        """A party opened the hearing's record (after proving who they are): the court can say
        who saw it, and when."""
        async with self._db.transaction() as conn:
            participant = await repo.get_participant(conn, participant_id)
            if participant is None:
                raise NotFoundError("no such participant")
            hearing = await repo.get_hearing(conn, participant.hearing_id)
            if hearing is None:
                raise NotFoundError("no such hearing")
            await repo.insert_audit_event(
                conn,
                at=self._clock.now(),
                entity="participant",
                entity_id=participant.id,
                hearing_id=hearing.id,
                case_id=hearing.case_id,
                action="recording.opened",
                from_state=None,
                to_state=None,
                actor_kind=ActorKind.PARTICIPANT.value,
                actor_id=participant.id,
                reason="one-time code",
            )

    # Participants -----------------------------------------------------------------------------

    async def add_participant(
        self,
        *,
        actor: Actor,
        hearing_id: UUID,
        person_id: UUID,
        role: Role,
        party_id: UUID | None = None,
        display_name: str = "",
    ) -> Participant:
        async with self._db.transaction() as conn:
            hearing = await self._load_hearing(conn, actor, hearing_id)
            self._require(actor, Permission.PARTICIPANT_ADD, court_id=hearing.court_id)
            if hearing.state in FINAL_HEARING_STATES:
                raise ConflictError(f"the hearing is {hearing.state}; nobody can be added")
            if role is Role.OBSERVER and not hearing.is_public:
                raise ConflictError("observers may only attend a public hearing (公开审理)")
            person = await repo.get_person(conn, person_id)
            if person is None or person.court_id != hearing.court_id:
                raise NotFoundError(f"no person {person_id}")
            if party_id is not None:
                party = await repo.get_party(conn, party_id)
                if party is None or party.case_id != hearing.case_id:
                    raise NotFoundError(f"no party {party_id} in this case")
            if await repo.participant_exists(conn, hearing.id, person.id, role):
                raise ConflictError(f"{person.name} is already a {role} of this hearing")
            return await self._insert_participant(
                conn,
                actor=actor,
                hearing=hearing,
                person_id=person.id,
                role=role,
                display_name=display_name.strip() or person.name,
                party_id=party_id,
                reason=role.value,
            )

    async def _insert_participant(
        self,
        conn: AsyncConnection,
        *,
        actor: Actor,
        hearing: Hearing,
        person_id: UUID,
        role: Role,
        display_name: str,
        party_id: UUID | None,
        reason: str,
    ) -> Participant:
        """A new invited participant and its audit event, in the caller's transaction."""
        participant = Participant(
            id=uuid.uuid4(),
            hearing_id=hearing.id,
            person_id=person_id,
            role=role,
            state=ParticipantState.INVITED,
            display_name=display_name,
            party_id=party_id,
        )
        await repo.insert_participant(conn, participant, at=self._clock.now())
        await self._audit(
            conn,
            actor=actor,
            entity="participant",
            entity_id=participant.id,
            hearing_id=hearing.id,
            case_id=hearing.case_id,
            action="participant.add",
            from_state=None,
            to_state=participant.state.value,
            reason=reason,
        )
        return participant

    async def get_participant_with_person(
        self, *, actor: Actor, participant_id: UUID
    ) -> tuple[Participant, Person]:
        """A participant and their person record: for court staff, or the participant itself."""
        async with self._db.read() as conn:
            participant = await repo.get_participant(conn, participant_id)
            if participant is None:
                raise NotFoundError(f"no participant {participant_id}")
            hearing = await self._load_hearing(conn, actor, participant.hearing_id)
            if actor.kind is ActorKind.PARTICIPANT and actor.id != participant.id:
                raise NotFoundError(f"no participant {participant_id}")
            self._require(
                actor, Permission.HEARING_VIEW, court_id=hearing.court_id, hearing_id=hearing.id
            )
            person = await repo.get_person(conn, participant.person_id)
        if person is None:
            raise NotFoundError(f"no person {participant.person_id}")
        return participant, person

    async def list_participants(self, *, actor: Actor, hearing_id: UUID) -> list[Participant]:
        async with self._db.read() as conn:
            hearing = await self._load_hearing(conn, actor, hearing_id)
            self._require(
                actor, Permission.HEARING_VIEW, court_id=hearing.court_id, hearing_id=hearing.id
            )
            return await repo.list_participants(conn, hearing.id)

    async def change_participant_state(
        self,
        *,
        actor: Actor,
        participant_id: UUID,
        to: ParticipantState,
        action: str,
        reason: str = "",
        permission: Permission | None = None,
    ) -> Transition[ParticipantState]:
        """Move a participant through the one participant transition function.

        ``permission`` is what the actor needs (admit, remove, ...); ``None`` means the
        participant is acting on itself (verifying, entering the lobby, leaving).
        """
        async with self._db.transaction() as conn:
            participant = await repo.get_participant(conn, participant_id, for_update=True)
            if participant is None:
                raise NotFoundError(f"no participant {participant_id}")
            hearing = await self._load_hearing(conn, actor, participant.hearing_id)
            if permission is not None:
                self._require(actor, permission, court_id=hearing.court_id, hearing_id=hearing.id)
            elif actor.kind is ActorKind.PARTICIPANT and actor.id != participant.id:
                raise PermissionDeniedError("a participant may only change its own state")
            transition = await self._move_participant(
                conn,
                actor=actor,
                participant=participant,
                hearing=hearing,
                to=to,
                action=action,
                reason=reason,
            )
        logger.info(
            "participant %s: %s -> %s",
            participant.id,
            transition.from_state,
            transition.to_state,
            extra={"hearing_id": str(hearing.id), "participant_id": str(participant.id)},
        )
        return transition

    async def _move_participant(
        self,
        conn: AsyncConnection,
        *,
        actor: Actor,
        participant: Participant,
        hearing: Hearing,
        to: ParticipantState,
        action: str,
        reason: str,
    ) -> Transition[ParticipantState]:
        """The one participant transition: validate, compare-and-set, audit + ledger entry, in
        the caller's transaction."""
        transition = plan_participant_transition(
            participant_id=participant.id, current=participant.state, to=to, reason=reason
        )
        if not await repo.set_participant_state(
            conn, participant.id, expected=transition.from_state, new=transition.to_state
        ):
            raise ConflictError("the participant's state changed meanwhile")
        await self._audit(
            conn,
            actor=actor,
            entity="participant",
            entity_id=participant.id,
            hearing_id=hearing.id,
            case_id=hearing.case_id,
            action=action,
            from_state=transition.from_state.value,
            to_state=transition.to_state.value,
            reason=reason,
            legal_weight=True,
        )
        return transition

    # Join tokens ------------------------------------------------------------------------------

    async def issue_join_link(self, *, actor: Actor, participant_id: UUID) -> IssuedLink:
        """Sign a join token for the participant and record it (so it can be revoked)."""
        async with self._db.transaction() as conn:
            return await self._issue_link(conn, actor=actor, participant_id=participant_id)

    async def _issue_link(
        self, conn: AsyncConnection, *, actor: Actor, participant_id: UUID
    ) -> IssuedLink:
        participant = await repo.get_participant(conn, participant_id)
        if participant is None:
            raise NotFoundError(f"no participant {participant_id}")
        hearing = await self._load_hearing(conn, actor, participant.hearing_id)
        self._require(actor, Permission.PARTICIPANT_ISSUE_LINK, court_id=hearing.court_id)
        if participant.state is ParticipantState.REMOVED:
            raise ConflictError("the participant was removed from this hearing")
        # After the close, a link opens only the record, where the court shares it.
        for_record = (
            hearing.state is HearingState.CLOSED
            and hearing.recording_shared
            and participant.role in RECORD_VIEWER_ROLES
        )
        if hearing.state in FINAL_HEARING_STATES and not for_record:
            raise ConflictError(f"the hearing is {hearing.state}")
        now = self._clock.now()
        # A link outlives the hearing's scheduled end by a day at most, and never the TTL.
        hearing_end = hearing.scheduled_start + timedelta(minutes=hearing.expected_minutes)
        expires_at = min(now + self._join_ttl, max(hearing_end + timedelta(days=1), now))
        if for_record:
            expires_at = now + self._join_ttl
        claims = JoinClaims(
            jti=new_jti(),
            hearing_id=hearing.id,
            participant_id=participant.id,
            role=participant.role,
            grants=Grants.for_role(participant.role),
            issued_at=now,
            expires_at=expires_at.replace(microsecond=0),
        )
        token = encode_join_token(claims, key=self._token_key)
        await repo.insert_join_token(
            conn,
            jti=claims.jti,
            participant_id=participant.id,
            hearing_id=hearing.id,
            issued_at=now,
            expires_at=claims.expires_at,
            issued_by=actor.id,
        )
        await self._audit(
            conn,
            actor=actor,
            entity="participant",
            entity_id=participant.id,
            hearing_id=hearing.id,
            case_id=hearing.case_id,
            action="participant.issue_link",
            from_state=None,
            to_state=None,
            reason="",
        )
        return IssuedLink(
            participant_id=participant.id,
            token=token,
            url=f"{self._base_url}/j/{token}" + ("/recording" if for_record else ""),
            expires_at=claims.expires_at,
        )

    async def staff_room_pass(
        self, *, actor: Actor, hearing_id: UUID, person_id: UUID | None, name: str
    ) -> RoomPass:
        """A join token for a signed-in judge or clerk, as their participant in the hearing.

        The session has proved who they are, so there is no one-time code. Someone who is not
        yet a participant is added in their staff role (the court's own judges and clerks may
        already run any hearing of the court); ``person_id`` None creates their person record,
        which the caller links to the account.
        """
        role = _ROOM_ROLE_OF_STAFF.get(actor.staff_role) if actor.staff_role else None
        if actor.kind is not ActorKind.STAFF or role is None:
            raise PermissionDeniedError("only judges and clerks join a hearing room from the bench")
        async with self._db.transaction() as conn:
            hearing = await self._load_hearing(conn, actor, hearing_id)
            self._require(actor, Permission.PARTICIPANT_ISSUE_LINK, court_id=hearing.court_id)
            if hearing.state in FINAL_HEARING_STATES:
                raise ConflictError(f"the hearing is {hearing.state}")
            mine = [
                p
                for p in await repo.list_participants(conn, hearing.id)
                if person_id is not None and p.person_id == person_id and p.role is role
            ]
            if mine:
                participant = mine[0]
            else:
                if person_id is None:
                    person = Person(
                        id=uuid.uuid4(),
                        court_id=hearing.court_id,
                        name=name,
                        phone=None,
                        email=None,
                        id_number_last4=None,
                    )
                    await repo.insert_person(conn, person, at=self._clock.now())
                    person_id = person.id
                participant = await self._insert_participant(
                    conn,
                    actor=actor,
                    hearing=hearing,
                    person_id=person_id,
                    role=role,
                    display_name=name,
                    party_id=None,
                    reason="joined from a staff session",
                )
            if participant.state is ParticipantState.REMOVED:
                raise ConflictError("you were removed from this hearing")
            if participant.state is ParticipantState.LEFT:
                # Coming back after leaving needs a fresh identity check; the session is one.
                await self._move_participant(
                    conn,
                    actor=actor,
                    participant=participant,
                    hearing=hearing,
                    to=ParticipantState.VERIFIED,
                    action="participant.verify",
                    reason="staff session",
                )
            link = await self._issue_link(conn, actor=actor, participant_id=participant.id)
        return RoomPass(
            token=link.token,
            participant_id=participant.id,
            role=role,
            person_id=participant.person_id,
            expires_at=link.expires_at,
        )

    async def room_participant(self, *, participant_id: UUID) -> Participant:
        """A participant as the signaling room needs it, after it verified the join token."""
        async with self._db.read() as conn:
            participant = await repo.get_participant(conn, participant_id)
        if participant is None:
            raise NotFoundError(f"no participant {participant_id}")
        return participant

    async def room_hearing(self, *, hearing_id: UUID) -> Hearing:
        """A hearing as the signaling room needs it (state, lock, court)."""
        async with self._db.read() as conn:
            hearing = await repo.get_hearing(conn, hearing_id)
        if hearing is None:
            raise NotFoundError(f"no hearing {hearing_id}")
        return hearing

    async def revoke_join_links(self, *, actor: Actor, participant_id: UUID) -> int:
        """Revoke every outstanding join token of the participant; returns how many."""
        async with self._db.transaction() as conn:
            participant = await repo.get_participant(conn, participant_id)
            if participant is None:
                raise NotFoundError(f"no participant {participant_id}")
            hearing = await self._load_hearing(conn, actor, participant.hearing_id)
            self._require(actor, Permission.PARTICIPANT_REVOKE_LINK, court_id=hearing.court_id)
            count = await repo.revoke_join_tokens(
                conn, participant.id, at=self._clock.now(), by=actor.id
            )
            await self._audit(
                conn,
                actor=actor,
                entity="participant",
                entity_id=participant.id,
                hearing_id=hearing.id,
                case_id=hearing.case_id,
                action="participant.revoke_links",
                from_state=None,
                to_state=None,
                reason=f"{count} revoked",
            )
        return count

    async def verify_join_token(self, *, token: str, for_record: bool = False) -> JoinClaims:
        """Check signature, expiry and revocation; the participant must still be in the hearing.
        ``for_record``: the link opens the record of a closed hearing (where the court shares
        it, which the caller checks), not the hearing itself.

        Raises ``InvalidTokenError`` (reason: malformed, bad_signature, expired, revoked, removed,
        hearing_over).
        """
        claims = decode_join_token(token, key=self._token_key, now=self._clock.now())
        async with self._db.read() as conn:
            row = await repo.get_join_token_row(conn, claims.jti)
            pid = claims.participant_id
            if row is None or row.participant_id != pid:
                raise InvalidTokenError("join token is not known", reason="revoked")
            if row.revoked_at is not None:
                raise InvalidTokenError(
                    "join token was revoked", reason="revoked", participant_id=pid
                )
            participant = await repo.get_participant(conn, pid)
            hearing = await repo.get_hearing(conn, claims.hearing_id)
        if participant is None or participant.state is ParticipantState.REMOVED:
            raise InvalidTokenError(
                "participant was removed",
                reason="removed",
                participant_id=pid if participant is not None else None,
            )
        closed_record = for_record and hearing is not None and hearing.state is HearingState.CLOSED
        if hearing is None or (hearing.state in FINAL_HEARING_STATES and not closed_record):
            raise InvalidTokenError(
                "the hearing is over", reason="hearing_over", participant_id=pid
            )
        return claims

    def actor_for(self, claims: JoinClaims, *, court_id: UUID) -> Actor:
        return Actor(
            kind=ActorKind.PARTICIPANT,
            id=claims.participant_id,
            court_id=court_id,
            hearing_id=claims.hearing_id,
            role=claims.role,
        )

    # Notices ----------------------------------------------------------------------------------

    async def send_hearing_notices(
        self, *, actor: Actor, hearing_id: UUID, sender: MessageSender
    ) -> list[NoticeResult]:
        """Send each invited participant (not staff) a notice with a fresh join link, by SMS and
        email where the person has them. Links are committed before any message leaves."""

        def allowed(hearing: Hearing) -> None:
            self._require(actor, Permission.NOTICE_SEND, court_id=hearing.court_id)
            if hearing.state in FINAL_HEARING_STATES:
                raise ConflictError(f"the hearing is {hearing.state}")

        def compose(
            case: Case, hearing: Hearing, person: Person, link: IssuedLink
        ) -> tuple[str, str, str]:
            when = hearing.scheduled_start.astimezone(self._tz).strftime("%Y-%m-%d %H:%M")
            sms = (
                f"【{case.number}】{person.name}，您好：本案定于{when}在线开庭，"
                f"请点击链接核验身份并入庭：{link.url}"
            )
            email = (
                f"{person.name}，您好：\n\n"
                f"{case.number}《{case.title}》定于 {when}（北京时间）在线开庭。\n"
                f"请在开庭前打开以下链接，核验身份、检查摄像头和麦克风后进入候庭室：\n{link.url}\n\n"
                f"Hearing notice: case {case.number} is scheduled for an online hearing at {when} "
                f"(Beijing time). Open the link above to verify your identity and join.\n"
            )
            return sms, f"开庭通知 Hearing notice — {case.number}", email

        return await self._send_links(
            actor=actor,
            hearing_id=hearing_id,
            sender=sender,
            allowed=allowed,
            recipients=lambda p: p.role not in STAFF_ROLES,
            compose=compose,
            action="hearing.notices_sent",
        )

    async def send_record_links(
        self, *, actor: Actor, hearing_id: UUID, sender: MessageSender
    ) -> list[NoticeResult]:
        """Tell the parties and their counsel that the court shares the closed hearing's record,
        each with a fresh link to it, by SMS and email where the person has them. The links are
        committed before any message leaves."""

        def allowed(hearing: Hearing) -> None:
            self._require(
                actor,
                Permission.RECORDING_CONTROL,
                court_id=hearing.court_id,
                hearing_id=hearing.id,
            )
            if hearing.state is not HearingState.CLOSED or not hearing.recording_shared:
                raise ConflictError("only a closed hearing's shared record can be sent")

        def compose(
            case: Case, hearing: Hearing, person: Person, link: IssuedLink
        ) -> tuple[str, str, str]:
            until = link.expires_at.astimezone(self._tz).strftime("%Y-%m-%d")
            sms = (
                f"【{case.number}】{person.name}，您好：法院已允许您查看本案庭审录像，"
                f"请点击链接核验身份后查看（{until}前有效）：{link.url}"
            )
            email = (
                f"{person.name}，您好：\n\n法院已允许您查看{case.number}《{case.title}》"
                f"的庭审录像。请打开以下链接，用验证码核验身份后查看（{until}前有效）："
                f"\n{link.url}\n\nThe court has made the record of the hearing in case "
                f"{case.number} available to you. Open the link above and verify your "
                f"identity with a one-time code to view it (until {until}).\n"
            )
            return sms, f"庭审录像 Hearing record — {case.number}", email

        return await self._send_links(
            actor=actor,
            hearing_id=hearing_id,
            sender=sender,
            allowed=allowed,
            recipients=lambda p: p.role in RECORD_VIEWER_ROLES,
            compose=compose,
            action="recording.links_sent",
        )

    async def _send_links(
        self,
        *,
        actor: Actor,
        hearing_id: UUID,
        sender: MessageSender,
        allowed: Callable[[Hearing], None],
        recipients: Callable[[Participant], bool],
        compose: Callable[[Case, Hearing, Person, IssuedLink], tuple[str, str, str]],
        action: str,
    ) -> list[NoticeResult]:
        """Issue a fresh link to each chosen participant (not removed) in one transaction, then
        send it by SMS and email where the person has them (``compose`` gives the SMS text, the
        mail's subject and body), then note how many left in the audit trail."""
        links: list[tuple[Participant, Person, IssuedLink]] = []
        async with self._db.transaction() as conn:
            hearing = await self._load_hearing(conn, actor, hearing_id)
            allowed(hearing)
            case = await repo.get_case(conn, hearing.case_id)
            if case is None:
                raise NotFoundError(f"no case {hearing.case_id}")
            parts = await repo.list_participants(conn, hearing.id)
            people = await repo.get_persons(conn, [p.person_id for p in parts])
            for part in parts:
                if not recipients(part) or part.state is ParticipantState.REMOVED:
                    continue
                link = await self._issue_link(conn, actor=actor, participant_id=part.id)
                links.append((part, people[part.person_id], link))
        results: list[NoticeResult] = []
        for part, person, link in links:
            sms, subject, email = compose(case, hearing, person, link)
            messages = []
            if person.phone:
                messages.append(
                    OutgoingMessage(
                        channel=Channel.SMS,
                        recipient=person.phone,
                        body=sms,
                        purpose=MessagePurpose.HEARING_NOTICE,
                        reference=str(part.id),
                    )
                )
            if person.email:
                messages.append(
                    OutgoingMessage(
                        channel=Channel.EMAIL,
                        recipient=person.email,
                        subject=subject,
                        body=email,
                        purpose=MessagePurpose.HEARING_NOTICE,
                        reference=str(part.id),
                    )
                )
            for message in messages:
                sent = await sender.send(message)
                results.append(NoticeResult(part.id, message.channel, sent.id))
        async with self._db.transaction() as conn:
            await self._audit_hearing(
                conn, actor=actor, hearing=hearing, action=action, reason=f"{len(results)} messages"
            )
        return results

    # Audit ------------------------------------------------------------------------------------

    async def audit_trail(self, *, actor: Actor, hearing_id: UUID) -> list[dict[str, object]]:
        async with self._db.read() as conn:
            hearing = await self._load_hearing(conn, actor, hearing_id)
            self._require(actor, Permission.CASE_VIEW, court_id=hearing.court_id)
            rows = await repo.list_audit_events(conn, hearing.id)
        return [
            {
                "at": as_utc(row.at),
                "entity": row.entity,
                "entity_id": row.entity_id,
                "action": row.action,
                "from_state": row.from_state,
                "to_state": row.to_state,
                "actor_kind": row.actor_kind,
                "actor_id": row.actor_id,
                "reason": row.reason,
            }
            for row in rows
        ]

    # Attendance log ---------------------------------------------------------------------------

    async def record_attendance(
        self,
        *,
        hearing_id: UUID,
        participant_id: UUID,
        event: str,
        reason: str,
        at: datetime,
    ) -> None:
        """Append one attendance fact (joined, admitted, dropped and why) as the room saw it.

        Written by the signaling room, which has already authenticated the participant; a
        participant of another hearing is refused so a bug cannot misfile evidence.
        """
        async with self._db.transaction() as conn:
            participant = await repo.get_participant(conn, participant_id)
            if participant is None or participant.hearing_id != hearing_id:
                raise NotFoundError(f"no participant {participant_id} in hearing {hearing_id}")
            await repo.insert_attendance(
                conn,
                at=at,
                hearing_id=hearing_id,
                participant_id=participant_id,
                event=event,
                reason=reason,
            )

    async def attendance(self, *, actor: Actor, hearing_id: UUID) -> list[AttendanceRecord]:
        """The hearing's attendance log, oldest first, for court staff."""
        async with self._db.read() as conn:
            hearing = await self._load_hearing(conn, actor, hearing_id)
            self._require(actor, Permission.CASE_VIEW, court_id=hearing.court_id)
            rows = await repo.list_attendance(conn, hearing.id)
            names = {p.id: p.display_name for p in await repo.list_participants(conn, hearing.id)}
        return [
            AttendanceRecord(
                at=as_utc(row.at),
                participant_id=row.participant_id,
                display_name=names.get(row.participant_id, ""),
                event=row.event,
                reason=row.reason,
            )
            for row in rows
        ]

    async def _audit_hearing(
        self, conn: AsyncConnection, *, actor: Actor, hearing: Hearing, action: str, reason: str
    ) -> None:
        """An audit event about the hearing itself (no state change)."""
        await self._audit(
            conn,
            actor=actor,
            entity="hearing",
            entity_id=hearing.id,
            hearing_id=hearing.id,
            case_id=hearing.case_id,
            action=action,
            from_state=None,
            to_state=None,
            reason=reason,
        )

    async def _audit(
        self,
        conn: AsyncConnection,
        *,
        actor: Actor,
        entity: str,
        entity_id: UUID,
        hearing_id: UUID | None,
        case_id: UUID | None,
        action: str,
        from_state: str | None,
        to_state: str | None,
        reason: str,
        legal_weight: bool = False,
    ) -> None:
        at = self._clock.now()
        await repo.insert_audit_event(
            conn,
            at=at,
            entity=entity,
            entity_id=entity_id,
            hearing_id=hearing_id,
            case_id=case_id,
            action=action,
            from_state=from_state,
            to_state=to_state,
            actor_kind=actor.kind.value,
            actor_id=actor.id,
            reason=reason,
        )
        if legal_weight and self._evidence is not None:
            await self._evidence.append(
                conn,
                kind=f"{entity}.state_changed",
                subject_id=str(entity_id),
                case_id=case_id,
                event={
                    "action": action,
                    "entity": entity,
                    "entity_id": str(entity_id),
                    "hearing_id": str(hearing_id) if hearing_id else None,
                    "from": from_state,
                    "to": to_state,
                    "actor_kind": actor.kind.value,
                    "actor_id": str(actor.id) if actor.id else None,
                    "reason": reason,
                    "at": at.isoformat(),
                },
                at=at,
            )
