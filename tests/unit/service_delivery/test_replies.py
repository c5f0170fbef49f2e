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
    Message,
    confirmation,
    messages,
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
        message=Message(parts=(stored(7, "收到", sha256="ab" * 32),), total=1),
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


def test_a_confirmation_of_a_concatenated_reply_names_every_part_that_arrived() -> None:
    parts = (stored(7, "我已收到", "9/1/3", sha256="ab" * 32), stored(9, "判决书", "9/3/3"))
    text = confirmation(
        message=Message(parts=parts, total=3), confirmed_by=None, confirmed_at=AT, note=""
    )
    record = json.loads(text)
    assert (record["confirms_reply"], record["reply_text"]) == (7, "我已收到判决书")
    assert record["parts"] == [{"reply": 7, "sha256": "ab" * 32}, {"reply": 9, "sha256": "cd" * 32}]
    assert (record["parts_total"], record["confirmed_by"]) == (3, None)


@dataclass(frozen=True)
class Stored:
    id: int
    text: str
    part: str
    sha256: str
    received_at: datetime
    sender: str = "+8613800138000"


def stored(
    reply_id: int,
    text: str,
    part: str = "",
    *,
    sha256: str = "cd" * 32,
    minutes: float = 0,
    sender: str = "+8613800138000",
) -> Stored:
    return Stored(reply_id, text, part, sha256, AT + timedelta(minutes=minutes), sender)


def test_the_parts_of_a_concatenated_sms_are_one_message_in_their_order() -> None:
    found = messages(
        [
            stored(3, "判决书", "42/2/2", minutes=1),  # arrived first, stored after
            stored(1, "收到", ""),
            stored(2, "已收到", "42/1/2", minutes=2),
        ]
    )
    assert found[1].text == "收到"
    assert (found[1].total, found[1].complete, found[1].first_id) == (1, True, 1)
    assert found[2] is found[3]
    # Known by the part stored first, whichever its place: parts arriving later keep the name.
    assert (found[2].text, found[2].first_id, found[2].complete) == ("已收到判决书", 2, True)
    later = messages([stored(5, "判决书", "43/2/2"), stored(6, "已收到", "43/1/2")])
    assert (later[6].text, later[6].first_id) == ("已收到判决书", 5)
    assert found[2].received_at == AT + timedelta(minutes=2)  # complete with its last part


def test_parts_are_one_message_only_from_one_sender_with_one_reference_within_a_day() -> None:
    found = messages(
        [
            stored(1, "甲", "7/1/2"),
            stored(2, "乙", "7/2/2", sender="+8613900000000"),  # another sender
            stored(3, "丙", "8/2/2"),  # another reference
            stored(4, "丁", "7/2/3"),  # another count
            stored(5, "戊", "7/2/2", minutes=25 * 60),  # a day later: the reference came round
        ]
    )
    assert len({id(m) for m in found.values()}) == 5
    assert [found[i].complete for i in (1, 5)] == [False, False]


def test_a_part_delivered_again_adds_nothing_and_new_text_in_its_place_starts_anew() -> None:
    found = messages(
        [
            stored(1, "已收", "5/1/2"),
            stored(2, "已收", "5/1/2", minutes=1),  # the SMSC sent it again
            stored(3, "到", "5/2/2", minutes=2),
            stored(4, "请问", "5/1/2", minutes=3),  # the reference came round early
        ]
    )
    assert found[1] is found[2] is found[3]
    assert (found[1].text, [p.id for p in found[1].parts]) == ("已收到", [1, 3])
    assert (found[4].text, found[4].first_id, found[4].complete) == ("请问", 4, False)


def test_replies_of_a_concatenated_message_are_reviewed_as_one() -> None:
    found = messages([stored(7, "已收", "5/1/2"), stored(8, "到", "5/2/2"), stored(9, "好的")])
    events = [
        Event(1, EvidenceKind.REPLY_RECEIVED, "reply:7"),
        Event(2, EvidenceKind.REPLY_RECEIVED, "reply:8"),
        Event(3, EvidenceKind.REPLY_RECEIVED, "reply:9"),
    ]
    assert replies_to_review(events, found) == {1: 7, 2: 7, 3: 9}
    confirmed = [*events, Event(4, EvidenceKind.ACKNOWLEDGED, "reply:7")]
    assert replies_to_review(confirmed, found) == {3: 9}
