"""One exception tree for the signaling area, plus the error and close codes of the protocol.

The core never raises on client input: refusals become ``error`` messages or closes. Exceptions
here are either internal (``RefusedError`` carries a refusal to the one place that turns it into
an ``error`` message) or a programming error of the adapter (``RoomUsageError``).
Every code is documented in ``docs/signaling.md``.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    """The ``code`` of an ``error`` message: what was wrong with the client's message."""

    BAD_JSON = "bad_json"  # not UTF-8 or not JSON
    BAD_MESSAGE = "bad_message"  # JSON, but not an object with a string "type"
    UNSUPPORTED_VERSION = "unsupported_version"  # "v" missing or not 1
    UNKNOWN_TYPE = "unknown_type"  # a "type" this server does not accept from clients
    INVALID_MESSAGE = "invalid_message"  # fields missing, of the wrong type or out of range
    TOO_BIG = "too_big"  # larger than the room's message limit (followed by close 1009)
    RATE_LIMITED = "rate_limited"  # over the per-connection rate; message dropped
    HELLO_REQUIRED = "hello_required"  # anything but ``hello`` as the first message
    NOT_READY = "not_ready"  # sent before ``welcome`` (authentication or join not finished)
    FORBIDDEN = "forbidden"  # the sender's role or grants do not allow it
    ILLEGAL_STATE = "illegal_state"  # the hearing or participant state does not allow it
    NOT_FOUND = "not_found"  # no such participant in this hearing
    BUSY = "busy"  # a command about the same hearing or participant is still being recorded
    LOCKED = "locked"  # the hearing is locked: no new admissions
    COMMIT_FAILED = "commit_failed"  # the court record refused the change; nothing changed
    UNAVAILABLE = "unavailable"  # the node cannot reach the room (Redis down); try again
    MEDIA_UNAVAILABLE = "media_unavailable"  # no media node serves this hearing yet
    MEDIA_FAILED = "media_failed"  # the media node could not use the answer; send media_start
    RECORDING_FAILED = "recording_failed"  # to judge and clerk: the recorder stopped (detail)


class CloseCode(IntEnum):
    """Websocket close codes the server uses (RFC 6455 section 7.4; 4000-4999 are ours)."""

    NORMAL = 1000  # left, or the hearing closed
    MESSAGE_TOO_BIG = 1009  # RFC 6455 7.4.1
    INTERNAL_ERROR = 1011  # the join could not be recorded; the client may retry
    SERVICE_RESTART = 1012  # the room moved to another node (owner gone); reconnect
    TRY_AGAIN_LATER = 1013  # a change of this participant is being recorded; reconnect shortly
    PROTOCOL_ERRORS = 4400  # too many consecutive malformed messages
    UNAUTHENTICATED = 4401  # no hello first, hello timeout, or the join token was refused
    FORBIDDEN = 4403  # token for another hearing, grants beyond the role, removed, denied, left
    NOT_FOUND = 4404  # no such hearing
    HEARTBEAT_TIMEOUT = 4408  # no message within the heartbeat timeout
    REPLACED = 4409  # the same participant connected again; do not reconnect automatically
    HEARING_OVER = 4410  # the hearing is closed or cancelled
    TOO_EARLY = 4425  # the lobby is not open yet (hearing still scheduled)
    RATE_LIMITED = 4429  # sustained flooding


class SignalingError(Exception):
    """Base of every signaling error."""


class RefusedError(SignalingError):
    """A client message is refused; becomes an ``error`` message and changes nothing."""

    def __init__(self, code: ErrorCode, message: str, *, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref  # the offending message's ``id``, when it could be read


class RoomUsageError(SignalingError):
    """The adapter called the room wrongly (naive datetime, duplicate connection id, ...)."""
