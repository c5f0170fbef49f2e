"""The port through which every outgoing SMS and email leaves the platform.

The embedded default is the local outbox (``outbox.py``); SMTP and SMPP adapters implement the same
protocol. A sender returns only when the message is durably handed over (stored or accepted).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from uuid import UUID


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


class MessagePurpose(StrEnum):
    HEARING_NOTICE = "hearing_notice"
    ONE_TIME_CODE = "one_time_code"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    channel: Channel
    recipient: str
    body: str
    purpose: MessagePurpose
    subject: str = ""
    # What the message is about (participant id, attempt id): never personal data.
    reference: str = ""


@dataclass(frozen=True, slots=True)
class SentMessage:
    id: UUID
    channel: Channel


class MessageSender(Protocol):
    async def send(self, message: OutgoingMessage) -> SentMessage:
        """Hand ``message`` over durably; raise ``DeliveryError`` if it could not be."""
        ...


class DeliveryError(Exception):
    """A message could not be handed over. ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable
