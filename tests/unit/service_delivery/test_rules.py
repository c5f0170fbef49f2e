"""The "deemed served" rule set: one table of evidence histories and what the law makes of them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import pytest

from yunting.service_delivery.model import ConsentTier, EvidenceKind
from yunting.service_delivery.ports import ReceiptStatus
from yunting.service_delivery.rules import (
    REASON_DESCRIPTIONS,
    RULESET_VERSION,
    RULESETS,
    RejectionReason,
    RuleId,
    ServiceEvent,
    ServiceReason,
    UnknownRulesetError,
    decide,
)

K = EvidenceKind
S = ReceiptStatus
R = ServiceReason
T1 = ConsentTier.TIER1
T2 = ConsentTier.TIER2
START = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)


def t(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def submitted(id: str, m: int, channel: str) -> ServiceEvent:
    return ServiceEvent(id, K.SUBMISSION_ACCEPTED, t(m), channel)


def handed(id: str, m: int, channel: str, *, own_server: bool = False) -> ServiceEvent:
    return ServiceEvent(
        id, K.HANDED_TO_PROVIDER, t(m), channel, reached_recipient_system=own_server
    )


def receipt(
    id: str, m: int, channel: str, status: ReceiptStatus, tier: ConsentTier | None = None
) -> ServiceEvent:
    return ServiceEvent(
        id, K.DELIVERY_RECEIPT, t(m), channel, receipt_status=status, address_tier=tier
    )


def failed(id: str, m: int, channel: str) -> ServiceEvent:
    return ServiceEvent(id, K.DELIVERY_FAILED, t(m), channel)


def accessed(id: str, m: int, channel: str) -> ServiceEvent:
    return ServiceEvent(id, K.CONTENT_ACCESSED, t(m), channel)


def acknowledged(id: str, m: int) -> ServiceEvent:
    return ServiceEvent(id, K.ACKNOWLEDGED, t(m))


def litigation_act(id: str, m: int) -> ServiceEvent:
    return ServiceEvent(id, K.LITIGATION_ACT, t(m))


def rejected(id: str, m: int, reason: RejectionReason, channel: str | None = None) -> ServiceEvent:
    return ServiceEvent(id, K.REJECTED, t(m), channel, rejection_reason=reason)


def outage(id: str, m: int, *, end: bool = False) -> ServiceEvent:
    kind = K.PLATFORM_OUTAGE_END if end else K.PLATFORM_OUTAGE_START
    return ServiceEvent(id, kind, t(m))


NOT_ME = RejectionReason.NOT_ME
UNREADABLE = RejectionReason.UNREADABLE


@dataclass(frozen=True)
class Case:
    id: str
    tier: ConsentTier
    events: list[ServiceEvent]
    served_at: int | None  # minutes after START; None: not served
    rule: RuleId
    reason: ServiceReason
    basis: tuple[str, ...] = ()
    presumption: bool = False
    deferred: bool = False
    rebutted: tuple[str, ...] = ()
    rejections: tuple[str, ...] = field(default=())


CASES = [
    # Tier 1 (在线诉讼规则 第三十一条第一款): served when it reaches the address's system.
    Case(
        "tier1-smtp-accepted-by-recipients-own-server",
        T1,
        [submitted("s1", 0, "email"), handed("h1", 1, "email", own_server=True)],
        served_at=1,
        rule=RuleId.TIER1_REACHED,
        reason=R.TIER1_REACHED_SYSTEM,
        basis=("h1",),
    ),
    Case(
        "tier1-smpp-delivrd",
        T1,
        [handed("h1", 0, "sms"), receipt("r1", 5, "sms", S.DELIVERED)],
        served_at=5,
        rule=RuleId.TIER1_REACHED,
        reason=R.TIER1_REACHED_SYSTEM,
        basis=("r1",),
    ),
    Case(
        "tier1-sent-only-is-not-served",
        T1,
        [
            submitted("s1", 0, "sms"),
            handed("h1", 1, "sms"),  # the SMSC took it: not the recipient's system
            receipt("r1", 2, "sms", S.ACCEPTED),  # ENROUTE
        ],
        served_at=None,
        rule=RuleId.TIER1_REACHED,
        reason=R.NOT_SERVED_AWAITING_RECEIPT,
    ),
    Case(
        "tier1-smtp-relay-acceptance-is-not-served",
        T1,
        [handed("h1", 1, "email", own_server=False)],
        served_at=None,
        rule=RuleId.TIER1_REACHED,
        reason=R.NOT_SERVED_AWAITING_RECEIPT,
    ),
    Case(
        "tier1-duplicate-and-late-receipts-keep-served-at",
        T1,
        [
            handed("h1", 0, "sms"),
            receipt("r1", 5, "sms", S.DELIVERED),
            receipt("r1", 5, "sms", S.DELIVERED),  # the same receipt stored twice
            receipt("r2", 60, "sms", S.DELIVERED),  # the operator repeats itself an hour later
        ],
        served_at=5,
        rule=RuleId.TIER1_REACHED,
        reason=R.TIER1_REACHED_SYSTEM,
        basis=("r1",),
    ),
    Case(
        "tier1-receipts-out-of-order",
        T1,
        [
            receipt("r2", 60, "sms", S.DELIVERED),
            receipt("r1", 5, "sms", S.DELIVERED),
            handed("h1", 0, "sms"),
        ],
        served_at=5,
        rule=RuleId.TIER1_REACHED,
        reason=R.TIER1_REACHED_SYSTEM,
        basis=("r1",),
    ),
    Case(
        "tier1-permanent-failure-only",
        T1,
        [
            handed("h1", 0, "sms"),
            failed("f1", 2, "email"),
            receipt("r1", 3, "sms", S.PERMANENT_FAILURE),
        ],
        served_at=None,
        rule=RuleId.TIER1_REACHED,
        reason=R.NOT_SERVED_DELIVERY_FAILED,
        basis=("f1", "r1"),
    ),
    Case(
        "tier1-one-channel-failed-other-still-pending",
        T1,
        [failed("f1", 2, "email"), handed("h1", 3, "sms")],
        served_at=None,
        rule=RuleId.TIER1_REACHED,
        reason=R.NOT_SERVED_AWAITING_RECEIPT,
    ),
    Case(
        "nothing-sent-yet",
        T1,
        [ServiceEvent("o", K.SERVICE_ORDERED, t(0)), ServiceEvent("c", K.CONSENT_RECORDED, t(0))],
        served_at=None,
        rule=RuleId.TIER1_REACHED,
        reason=R.NOT_SERVED_NO_EVENT,
    ),
    Case(
        "tier1-content-accessed-proves-arrival-without-a-receipt",
        T1,
        [handed("h1", 0, "sms"), accessed("c1", 25, "sms")],
        served_at=25,
        rule=RuleId.TIER1_REACHED,
        reason=R.TIER1_CONTENT_ACCESSED,
        basis=("c1",),
    ),
    Case(
        "tier1-read-report-proves-arrival",
        T1,
        [handed("h1", 0, "email"), receipt("rr", 30, "email", S.READ)],
        served_at=30,
        rule=RuleId.TIER1_REACHED,
        reason=R.TIER1_READ_REPORT,
        basis=("rr",),
    ),
    # Tier 2 (第三十一条第二款): a reply or litigation act serves; a read report presumes.
    Case(
        "tier2-delivered-but-not-acknowledged",
        T2,
        [handed("h1", 0, "sms"), receipt("r1", 5, "sms", S.DELIVERED)],
        served_at=None,
        rule=RuleId.TIER2,
        reason=R.NOT_SERVED_AWAITING_CONFIRMATION,
        basis=("r1",),
    ),
    Case(
        "tier2-acknowledged",
        T2,
        [receipt("r1", 5, "sms", S.DELIVERED), acknowledged("a1", 30)],
        served_at=30,
        rule=RuleId.TIER2_CONFIRMED,
        reason=R.TIER2_ACKNOWLEDGED,
        basis=("a1",),
    ),
    Case(
        "tier2-litigation-act",
        T2,
        [receipt("r1", 5, "sms", S.DELIVERED), litigation_act("l1", 600)],
        served_at=600,
        rule=RuleId.TIER2_CONFIRMED,
        reason=R.TIER2_LITIGATION_ACT,
        basis=("l1",),
    ),
    Case(
        "tier2-read-report-only-is-a-presumption",
        T2,
        [receipt("r1", 5, "email", S.DELIVERED), receipt("rr", 20, "email", S.READ)],
        served_at=20,
        rule=RuleId.TIER2_PRESUMED,
        reason=R.TIER2_READ_PRESUMED,
        basis=("rr",),
        presumption=True,
    ),
    Case(
        "tier2-read-then-acknowledged-still-dates-from-the-read",
        T2,
        [receipt("rr", 20, "email", S.READ), acknowledged("a1", 30)],
        served_at=20,
        rule=RuleId.TIER2_PRESUMED,
        reason=R.TIER2_READ_PRESUMED,
        basis=("rr",),
        presumption=True,
    ),
    Case(
        "tier2-read-then-rejected-not-me-is-rebutted",
        T2,
        [
            receipt("r1", 5, "email", S.DELIVERED),
            receipt("rr", 20, "email", S.READ),
            rejected("x1", 40, NOT_ME, "email"),
        ],
        served_at=None,
        rule=RuleId.TIER2,
        reason=R.REJECTED_NOT_ME,
        basis=("x1", "rr"),
        rebutted=("rr",),
        rejections=("x1",),
    ),
    Case(
        "tier2-not-me-rebuts-the-read-and-falls-back-to-the-acknowledgement",
        T2,
        [
            receipt("rr", 20, "email", S.READ),
            acknowledged("a1", 30),
            rejected("x1", 40, NOT_ME, "email"),
        ],
        served_at=30,
        rule=RuleId.TIER2_CONFIRMED,
        reason=R.TIER2_ACKNOWLEDGED,
        basis=("a1",),
        rebutted=("rr",),
        rejections=("x1",),
    ),
    Case(
        "tier2-not-me-on-another-channel-does-not-rebut",
        T2,
        [receipt("rr", 20, "sms", S.READ), rejected("x1", 40, NOT_ME, "email")],
        served_at=20,
        rule=RuleId.TIER2_PRESUMED,
        reason=R.TIER2_READ_PRESUMED,
        basis=("rr",),
        presumption=True,
        rejections=("x1",),
    ),
    Case(
        "tier2-not-me-before-the-read-report-rebuts-it-too",
        T2,
        [rejected("x1", 10, NOT_ME, "email"), receipt("rr", 20, "email", S.READ)],
        served_at=None,
        rule=RuleId.TIER2,
        reason=R.REJECTED_NOT_ME,
        basis=("x1", "rr"),
        rebutted=("rr",),
        rejections=("x1",),
    ),
    Case(
        "tier2-content-accessed-is-a-presumption",
        T2,
        [receipt("r1", 5, "sms", S.DELIVERED), accessed("c1", 25, "sms")],
        served_at=25,
        rule=RuleId.TIER2_PRESUMED,
        reason=R.TIER2_CONTENT_ACCESSED_PRESUMED,
        basis=("c1",),
        presumption=True,
    ),
    Case(
        "tier2-content-accessed-then-not-me-is-rebutted",
        T2,
        [accessed("c1", 25, "sms"), rejected("x1", 26, NOT_ME, "sms")],
        served_at=None,
        rule=RuleId.TIER2,
        reason=R.REJECTED_NOT_ME,
        basis=("x1", "c1"),
        rebutted=("c1",),
        rejections=("x1",),
    ),
    Case(
        "tier2-not-me-after-acknowledgement-is-only-listed",
        T2,
        [acknowledged("a1", 30), rejected("x1", 40, NOT_ME)],
        served_at=30,
        rule=RuleId.TIER2_CONFIRMED,
        reason=R.TIER2_ACKNOWLEDGED,
        basis=("a1",),
        rejections=("x1",),
    ),
    Case(
        "tier1-not-me-does-not-rebut-arrival-at-a-confirmed-address",
        T1,
        [receipt("r1", 5, "email", S.DELIVERED), rejected("x1", 40, NOT_ME, "email")],
        served_at=5,
        rule=RuleId.TIER1_REACHED,
        reason=R.TIER1_REACHED_SYSTEM,
        basis=("r1",),
        rejections=("x1",),
    ),
    Case(
        "tier1-unreadable-rebuts-arrival-on-every-channel",
        T1,
        [
            receipt("r1", 5, "email", S.DELIVERED),
            receipt("r2", 6, "sms", S.DELIVERED),
            rejected("x1", 40, UNREADABLE, "email"),
        ],
        served_at=None,
        rule=RuleId.TIER1_REACHED,
        reason=R.REJECTED_UNREADABLE,
        basis=("x1", "r1", "r2"),
        rebutted=("r1", "r2"),
        rejections=("x1",),
    ),
    Case(
        "tier1-unreadable-then-acknowledged-serves-at-the-acknowledgement",
        T1,
        [
            receipt("r1", 5, "email", S.DELIVERED),
            rejected("x1", 10, UNREADABLE),
            acknowledged("a1", 50),
        ],
        served_at=50,
        rule=RuleId.TIER1_REACHED,
        reason=R.TIER1_ACKNOWLEDGED,
        basis=("a1",),
        rebutted=("r1",),
        rejections=("x1",),
    ),
    Case(
        "tier2-unreadable-after-acknowledgement-is-only-listed",
        T2,
        [acknowledged("a1", 30), rejected("x1", 40, UNREADABLE)],
        served_at=30,
        rule=RuleId.TIER2_CONFIRMED,
        reason=R.TIER2_ACKNOWLEDGED,
        basis=("a1",),
        rejections=("x1",),
    ),
    Case(
        "rejected-other-changes-nothing",
        T1,
        [receipt("r1", 5, "email", S.DELIVERED), rejected("x1", 10, RejectionReason.OTHER)],
        served_at=5,
        rule=RuleId.TIER1_REACHED,
        reason=R.TIER1_REACHED_SYSTEM,
        basis=("r1",),
        rejections=("x1",),
    ),
    # Platform outages: an arrival or read report inside one counts from its end.
    Case(
        "outage-arrival-inside-counts-from-the-end",
        T1,
        [outage("o1", 0), receipt("r1", 5, "sms", S.DELIVERED), outage("o2", 30, end=True)],
        served_at=30,
        rule=RuleId.TIER1_REACHED,
        reason=R.TIER1_REACHED_SYSTEM,
        basis=("r1", "o2"),
        deferred=True,
    ),
    Case(
        "outage-still-going-on",
        T1,
        [outage("o1", 0), receipt("r1", 5, "sms", S.DELIVERED)],
        served_at=None,
        rule=RuleId.TIER1_REACHED,
        reason=R.NOT_SERVED_OUTAGE_ONGOING,
        basis=("r1", "o1"),
    ),
    Case(
        "outage-after-arrival-changes-nothing",
        T1,
        [receipt("r1", 5, "sms", S.DELIVERED), outage("o1", 10), outage("o2", 30, end=True)],
        served_at=5,
        rule=RuleId.TIER1_REACHED,
        reason=R.TIER1_REACHED_SYSTEM,
        basis=("r1",),
    ),
    Case(
        "outage-arrival-at-the-instant-it-ends",
        T1,
        [outage("o1", 0), outage("o2", 30, end=True), receipt("r1", 30, "sms", S.DELIVERED)],
        served_at=30,
        rule=RuleId.TIER1_REACHED,
        reason=R.TIER1_REACHED_SYSTEM,
        basis=("r1",),
    ),
    Case(
        "outage-back-to-back-defers-to-the-last-end",
        T1,
        [
            outage("o1", 0),
            receipt("r1", 10, "sms", S.DELIVERED),
            outage("o2", 30, end=True),
            outage("o3", 30),
            outage("o4", 60, end=True),
        ],
        served_at=60,
        rule=RuleId.TIER1_REACHED,
        reason=R.TIER1_REACHED_SYSTEM,
        basis=("r1", "o4"),
        deferred=True,
    ),
    Case(
        "outage-reported-twice-by-two-nodes",
        T1,
        [
            outage("o1", 0),
            outage("o1b", 5),
            receipt("r1", 10, "sms", S.DELIVERED),
            outage("o2", 30, end=True),
        ],
        served_at=30,
        rule=RuleId.TIER1_REACHED,
        reason=R.TIER1_REACHED_SYSTEM,
        basis=("r1", "o2"),
        deferred=True,
    ),
    Case(
        "outage-of-no-length-is-no-outage",
        T1,
        [outage("b-start", 5), outage("a-end", 5, end=True), receipt("r1", 5, "sms", S.DELIVERED)],
        served_at=5,
        rule=RuleId.TIER1_REACHED,
        reason=R.TIER1_REACHED_SYSTEM,
        basis=("r1",),
    ),
    Case(
        "outage-tier2-read-report-inside-counts-from-the-end",
        T2,
        [outage("o1", 0), receipt("rr", 10, "email", S.READ), outage("o2", 30, end=True)],
        served_at=30,
        rule=RuleId.TIER2_PRESUMED,
        reason=R.TIER2_READ_PRESUMED,
        basis=("rr", "o2"),
        presumption=True,
        deferred=True,
    ),
    Case(
        "outage-acknowledgement-inside-counts-at-once",
        T2,
        [outage("o1", 0), acknowledged("a1", 10), outage("o2", 30, end=True)],
        served_at=10,
        rule=RuleId.TIER2_CONFIRMED,
        reason=R.TIER2_ACKNOWLEDGED,
        basis=("a1",),
    ),
    Case(
        "outage-content-accessed-inside-counts-at-once",
        T2,
        [outage("o1", 0), accessed("c1", 10, "sms")],
        served_at=10,
        rule=RuleId.TIER2_PRESUMED,
        reason=R.TIER2_CONTENT_ACCESSED_PRESUMED,
        basis=("c1",),
        presumption=True,
    ),
    # Several channels: the earliest qualifying event on any of them.
    Case(
        "channels-earliest-qualifying-wins",
        T1,
        [
            handed("h1", 0, "email"),
            handed("h2", 0, "sms"),
            receipt("r1", 50, "email", S.DELIVERED),
            receipt("r2", 20, "sms", S.DELIVERED),
        ],
        served_at=20,
        rule=RuleId.TIER1_REACHED,
        reason=R.TIER1_REACHED_SYSTEM,
        basis=("r2",),
    ),
    Case(
        "channels-court-found-phone-read-before-confirmed-email-arrived",
        T1,
        [
            receipt("rr", 20, "sms", S.READ, tier=T2),
            receipt("r1", 50, "email", S.DELIVERED),
        ],
        served_at=20,
        rule=RuleId.TIER2_PRESUMED,
        reason=R.TIER2_READ_PRESUMED,
        basis=("rr",),
        presumption=True,
    ),
    Case(
        "channels-rebutted-phone-falls-back-to-confirmed-email",
        T1,
        [
            receipt("rr", 20, "sms", S.READ, tier=T2),
            receipt("r1", 50, "email", S.DELIVERED),
            rejected("x1", 70, NOT_ME, "sms"),
        ],
        served_at=50,
        rule=RuleId.TIER1_REACHED,
        reason=R.TIER1_REACHED_SYSTEM,
        basis=("r1",),
        rebutted=("rr",),
        rejections=("x1",),
    ),
    Case(
        "channels-confirmed-email-delivered-while-court-found-phone-only-delivered",
        T2,
        [
            receipt("r1", 5, "sms", S.DELIVERED),
            receipt("r2", 50, "email", S.DELIVERED, tier=T1),
        ],
        served_at=50,
        rule=RuleId.TIER1_REACHED,
        reason=R.TIER1_REACHED_SYSTEM,
        basis=("r2",),
    ),
    Case(
        "same-instant-prefers-what-needs-no-presumption",
        T2,
        [receipt("a-read", 20, "email", S.READ), acknowledged("z-ack", 20)],
        served_at=20,
        rule=RuleId.TIER2_CONFIRMED,
        reason=R.TIER2_ACKNOWLEDGED,
        basis=("z-ack",),
    ),
]


def _check(case: Case, events: list[ServiceEvent]) -> None:
    decision = decide(tier=case.tier, events=events)
    assert decision.served is (case.served_at is not None)
    assert decision.served_at == (None if case.served_at is None else t(case.served_at))
    assert decision.rule_id is case.rule
    assert decision.reason is case.reason
    assert decision.basis_event_ids == case.basis
    assert decision.presumption is case.presumption
    assert decision.deferred_by_outage is case.deferred
    assert decision.rebutted_event_ids == case.rebutted
    assert decision.rejection_event_ids == case.rejections
    assert decision.ruleset_version == RULESET_VERSION
    assert decision.citation == RULESETS[RULESET_VERSION].citations[case.rule]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decision(case: Case) -> None:
    _check(case, case.events)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_order_and_repetition_do_not_matter(case: Case) -> None:
    shuffled = case.events * 2
    random.Random(case.id).shuffle(shuffled)
    _check(case, shuffled)


def test_a_later_event_never_moves_served_at() -> None:
    events = [receipt("r1", 5, "sms", S.DELIVERED)]
    first = decide(tier=T1, events=events)
    for later in (
        receipt("r2", 500, "email", S.DELIVERED),
        acknowledged("a1", 600),
        litigation_act("l1", 700),
        accessed("c1", 800, "sms"),
        outage("o1", 900),
    ):
        events.append(later)
        assert decide(tier=T1, events=events).served_at == first.served_at == t(5)


def test_served_at_is_utc_whatever_the_event_offset() -> None:
    beijing = timezone(timedelta(hours=8))
    event = ServiceEvent(
        "r1",
        K.DELIVERY_RECEIPT,
        datetime(2025, 3, 3, 23, 30, tzinfo=beijing),
        "sms",
        receipt_status=S.DELIVERED,
    )
    served_at = decide(tier=T1, events=[event]).served_at
    assert served_at == datetime(2025, 3, 3, 15, 30, tzinfo=UTC)
    assert served_at is not None
    assert served_at.tzinfo is UTC


def test_unknown_ruleset_is_refused() -> None:
    with pytest.raises(UnknownRulesetError, match=r"expected a rule-set version in .*cn-2024\.1"):
        decide(tier=T1, events=[], ruleset="cn-1999.1")


def test_two_different_events_with_one_id_are_refused() -> None:
    a = receipt("r1", 5, "sms", S.DELIVERED)
    b = receipt("r1", 6, "sms", S.DELIVERED)
    with pytest.raises(ValueError, match="r1"):
        decide(tier=T1, events=[a, b])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"kind": K.DELIVERY_RECEIPT, "at": datetime(2025, 3, 3, 2, 0)},  # noqa: DTZ001
            "timezone-aware",
        ),
        ({"kind": K.DELIVERY_RECEIPT}, "receipt status"),
        ({"kind": K.ACKNOWLEDGED, "receipt_status": S.DELIVERED}, "receipt status"),
        ({"kind": K.REJECTED}, "rejection reason"),
        ({"kind": K.ACKNOWLEDGED, "rejection_reason": NOT_ME}, "rejection reason"),
        (
            {
                "kind": K.DELIVERY_RECEIPT,
                "receipt_status": S.DELIVERED,
                "reached_recipient_system": True,
            },
            "HANDED_TO_PROVIDER",
        ),
        ({"kind": K.ACKNOWLEDGED, "id": ""}, "non-empty"),
    ],
    ids=[
        "naive-time",
        "receipt-without-status",
        "status-on-non-receipt",
        "rejection-without-reason",
        "reason-on-non-rejection",
        "reached-flag-on-receipt",
        "empty-id",
    ],
)
def test_malformed_events_are_refused(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"id": "e1", "at": t(0)} | kwargs
    with pytest.raises(ValueError, match=message):
        ServiceEvent(**fields)  # type: ignore[arg-type]


def test_every_rule_has_a_citation_naming_its_article() -> None:
    citations = RULESETS[RULESET_VERSION].citations
    assert set(citations) == set(RuleId)
    assert "第三十一条第一款" in citations[RuleId.TIER1_REACHED]
    assert "第一百三十五条" in citations[RuleId.TIER1_REACHED]
    assert "第三十一条第二款第（一）项" in citations[RuleId.TIER2_CONFIRMED]
    assert "第三十一条第二款第（二）项" in citations[RuleId.TIER2_PRESUMED]
    assert all("民事诉讼法》第九十条" in text for text in citations.values())


def test_every_reason_has_a_description_and_a_rejection_effect_per_code() -> None:
    assert set(REASON_DESCRIPTIONS) == set(ServiceReason)
    assert set(RULESETS[RULESET_VERSION].rejection_effects) == set(RejectionReason)
