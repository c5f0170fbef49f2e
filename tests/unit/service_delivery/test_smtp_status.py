"""The SMTP reply table, against replies real servers send (Gmail, Microsoft 365, Postfix, QQ/163).

Each line is written as it arrives on the wire; ``_split`` turns it into what aiosmtplib hands us
(the code, and the text without the code, continuation lines joined by newlines).
"""

from __future__ import annotations

import pytest

from yunting.service_delivery.ports import FailureKind
from yunting.service_delivery.providers.smtp_status import (
    BASIC_REPLIES,
    ENHANCED_DETAILS,
    SmtpCommand,
    classify_reply,
    enhanced_code,
    format_reply,
)

TEMPORARY = FailureKind.TEMPORARY
PERMANENT = FailureKind.PERMANENT
TECHNICAL = FailureKind.TECHNICAL
MAIL = SmtpCommand.MAIL
RCPT = SmtpCommand.RCPT
DATA = SmtpCommand.DATA


def _split(wire: str) -> tuple[int, str]:
    lines = wire.split("\n")
    return int(lines[0][:3]), "\n".join(line[4:] for line in lines)


REAL_REPLIES = [
    # --- the recipient's address is no good: fall back to another channel ---
    (
        RCPT,
        "550-5.1.1 The email account that you tried to reach does not exist. Please try\n"
        "550-5.1.1 double-checking the recipient's email address for typos or\n"
        "550 5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser",
        PERMANENT,
        "bad_mailbox",
    ),
    (
        RCPT,
        "550 5.1.1 <zhang.san@example.com>: Recipient address rejected: "
        "User unknown in virtual mailbox table",
        PERMANENT,
        "bad_mailbox",
    ),
    (
        RCPT,
        "550 5.1.2 Host unknown (Name server: example.invalid: host not found)",
        PERMANENT,
        "bad_domain",
    ),
    (RCPT, "501 5.1.3 Bad recipient address syntax", PERMANENT, "bad_mailbox_syntax"),
    (RCPT, "501 <zhang..san@example.com>: malformed address", PERMANENT, "bad_mailbox_syntax"),
    (
        RCPT,
        "550 5.2.1 The email account that you tried to reach is disabled.",
        PERMANENT,
        "mailbox_disabled",
    ),
    (
        RCPT,
        "556 5.1.10 Recipient address zhang@nomail.example has null MX",
        PERMANENT,
        "recipient_not_found",
    ),
    (
        RCPT,
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
        PERMANENT,
        "recipient_not_found",
    ),
    (
        RCPT,
        "550 Mailbox not found. http://service.mail.qq.com/cgi-bin/help?subtype=1&&no=1000728",
        PERMANENT,
        "mailbox_unavailable",
    ),
    (RCPT, "550 User has no permission", PERMANENT, "mailbox_unavailable"),
    (RCPT, "551 User not local; please try <zhang@example.org>", PERMANENT, "user_not_local"),
    (
        RCPT,
        "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",
        PERMANENT,
        "mailbox_name_not_allowed",
    ),
    (RCPT, "554 5.7.1 <zhang@example.com>: Relay access denied", PERMANENT, "not_authorized"),
    (DATA, "554 5.7.1 Message rejected as spam", PERMANENT, "not_authorized"),
    (
        DATA,
        "554 DT:SPM 163 smtp14,EsCowAD3, please see http://mail.163.com/help/help_spam_16.htm",
        PERMANENT,
        "transaction_failed",
    ),
    (
        DATA,
        "552 5.3.4 Your message exceeded Google's message size limits.",
        PERMANENT,
        "message_too_big",
    ),
    (
        DATA,
        "552 Requested mail action aborted: exceeded mailsize limit",
        PERMANENT,
        "storage_exceeded",
    ),
    (DATA, "554 5.4.6 Too many hops", PERMANENT, "routing_loop"),
    (RCPT, "521 5.3.2 mail.example.com does not accept mail", PERMANENT, "not_accepting_messages"),
    (RCPT, "554 5.0.0 Service unavailable", PERMANENT, "transaction_failed"),
    (RCPT, "599 something new", PERMANENT, "permanent_failure"),
    # --- not now: retry with backoff ---
    (RCPT, "451 4.3.0 Temporary lookup failure", TEMPORARY, "local_error"),
    (DATA, "451 4.3.0 Error: queue file write error", TEMPORARY, "local_error"),
    (RCPT, "452 4.2.2 Mailbox full", TEMPORARY, "mailbox_full"),
    # RFC 3463: a full mailbox is a persistent *transient* condition, even when sent as 5.2.2.
    (
        RCPT,
        "552-5.2.2 The email account that you tried to reach is over quota.\n"
        "552 5.2.2 https://support.google.com/mail/?p=OverQuotaPerm",
        TEMPORARY,
        "mailbox_full",
    ),
    (RCPT, "552 Mailbox limit exceeded", TEMPORARY, "storage_exceeded"),  # RFC 5321 §4.5.3.1.10
    (RCPT, "452 4.3.1 Insufficient system storage", TEMPORARY, "mail_system_full"),
    (
        RCPT,
        "450 4.2.1 The user you are trying to contact is receiving mail at a rate that\n",
        TEMPORARY,
        "mailbox_disabled",
    ),
    (
        RCPT,
        "450 4.7.1 Client host rejected: cannot find your hostname",
        TEMPORARY,
        "not_authorized",
    ),
    (
        RCPT,
        "450 4.1.1 <zhang@example.com>: Recipient address rejected: unverified address",
        TEMPORARY,
        "bad_mailbox",
    ),
    (
        RCPT,
        "451 MI:SFQ 1700000000 http://mail.163.com/help/help_spam_16.htm",
        TEMPORARY,
        "local_error",
    ),
    (
        RCPT,
        "450 Requested mail action not taken: mailbox unavailable",
        TEMPORARY,
        "mailbox_unavailable",
    ),
    (
        MAIL,
        "421-4.7.0 [203.0.113.7] Our system has detected an unusual rate of\n"
        "421 4.7.0 unsolicited mail originating from your IP address.",
        TEMPORARY,
        "service_unavailable",
    ),
    (DATA, "421 4.4.2 mx.example.com Error: timeout exceeded", TEMPORARY, "bad_connection"),
    (RCPT, "451 4.4.0 DNS query failed", TEMPORARY, "local_error"),
    (
        RCPT,
        "451 4.7.500 Server busy. Please try again later from [203.0.113.7].",
        TEMPORARY,
        "local_error",
    ),
    (RCPT, "499 something new", TEMPORARY, "transient_failure"),
    # --- our side is wrong: another address would not help ---
    (
        SmtpCommand.AUTH,
        "535 5.7.8 Username and Password not accepted.",
        TECHNICAL,
        "auth_credentials_invalid",
    ),
    (SmtpCommand.AUTH, "535 Authentication failed", TECHNICAL, "auth_credentials_invalid"),
    (
        SmtpCommand.AUTH,
        "454 4.7.0 Too many login attempts, please try again later.",
        TECHNICAL,
        "tls_or_auth_unavailable",
    ),
    (MAIL, "530 5.7.0 Must issue a STARTTLS command first.", TECHNICAL, "auth_required"),
    (MAIL, "530 5.7.0 Authentication required", TECHNICAL, "auth_required"),
    (
        MAIL,
        "538 5.7.11 Encryption required for requested authentication mechanism",
        TECHNICAL,
        "encryption_required_for_auth",
    ),
    (
        MAIL,
        "553 5.1.8 <noreply@court.example.cn>... Domain of sender address does not exist",
        TECHNICAL,
        "bad_sender_domain",
    ),
    (
        MAIL,
        "450 4.1.8 <noreply@court.example.cn>: Sender address rejected: Domain not found",
        TECHNICAL,
        "bad_sender_domain",
    ),
    (MAIL, "553 Sender address rejected: not owned by user", TECHNICAL, "sender_not_allowed"),
    (MAIL, "555 5.5.4 Unsupported option: RET=HDRS", TECHNICAL, "invalid_command_arguments"),
    (
        MAIL,
        "555 MAIL FROM parameters not recognized or not implemented",
        TECHNICAL,
        "parameters_not_recognized",
    ),
    (RCPT, "452 4.5.3 Error: too many recipients", TECHNICAL, "too_many_recipients"),
    (
        RCPT,
        "550-5.7.26 This mail is unauthenticated, which poses a security risk to the\n"
        "550 5.7.26 sender and Gmail users, and has been blocked.",
        TECHNICAL,
        "sender_authentication_failed",
    ),
    (
        RCPT,
        "550 5.7.606 Access denied, banned sending IP [203.0.113.7].",
        TECHNICAL,
        "sending_ip_blocked",
    ),
    (DATA, "503 5.5.1 Error: need RCPT command", TECHNICAL, "invalid_command"),
    (DATA, "500 5.5.2 Error: bad syntax", TECHNICAL, "syntax_error"),
    # Refusals before the transaction say nothing about the recipient.
    (
        SmtpCommand.CONNECT,
        "554 5.7.1 Service unavailable; Client host [203.0.113.7] blocked using zen.spamhaus.org",
        TECHNICAL,
        "not_authorized",
    ),
    (SmtpCommand.CONNECT, "421 4.3.2 Service shutting down", TECHNICAL, "not_accepting_messages"),
    (
        SmtpCommand.STARTTLS,
        "454 4.7.0 TLS not available due to local problem",
        TECHNICAL,
        "tls_or_auth_unavailable",
    ),
]


