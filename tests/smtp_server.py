"""A real SMTP server (aiosmtpd) on loopback, for the SMTP tests and the delivery benchmark.

``SmtpTestServer`` runs aiosmtpd's ``Controller`` in its own thread on a free port and records
what arrives: every message with its envelope (MAIL/RCPT parameters included), and counts of
connections, EHLOs and NOOPs, so a test can prove that connections are reused. It can also:

* advertise DSN (RFC 3461) in its EHLO and accept the DSN parameters, which aiosmtpd does not
  know (without ``advertise_dsn`` it refuses them with 555, like a server without DSN);
* answer scripted replies ("550 5.1.1 ...") to the next MAIL/RCPT/DATA, or ``DROP`` the
  connection instead of answering, or (DATA only) ``STORE_THEN_DROP``: take the message and close
  without replying, as a server that crashes after queueing does;
* drop every open connection at once (an idle timeout on the server side).

The handler does no per-message work beyond counting and (with ``keep``) storing, so the benchmark
can push 10,000 messages through it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST: Final = "127.0.0.1"
DROP: Final = "<drop the connection without replying>"
STORE_THEN_DROP: Final = "<store the message, then drop the connection without replying>"
_DSN_MAIL_PARAMS: Final = frozenset({"RET", "ENVID"})
_DSN_RCPT_PARAMS: Final = frozenset({"NOTIFY", "ORCPT"})


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    rcpt_options: list[str]
    content: bytes


@dataclass
class RecordingHandler:
    """aiosmtpd handler hooks. Runs in the server's thread; the test reads it after a reply."""

    keep: bool = True
    advertise_dsn: bool = False
    messages: list[ReceivedMessage] = field(default_factory=list)
    message_count: int = 0
    connections: int = 0
    ehlos: int = 0
    noops: int = 0
    # Replies for every RCPT to an address ("550 5.1.1 <x>: user unknown").
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    scripted: dict[str, deque[str]] = field(
        default_factory=lambda: {"MAIL": deque(), "RCPT": deque(), "DATA": deque()}
    )
    live: set[RecordingSMTP] = field(default_factory=set)

    def script(self, command: str, *replies: str) -> None:
        """Answer the next MAIL/RCPT/DATA commands with ``replies``, in order."""
        self.scripted[command].extend(replies)

    def _next(self, command: str) -> str | None:
        queue = self.scripted[command]
        return queue.popleft() if queue else None

    async def handle_EHLO(  # noqa: N802 (aiosmtpd's hook names)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self.ehlos += 1
        session.host_name = hostname
        if self.advertise_dsn:
            responses.insert(-1, "250-DSN")
        return responses

    async def handle_NOOP(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, arg: str
    ) -> str:
        self.noops += 1
        return "250 2.0.0 OK"

    async def handle_MAIL(  # noqa: N802
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        reply = self._next("MAIL")
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(  # noqa: N802
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self._next("RCPT") or self.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        reply = self._next("DATA")
        if reply is not None and reply != STORE_THEN_DROP:
            return reply
        self.message_count += 1
        if self.keep:
            content = envelope.original_content or b""
            self.messages.append(
                ReceivedMessage(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=list(envelope.rcpt_tos),
                    mail_options=list(envelope.mail_options),
                    rcpt_options=list(envelope.rcpt_options),
                    content=content,
                )
            )
        return reply or f"250 2.0.0 Ok: queued as Q{self.message_count}"


def _split_params(arg: str, names: frozenset[str]) -> tuple[str, list[str]]:
    """Split ``FROM:<a> SIZE=1 RET=HDRS`` into the part aiosmtpd knows and the DSN parameters."""
    kept: list[str] = []
    taken: list[str] = []
    for token in arg.split():
        (taken if token.partition("=")[0].upper() in names else kept).append(token)
    return " ".join(kept), taken


class RecordingSMTP(SMTP):
    """aiosmtpd's server, counting connections, able to drop them, and speaking DSN on request."""

    event_handler: RecordingHandler

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        upgrading = self._original_transport is not None  # STARTTLS re-enters here
        super().connection_made(transport)
        if not upgrading:
            self.event_handler.connections += 1
            self.event_handler.live.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.event_handler.live.discard(self)
        super().connection_lost(error)

    async def push(self, status: Any) -> None:
        if status in (DROP, STORE_THEN_DROP):
            if self.transport is not None:
                self.transport.close()
            return
        await super().push(status)

    async def smtp_MAIL(self, arg: str | None) -> None:  # noqa: N802
        if not self.event_handler.advertise_dsn or arg is None or self.envelope is None:
            await super().smtp_MAIL(arg)
            return
        kept, dsn = _split_params(arg, _DSN_MAIL_PARAMS)
        await super().smtp_MAIL(kept)
        if self.envelope.mail_from:
            self.envelope.mail_options.extend(dsn)

    async def smtp_RCPT(self, arg: str | None) -> None:  # noqa: N802
        if not self.event_handler.advertise_dsn or arg is None or self.envelope is None:
            await super().smtp_RCPT(arg)
            return
        kept, dsn = _split_params(arg, _DSN_RCPT_PARAMS)
        before = len(self.envelope.rcpt_tos)
        await super().smtp_RCPT(kept)
        if len(self.envelope.rcpt_tos) > before:
            self.envelope.rcpt_options.extend(dsn)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return RecordingSMTP(self.handler, loop=self.loop, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        # Bound to port 0: learn the port the OS chose before the base class connects to it.
        if not isinstance(self.server, asyncio.Server):
            raise RuntimeError(f"expected a listening asyncio.Server, got {self.server!r}")
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class SmtpTestServer:
    """``with SmtpTestServer() as server:`` → ``server.port``, ``server.handler``."""

    def __init__(
        self,
        *,
        handler: RecordingHandler | None = None,
        tls_context: ssl.SSLContext | None = None,
        require_starttls: bool = False,
        **smtp_kwargs: Any,
    ) -> None:
        self.handler = handler or RecordingHandler()
        self.host = HOST
        self._controller = _Controller(
            self.handler,
            hostname=HOST,
            port=0,
            server_hostname="mx.test.example",
            tls_context=tls_context,
            require_starttls=require_starttls,
            **smtp_kwargs,
        )

    @property
    def port(self) -> int:
        port: int = self._controller.port
        return port

    def start(self) -> None:
        self._controller.start()
        # The controller's own start-up probe connected once: count only the client's.
        self.handler.connections = 0

    def stop(self) -> None:
        self._controller.stop()

    def drop_connections(self) -> None:
        """Close every open connection from the server's side, as an idle timeout does."""
        done = threading.Event()

        def close_all() -> None:
            for server in list(self.handler.live):
                if server.transport is not None:
                    server.transport.close()
            done.set()

        self._controller.loop.call_soon_threadsafe(close_all)
        if not done.wait(5):
            raise TimeoutError("the SMTP server did not close its connections")

    def __enter__(self) -> SmtpTestServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# TLS ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    cafile: Path  # the CA the client trusts
    certfile: Path  # the server's certificate (for 127.0.0.1 and localhost), signed by the CA
    keyfile: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certfile, self.keyfile)
        return context


def make_tls_files(directory: Path) -> TlsFiles:
    """A throw-away CA and a server certificate it signed, valid for ``127.0.0.1``/``localhost``."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Yunting test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        cafile=directory / "ca.pem",
        certfile=directory / "server.pem",
        keyfile=directory / "server.key",
    )
    files.cafile.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files
