"""The SMPP provider without a socket: its configuration and what it refuses before sending."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from yunting.infra.clock import FrozenClock
from yunting.service_delivery.ports import Channel, FailureKind, ProviderError, Submission
from yunting.service_delivery.providers.smpp import (
    BindMode,
    LongMessageMode,
    SmppConfig,
    SmppProvider,
    mobile_originated,
)
from yunting.service_delivery.providers.smpp_pdu import (
    ESM_CLASS_UDHI,
    DataCoding,
    DeliverSm,
    Tlv,
    TlvTag,
    decode,
    describe,
    encode,
)

GOOD = SmppConfig(host="smsc.example", port=2775, system_id="court", password="secret")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"system_id": "c" * 16}, "system_id"),
        ({"password": "123456789"}, "password"),
        ({"password": "密码"}, "password"),
        ({"system_type": "t" * 13}, "system_type"),
        ({"source_addr": "1" * 21}, "source_addr"),
        ({"host": ""}, "host"),
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"source_addr_ton": 256}, "source_addr_ton"),
        ({"window": 0}, "window"),
        ({"response_timeout": 0}, "response_timeout"),
        ({"enquire_link_interval": -1}, "enquire_link_interval"),
        ({"throttle_retries": -1}, "throttle_retries"),
        ({"reconnect_backoff_min": 5, "reconnect_backoff_max": 1}, "reconnect_backoff_max"),
        ({"receipt_timezone": "Mars/Olympus"}, "receipt_timezone"),
    ],
)
def test_a_bad_configuration_is_refused_with_what_was_expected(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        replace(GOOD, **overrides)


def test_modes_given_as_words_become_enums() -> None:
    # As untyped settings would pass them.
    words: dict[str, Any] = {"bind_mode": "transmitter_receiver", "long_messages": "concatenated"}
    cfg = replace(GOOD, **words)
    assert cfg.bind_mode is BindMode.TRANSMITTER_RECEIVER
    assert cfg.long_messages is LongMessageMode.CONCATENATED
    with pytest.raises(ValueError, match="bind_mode: expected one of 'transceiver'"):
        replace(GOOD, **(words | {"bind_mode": "receiver"}))


def test_the_password_stays_out_of_the_repr() -> None:
    assert "secret" not in repr(GOOD)


def _submission(**overrides: Any) -> Submission:
    base = Submission(
        attempt_id=uuid.uuid4(),
        channel=Channel.SMS,
        recipient="+8613800138000",
        subject="",
        body="notice",
        message_id="m",
    )
    return replace(base, **overrides)


async def test_an_invalid_number_is_permanent_before_any_connection() -> None:
    provider = SmppProvider(GOOD, clock=FrozenClock(datetime(2026, 1, 1, tzinfo=UTC)))
    with pytest.raises(ProviderError) as caught:
        await provider.submit(_submission(recipient="013800138000"))
    assert (caught.value.kind, caught.value.code) == (FailureKind.PERMANENT, "invalid_address")


async def test_an_email_submission_is_not_for_this_channel() -> None:
    provider = SmppProvider(GOOD, clock=FrozenClock(datetime(2026, 1, 1, tzinfo=UTC)))
    with pytest.raises(ProviderError) as caught:
        await provider.submit(_submission(channel=Channel.EMAIL))
    assert caught.value.code == "wrong_channel"


async def test_submitting_before_start_is_a_technical_failure() -> None:
    provider = SmppProvider(GOOD, clock=FrozenClock(datetime(2026, 1, 1, tzinfo=UTC)))
    with pytest.raises(ProviderError) as caught:
        await provider.submit(_submission())
    assert (caught.value.kind, caught.value.code) == (FailureKind.TECHNICAL, "not_started")


async def test_a_message_too_long_for_any_pdu_is_refused() -> None:
    provider = SmppProvider(GOOD, clock=FrozenClock(datetime(2026, 1, 1, tzinfo=UTC)))
    with pytest.raises(ProviderError) as caught:
        await provider.submit(_submission(body="法" * 40_000))
    assert (caught.value.kind, caught.value.code) == (FailureKind.TECHNICAL, "too_long")


# Mobile-originated messages ---------------------------------------------------------------------

RECEIVED = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _mo(**fields: Any) -> DeliverSm:
    pdu = DeliverSm(sequence_number=7, destination_addr="106900001", **fields)
    return decode(encode(pdu))  # as it comes off the wire, with its bytes


@pytest.mark.parametrize(
    ("fields", "sender", "text", "part"),
    [
        # International number: "+" added; UCS-2 Chinese.
        (
            {
                "source_addr_ton": 1,
                "source_addr": "8613800138000",
                "data_coding": DataCoding.UCS2,
                "short_message": "收到".encode("utf-16-be"),
            },
            "+8613800138000",
            "收到",
            "",
        ),
        # A national number as the SMSC gives it, default alphabet.
        (
            {"source_addr_ton": 2, "source_addr": "13800138000", "short_message": b"OK thanks"},
            "13800138000",
            "OK thanks",
            "",
        ),
        # Already with "+": not doubled.
        (
            {"source_addr_ton": 1, "source_addr": "+85291234567", "short_message": b"ok"},
            "+85291234567",
            "ok",
            "",
        ),
        # One part of a concatenated message: the UDH stripped, its place kept (16-bit reference).
        (
            {
                "source_addr": "13800138000",
                "esm_class": ESM_CLASS_UDHI,
                "data_coding": DataCoding.UCS2,
                "short_message": bytes((0x06, 0x08, 0x04, 0x01, 0x02, 0x03, 0x02))
                + "第二部分".encode("utf-16-be"),
            },
            "13800138000",
            "第二部分",
            "258/2/3",
        ),
        # The text in message_payload instead of short_message.
        (
            {
                "source_addr": "13800138000",
                "tlvs": (Tlv(TlvTag.MESSAGE_PAYLOAD, b"long reply " * 30),),
            },
            "13800138000",
            "long reply " * 30,
            "",
        ),
    ],
    ids=["ucs2-international", "national", "plus-kept", "concatenated-part", "message-payload"],
)
def test_a_mobile_originated_message_becomes_a_reply(
    fields: dict[str, Any], sender: str, text: str, part: str
) -> None:
    pdu = _mo(**fields)
    reply = mobile_originated(pdu, received_at=RECEIVED)
    assert (reply.channel, reply.sender, reply.text, reply.part) == (
        Channel.SMS,
        sender,
        text,
        part,
    )
    assert reply.received_at == RECEIVED
    # Verbatim: the PDU read out, then its bytes, which decode back to the same PDU.
    reading, _, hexed = reply.raw.rpartition(" pdu=")
    assert decode(bytes.fromhex(hexed)) == pdu
    assert reading == describe(pdu)