@pytest.mark.parametrize(("command", "wire", "kind", "reason"), REAL_REPLIES)
def test_real_replies_map_to_kind_and_reason(
    command: SmtpCommand, wire: str, kind: FailureKind, reason: str
) -> None:
    code, text = _split(wire)
    verdict = classify_reply(code, text, command=command)
    assert (verdict.kind, verdict.reason) == (kind, reason)
    assert verdict.code == code


def test_the_enhanced_code_wins_over_the_basic_code() -> None:
    # 550 alone is a permanent refusal; 5.2.2 says the mailbox is full, which clears.
    assert classify_reply(550, "mailbox unavailable").kind is PERMANENT
    verdict = classify_reply(550, "5.2.2 mailbox full")
    assert (verdict.kind, verdict.reason, verdict.status) == (
        TEMPORARY,
        "mailbox_full",
        "550 5.2.2",
    )


def test_an_undefined_enhanced_detail_defers_to_a_specific_basic_code() -> None:
    # X.7.0 is "other security status"; 535 says exactly what went wrong.
    assert classify_reply(535, "5.7.0 go away").reason == "auth_credentials_invalid"
    # With no basic entry either, the enhanced subject still says more than the class.
    verdict = classify_reply(559, "5.7.0 Policy says no")
    assert (verdict.kind, verdict.reason) == (PERMANENT, "security_policy")
    assert classify_reply(559, "5.5.0 protocol confusion").kind is TECHNICAL


