"""Errors of identity checks; ``web/errors.py`` maps them to HTTP."""

from __future__ import annotations

from datetime import datetime


class IdentityError(Exception):
    pass


class CodeRejectedError(IdentityError):
    """A one-time code that is wrong, expired, already used, or locked after too many tries."""

    def __init__(self, message: str, *, reason: str, attempts_left: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.attempts_left = attempts_left


class RateLimitedError(IdentityError):
    def __init__(self, message: str, *, reason: str, retry_at: datetime) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_at = retry_at


class NoContactError(IdentityError):
    """The person has no address on the requested channel."""
