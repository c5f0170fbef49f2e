"""The SMTP provider against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from email import message_from_bytes, message_from_string, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.smtp_server import (
    DROP,
    STORE_THEN_DROP,
    RecordingHandler,
    SmtpTestServer,
    TlsFiles,
    make_tls_files,
)
from yunting.infra.clock import FrozenClock
from yunting.service_delivery.ports import (
    Accepted,
    Channel,
    FailureKind,
    Provider,
    ProviderError,
    Receipt,
    Submission,
)
from yunting.service_delivery.providers.smtp import SmtpConfig, SmtpProvider, message_id_for

SENDER = "noreply@court.example.cn"
COURT = "北京市第一中级人民法院"
RECIPIENT = "zhang.san@example.com"
SUBJECT = "关于（2026）京01民初123号案件的电子送达通知"
BODY = (
    "张三：\n\n本院已向您电子送达（2026）京01民初123号案件的判决书。\n"
    "请访问 https://yunting.example/s/abc 查看并签收。\n"
    ".这一行以句点开头。\n"
)
PASSWORD = "correct horse battery staple"


async def _no_receipts(receipt: Receipt) -> None:
    raise AssertionError(f"the SMTP provider reports no receipts, got {receipt}")


def submission(
    recipient: str = RECIPIENT,
    *,
    subject: str = SUBJECT,
    body: str = BODY,
    request_receipt: bool = True,
) -> Submission:
    attempt_id = uuid.uuid4()
    return Submission(
        attempt_id=attempt_id,
        channel=Channel.EMAIL,
        recipient=recipient,
        subject=subject,
        body=body,
        message_id=message_id_for(attempt_id, "court.example.cn"),
        request_receipt=request_receipt,
    )


def config_for(server: SmtpTestServer, **overrides: Any) -> SmtpConfig:
    base = SmtpConfig(
        host=server.host,
        port=server.port,
        tls="none",
        sender=SENDER,
        sender_name=COURT,
        helo_hostname="yunting.test",
        timeout=5.0,
        data_timeout=5.0,
    )
    return replace(base, **overrides)


@asynccontextmanager
async def running(config: SmtpConfig, clock: FrozenClock) -> AsyncIterator[SmtpProvider]:
    provider = SmtpProvider(config, clock=clock)
    port: Provider = provider  # mypy: SmtpProvider implements the port
    assert port.channel is Channel.EMAIL
    await provider.start(_no_receipts)
    try:
        yield provider
    finally:
        await provider.stop()


async def refused(provider: SmtpProvider, sub: Submission) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.submit(sub)
    return caught.value


def parsed(content: bytes) -> EmailMessage:
    message = message_from_bytes(content, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.fixture
def server() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as s:
        yield s


@pytest.fixture
async def provider(server: SmtpTestServer, clock: FrozenClock) -> AsyncIterator[SmtpProvider]:
    async with running(config_for(server), clock) as p:
        yield p


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("smtp-tls"))


# The message -------------------------------------------------------------------------------


async def test_a_chinese_notice_arrives_intact_with_its_message_id(
    server: SmtpTestServer, provider: SmtpProvider, clock: FrozenClock
) -> None:
    sub = submission()
    accepted = await provider.submit(sub)

    [received] = server.handler.messages
    assert received.mail_from == SENDER
    assert received.rcpt_tos == [RECIPIENT]
    message = parsed(received.content)
    assert message["Subject"] == SUBJECT
    assert message.get_content().replace("\r\n", "\n") == BODY
    assert message.get_content_charset() == "utf-8"
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (COURT, SENDER)
    assert message["To"] == RECIPIENT
    assert message["Message-ID"] == sub.message_id
    assert message["X-Yunting-Attempt"] == str(sub.attempt_id)
    assert message["Date"].datetime == clock.now()
    # 7-bit on the wire, whatever the server's extensions.
    assert received.content.isascii()

    assert accepted == Accepted(
        provider_id=sub.message_id,
        raw="DATA: 250 2.0.0 Ok: queued as Q1\nRCPT: 250 2.1.5 OK",
        reached_recipient_system=False,
    )


async def test_acceptance_by_the_recipients_own_server_reaches_their_system(
    server: SmtpTestServer, clock: FrozenClock
) -> None:
    async with running(config_for(server, final_hop=True), clock) as provider:
        accepted = await provider.submit(submission())
    assert accepted.reached_recipient_system is True


async def test_a_long_court_name_and_subject_survive_folding(
    server: SmtpTestServer, clock: FrozenClock
) -> None:
    name = "新疆维吾尔自治区高级人民法院生产建设兵团分院"
    subject = "关于（2026）新40民初1号案件的电子送达通知，请于七日内查看并签收" * 3
    async with running(config_for(server, sender_name=name), clock) as provider:
        await provider.submit(submission(subject=subject))
    message = parsed(server.handler.messages[0].content)
    assert message["Subject"] == subject
    assert all(len(line) <= 78 for line in server.handler.messages[0].content.split(b"\r\n"))
    # The stdlib's modern parser puts a space between adjacent encoded words in a display name,
    # against RFC 2047 §6.2; the compat32 decoder (and mail clients) join them.
    raw_from = message_from_bytes(server.handler.messages[0].content, policy=policy.compat32)
    assert str(make_header(decode_header(raw_from["From"]))) == f"{name} <{SENDER}>"


async def test_an_internationalised_address_is_sent_with_smtputf8(
    server: SmtpTestServer, provider: SmtpProvider
) -> None:
    await provider.submit(submission("张三@例子.中国"))
    [received] = server.handler.messages
    assert received.rcpt_tos == ["张三@例子.中国"]
    assert "SMTPUTF8" in received.mail_options
    message = message_from_string(received.content.decode("utf-8"), policy=policy.default)
    assert message["To"] == "张三@例子.中国"
    assert message["Subject"] == SUBJECT


async def test_an_ascii_address_at_a_chinese_domain_goes_as_idna(
    server: SmtpTestServer, provider: SmtpProvider
) -> None:
    await provider.submit(submission("li@例子.中国"))
    [received] = server.handler.messages
    assert received.rcpt_tos == ["li@xn--fsqu00a.xn--fiqs8s"]
    assert "SMTPUTF8" not in received.mail_options


@pytest.mark.parametrize(
    ("final_hop", "kind"), [(False, FailureKind.TECHNICAL), (True, FailureKind.PERMANENT)]
)
async def test_a_server_without_smtputf8_cannot_take_an_internationalised_address(
    clock: FrozenClock, final_hop: bool, kind: FailureKind
) -> None:
    with SmtpTestServer(enable_SMTPUTF8=False) as server:
        async with running(config_for(server, final_hop=final_hop), clock) as provider:
            error = await refused(provider, submission("张三@例子.中国"))
    assert (error.kind, error.code) == (kind, "smtputf8_unsupported")
    assert server.handler.messages == []


# Connections -----------------------------------------------------------------------------------


async def test_two_sends_reuse_one_connection(
    server: SmtpTestServer, provider: SmtpProvider
) -> None:
    await provider.submit(submission())
    await provider.submit(submission())
    assert server.handler.message_count == 2
    assert (server.handler.connections, server.handler.ehlos) == (1, 1)
    assert server.handler.noops == 0  # not idle long enough to need a probe


async def test_a_connection_idle_for_a_while_is_probed_with_noop_before_reuse(
    server: SmtpTestServer, clock: FrozenClock
) -> None:
    async with running(config_for(server, idle_probe_after=1e-6), clock) as provider:
        await provider.submit(submission())
        await provider.submit(submission())
    assert (server.handler.noops, server.handler.connections) == (1, 1)
    assert server.handler.message_count == 2


async def test_concurrent_sends_share_a_bounded_pool(
    server: SmtpTestServer, clock: FrozenClock
) -> None:
    async with running(config_for(server, pool_size=3), clock) as provider:
        subs = [submission() for _ in range(12)]
        accepted = await asyncio.gather(*(provider.submit(s) for s in subs))
    assert [a.provider_id for a in accepted] == [s.message_id for s in subs]
    assert server.handler.message_count == 12
    assert 1 <= server.handler.connections <= 3


async def test_a_connection_is_replaced_after_its_message_limit(
    server: SmtpTestServer, clock: FrozenClock
) -> None:
    async with running(config_for(server, max_messages_per_connection=2), clock) as provider:
        for _ in range(3):
            await provider.submit(submission())
    assert (server.handler.message_count, server.handler.connections) == (3, 2)


@pytest.mark.parametrize("idle_probe_after", [15.0, 1e-6], ids=["found-at-mail", "found-by-noop"])
async def test_the_next_send_reconnects_after_the_server_closed_the_idle_connection(
    server: SmtpTestServer, clock: FrozenClock, idle_probe_after: float
) -> None:
    async with running(config_for(server, idle_probe_after=idle_probe_after), clock) as provider:
        await provider.submit(submission())
        server.drop_connections()
        await provider.submit(submission())
    assert (server.handler.message_count, server.handler.connections) == (2, 2)


async def test_a_reused_connection_found_dead_at_mail_is_retried_once(
    server: SmtpTestServer, provider: SmtpProvider
) -> None:
    # The server vanished between messages but the client has not noticed yet.
    await provider.submit(submission())
    server.handler.script("MAIL", DROP)
    sub = submission()
    accepted = await provider.submit(sub)
    assert accepted.provider_id == sub.message_id
    assert (server.handler.message_count, server.handler.connections) == (2, 2)
    assert parsed(server.handler.messages[1].content)["Message-ID"] == sub.message_id


async def test_a_reused_connection_answered_421_at_mail_is_retried_once(
    server: SmtpTestServer, provider: SmtpProvider
) -> None:
    await provider.submit(submission())
    server.handler.script("MAIL", "421 4.4.2 mx.test.example Error: timeout exceeded")
    await provider.submit(submission())
    assert (server.handler.message_count, server.handler.connections) == (2, 2)


async def test_a_fresh_connection_dying_before_data_is_not_retried(
    server: SmtpTestServer, provider: SmtpProvider
) -> None:
    server.handler.script("MAIL", DROP)
    error = await refused(provider, submission())
    assert (error.kind, error.code) == (FailureKind.TECHNICAL, "connection_lost")
    assert (server.handler.message_count, server.handler.connections) == (0, 1)


async def test_a_message_is_never_sent_twice_when_the_reply_to_data_is_lost(
    server: SmtpTestServer, provider: SmtpProvider
) -> None:
    await provider.submit(submission())  # a reused connection would allow a retry before DATA
    server.handler.script("DATA", STORE_THEN_DROP)
    error = await refused(provider, submission())
    assert (error.kind, error.code) == (FailureKind.TECHNICAL, "data_outcome_unknown")
    assert server.handler.message_count == 2
    # The provider itself is fine: the next message goes out on a new connection.
    await provider.submit(submission())
    assert (server.handler.message_count, server.handler.connections) == (3, 2)


async def test_stop_quits_and_later_submissions_are_refused(
    server: SmtpTestServer, clock: FrozenClock
) -> None:
    provider = SmtpProvider(config_for(server), clock=clock)
    await provider.start(_no_receipts)
    await provider.submit(submission())
    await provider.stop()
    error = await refused(provider, submission())
    assert (error.kind, error.code) == (FailureKind.TECHNICAL, "not_started")


# DSN (RFC 3461) --------------------------------------------------------------------------------


async def test_dsn_is_requested_when_the_server_offers_it(clock: FrozenClock) -> None:
    with SmtpTestServer(handler=RecordingHandler(advertise_dsn=True)) as server:
        async with running(config_for(server), clock) as provider:
            sub = submission()
            await provider.submit(sub)
    [received] = server.handler.messages
    assert "RET=HDRS" in received.mail_options
    assert f"ENVID={sub.attempt_id}" in received.mail_options
    assert received.rcpt_options == ["NOTIFY=SUCCESS,FAILURE,DELAY"]


@pytest.mark.parametrize(
    ("advertise_dsn", "request_dsn", "request_receipt"),
    [(False, True, True), (True, False, True), (True, True, False)],
    ids=["server-without-dsn", "dsn-off-in-config", "no-receipt-wanted"],
)
async def test_dsn_is_not_requested_otherwise(
    clock: FrozenClock, advertise_dsn: bool, request_dsn: bool, request_receipt: bool
) -> None:
    # A server without DSN refuses the parameters (555), so the message arriving proves it.
    handler = RecordingHandler(advertise_dsn=advertise_dsn)
    with SmtpTestServer(handler=handler) as server:
        async with running(config_for(server, request_dsn=request_dsn), clock) as provider:
            await provider.submit(submission(request_receipt=request_receipt))
    [received] = server.handler.messages
    assert not [o for o in received.mail_options if o.startswith(("RET=", "ENVID="))]
    assert received.rcpt_options == []


# TLS and authentication ------------------------------------------------------------------------


async def test_starttls_with_a_certificate_from_our_own_ca(
    tls_files: TlsFiles, clock: FrozenClock
) -> None:
    # require_starttls: the server refuses MAIL with 530 on a plain connection.
    with SmtpTestServer(tls_context=tls_files.server_context(), require_starttls=True) as server:
        config = config_for(server, tls="starttls", cafile=str(tls_files.cafile))
        async with running(config, clock) as provider:
            await provider.submit(submission())
            await provider.submit(submission())
    assert (server.handler.message_count, server.handler.connections) == (2, 1)
    assert server.handler.ehlos == 2  # before and after STARTTLS (RFC 3207 §4.2)


async def test_implicit_tls_from_the_first_byte(tls_files: TlsFiles, clock: FrozenClock) -> None:
    with SmtpTestServer(ssl_context=tls_files.server_context()) as server:
        config = config_for(server, tls="implicit", cafile=str(tls_files.cafile))
        async with running(config, clock) as provider:
            await provider.submit(submission())
    assert server.handler.message_count == 1


async def test_starttls_refuses_a_certificate_it_cannot_verify(
    tls_files: TlsFiles, clock: FrozenClock
) -> None:
    with SmtpTestServer(tls_context=tls_files.server_context(), require_starttls=True) as server:
        async with running(config_for(server, tls="starttls"), clock) as provider:
            error = await refused(provider, submission())
    assert (error.kind, error.code) == (FailureKind.TECHNICAL, "tls_failed")
    assert "CERTIFICATE_VERIFY_FAILED" in error.raw
    assert server.handler.message_count == 0


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode()
    # handled=False: aiosmtpd answers a failure itself ("535 5.7.8 ...").
    return AuthResult(success=ok, handled=False)


def auth_server(tls_files: TlsFiles) -> SmtpTestServer:
    return SmtpTestServer(
        tls_context=tls_files.server_context(),
        require_starttls=True,
        auth_required=True,
        authenticator=_authenticator,
    )


def auth_config(server: SmtpTestServer, tls_files: TlsFiles, password: str) -> SmtpConfig:
    return config_for(
        server, tls="starttls", cafile=str(tls_files.cafile), username="yunting", password=password
    )


async def test_authentication_over_starttls(tls_files: TlsFiles, clock: FrozenClock) -> None:
    with auth_server(tls_files) as server:
        async with running(auth_config(server, tls_files, PASSWORD), clock) as provider:
            await provider.submit(submission())
    assert server.handler.message_count == 1


async def test_refused_credentials_are_a_technical_failure(
    tls_files: TlsFiles, clock: FrozenClock
) -> None:
    with auth_server(tls_files) as server:
        async with running(auth_config(server, tls_files, "wrong"), clock) as provider:
            error = await refused(provider, submission())
    # Our credentials are wrong: no other address would fare better.
    assert (error.kind, error.code) == (FailureKind.TECHNICAL, "535 5.7.8")
    assert error.raw.startswith("AUTH: 535 5.7.8")
    assert server.handler.message_count == 0


# Refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "reply", "kind", "code"),
    [
        (
            "RCPT",
            f"550 5.1.1 <{RECIPIENT}>: Recipient address rejected: User unknown",
            FailureKind.PERMANENT,
            "550 5.1.1",
        ),
        ("RCPT", "451 4.3.0 Temporary lookup failure", FailureKind.TEMPORARY, "451 4.3.0"),
        ("RCPT", "452 4.2.2 Mailbox full", FailureKind.TEMPORARY, "452 4.2.2"),
        ("MAIL", "530 5.7.0 Authentication required", FailureKind.TECHNICAL, "530 5.7.0"),
        ("DATA", "554 5.7.1 Message rejected as spam", FailureKind.PERMANENT, "554 5.7.1"),
    ],
)
async def test_a_refusal_is_classified_and_the_connection_stays_usable(
    server: SmtpTestServer,
    provider: SmtpProvider,
    command: str,
    reply: str,
    kind: FailureKind,
    code: str,
) -> None:
    server.handler.script(command, reply)
    error = await refused(provider, submission())
    assert (error.kind, error.code) == (kind, code)
    assert error.raw == f"{command}: {reply}"
    assert server.handler.message_count == 0
    # RSET cleared the envelope: the same connection carries the next message.
    await provider.submit(submission())
    assert (server.handler.message_count, server.handler.connections) == (1, 1)


async def test_an_invalid_address_is_refused_without_connecting(
    server: SmtpTestServer, provider: SmtpProvider
) -> None:
    for address in ("zhang.san", "zhang..san@example.com", "zhang@", "a b@example.com"):
        error = await refused(provider, submission(address))
        assert (error.kind, error.code) == (FailureKind.PERMANENT, "invalid_address")
    assert server.handler.connections == 0


async def test_a_server_that_is_not_listening_is_a_technical_failure(clock: FrozenClock) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = SmtpConfig(
        host="127.0.0.1", port=port, tls="none", sender=SENDER, helo_hostname="yunting.test"
    )
    async with running(config, clock) as provider:
        error = await refused(provider, submission())
    assert (error.kind, error.code) == (FailureKind.TECHNICAL, "connection_failed")
    assert str(port) in error.raw
