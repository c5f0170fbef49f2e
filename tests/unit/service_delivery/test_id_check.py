"""The ID-digit check's budget of wrong answers: lockouts that double, then closed for good."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from yunting.service_delivery.id_check import (
    FIRST_LOCKOUT,
    LIMIT,
    MAX_LOCKOUTS,
    IdCheckState,
    after_right_answer,
    after_wrong_answer,
)

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
FRESH = IdCheckState(0, 0, None)
SECOND = timedelta(seconds=1)


def wrong(state: IdCheckState, times: int, now: datetime = NOW) -> IdCheckState:
    for _ in range(times):
        assert not state.closed()
        assert not state.locked(now)
        state = after_wrong_answer(state, now)
    return state


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (FRESH, IdCheckState(1, 0, None)),
        (IdCheckState(LIMIT - 2, 0, None), IdCheckState(LIMIT - 1, 0, None)),
        # The fifth wrong answer in a row locks for 30 minutes, then 60; the third lockout closes.
        (IdCheckState(LIMIT - 1, 0, None), IdCheckState(0, 1, NOW + FIRST_LOCKOUT)),
        (IdCheckState(LIMIT - 1, 1, NOW), IdCheckState(0, 2, NOW + 2 * FIRST_LOCKOUT)),
        (IdCheckState(LIMIT - 1, 2, NOW), IdCheckState(0, MAX_LOCKOUTS, None)),
        # A lockout that has run out stays on the record until the next one replaces it.
        (IdCheckState(2, 1, NOW - SECOND), IdCheckState(3, 1, NOW - SECOND)),
    ],
)
def test_each_wrong_answer(before: IdCheckState, after: IdCheckState) -> None:
    assert after_wrong_answer(before, NOW) == after


def test_a_stranger_gets_fifteen_answers_in_all_however_long_they_wait() -> None:
    state, answers, now = FRESH, 0, NOW
    waited = []
    while not state.closed():
        lockouts = state.lockouts
        state = after_wrong_answer(state, now)
        answers += 1
        if state.lockouts > lockouts and state.locked_until is not None:
            assert state.locked(now)
            waited.append(state.locked_until - now)
            now = state.locked_until + timedelta(seconds=1)
            assert not state.locked(now)
    assert waited == [FIRST_LOCKOUT, 2 * FIRST_LOCKOUT]
    assert answers == LIMIT * MAX_LOCKOUTS == 15
    assert not state.locked(now + timedelta(days=365))  # closed, not locked: no time opens it


def test_locked_exactly_until_the_end_of_the_lockout() -> None:
    state = wrong(FRESH, LIMIT)
    assert state.locked(NOW + FIRST_LOCKOUT - timedelta(microseconds=1))
    assert state.refusal(NOW + FIRST_LOCKOUT - timedelta(microseconds=1)) == "locked"
    assert not state.locked(NOW + FIRST_LOCKOUT)
    assert state.refusal(NOW + FIRST_LOCKOUT) is None
    assert IdCheckState(0, MAX_LOCKOUTS, None).refusal(NOW) == "closed"


def test_a_right_answer_before_the_check_closes_starts_afresh() -> None:
    state = wrong(FRESH, LIMIT)
    state = wrong(state, LIMIT - 1, now=NOW + FIRST_LOCKOUT)
    assert (state.failures, state.lockouts) == (LIMIT - 1, 1)
    state = after_right_answer()
    assert wrong(state, LIMIT - 1) == IdCheckState(LIMIT - 1, 0, None)
