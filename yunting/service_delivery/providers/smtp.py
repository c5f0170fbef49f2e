"""Email over SMTP (RFC 5321) for electronic service, through aiosmtplib.

One ``SmtpProvider`` keeps a small pool of persistent connections to one server: a relay (the
court's mail gateway) or, with ``final_hop``, the recipient's own mail system, in which case the
server's acceptance is the message reaching the recipient's system (a tier-1 delivery event).

Each submission is one mail transaction: MAIL FROM, RCPT TO, DATA (RFC 5321 §3.3), issued one by
one so every reply is kept verbatim as evidence. The transaction is repeated on a fresh connection
at most once, and only when a *reused* connection turns out to be dead before DATA began; once the
message has been sent the provider never sends it again, whatever happens to the reply (RFC 5321
§4.5.3.2.6 explains why the client should rather wait long for it). With ``request_dsn`` and a
server that offers DSN, the envelope asks for delivery status notifications (RFC 3461).

Not here: reading the DSNs that come back (they arrive as bounce mail at the sender's mailbox and
need an inbound mailbox reader); this provider never calls its receipt sink.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import socket
import ssl
from dataclasses import dataclass, field
from email import policy
from email.charset import Charset
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.utils import format_datetime, formataddr
from typing import Any, Final, Literal, cast
from uuid import UUID

import aiosmtplib
from aiosmtplib.typing import SMTPStatus
from email_validator import EmailNotValidError, validate_email

from yunting.infra.clock import Clock
from yunting.service_delivery.addresses import plain_email
from yunting.service_delivery.ports import (
    Accepted,
    Channel,
    FailureKind,
    ProviderError,
    ReceiptSink,
    ReplySink,
    Submission,
)
from yunting.service_delivery.providers.smtp_status import (
    SmtpCommand,
    classify_reply,
    format_reply,
)

logger = logging.getLogger(__name__)

TlsMode = Literal["none", "starttls", "implicit"]
TLS_MODES: Final = ("none", "starttls", "implicit")

# compat32 with CRLF: its Header folding costs ~0.15 ms a message where the modern policy's
# parse-and-refold costs ~1.5 ms (measured), which alone would halve throughput to a local relay.
_WIRE_POLICY: Final = policy.compat32.clone(linesep="\r\n")
# For a recipient whose local part is not ASCII: UTF-8 headers (RFC 6532), a 7-bit body anyway.
_UTF8_POLICY: Final = policy.SMTPUTF8.clone(cte_type="7bit")
# RFC 5322 §3.6.4 msg-id, restricted to what we generate: "<" left "@" right ">", no spaces.
_MESSAGE_ID: Final = re.compile(r"<[!-;=?A-~]+@[!-;=?A-~]+>")
_DSN_NOTIFY: Final = "NOTIFY=SUCCESS,FAILURE,DELAY"
# A header value compat32 writes as it is (if the line fits): printable ASCII words.
_SIMPLE_VALUE: Final = re.compile(r"[!-~]+(?: [!-~]+)*")
# After X-Yunting-Attempt, in the order _common_headers and set_payload add them.
_FIXED_HEADERS: Final = (
    b"Auto-Submitted: auto-generated\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: text/plain; charset="utf-8"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
)
_SUBJECT_CACHE: Final = 256  # distinct subjects kept folded (one per order being sent)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """How to reach one SMTP server. Validated on construction ("expected X, got Y")."""

    host: str
    sender: str  # envelope sender (RFC 5321 MAIL FROM) and From address; ASCII
    port: int = 587
    tls: TlsMode = "starttls"  # "implicit": TLS from the first byte (port 465, RFC 8314)
    validate_certs: bool = True
    cafile: str | None = None  # extra CA bundle to trust (a court's own CA)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0  # connect and each command
    # RFC 5321 §4.5.3.2.6 suggests 10 minutes for the reply to the end of DATA: giving up early
    # leaves the outcome unknown and invites a duplicate.
    data_timeout: float = 600.0
    pool_size: int = 2
    max_messages_per_connection: int = 100  # then QUIT and reconnect; servers limit this too
    idle_probe_after: float = 15.0  # a connection idle this long is probed with NOOP before reuse
    sender_name: str = ""  # From display name, e.g. the court's name; any script
    helo_hostname: str | None = None  # EHLO name; None: this machine's FQDN, looked up at start
    message_id_domain: str = ""  # for ``message_id_for``; "" means the sender's domain
    request_dsn: bool = True
    # True when this server is the recipient's own system (not a relay): its acceptance is then
    # the message reaching the recipient's system.
    final_hop: bool = False

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("expected an SMTP host, got an empty string")
        if not 0 < self.port < 65536:
            raise ValueError(f"expected a port in 1..65535, got {self.port}")
        if self.tls not in TLS_MODES:
            raise ValueError(f"expected tls in {TLS_MODES}, got {self.tls!r}")
        if self.password and self.tls == "none":
            raise ValueError("expected tls='starttls' or 'implicit' with a password, got 'none'")
        if self.username is None and self.password:
            raise ValueError("expected a username with the password, got none")
        for name in ("timeout", "data_timeout", "idle_probe_after"):
            if getattr(self, name) <= 0:
                raise ValueError(f"expected {name} > 0, got {getattr(self, name)}")
        if self.pool_size < 1:
            raise ValueError(f"expected pool_size >= 1, got {self.pool_size}")
        if self.max_messages_per_connection < 1:
            raise ValueError(
                f"expected max_messages_per_connection >= 1, got {self.max_messages_per_connection}"
            )
        try:
            checked = validate_email(self.sender, check_deliverability=False)
        except EmailNotValidError as e:
            raise ValueError(f"expected a valid sender address, got {self.sender!r}: {e}") from e
        if checked.ascii_email is None:
            raise ValueError(f"expected an ASCII sender address, got {self.sender!r}")

    @property
    def id_domain(self) -> str:
        """The right-hand side of our Message-IDs: ``message_id_domain`` or the sender's domain."""
        return self.message_id_domain or self.sender.rpartition("@")[2]


def message_id_for(attempt_id: UUID, domain: str) -> str:
    """The Message-ID for a delivery attempt (RFC 5322 §3.6.4): stable, so a resend of the same
    attempt is recognisably the same message."""
    return f"<{attempt_id}@{domain}>"


def xtext(value: str) -> str:
    """Encode ``value`` as xtext (RFC 3461 §4): "+" and "=" and anything outside "!".."~" as
    ``+XX`` hex, for ENVID."""
    return "".join(
        c if "!" <= c <= "~" and c not in "+=" else "".join(f"+{b:02X}" for b in c.encode())
        for c in value
    )


@dataclass(frozen=True, slots=True)
class _Recipient:
    envelope: str  # what RCPT TO carries: ASCII (IDNA domain) when it can be
    domain: str  # for logs: never the whole address
    smtputf8: bool  # the local part is not ASCII (RFC 6531)


@dataclass(slots=True)
class _Connection:
    client: aiosmtplib.SMTP | None = None
    sent: int = 0  # messages accepted on this connection
    idle_since: float = 0.0  # loop time it was last returned to the pool

    @property
    def is_open(self) -> bool:
        return self.client is not None and self.client.is_connected

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None
        self.sent = 0


class _LostBeforeDataError(Exception):
    """A connection died (or answered 421) before DATA: nothing was sent, the envelope may be
    repeated on a new connection. ``error`` is what to report if it is not."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__(str(error))
        self.error = error


class SmtpProvider:
    """Implements ``Provider`` for ``Channel.EMAIL``: ``start`` → ``submit``\\* → ``stop``.

    ``submit`` may be called concurrently; at most ``pool_size`` transactions run at once, each on
    its own connection, and connections are kept open between messages.
    """

    def __init__(self, config: SmtpConfig, *, clock: Clock) -> None:
        self.channel = Channel.EMAIL
        self._config = config
        self._clock = clock
        self._receipts: ReceiptSink | None = None
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[_Connection] = []  # LIFO: the warmest connection is reused first
        self._running = False
        self._helo_hostname = config.helo_hostname
        # The same for every message, and the costliest header to encode.
        self._from = _from_header(_one_line(config.sender_name), config.sender)
        self._from_line = _fold("From", self._from)
        self._mail_from = b"FROM:<" + config.sender.encode("ascii") + b">"
        self._subjects: dict[str, bytes] = {}  # subject → its folded header line

    async def start(self, receipts: ReceiptSink, replies: ReplySink | None = None) -> None:
        if self._running:
            raise RuntimeError("SmtpProvider is already started")
        # Kept so every provider has the same lifecycle; DSNs are not read here (module docstring),
        # nor replies: they come by mail to the sender's mailbox, which is not ours to read.
        del replies
        self._receipts = receipts
        if self._helo_hostname is None:
            self._helo_hostname = await asyncio.to_thread(socket.getfqdn)
        self._slots = asyncio.Semaphore(self._config.pool_size)
        self._idle = []
        self._running = True
        logger.info(
            "smtp: started for %s:%d (tls=%s, pool=%d, final_hop=%s)",
            self._config.host,
            self._config.port,
            self._config.tls,
            self._config.pool_size,
            self._config.final_hop,
        )

    async def stop(self) -> None:
        """Refuse new submissions, let running ones finish, then QUIT every connection."""
        if not self._running or self._slots is None:
            return
        self._running = False
        slots = self._slots
        for _ in range(self._config.pool_size):
            await slots.acquire()
        try:
            idle, self._idle = self._idle, []
            for conn in idle:
                await self._quit(conn)
        finally:
            # Waiters queued behind stop() wake up, see the provider stopped and give up.
            for _ in range(self._config.pool_size):
                slots.release()
        logger.info("smtp: stopped")

    async def submit(self, submission: Submission) -> Accepted:
        """Send one message in one SMTP transaction; ``Accepted.raw`` holds the DATA and RCPT
        replies verbatim. Raises ``ProviderError`` with the reply's kind (see ``smtp_status``)."""
        if submission.channel is not Channel.EMAIL:
            raise ValueError(f"expected an email submission, got {submission.channel}")
        recipient = _check_recipient(submission.recipient)
        message_id = submission.message_id or message_id_for(
            submission.attempt_id, self._config.id_domain
        )
        if not _MESSAGE_ID.fullmatch(message_id):
            raise ProviderError(
                f"expected a Message-ID like <id@domain>, got {message_id!r}",
                kind=FailureKind.TECHNICAL,
                code="invalid_message_id",
            )
        content = self._compose(submission, recipient, message_id)
        if self._slots is None:
            raise _not_running()
        async with self._slots:
            if not self._running:
                raise _not_running()
            conn = self._idle.pop() if self._idle else _Connection()
            keep = False
            try:
                accepted = await self._deliver(conn, submission, recipient, content, message_id)
                keep = True
            except ProviderError as error:
                logger.warning(
                    "smtp: attempt %s to a %s address not taken: %s (%s, %s)",
                    submission.attempt_id,
                    recipient.domain,
                    error,
                    error.kind,
                    error.code,
                    extra={"attempt_id": str(submission.attempt_id)},
                )
                keep = await self._reset(conn)
                raise
            finally:
                if keep and conn.is_open:
                    conn.idle_since = asyncio.get_running_loop().time()
                    self._idle.append(conn)
                else:
                    conn.close()
        logger.info(
            "smtp: attempt %s accepted for a %s address",
            submission.attempt_id,
            recipient.domain,
            extra={"attempt_id": str(submission.attempt_id), "message_id": message_id},
        )
        return accepted

    # The transaction ------------------------------------------------------------------------

    async def _deliver(
        self,
        conn: _Connection,
        submission: Submission,
        recipient: _Recipient,
        content: bytes,
        message_id: str,
    ) -> Accepted:
        reused = await self._usable(conn)
        if not reused:
            await self._open(conn)
        try:
            return await self._transaction(conn, submission, recipient, content, message_id)
        except _LostBeforeDataError as lost:
            conn.close()
            if not reused:
                raise lost.error from lost.__cause__
            # The server dropped a connection we kept open (idle timeout, restart) and we only
            # noticed on MAIL/RCPT: nothing was sent, so one retry on a new connection is safe.
            logger.info(
                "smtp: a reused connection was gone before DATA (%s); reconnecting once",
                lost.error.code,
                extra={"attempt_id": str(submission.attempt_id)},
            )
        await self._open(conn)
        try:
            return await self._transaction(conn, submission, recipient, content, message_id)
        except _LostBeforeDataError as lost:
            conn.close()
            raise lost.error from lost.__cause__

    async def _transaction(
        self,
        conn: _Connection,
        submission: Submission,
        recipient: _Recipient,
        content: bytes,
        message_id: str,
    ) -> Accepted:
        client = conn.client
        if client is None:
            raise RuntimeError("the connection was not opened")
        mail_options, rcpt_options = self._envelope_options(client, submission, recipient, content)
        encoding = "utf-8" if recipient.smtputf8 else "ascii"
        command = SmtpCommand.MAIL
        try:
            # MAIL and RCPT by hand: aiosmtplib's mail()/rcpt() parse each address again with
            # email.utils (a quarter of the client's CPU per message); both were checked when
            # the provider started and in _check_recipient, and cannot hold CR, LF or <>.
            reply = await client.execute_command(b"MAIL", self._mail_from, *_ascii(mail_options))
            if reply.code != SMTPStatus.completed:
                raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, self._config.sender)
            command = SmtpCommand.RCPT
            rcpt = await client.execute_command(
                b"RCPT", b"TO:<" + recipient.envelope.encode(encoding) + b">", *_ascii(rcpt_options)
            )
            if rcpt.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
                raise aiosmtplib.SMTPRecipientRefused(rcpt.code, rcpt.message, recipient.envelope)
            command = SmtpCommand.DATA
            data = await client.data(content, timeout=self._config.data_timeout)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as e:
            if command is SmtpCommand.DATA:
                # The message may have been sent in full and even accepted: never resend here.
                raise ProviderError(
                    "the connection failed during DATA; the server may have taken the message",
                    kind=FailureKind.TECHNICAL,
                    raw=f"DATA: {e}",
                    code="data_outcome_unknown",
                ) from e
            raise _LostBeforeDataError(_failure(e, command)) from e
        except aiosmtplib.SMTPResponseException as e:
            error = _failure(e, command)
            # 421: the server is closing this connection (RFC 5321 §3.8), e.g. an idle timeout.
            if e.code == 421 and command is not SmtpCommand.DATA:
                raise _LostBeforeDataError(error) from e
            raise error from e
        conn.sent += 1
        return Accepted(
            provider_id=message_id,
            raw=f"DATA: {format_reply(*data)}\nRCPT: {format_reply(*rcpt)}",
            reached_recipient_system=self._config.final_hop,
        )

    def _envelope_options(
        self,
        client: aiosmtplib.SMTP,
        submission: Submission,
        recipient: _Recipient,
        content: bytes,
    ) -> tuple[list[str], list[str]]:
        mail: list[str] = []
        rcpt: list[str] = []
        if recipient.smtputf8:
            if not client.supports_extension("smtputf8"):
                # A relay that cannot carry the address is ours to fix; the recipient's own
                # system refusing it means the address cannot be reached by email.
                kind = FailureKind.PERMANENT if self._config.final_hop else FailureKind.TECHNICAL
                raise ProviderError(
                    "the recipient's address needs SMTPUTF8, which the server does not offer",
                    kind=kind,
                    code="smtputf8_unsupported",
                )
            mail.append("SMTPUTF8")  # RFC 6531 §3.4
            if client.supports_extension("8bitmime"):
                mail.append("BODY=8BITMIME")  # the headers are UTF-8 (RFC 6532)
        if client.supports_extension("size"):
            mail.append(f"SIZE={len(content)}")  # RFC 1870: refused up front if too big
        if (
            self._config.request_dsn
            and submission.request_receipt
            and client.supports_extension("dsn")
        ):
            # RFC 3461 §4.3 RET=HDRS: a DSN quotes the headers, not the document's text;
            # §4.4 ENVID: the DSN names the attempt; §4.1 NOTIFY: report success, failure, delay.
            mail += ["RET=HDRS", f"ENVID={xtext(str(submission.attempt_id))}"]
            rcpt.append(_DSN_NOTIFY)
        return mail, rcpt

    # Connections --------------------------------------------------------------------------------

    async def _usable(self, conn: _Connection) -> bool:
        """Whether ``conn`` can carry the next transaction without reconnecting."""
        client = conn.client
        if client is None or not client.is_connected:
            conn.close()
            return False
        if conn.sent >= self._config.max_messages_per_connection:
            await self._quit(conn)
            return False
        idle = asyncio.get_running_loop().time() - conn.idle_since
        if idle >= self._config.idle_probe_after:
            # Servers drop idle clients (RFC 5321 §4.5.3.2.7: 5 minutes); a NOOP finds out now
            # rather than half-way into the envelope.
            try:
                await client.noop(timeout=self._config.timeout)
            except (aiosmtplib.SMTPException, OSError):
                conn.close()
                return False
        return True

    async def _open(self, conn: _Connection) -> None:
        """Connect, EHLO, STARTTLS and EHLO again (RFC 3207 §4.2), AUTH (RFC 4954)."""
        config = self._config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            local_hostname=self._helo_hostname,
            timeout=config.timeout,
            use_tls=config.tls == "implicit",
            start_tls=False,  # done below, so a failure names its step
            validate_certs=config.validate_certs,
            cert_bundle=config.cafile,
        )
        conn.close()
        command = SmtpCommand.CONNECT
        try:
            await client.connect()
            command = SmtpCommand.EHLO
            await _hello(client)
            if config.tls == "starttls":
                command = SmtpCommand.STARTTLS
                await client.starttls()
                command = SmtpCommand.EHLO
                await _hello(client)
            if config.username is not None:
                command = SmtpCommand.AUTH
                await client.login(config.username, config.password or "")
        except (aiosmtplib.SMTPException, OSError) as e:
            client.close()
            raise _failure(e, command) from e
        except BaseException:
            client.close()
            raise
        conn.client = client
        conn.sent = 0
        logger.debug("smtp: connected to %s:%d", config.host, config.port)

    async def _reset(self, conn: _Connection) -> bool:
        """After a refused transaction, RSET (RFC 5321 §4.1.1.5) so the connection can be reused;
        False if it cannot."""
        client = conn.client
        if client is None or not client.is_connected:
            return False
        try:
            await client.rset(timeout=self._config.timeout)
        except (aiosmtplib.SMTPException, OSError):
            return False
        return True

    async def _quit(self, conn: _Connection) -> None:
        client = conn.client
        if client is not None and client.is_connected:
            try:
                await client.quit(timeout=self._config.timeout)
            except (aiosmtplib.SMTPException, OSError) as e:
                logger.debug("smtp: QUIT failed: %s", e)
        conn.close()

    # The message --------------------------------------------------------------------------------

    def _compose(self, submission: Submission, recipient: _Recipient, message_id: str) -> bytes:
        """The message (RFC 5322), UTF-8 text in a 7-bit body (RFC 2045/2047)."""
        config = self._config
        date = format_datetime(self._clock.now())
        subject = _one_line(submission.subject)
        body = _crlf(submission.body)
        if recipient.smtputf8:
            utf8 = EmailMessage(policy=_UTF8_POLICY)
            utf8["Message-ID"] = message_id
            utf8["Date"] = date
            utf8["From"] = Address(_one_line(config.sender_name), addr_spec=config.sender)
            utf8["To"] = recipient.envelope
            utf8["Subject"] = subject
            _common_headers(utf8, submission.attempt_id)
            utf8.set_content(body, charset="utf-8")
            return utf8.as_bytes()
        # The bytes ``compose_with_email_package`` makes (a unit test holds them equal), put
        # together here: email.generator folds every header through email.header on each
        # message (~0.7 ms of the ~3 ms of CPU a mail costs the pipeline), though all but the
        # Subject and From are short ASCII, and those two are the same for a whole order.
        subject_line = self._subjects.get(subject)
        if subject_line is None:
            if len(self._subjects) >= _SUBJECT_CACHE:
                self._subjects.clear()
            subject_line = _fold("Subject", _text_header(subject, "Subject"))
            self._subjects[subject] = subject_line
        return b"".join(
            (
                _header_line("Message-ID", message_id),
                _header_line("Date", date),
                self._from_line,
                _header_line("To", recipient.envelope),
                subject_line,
                _header_line("X-Yunting-Attempt", str(submission.attempt_id)),
                _FIXED_HEADERS,
                b"\r\n",
                # base64 in lines of 76 (57 bytes each), as email.base64mime.body_encode.
                base64.encodebytes(body.encode("utf-8")).replace(b"\n", b"\r\n"),
            )
        )

    def compose_with_email_package(
        self, submission: Submission, recipient: _Recipient, message_id: str, date: str
    ) -> bytes:
        """The ASCII-address message as the email package makes it: the reference that
        ``_compose`` is held to, byte for byte, in the unit tests."""
        message: Message[str, str | Header] = Message(policy=_WIRE_POLICY)
        message["Message-ID"] = message_id
        message["Date"] = date
        message["From"] = self._from
        message["To"] = recipient.envelope
        message["Subject"] = _text_header(_one_line(submission.subject), "Subject")
        _common_headers(message, submission.attempt_id)
        # set_charset adds MIME-Version and Content-Type; utf-8 bodies are base64 (7-bit safe).
        message.set_payload(_crlf(submission.body), Charset("utf-8"))
        return message.as_bytes()


