"""What the clerk's delivery dashboard shows, computed from rows: sans-I/O, no clock of its own.

Each recipient of a service order is in one of four states, from the evidence the platform holds:

- ``served``: the rule set found them served (``served_at``);
- ``awaiting_ack``: a message reached them but their consent tier needs an acknowledgement, a
  reply or a litigation act before they are served (tier 2), so the court waits for them;
- ``failed``: nothing is in flight and no message reached them: every attempt ended in a
  failure (retries exhausted), so the clerk must resend, fall back to the other channel or
  mark them for postal service;
- ``pending``: an attempt is still being sent, waiting for a receipt or waiting for a retry.

``overdue`` is a flag on top of the state: not served ``overdue_after`` after the order, which
is when a clerk should look (the court's practice decides the length: a setting).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from uuid import UUID
from zoneinfo import ZoneInfo

from yunting.service_delivery.addresses import masked
from yunting.service_delivery.model import FINAL_ATTEMPT_STATUSES, AttemptStatus
from yunting.service_delivery.ports import Channel
from yunting.service_delivery.repository import AttemptRow, RecipientRow


class RecipientState(StrEnum):
    PENDING = "pending"
    AWAITING_ACK = "awaiting_ack"
    FAILED = "failed"
    SERVED = "served"


class Filter(StrEnum):
    """The dashboard's filters (``all`` shows everything)."""

    ALL = "all"
    PENDING = "pending"  # pending or awaiting an acknowledgement
    FAILED = "failed"
    SERVED = "served"
    OVERDUE = "overdue"


_REACHED = frozenset({AttemptStatus.DELIVERED})
_FAILED = FINAL_ATTEMPT_STATUSES - _REACHED


@dataclass(frozen=True, slots=True)
class ChannelStatus:
    """The latest attempt on one channel."""

    channel: Channel
    address: str  # masked
    status: AttemptStatus
    try_no: int
    at: datetime  # when it last changed
    error: str
    in_flight: bool


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    recipient_id: UUID
    state: RecipientState
    overdue: bool
    channels: tuple[ChannelStatus, ...]
    postal: bool  # the clerk marked them for postal service

    def matches(self, wanted: Filter) -> bool:
        if wanted is Filter.ALL:
            return True
        if wanted is Filter.OVERDUE:
            return self.overdue
        if wanted is Filter.PENDING:
            return self.state in (RecipientState.PENDING, RecipientState.AWAITING_ACK)
        return self.state.value == wanted.value


def _latest(attempts: Sequence[AttemptRow]) -> dict[Channel, AttemptRow]:
    latest: dict[Channel, AttemptRow] = {}
    for attempt in attempts:
        channel = Channel(attempt.channel)
        current = latest.get(channel)
        if current is None or (attempt.try_no, attempt.created_at) > (
            current.try_no,
            current.created_at,
        ):
            latest[channel] = attempt
    return latest


def recipient_status(
    recipient: RecipientRow,
    attempts: Sequence[AttemptRow],
    *,
    now: datetime,
    ordered_at: datetime,
    overdue_after: timedelta,
    receipt_channels: frozenset[Channel] = frozenset({Channel.SMS}),
) -> RecipientStatus:
    latest = _latest(attempts)
    channels = tuple(
        ChannelStatus(
            channel=channel,
            address=masked(channel, attempt.address),
            status=AttemptStatus(attempt.status),
            try_no=attempt.try_no,
            at=attempt.final_at or attempt.sent_at or attempt.updated_at,
            error=attempt.error,
            in_flight=AttemptStatus(attempt.status) not in FINAL_ATTEMPT_STATUSES,
        )
        for channel, attempt in sorted(latest.items())
    )

    def waits_for_receipt(c: ChannelStatus) -> bool:
        return c.status is AttemptStatus.SENT and c.channel in receipt_channels

    # A message that reached them on any try counts, even if a later resend failed; a sent
    # email (no receipt comes back through a relay) counts as reached for this purpose.
    reached = any(AttemptStatus(a.status) in _REACHED for a in attempts) or any(
        c.status is AttemptStatus.SENT and not waits_for_receipt(c) for c in channels
    )
    state: RecipientState
    if recipient.served_at is not None:
        state = RecipientState.SERVED
    elif any(
        c.in_flight and (c.status is not AttemptStatus.SENT or waits_for_receipt(c))
        for c in channels
    ):
        state = RecipientState.PENDING
    elif reached:
        state = RecipientState.AWAITING_ACK
    elif channels and all(c.status in _FAILED for c in channels):
        state = RecipientState.FAILED
    else:
        state = RecipientState.PENDING
    return RecipientStatus(
        recipient_id=recipient.id,
        state=state,
        overdue=recipient.served_at is None and now - ordered_at >= overdue_after,
        channels=channels,
        postal=recipient.postal_requested_at is not None,
    )


