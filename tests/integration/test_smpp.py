"""SMS over SMPP 3.4 against a real SMSC peer on loopback (``tests/smpp_peer.py``): binds,
submissions, receipts, throttling, reconnects and the window, over real TCP."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.smpp_peer import Behaviour, SmppPeer, mobile_originated
from yunting.infra.clock import FrozenClock
from yunting.service_delivery.ports import (
    Channel,
    FailureKind,
    ProviderError,
    Receipt,
    ReceiptSink,
    ReceiptStatus,
    Reply,
    Submission,
)
from yunting.service_delivery.providers.smpp import (
    BindMode,
    LongMessageMode,
    SmppBindError,
    SmppConfig,
    SmppProvider,
)
from yunting.service_delivery.providers.smpp_pdu import (
    CommandStatus,
    DataCoding,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Unbind,
    UnbindResp,
    UnknownPdu,
)

NOW = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
PHONE = "+8613800138000"
NOTICE = "【北京互联网法院】您的案件将于2026年12月1日9:30在线开庭，请按时登录。"


class Sink:
    """A ReceiptSink that keeps what it is given; ``fail_next`` makes the next calls raise."""

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self.fail_next = 0
        self.calls = 0

    async def __call__(self, receipt: Receipt) -> None:
        self.calls += 1
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("database unavailable")
        self.receipts.append(receipt)


def submission(recipient: str = PHONE, body: str = NOTICE, *, receipt: bool = True) -> Submission:
    attempt = uuid.uuid4()
    return Submission(
        attempt_id=attempt,
        channel=Channel.SMS,
        recipient=recipient,
        subject="",
        body=body,
        message_id=f"{attempt}@sms",
        request_receipt=receipt,
    )


def config(peer: SmppPeer, **overrides: Any) -> SmppConfig:
    base = SmppConfig(
        host="127.0.0.1",
        port=peer.port,
        system_id="court",
        password="secret",
        source_addr="106900001",
        response_timeout=2.0,
        connect_timeout=2.0,
        reconnect_backoff_min=0.05,
        reconnect_backoff_max=0.2,
        throttle_pause=0.2,
        receipt_timezone="Asia/Shanghai",
    )
    return replace(base, **overrides)


@pytest.fixture
async def peer() -> AsyncIterator[SmppPeer]:
    # The SMSC stamps receipts in Beijing time, as the provider is configured to read them.
    async with SmppPeer(receipt_timezone=ZoneInfo("Asia/Shanghai")) as smsc:
        yield smsc


@pytest.fixture
def sink() -> Sink:
    return Sink()


@contextlib.asynccontextmanager
async def running(cfg: SmppConfig, sink: ReceiptSink) -> AsyncIterator[SmppProvider]:
    provider = SmppProvider(cfg, clock=FrozenClock(NOW))
    await provider.start(sink)
    try:
        yield provider
    finally:
        await provider.stop()


async def test_a_notice_is_accepted_and_its_delivery_receipt_matched(
    peer: SmppPeer, sink: Sink
) -> None:
    async with running(config(peer), sink) as provider:
        accepted = await provider.submit(submission())
        await peer.wait_until(lambda: peer.receipts_acked == 1)

    [sent] = peer.submits
    assert sent.text == NOTICE
    assert sent.data_coding == DataCoding.UCS2
    assert (sent.destination, sent.dest_addr_ton, sent.dest_addr_npi) == ("8613800138000", 1, 1)
    assert sent.source == "106900001"
    assert sent.registered_delivery == 1
    assert accepted.provider_id == sent.message_id
    # The SMSC's reply verbatim: readable, and its bytes.
    assert f"message_id='{sent.message_id}'" in accepted.raw
    assert sent.message_id.encode().hex() in accepted.raw

    [receipt] = sink.receipts
    assert receipt.channel is Channel.SMS
    assert receipt.provider_id == accepted.provider_id
    assert receipt.status is ReceiptStatus.DELIVERED
    assert receipt.error_code == "000"
    assert "stat:DELIVRD" in receipt.raw
    assert receipt.received_at == NOW
    # "done date" in Beijing time became UTC: within the two minutes around now.
    assert receipt.happened_at is not None
    assert receipt.happened_at.utcoffset() == timedelta(0)
    assert abs(receipt.happened_at - datetime.now(UTC)) < timedelta(minutes=2)
    assert peer.unbinds_received == 1  # stop() unbinds politely


async def test_without_a_receipt_request_none_is_asked_for(peer: SmppPeer, sink: Sink) -> None:
    async with running(config(peer), sink) as provider:
        await provider.submit(submission(body="Hearing moved to room 3", receipt=False))
        await provider.submit(submission(body="marker"))
        await peer.wait_until(lambda: peer.receipts_acked == 1)
    assert [s.registered_delivery for s in peer.submits] == [0, 1]
    assert peer.submits[0].data_coding == DataCoding.DEFAULT
    assert [r.provider_id for r in sink.receipts] == [peer.submits[1].message_id]


async def test_an_undeliverable_message_gets_a_permanent_failure(
    peer: SmppPeer, sink: Sink
) -> None:
    peer.configure(PHONE, Behaviour.UNDELIVERABLE)
    async with running(config(peer), sink) as provider:
        accepted = await provider.submit(submission())
        await peer.wait_until(lambda: peer.receipts_acked == 1)
    [receipt] = sink.receipts
    assert receipt.provider_id == accepted.provider_id
    assert receipt.status is ReceiptStatus.PERMANENT_FAILURE
    assert "stat:UNDELIV" in receipt.raw


async def test_a_delayed_receipt_arrives_later(peer: SmppPeer, sink: Sink) -> None:
    peer.configure(PHONE, Behaviour.DELAYED, delay=0.5)
    async with running(config(peer), sink) as provider:
        loop = asyncio.get_running_loop()
        started = loop.time()
        accepted = await provider.submit(submission())
        await asyncio.sleep(0.2)
        assert sink.receipts == []
        await peer.wait_until(lambda: peer.receipts_acked == 1)
        assert loop.time() - started >= 0.5
    assert [r.provider_id for r in sink.receipts] == [accepted.provider_id]


async def test_a_duplicated_receipt_reaches_the_sink_twice(peer: SmppPeer, sink: Sink) -> None:
    # Our service keeps the second as evidence and moves nothing; the provider passes both on.
    peer.configure(PHONE, Behaviour.DUPLICATED)
    async with running(config(peer), sink) as provider:
        accepted = await provider.submit(submission())
        await peer.wait_until(lambda: peer.receipts_acked == 2)
    assert [r.provider_id for r in sink.receipts] == [accepted.provider_id] * 2
    assert all(r.status is ReceiptStatus.DELIVERED for r in sink.receipts)


async def test_a_receipt_before_the_submit_response_still_names_the_message(
    peer: SmppPeer, sink: Sink
) -> None:
    peer.configure(PHONE, Behaviour.OUT_OF_ORDER)
    async with running(config(peer), sink) as provider:
        accepted = await provider.submit(submission())
        await peer.wait_until(lambda: peer.receipts_acked == 1)
    assert [r.provider_id for r in sink.receipts] == [accepted.provider_id]


async def test_throttling_pauses_sending_and_the_message_goes_through(
    peer: SmppPeer, sink: Sink
) -> None:
    throttled, other = "+8613800000001", "+8613800000002"
    peer.configure(throttled, Behaviour.THROTTLED, count=2)
    async with running(config(peer, throttle_pause=0.3), sink) as provider:

        async def later() -> None:
            await asyncio.sleep(0.1)
            await provider.submit(submission(other))

        accepted, _ = await asyncio.gather(provider.submit(submission(throttled)), later())

    to_throttled = [s for s in peer.submits if s.destination == throttled[1:]]
    assert [s.status for s in to_throttled] == [
        CommandStatus.ESME_RTHROTTLED,
        CommandStatus.ESME_RTHROTTLED,
        CommandStatus.ESME_ROK,
    ]
    assert accepted.provider_id == to_throttled[-1].message_id
    # Each retry waited out the pause...
    assert to_throttled[1].at - to_throttled[0].at >= 0.29
    assert to_throttled[2].at - to_throttled[1].at >= 0.29
    # ...and so did everyone else: the other message was held back too.
    [to_other] = [s for s in peer.submits if s.destination == other[1:]]
    assert to_other.at - to_throttled[0].at >= 0.29


async def test_throttling_that_does_not_end_is_a_temporary_failure(
    peer: SmppPeer, sink: Sink
) -> None:
    peer.configure(PHONE, Behaviour.THROTTLED, count=100)
    async with running(config(peer, throttle_pause=0.05, throttle_retries=2), sink) as provider:
        with pytest.raises(ProviderError) as caught:
            await provider.submit(submission())
    assert caught.value.kind is FailureKind.TEMPORARY
    assert caught.value.code == "ESME_RTHROTTLED"
    assert "status=0x00000058" in caught.value.raw
    assert len(peer.submits) == 3  # the first try and two retries


async def test_an_invalid_destination_is_a_permanent_failure(peer: SmppPeer, sink: Sink) -> None:
    peer.configure(PHONE, Behaviour.REJECTED)
    async with running(config(peer), sink) as provider:
        with pytest.raises(ProviderError) as caught:
            await provider.submit(submission())
    assert caught.value.kind is FailureKind.PERMANENT
    assert caught.value.code == "ESME_RINVDSTADR"
    assert "submit_sm_resp" in caught.value.raw


@pytest.mark.parametrize(
    "recipient", ["13800138000", "+86 138 0013 8000", "+0123456789", "+12", "+86138001x8000"]
)
async def test_a_number_that_is_not_e164_is_refused_before_sending(
    peer: SmppPeer, sink: Sink, recipient: str
) -> None:
    async with running(config(peer), sink) as provider:
        with pytest.raises(ProviderError) as caught:
            await provider.submit(submission(recipient))
    assert caught.value.kind is FailureKind.PERMANENT
    assert caught.value.code == "invalid_address"
    assert recipient not in str(caught.value)  # errors get logged; numbers must not
    assert peer.submits == []


async def test_after_the_smsc_drops_the_connection_the_provider_rebinds(
    peer: SmppPeer, sink: Sink
) -> None:
    async with running(config(peer), sink) as provider:
        await provider.submit(submission())
        await peer.wait_until(lambda: peer.receipts_acked == 1)
        await peer.drop_connections()
        await peer.wait_until(lambda: len(peer.binds) == 2 and peer.bound_sessions != [])
        await provider.submit(submission())
        await peer.wait_until(lambda: peer.receipts_acked == 2)
    assert [b[2] for b in peer.binds] == [CommandStatus.ESME_ROK] * 2
    assert len(sink.receipts) == 2


async def test_a_receipt_unacknowledged_when_the_link_drops_comes_again(
    peer: SmppPeer,
) -> None:
    storing = asyncio.Event()
    release = asyncio.Event()
    stored: list[str] = []

    async def blocking_sink(receipt: Receipt) -> None:
        if not stored:
            storing.set()
            await release.wait()
        stored.append(receipt.provider_id)

    async with running(config(peer), blocking_sink) as provider:
        accepted = await provider.submit(submission())
        await storing.wait()
        await peer.drop_connections()  # before the deliver_sm_resp could go out
        release.set()
        await peer.wait_until(lambda: peer.receipts_acked == 1)
    assert stored == [accepted.provider_id] * 2  # the service keeps the duplicate as evidence
    assert peer.receipts_sent == 2


async def test_submissions_during_a_reconnect_wait_for_the_new_bind(
    peer: SmppPeer, sink: Sink
) -> None:
    async with running(
        config(peer, reconnect_backoff_min=0.3, reconnect_backoff_max=0.6), sink
    ) as provider:
        await peer.drop_connections()
        await asyncio.sleep(0.05)
        accepted = await provider.submit(submission())
    assert accepted.provider_id == peer.submits[0].message_id
    assert len(peer.binds) == 2


async def test_an_unbind_from_the_smsc_is_answered_and_the_session_restored(
    peer: SmppPeer, sink: Sink
) -> None:
    async with running(config(peer), sink) as provider:
        answer = await peer.request(lambda seq: Unbind(sequence_number=seq))
        assert isinstance(answer, UnbindResp)
        await peer.wait_until(lambda: len(peer.binds) == 2 and peer.bound_sessions != [])
        await provider.submit(submission())
    assert peer.submits[0].status == CommandStatus.ESME_ROK


async def test_the_provider_answers_the_smscs_requests(peer: SmppPeer, sink: Sink) -> None:
    async with running(config(peer), sink):
        answer = await peer.request(lambda seq: EnquireLink(sequence_number=seq))
        assert isinstance(answer, EnquireLinkResp)
        # data_sm is not implemented: generic_nack, and the session carries on.
        nack = await peer.request(lambda seq: UnknownPdu(command_id=0x103, sequence_number=seq))
        assert isinstance(nack, GenericNack)
        assert nack.command_status == CommandStatus.ESME_RINVCMDID
        assert peer.binds == [("transceiver", "court", CommandStatus.ESME_ROK)]


async def test_the_link_is_kept_alive_with_enquire_link(peer: SmppPeer, sink: Sink) -> None:
    async with running(config(peer, enquire_link_interval=0.1), sink):
        await peer.wait_until(lambda: peer.enquire_links_received >= 3)


async def test_a_wrong_password_fails_start_clearly(peer: SmppPeer, sink: Sink) -> None:
    provider = SmppProvider(config(peer, password="wrong"), clock=FrozenClock(NOW))
    with pytest.raises(SmppBindError, match="password") as caught:
        await provider.start(sink)
    assert caught.value.code == "ESME_RINVPASWD"
    assert caught.value.kind is FailureKind.TECHNICAL
    assert "wrong" not in str(caught.value)
    assert peer.binds == [("transceiver", "court", CommandStatus.ESME_RINVPASWD)]
    with pytest.raises(ProviderError) as not_started:
        await provider.submit(submission())
    assert not_started.value.code == "not_started"


async def test_an_smsc_that_is_not_there_yet_is_waited_for(sink: Sink) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    absent = SmppConfig(
        host="127.0.0.1",
        port=port,
        system_id="court",
        password="secret",
        response_timeout=0.3,
        reconnect_backoff_min=0.05,
        reconnect_backoff_max=0.1,
    )
    provider = SmppProvider(absent, clock=FrozenClock(NOW))
    await provider.start(sink)  # does not raise: the SMSC may come up later
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.submit(submission())
        assert caught.value.kind is FailureKind.TECHNICAL
        assert caught.value.code == "not_bound"
        async with SmppPeer(port=port) as late:
            await late.wait_until(lambda: late.bound_sessions != [])
            accepted = await provider.submit(submission())
            assert accepted.provider_id == late.submits[0].message_id
    finally:
        await provider.stop()


async def test_the_window_bounds_unanswered_submissions(peer: SmppPeer, sink: Sink) -> None:
    peer.response_delay = 0.1
    async with running(config(peer, window=3), sink) as provider:
        accepted = await asyncio.gather(*(provider.submit(submission()) for _ in range(12)))
    assert peer.max_outstanding == 3
    assert len({a.provider_id for a in accepted}) == 12


async def test_no_answer_in_time_is_a_technical_failure(peer: SmppPeer, sink: Sink) -> None:
    peer.response_delay = 1.0
    async with running(config(peer, response_timeout=0.2), sink) as provider:
        with pytest.raises(ProviderError) as caught:
            await provider.submit(submission())
    assert caught.value.kind is FailureKind.TECHNICAL
    assert caught.value.code == "timeout"


async def test_a_receipt_the_sink_could_not_store_is_delivered_again(
    peer: SmppPeer, sink: Sink
) -> None:
    sink.fail_next = 1
    async with running(config(peer), sink) as provider:
        accepted = await provider.submit(submission())
        await peer.wait_until(lambda: peer.receipts_acked == 1)
    assert peer.receipts_nacked == 1  # answered ESME_RX_T_APPN
    assert sink.calls == 2
    assert [r.provider_id for r in sink.receipts] == [accepted.provider_id]


async def test_the_receipt_is_acknowledged_only_after_the_sink_returns(
    peer: SmppPeer,
) -> None:
    acked_while_storing: list[int] = []

    async def slow_sink(receipt: Receipt) -> None:
        await asyncio.sleep(0.2)  # the SMSC would have seen an early ack by now
        acked_while_storing.append(peer.receipts_acked)

    async with running(config(peer), slow_sink) as provider:
        await provider.submit(submission())
        await peer.wait_until(lambda: peer.receipts_acked == 1)
    assert acked_while_storing == [0]


async def test_a_transmitter_and_a_receiver_on_two_connections(peer: SmppPeer, sink: Sink) -> None:
    cfg = config(peer, bind_mode=BindMode.TRANSMITTER_RECEIVER)
    async with running(cfg, sink) as provider:
        assert sorted(peer.bound_sessions) == ["receiver", "transmitter"]
        accepted = await provider.submit(submission())
        await peer.wait_until(lambda: peer.receipts_acked == 1)
    assert [r.provider_id for r in sink.receipts] == [accepted.provider_id]
    assert peer.unbinds_received == 2


async def test_a_long_notice_goes_whole_in_message_payload(peer: SmppPeer, sink: Sink) -> None:
    long_notice = NOTICE * 4
    async with running(config(peer), sink) as provider:
        accepted = await provider.submit(submission(body=long_notice))
        await peer.wait_until(lambda: peer.receipts_acked == 1)
    [sent] = peer.submits
    assert sent.used_payload
    assert sent.text == long_notice
    assert [r.provider_id for r in sink.receipts] == [accepted.provider_id]


async def test_a_long_notice_can_go_in_concatenated_parts(peer: SmppPeer, sink: Sink) -> None:
    long_notice = NOTICE * 4
    cfg = config(peer, long_messages=LongMessageMode.CONCATENATED)
    async with running(cfg, sink) as provider:
        accepted = await provider.submit(submission(body=long_notice))
    parts = peer.submits
    assert len(parts) == 3
    assert all(p.concatenation is not None and not p.used_payload for p in parts)
    assert [p.concatenation.sequence for p in parts if p.concatenation] == [1, 2, 3]
    assert "".join(p.text for p in parts) == long_notice
    assert accepted.provider_id == parts[0].message_id
    assert all(p.message_id in accepted.raw for p in parts)


async def test_thousands_of_messages_and_receipts_get_through(peer: SmppPeer, sink: Sink) -> None:
    # Not a timing test (that is bench/): the peer and the provider keep up without loss.
    n = 2000
    async with running(config(peer, window=50), sink) as provider:
        accepted = await asyncio.gather(
            *(provider.submit(submission(body=f"notice {i}")) for i in range(n))
        )
        await peer.wait_until(lambda: peer.receipts_acked == n, timeout=60)
    assert {r.provider_id for r in sink.receipts} == {a.provider_id for a in accepted}


def handset_reply(seq: int) -> DeliverSm:
    return mobile_originated(seq, "收到", sender=PHONE[1:])


async def test_a_reply_is_handed_to_the_reply_sink_and_answered_only_once_stored(
    peer: SmppPeer, sink: Sink
) -> None:
    replies: list[Reply] = []
    failures = [RuntimeError("database unavailable")]

    async def reply_sink(reply: Reply) -> None:
        if failures:
            raise failures.pop()
        replies.append(reply)

    provider = SmppProvider(config(peer), clock=FrozenClock(NOW))
    await provider.start(sink, reply_sink)
    try:
        await peer.wait_until(lambda: peer.bound_sessions != [])
        # Not stored: the SMSC is asked to deliver it again (§5.1.3 ESME_RX_T_APPN).
        refused = await peer.request(handset_reply)
        assert isinstance(refused, DeliverSmResp)
        assert refused.command_status == CommandStatus.ESME_RX_T_APPN
        assert replies == []
        taken = await peer.request(handset_reply)
        assert isinstance(taken, DeliverSmResp)
        assert taken.command_status == CommandStatus.ESME_ROK
    finally:
        await provider.stop()
    (reply,) = replies
    assert (reply.channel, reply.sender, reply.text, reply.received_at) == (
        Channel.SMS,
        PHONE,
        "收到",
        NOW,
    )
    assert sink.calls == 0  # not a receipt


async def test_without_a_reply_sink_a_reply_is_acknowledged_and_dropped(
    peer: SmppPeer, sink: Sink
) -> None:
    async with running(config(peer), sink):
        await peer.wait_until(lambda: peer.bound_sessions != [])
        answer = await peer.request(handset_reply)
        assert isinstance(answer, DeliverSmResp)
        assert answer.command_status == CommandStatus.ESME_ROK
    assert sink.calls == 0
