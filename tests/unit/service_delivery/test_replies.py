"""Replies, sans-I/O: which address a reply came from, how events refer to it, and which
replies still wait for a clerk."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest

from yunting.service_delivery.model import EvidenceKind
from yunting.service_delivery.ports import Channel, Reply
from yunting.service_delivery.replies import (
    confirmation,
    replies_to_review,
    reply_address,
    reply_id_of,
    reply_ref,
    reply_summary,
)

AT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def reply(
    sender: str, *, channel: Channel = Channel.SMS, text: str = "收到", part: str = ""
) -> Reply:
    return Reply(channel=channel, sender=sender, text=text, raw="raw", received_at=AT, part=part)


@pytest.mark.parametrize(
    ("sender", "address"),
    [
        ("+8613800138000", "+8613800138000"),
        ("13800138000", "+8613800138000"),  # national, as an SMSC may give it
        ("008613800138000", "+8613800138000"),
        ("+85291234567", "+85291234567"),
        ("Operator", None),  # an alphanumeric sender id: nothing was sent there
        ("10086", None),  # a short code
        ("", None),
    ],
)
def test_the_reply_address_is_the_one_attempts_store(sender: str, address: str | None) -> None:
    assert reply_address(reply(sender)) == address


def test_an_email_reply_address_is_normalized_like_an_attempt_s() -> None:
    assert reply_address(reply("Zhang.Wei@Example.COM", channel=Channel.EMAIL)) == (
        "Zhang.Wei@example.com"
    )
    assert reply_address(reply("not an address", channel=Channel.EMAIL)) is None


@pytest.mark.parametrize("reply_id", [1, 42, 10**12])
def test_a_reply_ref_reads_back(reply_id: int) -> None:
    assert reply_id_of(reply_ref(reply_id)) == reply_id


@pytest.mark.parametrize("detail", ["", "reply:", "reply:x", "reply:-1", "postal", "not_me"])
def test_other_details_are_no_reply_ref(detail: str) -> None:
    assert reply_id_of(detail) is None


def test_the_summary_shows_a_part_s_place_and_is_bounded() -> None:
    assert reply_summary(reply("+8613800138000", text="收到")) == "收到"
    assert (
        reply_summary(reply("+8613800138000", text="第二部分", part="258/2/3")) == "[2/3] 第二部分"
    )
    assert len(reply_summary(reply("+8613800138000", text="长" * 1000, part="1/1/2"))) == 300


@dataclass(frozen=True)
class Event:
    id: int
    kind: str
    detail: str = ""


def test_replies_to_review_are_those_no_acknowledgement_confirms() -> None:
    events = [
        Event(1, EvidenceKind.HANDED_TO_PROVIDER),
        Event(2, EvidenceKind.REPLY_RECEIVED, "reply:7"),
        Event(3, EvidenceKind.REPLY_RECEIVED, "reply:8"),
        Event(4, EvidenceKind.ACKNOWLEDGED, "reply:7"),
        # The page's own acknowledgement confirms no reply.
        Event(5, EvidenceKind.ACKNOWLEDGED, ""),
        Event(6, EvidenceKind.REPLY_RECEIVED, "garbled"),
    ]
    assert replies_to_review(events) == {3: 8}
    assert replies_to_review(iter(events)) == {3: 8}  # read once, as a generator is
    assert replies_to_review([]) == {}


def test_a_confirmation_names_the_reply_its_hash_the_clerk_and_the_time_in_utc() -> None:
    clerk = uuid.uuid4()
    text = confirmation(
        reply_id=7,
        reply_sha256="ab" * 32,
        text="收到",
        confirmed_by=clerk,
        confirmed_at=AT.astimezone(timezone(timedelta(hours=8))),
        note="回复称已收到",
    )
    assert json.loads(text) == {
        "confirms_reply": 7,
        "reply_sha256": "ab" * 32,
        "reply_text": "收到",
        "confirmed_by": str(clerk),
        "confirmed_at": "2026-11-25T08:00:00+00:00",
        "note": "回复称已收到",
    }
    # Canonical (sorted keys, no spaces), so its hash is reproducible.
    assert text == json.dumps(
        json.loads(text), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )
