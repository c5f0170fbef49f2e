"""What an SMTP reply means for a delivery attempt, kept as data tables.

A failed command's reply decides what happens next (``FailureKind``): retry later, give up on
the address and fall back to another channel, or report our own or the relay's breakage. Two
vocabularies exist and servers use either or both:

* basic reply codes (RFC 5321 §4.2.2-4.2.3, plus RFC 3207, RFC 4954 §6, RFC 7504);
* enhanced status codes ``class.subject.detail`` (RFC 3463, registry RFC 5248; RFC 4954, RFC 7372,
  RFC 7505 add details), written at the start of the reply text (RFC 2034).

Precedence, most specific first: a known enhanced ``subject.detail`` → a reply code that means
something particular for the command that failed → the basic reply code → the enhanced subject alone
(an ``X.Y.0`` "other or undefined" code says less than a specific basic code such as 530) → the
class: unknown 4xx is TEMPORARY, unknown 5xx PERMANENT. A failure before the mail transaction began
(greeting, EHLO, STARTTLS, AUTH) says nothing about the recipient, so it is always TECHNICAL.

Pure functions, no I/O: the tables are tested line by line against real-world replies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from yunting.service_delivery.ports import FailureKind

TEMPORARY: Final = FailureKind.TEMPORARY
PERMANENT: Final = FailureKind.PERMANENT
TECHNICAL: Final = FailureKind.TECHNICAL


class SmtpCommand(StrEnum):
    """The step of an SMTP session that received the reply."""

    CONNECT = "connect"  # the 220 greeting (RFC 5321 §3.1)
    EHLO = "ehlo"
    STARTTLS = "starttls"
    AUTH = "auth"
    NOOP = "noop"
    RSET = "rset"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"


# Steps before MAIL FROM: a refusal here is about us (credentials, TLS, our IP) or the server, never
# about the recipient's address, so retrying another address would not help.
SESSION_COMMANDS: Final = frozenset(
    {SmtpCommand.CONNECT, SmtpCommand.EHLO, SmtpCommand.STARTTLS, SmtpCommand.AUTH}
)

# Basic reply codes (RFC 5321 §4.2.3 unless noted) → (kind, reason).
BASIC_REPLIES: Final[dict[int, tuple[FailureKind, str]]] = {
    421: (TEMPORARY, "service_unavailable"),
    432: (TECHNICAL, "password_transition_needed"),  # RFC 4954 §6
    450: (TEMPORARY, "mailbox_unavailable"),  # busy, greylisted
    451: (TEMPORARY, "local_error"),
    452: (TEMPORARY, "insufficient_storage"),
    # RFC 3207 §4 (TLS not available) and RFC 4954 §6 (temporary authentication failure).
    454: (TECHNICAL, "tls_or_auth_unavailable"),
    455: (TECHNICAL, "parameters_not_accommodated"),
    500: (TECHNICAL, "command_unrecognized"),
    501: (TECHNICAL, "syntax_error"),
    502: (TECHNICAL, "command_not_implemented"),
    503: (TECHNICAL, "bad_command_sequence"),
    504: (TECHNICAL, "parameter_not_implemented"),
    521: (PERMANENT, "host_does_not_accept_mail"),  # RFC 7504
    523: (TECHNICAL, "encryption_needed"),  # RFC 5248 (X.7.10)
    530: (TECHNICAL, "auth_required"),  # RFC 4954 §6; also RFC 3207 "must issue STARTTLS first"
    534: (TECHNICAL, "auth_mechanism_too_weak"),  # RFC 4954 §6
    535: (TECHNICAL, "auth_credentials_invalid"),  # RFC 4954 §6
    538: (TECHNICAL, "encryption_required_for_auth"),  # RFC 4954 §6
    550: (PERMANENT, "mailbox_unavailable"),
    551: (PERMANENT, "user_not_local"),
    552: (PERMANENT, "storage_exceeded"),
    553: (PERMANENT, "mailbox_name_not_allowed"),
    554: (PERMANENT, "transaction_failed"),
    555: (TECHNICAL, "parameters_not_recognized"),  # our MAIL/RCPT parameters (SIZE, DSN, ...)
    556: (PERMANENT, "domain_does_not_accept_mail"),  # RFC 7504
}

# A reply code whose meaning depends on the command it answered → (kind, reason).
COMMAND_REPLIES: Final[dict[tuple[SmtpCommand, int], tuple[FailureKind, str]]] = {
    # The server found the recipient's address malformed: that address is no good.
    (SmtpCommand.RCPT, 501): (PERMANENT, "bad_mailbox_syntax"),
    # RFC 5321 §4.5.3.1.10: a 552 to RCPT SHOULD be treated as temporary (a full mailbox, or a
    # recipient limit that RFC 821 wrongly gave 552).
    (SmtpCommand.RCPT, 552): (TEMPORARY, "storage_exceeded"),
    # A refused envelope sender is our configuration, not the recipient's address.
    (SmtpCommand.MAIL, 501): (TECHNICAL, "bad_sender_syntax"),
    (SmtpCommand.MAIL, 553): (TECHNICAL, "sender_not_allowed"),
}

# Enhanced status code "subject.detail" → (reason, kind); a kind of None takes the code's class
# (4 → TEMPORARY, 5 → PERMANENT). RFC 3463 §3 unless noted.
ENHANCED_DETAILS: Final[dict[str, tuple[str, FailureKind | None]]] = {
    # X.1 addressing
    "1.1": ("bad_mailbox", None),
    "1.2": ("bad_domain", None),
    "1.3": ("bad_mailbox_syntax", None),
    "1.4": ("ambiguous_mailbox", None),
    "1.6": ("mailbox_moved", None),
    "1.7": ("bad_sender_syntax", TECHNICAL),  # our envelope sender
    "1.8": ("bad_sender_domain", TECHNICAL),  # our sender's domain
    # RFC 7505 registers X.1.10 for a recipient domain with a null MX; Microsoft 365 uses it for
    # "recipient not found". Either way there is no mailbox for this address.
    "1.10": ("recipient_not_found", None),
    # X.2 mailbox. RFC 3463 §3.3: a full mailbox "should be used as a persistent transient
    # failure" - it clears when the owner makes room - so even a 5.2.2 is retried, not given up on.
    "2.1": ("mailbox_disabled", None),
    "2.2": ("mailbox_full", TEMPORARY),
    "2.3": ("message_too_long_for_mailbox", None),
    "2.4": ("mailing_list_expansion_failed", None),
    # X.3 mail system
    "3.1": ("mail_system_full", None),
    "3.2": ("not_accepting_messages", None),
    "3.3": ("feature_not_supported", None),
    "3.4": ("message_too_big", None),
    "3.5": ("system_misconfigured", None),
    # X.4 network and routing
    "4.1": ("no_answer_from_host", None),
    "4.2": ("bad_connection", None),
    "4.3": ("directory_server_failure", None),
    "4.4": ("unable_to_route", None),
    "4.5": ("mail_system_congestion", None),
    "4.6": ("routing_loop", None),
    "4.7": ("delivery_time_expired", None),
    # X.5 protocol: our client and the server disagree about SMTP itself.
    "5.1": ("invalid_command", TECHNICAL),
    "5.2": ("syntax_error", TECHNICAL),
    "5.3": ("too_many_recipients", TECHNICAL),
    "5.4": ("invalid_command_arguments", TECHNICAL),
    "5.5": ("wrong_protocol_version", TECHNICAL),
    "5.6": ("auth_exchange_line_too_long", TECHNICAL),  # RFC 4954 §6
    # X.6 content
    "6.1": ("media_not_supported", None),
    "6.2": ("conversion_prohibited", None),
    "6.3": ("conversion_not_supported", None),
    "6.5": ("conversion_failed", None),
    "6.6": ("content_not_available", None),  # RFC 4468
    "6.7": ("non_ascii_address_not_permitted", None),  # RFC 6531
    # X.7 security or policy
    "7.1": ("not_authorized", None),  # policy refusal (spam filter, recipient's rules)
    "7.2": ("list_expansion_prohibited", None),
    "7.3": ("security_conversion_required", None),
    "7.4": ("security_features_not_supported", None),
    "7.5": ("cryptographic_failure", None),
    "7.6": ("cryptographic_algorithm_not_supported", None),
    "7.7": ("message_integrity_failure", None),
    # Authentication and our own domain's sender authentication: our side is wrong.
    "7.8": ("auth_credentials_invalid", TECHNICAL),  # RFC 4954 §6
    "7.9": ("auth_mechanism_too_weak", TECHNICAL),  # RFC 4954 §6
    "7.10": ("encryption_needed", TECHNICAL),  # RFC 5248
    "7.11": ("encryption_required_for_auth", TECHNICAL),  # RFC 4954 §6
    "7.12": ("password_transition_needed", TECHNICAL),  # RFC 4954 §6
    "7.13": ("sender_account_disabled", TECHNICAL),  # RFC 5248: after AUTH, our account
    "7.14": ("trust_relationship_required", TECHNICAL),  # RFC 5248
    "7.17": ("mailbox_owner_changed", None),  # RFC 7293
    "7.18": ("domain_owner_changed", None),  # RFC 7293
    "7.20": ("no_dkim_signature", TECHNICAL),  # RFC 7372
    "7.21": ("no_acceptable_dkim_signature", TECHNICAL),
    "7.22": ("no_aligned_dkim_signature", TECHNICAL),
    "7.23": ("spf_validation_failed", TECHNICAL),
    "7.24": ("spf_validation_error", TECHNICAL),
    "7.25": ("reverse_dns_validation_failed", TECHNICAL),
    "7.26": ("sender_authentication_failed", TECHNICAL),  # DMARC and friends
    "7.27": ("sender_null_mx", TECHNICAL),  # RFC 7505: our sender's domain
    # Microsoft 365 "Access denied, banned sending IP [...]": our relay's address is blocked.
    **{f"7.{n}": ("sending_ip_blocked", TECHNICAL) for n in range(606, 650)},
}

# Enhanced subject alone (an "X.Y.0" or an unlisted detail) → (reason, kind).
ENHANCED_SUBJECTS: Final[dict[str, tuple[str, FailureKind | None]]] = {
    "0": ("other", None),
    "1": ("addressing", None),
    "2": ("mailbox", None),
    "3": ("mail_system", None),
    "4": ("network", None),
    "5": ("protocol", TECHNICAL),
    "6": ("content", None),
    "7": ("security_policy", None),
}

_CLASS_KINDS: Final[dict[str, FailureKind]] = {"4": TEMPORARY, "5": PERMANENT}

# RFC 3463 §2: class "." subject "." detail, subject and detail 1-3 digits. RFC 2034 puts it
# right after the reply code; leading zeros are normalised so "5.01.1" matches the table's "1.1".
_ENHANCED_CODE: Final = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


@dataclass(frozen=True, slots=True)
class SmtpVerdict:
    """What a failed command's reply means. ``status`` is the code as text for evidence."""

    kind: FailureKind
    reason: str
    code: int
    enhanced: str = ""  # "5.1.1", or "" when the reply carries none

    @property
    def status(self) -> str:
        """``"550 5.1.1"``: the reply code, and the enhanced code when there is one."""
        return f"{self.code} {self.enhanced}" if self.enhanced else str(self.code)


