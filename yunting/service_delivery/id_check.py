"""How many wrong answers the ID-digit check on the recipient page allows (sans-I/O).

The last four characters of an ID number are one of 11,000 values (digits, the last one may be
X). A lockout that simply expired and started over would let a stranger holding the link try
240 answers a day and, sooner or later, find them. So each lockout lasts twice the one before,
and after ``MAX_LOCKOUTS`` the check is closed for that recipient for good: the stranger gets
``LIMIT * MAX_LOCKOUTS`` answers in all (15: a chance of about 1 in 730). The recipient still
has the one-time code, which goes to the address the court has for them, and a right answer
before the check closes starts the count afresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

LIMIT = 5  # wrong answers in a row that lock the check
FIRST_LOCKOUT = timedelta(minutes=30)  # the next ones last twice as long as the one before
MAX_LOCKOUTS = 3  # the third closes the check instead of locking it


@dataclass(frozen=True, slots=True)
class IdCheckState:
    """A recipient's ID check: wrong answers since the last lockout (or right answer),
    lockouts so far, and until when the current one lasts."""

    failures: int
    lockouts: int
    locked_until: datetime | None

    def closed(self) -> bool:
        """No more answers are taken, however long anyone waits."""
        return self.lockouts >= MAX_LOCKOUTS

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    def refusal(self, now: datetime) -> str | None:
        """Why no answer is taken at ``now`` (``closed`` or ``locked``), or None."""
        if self.closed():
            return "closed"
        return "locked" if self.locked(now) else None


def after_wrong_answer(state: IdCheckState, now: datetime) -> IdCheckState:
    """The state once a wrong answer is counted (the caller has checked the check is open)."""
    failures = state.failures + 1
    if failures < LIMIT:
        return IdCheckState(failures, state.lockouts, state.locked_until)
    lockouts = state.lockouts + 1
    if lockouts >= MAX_LOCKOUTS:
        return IdCheckState(0, lockouts, None)
    return IdCheckState(0, lockouts, now + FIRST_LOCKOUT * 2 ** (lockouts - 1))


def after_right_answer() -> IdCheckState:
    return IdCheckState(0, 0, None)
