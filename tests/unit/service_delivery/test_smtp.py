"""SMTP provider pieces that need no server: configuration checks, ENVID encoding, Message-IDs."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from yunting.service_delivery.providers.smtp import SmtpConfig, message_id_for, xtext


def config(**overrides: Any) -> SmtpConfig:
    values: dict[str, Any] = {"host": "smtp.court.example.cn", "sender": "noreply@court.example.cn"}
    return SmtpConfig(**(values | overrides))


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("7c0a1f1e-8a3b-4b6e-9d0f-1a2b3c4d5e6f", "7c0a1f1e-8a3b-4b6e-9d0f-1a2b3c4d5e6f"),
        ("a+b=c", "a+2Bb+3Dc"),
        ("a b", "a+20b"),
        ("送", "+E9+80+81"),
    ],
)
def test_xtext_encodes_what_rfc_3461_does_not_allow(value: str, encoded: str) -> None:
    assert xtext(value) == encoded


def test_message_ids_are_stable_per_attempt() -> None:
    attempt = uuid.UUID("7c0a1f1e-8a3b-4b6e-9d0f-1a2b3c4d5e6f")
    assert message_id_for(attempt, "court.example.cn") == (
        "<7c0a1f1e-8a3b-4b6e-9d0f-1a2b3c4d5e6f@court.example.cn>"
    )
    assert config().id_domain == "court.example.cn"
    assert config(message_id_domain="mail.court.example.cn").id_domain == "mail.court.example.cn"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"host": ""}, "expected an SMTP host"),
        ({"port": 0}, "expected a port in 1..65535, got 0"),
        ({"tls": "ssl"}, "expected tls in"),
        # A court's mail password never crosses the network in clear text.
        ({"username": "u", "password": "p", "tls": "none"}, "got 'none'"),
        ({"password": "p"}, "expected a username"),
        ({"timeout": 0}, "expected timeout > 0, got 0"),
        ({"pool_size": 0}, "expected pool_size >= 1, got 0"),
        ({"max_messages_per_connection": 0}, "expected max_messages_per_connection >= 1"),
        ({"sender": "noreply"}, "expected a valid sender address"),
        ({"sender": "送达@court.example.cn"}, "expected an ASCII sender address"),
    ],
)
def test_bad_configuration_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config(**overrides)


def test_the_password_stays_out_of_repr() -> None:
    assert "s3cret" not in repr(config(username="u", password="s3cret"))