def enhanced_code(text: str) -> str:
    """The RFC 3463 enhanced status code at the start of a reply's text, or ``""``."""
    match = _ENHANCED_CODE.match(text)
    if match is None:
        return ""
    cls, subject, detail = match.groups()
    return f"{cls}.{int(subject)}.{int(detail)}"


def classify_reply(code: int, text: str, *, command: SmtpCommand | None = None) -> SmtpVerdict:
    """Map a failed command's reply (``code`` and its text) to a ``FailureKind`` and a reason.

    ``text`` is the reply without its code, as aiosmtplib gives it (lines joined by newlines).
    A reply below 400 where a success was expected is a protocol mix-up: TECHNICAL.
    """
    enhanced = enhanced_code(text)
    reply_class = str(code // 100) if 400 <= code < 600 else ""
    # An enhanced code whose class contradicts the reply code ("550 4.2.2") cannot be trusted
    # over the reply code, which is the part every client acts on (RFC 5321 §4.2.1).
    usable = enhanced if enhanced and enhanced[0] == reply_class else ""
    kind, reason = _lookup(code, reply_class, usable, command)
    if command in SESSION_COMMANDS:
        kind = TECHNICAL
    return SmtpVerdict(kind=kind, reason=reason, code=code, enhanced=enhanced)


def _lookup(
    code: int, reply_class: str, enhanced: str, command: SmtpCommand | None
) -> tuple[FailureKind, str]:
    if not reply_class:
        return TECHNICAL, "unexpected_reply"
    class_kind = _CLASS_KINDS[reply_class]
    if enhanced:
        _, subject, detail = enhanced.split(".")
        specific = ENHANCED_DETAILS.get(f"{subject}.{detail}") if detail != "0" else None
        if specific is not None:
            reason, override = specific
            return override or class_kind, reason
    if command is not None and (command, code) in COMMAND_REPLIES:
        return COMMAND_REPLIES[(command, code)]
    if code in BASIC_REPLIES:
        return BASIC_REPLIES[code]
    if enhanced:
        generic = ENHANCED_SUBJECTS.get(enhanced.split(".")[1])
        if generic is not None:
            reason, override = generic
            return override or class_kind, reason
    return class_kind, "transient_failure" if class_kind is TEMPORARY else "permanent_failure"


def format_reply(code: int, text: str) -> str:
    """The reply as it came over the wire (RFC 5321 §4.2.1): ``250-first``/``250 last`` lines,
    joined by ``\\n``. aiosmtplib strips the codes and trailing blanks; this puts the codes back."""
    lines = text.split("\n") if text else [""]
    head = [f"{code}-{line}" for line in lines[:-1]]
    last = f"{code} {lines[-1]}" if lines[-1] else str(code)
    return "\n".join([*head, last])
