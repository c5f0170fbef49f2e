"""SMTP provider pieces that need no server: configuration checks, ENVID encoding, Message-IDs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from typing import Any

import pytest

from yunting.infra.clock import FrozenClock
from yunting.service_delivery.ports import Channel, Submission
from yunting.service_delivery.providers.smtp import (
    SmtpConfig,
    SmtpProvider,
    _check_recipient,
    message_id_for,
    xtext,
)


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


LONG_ASCII = "Electronic service of the civil judgment " * 4
BODIES = [
    "张伟：\n\n请打开以下链接：\nhttps://court.example.cn/s/abc\n",
    "",
    "x" * 57,  # exactly one line of base64
    "x" * 58,
    "line one\r\nline two\rline three\n",
]


@pytest.mark.parametrize(
    ("sender_name", "subject", "address"),
    [
        (
            "杭州互联网法院",
            "电子送达 Electronic service: (2026)浙0192民初1234号 民事判决书",
            "a@b.example.cn",
        ),
        ("", "short", "zhang.wei@example.com"),
        ('Court "A", Division <1>', LONG_ASCII, "user+tag@example.org"),
        ("Hangzhou Internet Court", "two  spaces and a trailing one ", "x@example.com"),
        (
            "法院",
            "injected\r\nBcc: someone@example.com",
            "very.long.local.part" * 3 + "@mail.department.example.com",
        ),
        ("法院", "", "user@xn--fiqs8s.example"),
    ],
)
def test_a_message_is_composed_byte_for_byte_as_the_email_package_makes_it(
    sender_name: str, subject: str, address: str
) -> None:
    provider = SmtpProvider(
        config(sender_name=sender_name),
        clock=FrozenClock(datetime(2026, 11, 25, 1, 2, 3, tzinfo=UTC)),
    )
    recipient = _check_recipient(address)
    assert not recipient.smtputf8
    for body in BODIES:
        submission = Submission(
            attempt_id=uuid.uuid4(),
            channel=Channel.EMAIL,
            recipient=address,
            subject=subject,
            body=body,
            message_id="<m@court.example.cn>",
        )
        composed = provider._compose(submission, recipient, submission.message_id)
        reference = provider.compose_with_email_package(
            submission, recipient, submission.message_id, "Wed, 25 Nov 2026 01:02:03 +0000"
        )
        assert composed == reference
        # And it reads back as sent: one Subject line, the body intact.
        parsed = BytesParser(policy=policy.default).parsebytes(composed)
        assert str(parsed["Subject"] or "").split() == subject.split()  # words kept, CR/LF none
        assert parsed.get_content().replace("\r\n", "\n") == body.replace("\r\n", "\n").replace(
            "\r", "\n"
        )
    assert "Bcc" not in BytesParser(policy=policy.default).parsebytes(composed)
