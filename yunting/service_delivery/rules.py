"""When is a recipient "deemed served" (视为送达)? A versioned, pure rule set over evidence events.

``decide`` takes every evidence event recorded for one recipient of one service order (any order,
duplicates allowed) and returns a ``ServiceDecision``: served or not, since when, under which rule
of which rule-set version, resting on which events, and whether on a rebuttable presumption. The
certificate (电子送达凭证) and the UI are built from the decision; nothing here does I/O.

Legal basis of rule set ``cn-2024.1`` (article numbers of the law in force; older numbers in
brackets because court documents and commentary still quote them):

* 《民事诉讼法》(2023年修正, in force 2024-01-01) 第九十条 [2021年修正: also 第九十条; 2012/2017年
  修正: 第八十七条]: with the recipient's consent the court may serve by an electronic means that
  can confirm receipt (能够确认其收悉的电子方式); the date the message reaches the recipient's
  specific system (到达受送达人特定系统的日期) is the date of service (para. 2).
* 《最高人民法院关于适用〈中华人民共和国民事诉讼法〉的解释》(2022年修正) 第一百三十五条: that
  date is the date the court's sending system shows the sending succeeded, unless the recipient
  proves the message reached their system on a different date.
* 《人民法院在线诉讼规则》(法释〔2021〕12号) 第二十九条 (consent; an address the recipient gave
  counts as consent), 第三十一条第一款 (tier 1: an address the recipient provided or confirmed —
  served when the message reaches the system of that address), 第三十一条第二款 (tier 2: consent,
  but an address the court found — (一) served when the recipient replies that they received it
  or performs a litigation act in response; (二) presumed served when the address's system reports
  the recipient has read it or other evidence shows receipt, unless the recipient proves a system
  error, that the address is not theirs, or that someone else read it).

  The wording of 第三十一条 is quoted from memory of the published text and matches the pilot
  measure it was taken from (《民事诉讼程序繁简分流改革试点实施办法》第二十六条, 2020); the
  article number and the three rebuttal grounds are certain, the exact characters are not
  re-verified against the SPC gazette.

Decisions this rule set takes where the texts leave room (each argued where it is applied):

* Only proof that the message reached the recipient's system counts for tier 1: a delivery
  receipt saying delivered, or acceptance by the recipient's own server. A relay's or SMSC's
  acceptance ("sent") is not enough, although 解释第一百三十五条 speaks of the court system
  showing "发送成功": an SMSC's submit_sm_resp only shows the message entered the carrier's
  network, and 第九十条 asks for arrival at the recipient's system.
* CONTENT_ACCESSED (opened on our page after a one-time-code check) is at least as strong as a
  read report, but it is still "other evidence that the recipient received it" under 第三十一条
  第二款第（二）项, not a reply or a litigation act under 第（一）项: the recipient has not said
  anything. So in tier 2 it is a rebuttable presumption (someone else with access to the phone or
  mailbox can pass the code: "非本人阅知"). In tier 1 it proves arrival no later than the access.
* REJECTED ("report a problem") acts by reason code (``Ruleset.rejection_effects``): ``not_me``
  rebuts the tier-2 presumptions on the same channel, whenever they happened (第三十一条第二款
  第（二）项 "送达地址非本人使用或者非本人阅知"); it does not touch tier 1, where the recipient
  vouched for the address and bears its risk. ``unreadable`` rebuts arrival and every presumption
  on every channel, whenever they happened (a "系统错误": the document is the same on all
  channels, and what reached the recipient is not a document they can read; an early wrong
  "served" can cost a party their appeal, a wrong "not served" costs a re-send). Nothing in the
  evidence can yet withdraw a rejection (a clerk finding the document opens fine): the court
  serves again, or a new event kind is added to the model.
  A reply or a litigation act is never rebutted by the rule set: 第（一）项 has no exception
  clause; a rejection after one is listed for a clerk to look at. ``other`` changes nothing.
* PLATFORM_OUTAGE_START/END: our notice carries a link to the recipient page, which is where the
  document is. An arrival or read report inside an outage of that page does not count until the
  outage ends: the recipient could not obtain the document, which is the "系统错误" ground of
  第三十一条第二款第（二）项, shown by the court's own records (解释第一百三十五条 lets the
  recipient prove a different arrival date; we do not make them). Service then dates from the end
  of the outage, when the message is in their system and the document can be opened. A reply, a
  litigation act or an access to the document inside an "outage" is actual knowledge and counts
  at its time. An outage after service does not undo it; it may ground an extension of a period
  (《民事诉讼法》第八十六条, 2017: 第八十三条), which is a judge's decision, not this rule set's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from itertools import groupby
from types import MappingProxyType
from typing import Final

from yunting.service_delivery.model import ConsentTier, EvidenceKind
from yunting.service_delivery.ports import ReceiptStatus

RULESET_VERSION: Final = "cn-2024.1"


class RuleId(StrEnum):
    """The rule a decision was taken under; printed on the certificate."""

    TIER1_REACHED = "CN-OLR-31-1"  # 在线诉讼规则 第三十一条第一款
    TIER2 = "CN-OLR-31-2"  # 第三十一条第二款, when neither item applied
    TIER2_CONFIRMED = "CN-OLR-31-2-1"  # 第三十一条第二款第（一）项
    TIER2_PRESUMED = "CN-OLR-31-2-2"  # 第三十一条第二款第（二）项


class ServiceReason(StrEnum):
    """Stable machine keys for the UI and the certificate (translated in web/i18n)."""

    TIER1_REACHED_SYSTEM = "tier1_reached_system"
    TIER1_READ_REPORT = "tier1_read_report"
    TIER1_CONTENT_ACCESSED = "tier1_content_accessed"
    TIER1_ACKNOWLEDGED = "tier1_acknowledged"
    TIER1_LITIGATION_ACT = "tier1_litigation_act"
    TIER2_ACKNOWLEDGED = "tier2_acknowledged"
    TIER2_LITIGATION_ACT = "tier2_litigation_act"
    TIER2_READ_PRESUMED = "tier2_read_presumed"
    TIER2_CONTENT_ACCESSED_PRESUMED = "tier2_content_accessed_presumed"
    NOT_SERVED_NO_EVENT = "not_served_no_event"
    NOT_SERVED_AWAITING_RECEIPT = "not_served_awaiting_receipt"
    NOT_SERVED_AWAITING_CONFIRMATION = "not_served_awaiting_confirmation"
    NOT_SERVED_DELIVERY_FAILED = "not_served_delivery_failed"
    NOT_SERVED_OUTAGE_ONGOING = "not_served_outage_ongoing"
    REJECTED_NOT_ME = "rejected_not_me"
    REJECTED_UNREADABLE = "rejected_unreadable"


REASON_DESCRIPTIONS: Final[Mapping[ServiceReason, str]] = MappingProxyType(
    {
        ServiceReason.TIER1_REACHED_SYSTEM: (
            "The message reached the system of an address the recipient provided or confirmed."
        ),
        ServiceReason.TIER1_READ_REPORT: (
            "A read report shows the message reached the recipient's confirmed address."
        ),
        ServiceReason.TIER1_CONTENT_ACCESSED: (
            "The recipient opened the document from the message sent to their confirmed address."
        ),
        ServiceReason.TIER1_ACKNOWLEDGED: "The recipient acknowledged receipt.",
        ServiceReason.TIER1_LITIGATION_ACT: "The recipient acted on the document in the case.",
        ServiceReason.TIER2_ACKNOWLEDGED: "The recipient replied that they received it.",
        ServiceReason.TIER2_LITIGATION_ACT: "The recipient acted on the document in the case.",
        ServiceReason.TIER2_READ_PRESUMED: (
            "The address's system reported the message read: presumed served, rebuttable."
        ),
        ServiceReason.TIER2_CONTENT_ACCESSED_PRESUMED: (
            "The document was opened after the one-time-code check: presumed served, rebuttable."
        ),
        ServiceReason.NOT_SERVED_NO_EVENT: "Nothing has been sent yet.",
        ServiceReason.NOT_SERVED_AWAITING_RECEIPT: (
            "Sent; no proof yet that it reached the recipient's system."
        ),
        ServiceReason.NOT_SERVED_AWAITING_CONFIRMATION: (
            "Delivered to an address the court found; waiting for the recipient to confirm, "
            "read or act."
        ),
        ServiceReason.NOT_SERVED_DELIVERY_FAILED: "Delivery failed on every channel tried.",
        ServiceReason.NOT_SERVED_OUTAGE_ONGOING: (
            "It arrived during a platform outage that has not ended: it counts from the end."
        ),
        ServiceReason.REJECTED_NOT_ME: (
            "The recipient reported the address is not theirs: the presumption is rebutted."
        ),
        ServiceReason.REJECTED_UNREADABLE: (
            "The recipient reported the document cannot be read: service must be repeated."
        ),
    }
)


class RejectionReason(StrEnum):
    """Reason codes of "report a problem" on the recipient page (cf. the German eEB's
    Störungsmeldung)."""

    NOT_ME = "not_me"  # the address is not mine / I am not the addressee
    UNREADABLE = "unreadable"  # the document will not open, is incomplete or corrupt
    OTHER = "other"  # free text for the clerk; no effect on service


class RejectionEffect(StrEnum):
    # Rebuts the tier-2 presumptions (read report, content accessed) on the same channel.
    REBUTS_PRESUMPTIONS_ON_CHANNEL = "rebuts_presumptions_on_channel"
    # Rebuts arrival and every presumption, on every channel.
    REBUTS_RECEIPT = "rebuts_receipt"
    NONE = "none"


class UnknownRulesetError(ValueError):
    """``decide`` was asked for a rule-set version it does not have."""


@dataclass(frozen=True, slots=True)
class Ruleset:
    version: str
    citations: Mapping[RuleId, str]
    rejection_effects: Mapping[RejectionReason, RejectionEffect]


_OLR = "《人民法院在线诉讼规则》"
_CPL_90 = "《中华人民共和国民事诉讼法》第九十条"
_INTERPRETATION_135 = "《最高人民法院关于适用〈中华人民共和国民事诉讼法〉的解释》第一百三十五条"

_CN_2024_1 = Ruleset(
    version=RULESET_VERSION,
    citations=MappingProxyType(
        {
            RuleId.TIER1_REACHED: f"{_CPL_90}第二款、{_INTERPRETATION_135}、{_OLR}第三十一条第一款",
            RuleId.TIER2: f"{_CPL_90}、{_OLR}第三十一条第二款",
            RuleId.TIER2_CONFIRMED: f"{_CPL_90}、{_OLR}第三十一条第二款第（一）项",
            RuleId.TIER2_PRESUMED: f"{_CPL_90}、{_OLR}第三十一条第二款第（二）项",
        }
    ),
    rejection_effects=MappingProxyType(
        {
            RejectionReason.NOT_ME: RejectionEffect.REBUTS_PRESUMPTIONS_ON_CHANNEL,
            RejectionReason.UNREADABLE: RejectionEffect.REBUTS_RECEIPT,
            RejectionReason.OTHER: RejectionEffect.NONE,
        }
    ),
)

RULESETS: Final[Mapping[str, Ruleset]] = MappingProxyType({RULESET_VERSION: _CN_2024_1})


@dataclass(frozen=True, slots=True)
class ServiceEvent:
    """One recorded evidence event, as the rule set needs to see it.

    ``at`` is when the event happened, timezone-aware: for a delivery receipt the time the provider
    says delivery happened (``Receipt.happened_at``, the SMPP "done date") if it says, else when
    we received the receipt. ``channel`` is the channel whose message the event is about (``None``
    for events not tied to one, such as a litigation act). ``address_tier`` is the consent tier of
    that channel's address when it differs from the recipient's (``decide``'s ``tier``): an email
    address the recipient gave next to a phone number the court found.
    """

    id: str
    kind: EvidenceKind
    at: datetime
    channel: str | None = None
    receipt_status: ReceiptStatus | None = None
    # HANDED_TO_PROVIDER only: the provider that took it is the recipient's own system
    # (``Accepted.reached_recipient_system``: their SMTP server, not a relay).
    reached_recipient_system: bool = False
    address_tier: ConsentTier | None = None
    rejection_reason: RejectionReason | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("expected a non-empty event id, got ''")
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError(f"expected a timezone-aware time for event {self.id}, got {self.at}")
        is_receipt = self.kind is EvidenceKind.DELIVERY_RECEIPT
        if is_receipt != (self.receipt_status is not None):
            raise ValueError(
                f"expected a receipt status exactly on DELIVERY_RECEIPT events, "
                f"got {self.receipt_status} on {self.kind} ({self.id})"
            )
        is_rejection = self.kind is EvidenceKind.REJECTED
        if is_rejection != (self.rejection_reason is not None):
            raise ValueError(
                f"expected a rejection reason exactly on REJECTED events, "
                f"got {self.rejection_reason} on {self.kind} ({self.id})"
            )
        if self.reached_recipient_system and self.kind is not EvidenceKind.HANDED_TO_PROVIDER:
            raise ValueError(
                f"expected reached_recipient_system only on HANDED_TO_PROVIDER, "
                f"got it on {self.kind} ({self.id})"
            )


@dataclass(frozen=True, slots=True)
class ServiceDecision:
    served: bool
    served_at: datetime | None  # aware UTC
    rule_id: RuleId
    ruleset_version: str
    # The events the decision rests on: the qualifying event (and the outage end it waited for);
    # when not served, the events that explain why (the rejection, the failures, ...).
    basis_event_ids: tuple[str, ...]
    # True when served rests on a rebuttable presumption (第三十一条第二款第（二）项).
    presumption: bool
    reason: ServiceReason
    citation: str  # for the certificate, in Chinese
    # Served at the end of a platform outage instead of the (earlier) arrival inside it.
    deferred_by_outage: bool = False
    # Events that would have served but were rebutted by a rejection.
    rebutted_event_ids: tuple[str, ...] = ()
    # Every "report a problem" event in the evidence, whatever its effect: a clerk looks at them.
    rejection_event_ids: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        return REASON_DESCRIPTIONS[self.reason]


# Internals ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Candidate:
    """An event that serves unless rebutted (or deferred by an outage)."""

    event: ServiceEvent
    rule: RuleId
    reason: ServiceReason
    presumption: bool
    deferrable: bool  # an arrival or read report: waits for the end of a platform outage
    rebuttable_not_me: bool
    rebuttable_unreadable: bool


@dataclass(frozen=True, slots=True)
class _Outage:
    start: ServiceEvent
    end: ServiceEvent | None  # None: still going on


def _is_arrival(event: ServiceEvent) -> bool:
    if event.kind is EvidenceKind.DELIVERY_RECEIPT:
        return event.receipt_status is ReceiptStatus.DELIVERED
    return event.kind is EvidenceKind.HANDED_TO_PROVIDER and event.reached_recipient_system


def _is_read_report(event: ServiceEvent) -> bool:
    return (
        event.kind is EvidenceKind.DELIVERY_RECEIPT and event.receipt_status is ReceiptStatus.READ
    )


def _candidate(event: ServiceEvent, tier: ConsentTier) -> _Candidate | None:
    kind = event.kind
    if tier is ConsentTier.TIER1:
        # 第三十一条第一款: arrival serves. A read report, an access to the document, a reply or a
        # litigation act each prove the message had arrived by then.
        if _is_arrival(event):
            reason = ServiceReason.TIER1_REACHED_SYSTEM
        elif _is_read_report(event):
            reason = ServiceReason.TIER1_READ_REPORT
        elif kind is EvidenceKind.CONTENT_ACCESSED:
            reason = ServiceReason.TIER1_CONTENT_ACCESSED
        elif kind is EvidenceKind.ACKNOWLEDGED:
            reason = ServiceReason.TIER1_ACKNOWLEDGED
        elif kind is EvidenceKind.LITIGATION_ACT:
            reason = ServiceReason.TIER1_LITIGATION_ACT
        else:
            return None
        confirmed = kind in (EvidenceKind.ACKNOWLEDGED, EvidenceKind.LITIGATION_ACT)
        return _Candidate(
            event=event,
            rule=RuleId.TIER1_REACHED,
            reason=reason,
            presumption=False,
            deferrable=_is_arrival(event) or _is_read_report(event),
            rebuttable_not_me=False,  # the recipient vouched for this address
            rebuttable_unreadable=not confirmed,
        )
    if kind is EvidenceKind.ACKNOWLEDGED or kind is EvidenceKind.LITIGATION_ACT:
        # 第（一）项: the recipient's own reply or act; the text allows no rebuttal.
        return _Candidate(
            event=event,
            rule=RuleId.TIER2_CONFIRMED,
            reason=(
                ServiceReason.TIER2_ACKNOWLEDGED
                if kind is EvidenceKind.ACKNOWLEDGED
                else ServiceReason.TIER2_LITIGATION_ACT
            ),
            presumption=False,
            deferrable=False,
            rebuttable_not_me=False,
            rebuttable_unreadable=False,
        )
    if _is_read_report(event) or kind is EvidenceKind.CONTENT_ACCESSED:
        # 第（二）项: "系统反馈已阅知" or "其他证据可以证明已经收悉": presumed, rebuttable.
        return _Candidate(
            event=event,
            rule=RuleId.TIER2_PRESUMED,
            reason=(
                ServiceReason.TIER2_READ_PRESUMED
                if _is_read_report(event)
                else ServiceReason.TIER2_CONTENT_ACCESSED_PRESUMED
            ),
            presumption=True,
            deferrable=_is_read_report(event),
            rebuttable_not_me=True,
            rebuttable_unreadable=True,
        )
    return None


def _unique(events: Sequence[ServiceEvent]) -> list[ServiceEvent]:
    """Drop duplicates (the same event id delivered twice), in a stable time order."""
    by_id: dict[str, ServiceEvent] = {}
    for event in events:
        seen = by_id.get(event.id)
        if seen is None:
            by_id[event.id] = event
        elif seen != event:
            raise ValueError(f"expected one content per event id, got two for {event.id}")
    return sorted(by_id.values(), key=lambda e: (e.at, e.id))


def _outages(events: Sequence[ServiceEvent]) -> list[_Outage]:
    """Outage windows [start, end), from the START/END marks in time order (``events`` is).

    A second START while one is open (another node noticing the same outage) extends nothing; an
    END with no open outage is ignored. Marks at one instant are taken together: with an outage
    open, an END closes it and a START opens the next (back to back); with none open, a START and
    an END make an empty window, not an outage that never ends.
    """
    outages: list[_Outage] = []
    open_start: ServiceEvent | None = None
    marks = (
        e
        for e in events
        if e.kind in (EvidenceKind.PLATFORM_OUTAGE_START, EvidenceKind.PLATFORM_OUTAGE_END)
    )
    for _, group in groupby(marks, key=lambda e: e.at):
        same_instant = list(group)
        start = next(
            (e for e in same_instant if e.kind is EvidenceKind.PLATFORM_OUTAGE_START), None
        )
        end = next((e for e in same_instant if e.kind is EvidenceKind.PLATFORM_OUTAGE_END), None)
        if open_start is not None:
            if end is not None:
                outages.append(_Outage(open_start, end))
                open_start = start
        elif start is not None and end is None:
            open_start = start
    if open_start is not None:
        outages.append(_Outage(open_start, None))
    return outages


def _covering_outage(at: datetime, outages: Sequence[_Outage]) -> _Outage | None:
    for outage in outages:
        if outage.start.at <= at and (outage.end is None or at < outage.end.at):
            return outage
    return None


def _same_channel(a: str | None, b: str | None) -> bool:
    # An event with no channel could have come through any: match it (in the recipient's favour).
    return a is None or b is None or a == b


class _ChannelState(StrEnum):
    PENDING = "pending"
    FAILED = "failed"
    REACHED = "reached"


def _channel_states(events: Sequence[ServiceEvent]) -> dict[str | None, _ChannelState]:
    states: dict[str | None, _ChannelState] = {}
    for event in events:  # in time order: the latest pending/failed wins, reached is final
        if states.get(event.channel) is _ChannelState.REACHED:
            continue
        if _is_arrival(event) or _is_read_report(event):
            states[event.channel] = _ChannelState.REACHED
        elif event.kind is EvidenceKind.DELIVERY_FAILED or (
            event.receipt_status is ReceiptStatus.PERMANENT_FAILURE
        ):
            states[event.channel] = _ChannelState.FAILED
        elif event.kind in (
            EvidenceKind.SUBMISSION_ACCEPTED,
            EvidenceKind.HANDED_TO_PROVIDER,
            EvidenceKind.DELIVERY_RECEIPT,  # accepted (ENROUTE) or a temporary failure
        ):
            states[event.channel] = _ChannelState.PENDING
    return states


def decide(
    *,
    tier: ConsentTier,
    events: Sequence[ServiceEvent],
    ruleset: str = RULESET_VERSION,
) -> ServiceDecision:
    """Decide whether, and since when, the recipient is served, from all evidence so far.

    ``tier`` is the recipient's consent tier (在线诉讼规则 第三十一条: first paragraph for an
    address the recipient provided or confirmed, second paragraph for one the court found); an
    event's ``address_tier`` overrides it for that event. Tier 1 is served when the message reaches
    the address's system (民事诉讼法 第九十条第二款, 解释 第一百三十五条); tier 2 on a reply or a
    litigation act (第三十一条第二款第（一）项), or presumptively on a read report or an access to
    the document (第（二）项), unless rebutted by a "report a problem" (see the module docstring
    for what each reason code rebuts, and for platform outages).

    The earliest qualifying event wins, so the answer does not depend on the order or repetition
    of ``events``, and a later qualifying event never moves ``served_at``. Only a rebuttal can
    change an earlier decision: it removes the events it rebuts, and the decision falls back to
    the next qualifying event (or to not served). Raises ``UnknownRulesetError`` for a version
    other than those in ``RULESETS``, ``ValueError`` for two different events with one id.
    """
    rules = RULESETS.get(ruleset)
    if rules is None:
        raise UnknownRulesetError(
            f"expected a rule-set version in {sorted(RULESETS)}, got {ruleset!r}"
        )
    ordered = _unique(events)
    outages = _outages(ordered)
    rejections = [e for e in ordered if e.kind is EvidenceKind.REJECTED]
    rejection_ids = tuple(e.id for e in rejections)

    # Each qualifying event, dated (after any outage it fell into), unless rebutted.
    eligible: list[tuple[datetime, _Candidate, _Outage | None]] = []
    waiting_on_outage: list[tuple[_Candidate, _Outage]] = []
    rebutted: list[_Candidate] = []
    rebutting: list[ServiceEvent] = []
    for event in ordered:
        candidate = _candidate(event, event.address_tier or tier)
        if candidate is None:
            continue
        rebuttals = [r for r in rejections if _rebuts(rules, r, candidate)]
        if rebuttals:
            rebutted.append(candidate)
            rebutting.extend(r for r in rebuttals if r not in rebutting)
            continue
        effective, outage = event.at, None
        if candidate.deferrable:
            # Loop: an outage may end at the very moment the next one starts.
            while (covering := _covering_outage(effective, outages)) is not None:
                outage = covering
                if covering.end is None:
                    break
                effective = covering.end.at
        if outage is not None and outage.end is None:
            waiting_on_outage.append((candidate, outage))
            continue
        eligible.append((effective, candidate, outage))

    rebutted_ids = tuple(c.event.id for c in rebutted)
    if eligible:
        # Earliest first; at the same instant prefer what needs no presumption, then the id.
        at, winner, outage = min(
            eligible, key=lambda item: (item[0], item[1].presumption, item[1].event.id)
        )
        basis: tuple[str, ...] = (winner.event.id,)
        if outage is not None and outage.end is not None:
            basis += (outage.end.id,)
        return ServiceDecision(
            served=True,
            served_at=at.astimezone(UTC),
            rule_id=winner.rule,
            ruleset_version=rules.version,
            basis_event_ids=basis,
            presumption=winner.presumption,
            reason=winner.reason,
            citation=rules.citations[winner.rule],
            deferred_by_outage=outage is not None,
            rebutted_event_ids=rebutted_ids,
            rejection_event_ids=rejection_ids,
        )

    rule = RuleId.TIER1_REACHED if tier is ConsentTier.TIER1 else RuleId.TIER2
    reason, explained_by = _why_not_served(
        rules, tier, ordered, rebutting, rebutted, waiting_on_outage
    )
    return ServiceDecision(
        served=False,
        served_at=None,
        rule_id=rule,
        ruleset_version=rules.version,
        basis_event_ids=explained_by,
        presumption=False,
        reason=reason,
        citation=rules.citations[rule],
        rebutted_event_ids=rebutted_ids,
        rejection_event_ids=rejection_ids,
    )


def _rebuts(rules: Ruleset, rejection: ServiceEvent, candidate: _Candidate) -> bool:
    if rejection.rejection_reason is None:  # excluded by ServiceEvent's checks
        return False
    effect = rules.rejection_effects[rejection.rejection_reason]
    if effect is RejectionEffect.REBUTS_RECEIPT:
        return candidate.rebuttable_unreadable
    if effect is RejectionEffect.REBUTS_PRESUMPTIONS_ON_CHANNEL:
        return candidate.rebuttable_not_me and _same_channel(
            rejection.channel, candidate.event.channel
        )
    return False


def _why_not_served(
    rules: Ruleset,
    tier: ConsentTier,
    ordered: Sequence[ServiceEvent],
    rebutting: Sequence[ServiceEvent],
    rebutted: Sequence[_Candidate],
    waiting_on_outage: Sequence[tuple[_Candidate, _Outage]],
) -> tuple[ServiceReason, tuple[str, ...]]:
    """The most informative reason for not served, and the events behind it."""
    if rebutting:
        first = rebutting[0]
        reason = (
            ServiceReason.REJECTED_UNREADABLE
            if first.rejection_reason is not None
            and rules.rejection_effects[first.rejection_reason] is RejectionEffect.REBUTS_RECEIPT
            else ServiceReason.REJECTED_NOT_ME
        )
        return reason, tuple(r.id for r in rebutting) + tuple(c.event.id for c in rebutted)
    if waiting_on_outage:
        candidate, outage = waiting_on_outage[0]
        return ServiceReason.NOT_SERVED_OUTAGE_ONGOING, (candidate.event.id, outage.start.id)
    delivered_tier2 = tuple(
        e.id for e in ordered if _is_arrival(e) and (e.address_tier or tier) is ConsentTier.TIER2
    )
    if delivered_tier2:
        return ServiceReason.NOT_SERVED_AWAITING_CONFIRMATION, delivered_tier2
    states = _channel_states(ordered)
    if _ChannelState.PENDING in states.values():
        return ServiceReason.NOT_SERVED_AWAITING_RECEIPT, ()
    if _ChannelState.FAILED in states.values():
        failures = tuple(
            e.id
            for e in ordered
            if e.kind is EvidenceKind.DELIVERY_FAILED
            or e.receipt_status is ReceiptStatus.PERMANENT_FAILURE
        )
        return ServiceReason.NOT_SERVED_DELIVERY_FAILED, failures
    return ServiceReason.NOT_SERVED_NO_EVENT, ()
