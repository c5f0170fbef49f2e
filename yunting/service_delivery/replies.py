"""What recipients send back, sans-I/O: which address a reply came from, how its evidence event
and a clerk's confirmation of it refer to it, and which replies still wait for a clerk.

A reply is evidence whatever it says, and stored verbatim before the provider is acknowledged
(``ServiceDeliveryService.ingest_reply``). Whether it confirms receipt is for a person to read:
"收到" does, "这是什么？" shows only that the message arrived. A clerk who finds it does records
an ACKNOWLEDGED event at the time of the reply (在线诉讼规则 第三十一条第二款第（一）项:
受送达人回复已收悉), which the rule set reads like the recipient page's acknowledgement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from yunting.infra.ledger.canonical import canonical_json
from yunting.service_delivery.addresses import normalize_address
from yunting.service_delivery.errors import InvalidAddressError
from yunting.service_delivery.model import EvidenceKind
from yunting.service_delivery.ports import Reply

_REF = "reply:"


def reply_address(reply: Reply) -> str | None:
    """The sender's address as attempts store it (E.164, a normalized email), or ``None`` for
    a sender that is not one (an alphanumeric sender id, a short code): no attempt went there."""
    try:
        return normalize_address(reply.channel, reply.sender)
    except InvalidAddressError:
        return None


def reply_ref(reply_id: int) -> str:
    """The ``detail`` of the REPLY_RECEIVED event of a stored reply and of the ACKNOWLEDGED
    event that confirms it."""
    return f"{_REF}{reply_id}"


def reply_id_of(detail: str) -> int | None:
    if not detail.startswith(_REF) or not detail[len(_REF) :].isdigit():
        return None
    return int(detail[len(_REF) :])


def reply_summary(reply: Reply) -> str:
    """A reply's text as the timeline shows it, with its place in a concatenated message."""
    if not reply.part:
        return reply.text[:300]
    _, sequence, total = reply.part.split("/")
    return f"[{sequence}/{total}] {reply.text}"[:300]


class _Event(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def detail(self) -> str: ...


def replies_to_review(events: Iterable[_Event]) -> dict[int, int]:
    """Event id → reply id of each REPLY_RECEIVED event no ACKNOWLEDGED event confirms yet."""
    events = list(events)
    confirmed = {e.detail for e in events if e.kind == EvidenceKind.ACKNOWLEDGED}
    return {
        e.id: reply_id
        for e in events
        if e.kind == EvidenceKind.REPLY_RECEIVED
        and e.detail not in confirmed
        and (reply_id := reply_id_of(e.detail)) is not None
    }


def confirmation(
    *,
    reply_id: int,
    reply_sha256: str,
    text: str,
    confirmed_by: UUID | None,
    confirmed_at: datetime,
    note: str,
) -> str:
    """The verbatim evidence of a clerk's confirmation: which reply (and its hash), what it
    said, who read it as confirming receipt, when, and why."""
    record: Mapping[str, Any] = {
        "confirms_reply": reply_id,
        "reply_sha256": reply_sha256,
        "reply_text": text,
        "confirmed_by": None if confirmed_by is None else str(confirmed_by),
        "confirmed_at": confirmed_at.astimezone(UTC).isoformat(),
        "note": note,
    }
    return canonical_json(record).decode()
