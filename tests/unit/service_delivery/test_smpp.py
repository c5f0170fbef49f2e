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