def test_an_enhanced_code_contradicting_the_reply_class_is_not_trusted() -> None:
    verdict = classify_reply(550, "4.2.2 mailbox full (really?)")
    assert (verdict.kind, verdict.reason) == (PERMANENT, "mailbox_unavailable")
    assert verdict.enhanced == "4.2.2"  # still kept as evidence


def test_a_non_failure_reply_where_success_was_expected_is_technical() -> None:
    assert classify_reply(354, "go ahead").kind is TECHNICAL
    # aiosmtplib reports an unparsable reply as code -1.
    verdict = classify_reply(-1, "Malformed SMTP response line: HTTP/1.1 400")
    assert (verdict.kind, verdict.reason) == (TECHNICAL, "unexpected_reply")


def test_the_command_changes_the_meaning_of_some_codes() -> None:
    assert classify_reply(553, "no", command=RCPT).kind is PERMANENT
    assert classify_reply(553, "no", command=MAIL).kind is TECHNICAL
    assert classify_reply(552, "full", command=RCPT).kind is TEMPORARY
    assert classify_reply(552, "too big", command=DATA).kind is PERMANENT


def test_auth_and_tls_failures_are_technical_in_every_table() -> None:
    for code in (530, 534, 535, 538, 454):
        assert BASIC_REPLIES[code][0] is TECHNICAL
    for detail in ("7.8", "7.9", "7.10", "7.11", "7.12"):
        assert ENHANCED_DETAILS[detail][1] is TECHNICAL


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("5.1.1 user unknown", "5.1.1"),
        ("2.0.0 Ok: queued as 4F1A", "2.0.0"),
        ("5.01.001 zero-padded", "5.1.1"),
        ("  4.7.500 Server busy", "4.7.500"),
        ("5.7.26 first line\n5.7.26 second line", "5.7.26"),
        ("5.1.1", "5.1.1"),
        ("Requested action 5.1.1 not at the start", ""),
        ("3.1.1 no such class", ""),
        ("5.1.1.1 too many parts", ""),
        ("5.1234.1 subject too long", ""),
        ("", ""),
    ],
)
def test_enhanced_code_is_read_from_the_start_of_the_text(text: str, code: str) -> None:
    assert enhanced_code(text) == code


def test_format_reply_restores_the_wire_form() -> None:
    assert format_reply(250, "2.0.0 Ok: queued as 4F1A") == "250 2.0.0 Ok: queued as 4F1A"
    assert format_reply(550, "5.1.1 first\n5.1.1 second") == "550-5.1.1 first\n550 5.1.1 second"
    assert format_reply(250, "") == "250"
