"""One exception tree for the hearing area; ``web/errors.py`` maps it to HTTP."""

from __future__ import annotations

from uuid import UUID


class HearingError(Exception):
    """Base of every hearing-domain error."""


class NotFoundError(HearingError):
    """The thing does not exist, or the caller may not know that it does."""


class PermissionDeniedError(HearingError):
    """The caller's role does not allow the action."""


class IllegalTransitionError(HearingError):
    """A state change the state machine does not allow."""


class ConflictError(HearingError):
    """The request contradicts current data (duplicate case number, a state changed meanwhile)."""


class InvalidTokenError(HearingError):
    """A join token that is malformed, tampered with, expired or revoked."""

    def __init__(self, message: str, *, reason: str, participant_id: UUID | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        # Set once the signature checked out (expired, revoked, removed): whose attempt it was,
        # for the attendance log. Never set for a token we did not sign.
        self.participant_id = participant_id