# Helpers ----------------------------------------------------------------------------------------


def _not_running() -> ProviderError:
    return ProviderError(
        "the SMTP provider is not running", kind=FailureKind.TECHNICAL, code="not_started"
    )


def _check_recipient(address: str) -> _Recipient:
    """Validate the address before any connection (syntax only: RFC 5321 §4.1.2, RFC 6531)."""
    plain = plain_email(address)
    if plain is not None:
        return _Recipient(envelope=plain[0], domain=plain[1], smtputf8=False)
    try:
        checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError as e:
        raise ProviderError(
            f"not a valid email address: {e}",
            kind=FailureKind.PERMANENT,
            code="invalid_address",
        ) from e
    if checked.ascii_email is not None:
        return _Recipient(envelope=checked.ascii_email, domain=checked.domain, smtputf8=False)
    return _Recipient(envelope=checked.normalized, domain=checked.domain, smtputf8=True)


async def _hello(client: aiosmtplib.SMTP) -> None:
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError:
        # RFC 5321 §3.2: a server that refuses EHLO may still speak plain SMTP.
        if not client.is_connected:
            raise
        await client.helo()


def _failure(error: BaseException, command: SmtpCommand) -> ProviderError:
    """Wrap an aiosmtplib/socket error at ``command`` as a ``ProviderError``."""
    step = command.value.upper()
    if isinstance(error, aiosmtplib.SMTPResponseException):
        verdict = classify_reply(error.code, error.message, command=command)
        return ProviderError(
            f"{step} refused: {verdict.reason} ({verdict.status})",
            kind=verdict.kind,
            raw=f"{step}: {format_reply(error.code, error.message)}",
            code=verdict.status,
        )
    if isinstance(error, ssl.SSLError) or isinstance(error.__cause__, ssl.SSLError):
        code = "tls_failed"
    elif isinstance(error, aiosmtplib.SMTPTimeoutError | TimeoutError):
        code = "timeout"
    elif isinstance(error, aiosmtplib.SMTPConnectError):
        code = "connection_failed"
    elif isinstance(error, aiosmtplib.SMTPServerDisconnected | ConnectionError):
        code = "connection_lost"
    elif command in (SmtpCommand.STARTTLS, SmtpCommand.AUTH):
        code = f"{command.value}_unavailable"  # the server does not offer it
    else:
        code = "smtp_error"
    return ProviderError(
        f"{step} failed: {code}", kind=FailureKind.TECHNICAL, raw=f"{step}: {error}", code=code
    )