def counts(statuses: Iterable[RecipientStatus]) -> dict[str, int]:
    """How many recipients each filter would show."""
    found = list(statuses)
    return {f.value: sum(1 for s in found if s.matches(f)) for f in Filter}


@dataclass(frozen=True, slots=True)
class OutcomeDay:
    day: date
    served: int
    delivered: int  # attempts that reached the recipient's system that day
    failed: int  # attempts that ended in a failure that day


def outcomes_by_day(
    recipients: Iterable[RecipientRow],
    attempts: Iterable[AttemptRow],
    *,
    tz: ZoneInfo,
    today: date,
    days: int = 14,
) -> list[OutcomeDay]:
    """Delivery outcomes over the last ``days`` days (the court's calendar), oldest first."""
    first = today - timedelta(days=days - 1)
    served: dict[date, int] = {}
    delivered: dict[date, int] = {}
    failed: dict[date, int] = {}
    for recipient in recipients:
        if recipient.served_at is not None:
            day = recipient.served_at.astimezone(tz).date()
            served[day] = served.get(day, 0) + 1
    for attempt in attempts:
        if attempt.final_at is None:
            continue
        day = attempt.final_at.astimezone(tz).date()
        status = AttemptStatus(attempt.status)
        if status in _REACHED:
            delivered[day] = delivered.get(day, 0) + 1
        elif status in _FAILED:
            failed[day] = failed.get(day, 0) + 1
    return [
        OutcomeDay(
            day=d,
            served=served.get(d, 0),
            delivered=delivered.get(d, 0),
            failed=failed.get(d, 0),
        )
        for d in (first + timedelta(days=i) for i in range(days))
    ]


CSV_COLUMNS = (
    "case_number",
    "document",
    "document_sha256",
    "ordered_at",
    "recipient",
    "role",
    "consent_tier",
    "state",
    "overdue",
    "sms",
    "sms_status",
    "email",
    "email_status",
    "served_at",
    "rule",
    "ruleset",
    "deadline",
    "postal_requested",
)


@dataclass(frozen=True, slots=True)
class CsvRow:
    case_number: str
    document: str
    document_sha256: str
    ordered_at: datetime
    recipient: RecipientRow
    status: RecipientStatus


def _safe_cell(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection: "=", "+", "-", "@")."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def to_csv(rows: Iterable[CsvRow], *, tz: ZoneInfo) -> str:
    """The dashboard as CSV (UTF-8 with BOM added by the caller for spreadsheet programs)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        by_channel: Mapping[Channel, ChannelStatus] = {c.channel: c for c in row.status.channels}
        sms = by_channel.get(Channel.SMS)
        email = by_channel.get(Channel.EMAIL)
        r = row.recipient
        writer.writerow(
            _safe_cell(str(v))
            for v in (
                row.case_number,
                row.document,
                row.document_sha256,
                row.ordered_at.astimezone(tz).isoformat(timespec="seconds"),
                r.name,
                r.role,
                r.consent_tier,
                row.status.state.value,
                "yes" if row.status.overdue else "no",
                sms.address if sms else "",
                sms.status.value if sms else "",
                email.address if email else "",
                email.status.value if email else "",
                r.served_at.astimezone(tz).isoformat(timespec="seconds") if r.served_at else "",
                r.rule_id or "",
                r.ruleset_version or "",
                r.deadline_on or "",
                "yes" if row.status.postal else "no",
            )
        )
    return out.getvalue()
