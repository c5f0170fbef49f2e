"""Errors of electronic service; ``web/errors.py`` maps them to HTTP."""

from __future__ import annotations


class ServiceDeliveryError(Exception):
    """Base of the area's errors."""


class DocumentRejectedError(ServiceDeliveryError):
    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class InvalidAddressError(ServiceDeliveryError):
    """A phone number or email address that cannot be served to."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class ServiceNotFoundError(ServiceDeliveryError):
    """No such document, order, recipient or attempt (or not in the caller's court)."""


class ServiceConflictError(ServiceDeliveryError):
    """The action does not fit the current state (e.g. a resend of an attempt still in flight)."""


class LinkInvalidError(ServiceDeliveryError):
    """A recipient link that is unknown, altered, or of a withdrawn order."""


class IdentityCheckError(ServiceDeliveryError):
    """A wrong answer on the recipient page (``wrong``), too many for now (``locked``), or
    too many for good (``closed``: only the one-time code is left)."""

    def __init__(self, message: str, *, reason: str, attempts_left: int = 0) -> None:
        super().__init__(message)
        self.reason = reason
        self.attempts_left = attempts_left