def _one_line(text: str) -> str:
    # A CR or LF in a header value would start a new header (header injection).
    return text.replace("\r", " ").replace("\n", " ")


def _crlf(text: str) -> str:
    # Text in canonical form has CRLF line breaks (RFC 2046 §4.1.1), also inside base64.
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def _text_header(value: str, name: str) -> str | Header:
    # RFC 2047 encoded words, folded into lines of at most 78 characters, for non-ASCII text.
    return value if value.isascii() else Header(value, "utf-8", header_name=name)


def _from_header(display_name: str, address: str) -> str | Header:
    if not display_name or display_name.isascii():
        return formataddr((display_name, address))  # quotes specials; bare address if no name
    header = Header(display_name, "utf-8", header_name="From")
    header.append(f"<{address}>", "us-ascii")
    return header


def _header_line(name: str, value: str) -> bytes:
    """``name: value`` CRLF as compat32 folds it: unchanged when it is printable ASCII words
    with single spaces and fits in 78 characters, else through the email package."""
    if len(name) + len(value) <= 76 and _SIMPLE_VALUE.fullmatch(value):
        return f"{name}: {value}\r\n".encode("ascii")
    return _fold(name, value)


def _ascii(options: list[str]) -> list[bytes]:
    return [option.encode("ascii") for option in options]


def _fold(name: str, value: str | Header) -> bytes:
    # compat32 folds a Header as it is (typeshed types the value as str only).
    return _WIRE_POLICY.fold_binary(name, cast(str, value))


def _common_headers(message: Message[Any, str], attempt_id: UUID) -> None:
    message["X-Yunting-Attempt"] = str(attempt_id)
    # RFC 3834 §5: auto-responders must not answer; a vacation notice is not the party's reply.
    message["Auto-Submitted"] = "auto-generated"
