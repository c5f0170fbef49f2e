"""What recipients send back, sans-I/O: which address a reply came from, how its evidence event
and a clerk's confirmation of it refer to it, and which replies still wait for a clerk.

A reply is evidence whatever it says, and stored verbatim before the provider is acknowledged
(``ServiceDeliveryService.ingest_reply``). Whether it confirms receipt is for a person to read:
"收到" does, "这是什么？" shows only that the message arrived. A clerk who finds it does records
an ACKNOWLEDGED event at the time of the reply (在线诉讼规则 第三十一条第二款第（一）项:
受送达人回复已收悉), which the rule set reads like the recipient page's acknowledgement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from yunting.infra.ledger.canonical import canonical_json
from yunting.service_delivery.addresses import normalize_address
from yunting.service_delivery.errors import InvalidAddressError
from yunting.service_delivery.model import EvidenceKind
from yunting.service_delivery.ports import Reply

_REF = "reply:"
# How far apart the parts of one concatenated SMS may arrive. The reference number is one byte
# per sender (GSM 03.40 §9.2.3.24.1), so it comes round again after 256 long messages: parts
# a day apart are not one message, whatever their reference says.
PART_WINDOW = timedelta(days=1)


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


class StoredReply(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def sender(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def part(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def received_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Message:
    """What a recipient sent as one message: a reply, or the parts of a concatenated SMS that
    have arrived (each stored on its own, verbatim), in their order."""

    parts: tuple[StoredReply, ...]
    total: int  # parts the message has (1 unless concatenated)

    @property
    def first_id(self) -> int:
        """The id the message is known by (its confirmation's ``reply:N``): that of the part
        stored first, which parts arriving later do not change."""
        return min(p.id for p in self.parts)

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts)

    @property
    def complete(self) -> bool:
        return len(self.parts) == self.total

    @property
    def received_at(self) -> datetime:
        """When the last of its parts arrived: the message was not all there before."""
        return max(p.received_at for p in self.parts)


def _part_of(part: str) -> tuple[str, int, int] | None:
    """``ref/seq/total`` (as the SMPP provider writes it) → its fields, or ``None``."""
    fields = part.split("/")
    if len(fields) != 3 or not fields[1].isdigit() or not fields[2].isdigit():
        return None
    return fields[0], int(fields[1]), int(fields[2])


def messages(replies: Sequence[StoredReply]) -> dict[int, Message]:
    """Reply id → the message it belongs to, for one recipient's replies.

    Parts from the same sender with the same reference and count, arriving within
    ``PART_WINDOW`` of the message's first part, are one message. A part whose place is taken
    already starts a new message (the reference came round), unless it says the same thing
    (the SMSC delivered it again): then it maps to the message but adds nothing to its text."""
    found: dict[int, Message] = {}
    groups: list[_Group] = []
    latest: dict[tuple[str, str, int], _Group] = {}  # the last group of each (sender, ref, total)
    for reply in sorted(replies, key=lambda r: r.id):
        parsed = _part_of(reply.part)
        if parsed is None:
            found[reply.id] = Message(parts=(reply,), total=1)
            continue
        ref, sequence, total = parsed
        key = (reply.sender, ref, total)
        group = latest.get(key)
        taken = group.parts.get(sequence) if group is not None else None
        if (
            group is None
            or reply.received_at - group.started > PART_WINDOW
            or (taken is not None and taken.text != reply.text)
        ):
            group = latest[key] = _Group(total=total, started=reply.received_at)
            groups.append(group)
        group.parts.setdefault(sequence, reply)  # a part delivered again: the first stays
        group.ids.append(reply.id)
    for group in groups:
        message = Message(
            parts=tuple(group.parts[s] for s in sorted(group.parts)), total=group.total
        )
        for reply_id in group.ids:
            found[reply_id] = message
    return found


@dataclass(slots=True)
class _Group:
    total: int
    started: datetime
    parts: dict[int, StoredReply] = field(default_factory=dict)  # by sequence number
    ids: list[int] = field(default_factory=list)  # every reply mapped to it


class _Event(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def detail(self) -> str: ...


def replies_to_review(
    events: Iterable[_Event], messages_by_reply: Mapping[int, Message] | None = None
) -> dict[int, int]:
    """Event id → the id of the message (its first reply) of each REPLY_RECEIVED event whose
    message no ACKNOWLEDGED event confirms yet; ``messages_by_reply`` (``messages``) joins the
    parts of a concatenated SMS, each part's event then naming the same message."""
    events = list(events)
    confirmed = {e.detail for e in events if e.kind == EvidenceKind.ACKNOWLEDGED}
    found = {}
    for e in events:
        if e.kind != EvidenceKind.REPLY_RECEIVED or (reply_id := reply_id_of(e.detail)) is None:
            continue
        message = (messages_by_reply or {}).get(reply_id)
        first_id = message.first_id if message is not None else reply_id
        if reply_ref(first_id) not in confirmed:
            found[e.id] = first_id
    return found


def confirmation(
    *, message: Message, confirmed_by: UUID | None, confirmed_at: datetime, note: str
) -> str:
    """The verbatim evidence of a clerk's confirmation: which reply (the part stored first and
    its hash; every part's, for a concatenated SMS), what it said, who read it as confirming
    receipt, when, and why."""
    record: dict[str, Any] = {
        "confirms_reply": message.first_id,
        "reply_sha256": next(p.sha256 for p in message.parts if p.id == message.first_id),
        "reply_text": message.text,
        "confirmed_by": None if confirmed_by is None else str(confirmed_by),
        "confirmed_at": confirmed_at.astimezone(UTC).isoformat(),
        "note": note,
    }
    if message.total > 1:
        record["parts"] = [{"reply": p.id, "sha256": p.sha256} for p in message.parts]
        record["parts_total"] = message.total
    return canonical_json(record).decode()
