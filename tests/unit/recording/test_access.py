"""Who may open a hearing's record besides court staff, and the signed pass that keeps it open."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from yunting.hearing.model import Hearing, HearingState, Participant, ParticipantState, Role
from yunting.recording.access import (
    RecordPass,
    Refusal,
    issue_pass,
    read_pass,
    refusal,
)

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
KEY = b"k" * 32

HEARING = Hearing(
    id=uuid.uuid4(),
    case_id=uuid.uuid4(),
    court_id=uuid.uuid4(),
    scheduled_start=NOW,
    expected_minutes=60,
    is_public=False,
    recording_required=True,
    state=HearingState.CLOSED,
    title="庭审",
    locked=False,
    recording_shared=True,
)


def participant(role: Role, state: ParticipantState = ParticipantState.LEFT) -> Participant:
    return Participant(
        id=uuid.uuid4(),
        hearing_id=HEARING.id,
        person_id=uuid.uuid4(),
        role=role,
        state=state,
        display_name="张伟",
        party_id=None,
    )


@pytest.mark.parametrize(
    ("role", "state", "hearing_state", "shared", "expected"),
    [
        (Role.PLAINTIFF, ParticipantState.LEFT, HearingState.CLOSED, True, None),
        (Role.DEFENDANT, ParticipantState.INVITED, HearingState.CLOSED, True, None),
        (Role.THIRD_PARTY, ParticipantState.LEFT, HearingState.CLOSED, True, None),
        (Role.COUNSEL, ParticipantState.DISCONNECTED, HearingState.CLOSED, True, None),
        (Role.PLAINTIFF, ParticipantState.LEFT, HearingState.CLOSED, False, Refusal.NOT_SHARED),
        (Role.PLAINTIFF, ParticipantState.LEFT, HearingState.PAUSED, True, Refusal.NOT_CLOSED),
        (Role.PLAINTIFF, ParticipantState.LEFT, HearingState.IN_SESSION, True, Refusal.NOT_CLOSED),
        (Role.WITNESS, ParticipantState.LEFT, HearingState.CLOSED, True, Refusal.ROLE),
        (Role.INTERPRETER, ParticipantState.LEFT, HearingState.CLOSED, True, Refusal.ROLE),
        (Role.OBSERVER, ParticipantState.LEFT, HearingState.CLOSED, True, Refusal.ROLE),
        # A judge or clerk opens the record as staff, never through a join link.
        (Role.JUDGE, ParticipantState.LEFT, HearingState.CLOSED, True, Refusal.ROLE),
        (Role.DEFENDANT, ParticipantState.REMOVED, HearingState.CLOSED, True, Refusal.REMOVED),
    ],
)
def test_who_may_open_the_record(
    role: Role,
    state: ParticipantState,
    hearing_state: HearingState,
    shared: bool,
    expected: Refusal | None,
) -> None:
    hearing = replace(HEARING, state=hearing_state, recording_shared=shared)
    assert refusal(hearing, participant(role, state)) == expected


def a_pass(**changes: object) -> RecordPass:
    base = RecordPass(
        participant_id=uuid.uuid4(), hearing_id=HEARING.id, expires_at=NOW + timedelta(minutes=30)
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_pass_reads_back_until_it_expires() -> None:
    issued = a_pass()
    value = issue_pass(KEY, issued)
    assert read_pass(KEY, value, now=NOW) == issued
    assert read_pass(KEY, value, now=issued.expires_at - timedelta(seconds=1)) == issued
    assert read_pass(KEY, value, now=issued.expires_at) is None


def test_a_pass_signed_with_another_key_or_altered_is_refused() -> None:
    value = issue_pass(KEY, a_pass())
    assert read_pass(b"x" * 32, value, now=NOW) is None
    payload, _, mac = value.partition(".")
    other = issue_pass(KEY, a_pass())
    # Another participant's payload under this signature, and this payload under another's.
    assert read_pass(KEY, other.partition(".")[0] + "." + mac, now=NOW) is None
    assert read_pass(KEY, payload + "." + other.partition(".")[2], now=NOW) is None


@pytest.mark.parametrize(
    "value", ["", ".", "abc", "abc.def", "." + "a" * 43, "x" * 600 + ".y", "ünï.cödé"]
)
def test_garbage_is_no_pass(value: str) -> None:
    assert read_pass(KEY, value, now=NOW) is None


def test_a_well_signed_but_malformed_body_is_no_pass() -> None:
    payload = base64.urlsafe_b64encode(b'{"p":"not-a-uuid","h":1}').rstrip(b"=").decode()
    mac = base64.urlsafe_b64encode(hmac.new(KEY, payload.encode(), hashlib.sha256).digest())
    assert read_pass(KEY, f"{payload}.{mac.rstrip(b'=').decode()}", now=NOW) is None
