"""The attempt status machine: the only moves it allows, and the final-state guard."""

from __future__ import annotations

import pytest

from yunting.service_delivery.model import (
    FINAL_ATTEMPT_STATUSES,
    AttemptStatus,
    AttemptTransitionError,
    plan_attempt_transition,
)

S = AttemptStatus
ALLOWED = {
    (S.CREATED, S.SENDING),
    (S.CREATED, S.TECHNICAL_FAILURE),
    (S.SENDING, S.SENT),
    (S.SENDING, S.DELIVERED),
    (S.SENDING, S.TEMPORARY_FAILURE),
    (S.SENDING, S.PERMANENT_FAILURE),
    (S.SENDING, S.TECHNICAL_FAILURE),
    (S.SENDING, S.CREATED),
    (S.SENT, S.DELIVERED),
    (S.SENT, S.TEMPORARY_FAILURE),
    (S.SENT, S.PERMANENT_FAILURE),
    (S.SENT, S.TECHNICAL_FAILURE),
}


@pytest.mark.parametrize("current", [s for s in S if s not in FINAL_ATTEMPT_STATUSES])
@pytest.mark.parametrize("target", list(S))
def test_only_the_listed_moves_are_allowed(current: AttemptStatus, target: AttemptStatus) -> None:
    if (current, target) in ALLOWED:
        step = plan_attempt_transition(current, target)
        assert (step.from_status, step.to_status, step.ignored) == (current, target, False)
    else:
        with pytest.raises(AttemptTransitionError, match=f"after {current}, got {target}"):
            plan_attempt_transition(current, target)


@pytest.mark.parametrize("final", sorted(FINAL_ATTEMPT_STATUSES))
@pytest.mark.parametrize("target", list(S))
def test_a_final_status_never_moves(final: AttemptStatus, target: AttemptStatus) -> None:
    # A duplicate or late receipt: kept as evidence by the caller, never applied.
    step = plan_attempt_transition(final, target)
    assert (step.to_status, step.ignored) == (final, True)
