"""A test SMSC: real SMPP 3.4 over TCP on loopback, built on our codec (``smpp_pdu``).

It binds ESMEs (checking system_id and password), answers submit_sm with generated message ids
and sends deliver_sm delivery receipts. What happens to a message depends on its destination
(``configure``): delivered (the default), undeliverable, delayed, duplicated receipts, a receipt
sent *before* the submit_sm_resp, throttled, rejected at submit, or no receipt at all. A receipt
answered with a non-zero deliver_sm_resp — or outstanding when its connection drops — is
delivered again later, as a real SMSC does. It keeps up with thousands of submits per second:
nothing sleeps unless a test asks for it.

    async with SmppPeer(system_id="court", password="secret") as peer:
        peer.configure("+8613800000002", Behaviour.UNDELIVERABLE)
        ... SmppConfig(host="127.0.0.1", port=peer.port, ...) ...
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import struct
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from types import TracebackType
from typing import Any

from yunting.service_delivery.providers.smpp_pdu import (
    ESM_CLASS_DELIVERY_RECEIPT,
    ESM_CLASS_UDHI,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CommandStatus,
    Concatenation,
    DataCoding,
    DeliverSm,
    EnquireLink,
    EnquireLinkResp,
    FramingError,
    GenericNack,
    MalformedPdu,
    MessageState,
    Pdu,
    PduDecoder,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    TlvTag,
    Unbind,
    UnbindResp,
    decode_text,
    encode,
    encode_text,
    find_tlv,
    is_response,
    receipt_text,
    split_udh,
)

_BindRequest = BindTransmitter | BindReceiver | BindTransceiver


class Behaviour(StrEnum):
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"  # receipt stat UNDELIV
    DELAYED = "delayed"  # DELIVRD receipt after ``delay`` seconds
    DUPLICATED = "duplicated"  # the DELIVRD receipt twice
    OUT_OF_ORDER = "out_of_order"  # the receipt written before the submit_sm_resp
    THROTTLED = "throttled"  # the first ``count`` submits get ESME_RTHROTTLED, then delivered
    REJECTED = "rejected"  # submit_sm_resp ESME_RINVDSTADR
    NO_RECEIPT = "no_receipt"  # accepted, never a receipt


@dataclass(slots=True)
class _Rule:
    behaviour: Behaviour
    delay: float = 0.0
    count: int = 0


@dataclass(frozen=True, slots=True)
class SubmitRecord:
    """One submit_sm as the SMSC saw it."""

    destination: str  # as sent (digits, no "+")
    dest_addr_ton: int
    dest_addr_npi: int
    source: str
    text: str  # decoded, UDH stripped, from short_message or message_payload
    data_coding: int
    esm_class: int
    registered_delivery: int
    concatenation: Concatenation | None
    used_payload: bool
    status: int  # the command_status answered
    message_id: str  # "" when refused
    at: float  # event loop time it arrived


@dataclass(slots=True)
class _ReceiptJob:
    message_id: str
    destination: str
    source: str
    stat: str
    state: MessageState
    text: str
    submitted_at: datetime
    deliveries: int = 0


@dataclass(eq=False, slots=True)
class _Session:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    bound_as: str = ""  # "", "transmitter", "receiver", "transceiver"
    sequence: int = 0
    decoder: PduDecoder = field(default_factory=PduDecoder)
    pending: dict[int, asyncio.Future[Pdu]] = field(default_factory=dict)
    receipts: dict[int, _ReceiptJob] = field(default_factory=dict)  # deliver_sm seq → job
    closed: bool = False
    # What one turn of the loop writes leaves in one send(), as a busy SMSC batches.
    outgoing: bytearray = field(default_factory=bytearray)
    flush_scheduled: bool = False

    @property
    def receives(self) -> bool:
        return self.bound_as in ("receiver", "transceiver")

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    def send(self, pdu: Pdu) -> None:
        self.send_bytes(encode(pdu))

    def send_bytes(self, data: bytes) -> None:
        if self.closed:
            return
        self.outgoing += data
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        if self.outgoing and not self.closed:
            self.writer.write(bytes(self.outgoing))
        self.outgoing.clear()


class SmppPeer:
    """An SMSC on 127.0.0.1. ``port=0`` picks a free port (read ``.port`` after entering)."""

    def __init__(
        self,
        *,
        system_id: str = "court",
        password: str = "secret",  # noqa: S107 - a test SMSC's default
        port: int = 0,
        response_delay: float = 0.0,
        redelivery_delay: float = 0.05,
        receipt_tlvs: bool = True,
        receipt_timezone: tzinfo = UTC,
    ) -> None:
        self.system_id = system_id
        self.password = password
        self.port = port
        # Hold every submit_sm_resp this long (to watch the client's window fill up).
        self.response_delay = response_delay
        self.redelivery_delay = redelivery_delay
        # Also carry receipted_message_id / message_state TLVs, not only the receipt text.
        self.receipt_tlvs = receipt_tlvs
        self.receipt_timezone = receipt_timezone
        self.submits: list[SubmitRecord] = []
        self.binds: list[tuple[str, str, int]] = []  # (bind command, system_id, status)
        self.receipts_sent = 0
        self.receipts_acked = 0
        self.receipts_nacked = 0
        self.acked_message_ids: list[str] = []
        self.generic_nacks: list[GenericNack] = []  # received from the ESME
        self.unbinds_received = 0
        self.enquire_links_received = 0
        self.outstanding = 0
        self.max_outstanding = 0
        self._rules: dict[str, _Rule] = {}
        self._throttled: dict[str, int] = {}
        self._id_prefix = secrets.token_hex(3)
        self._next_id = 0
        self._sessions: list[_Session] = []
        self._undelivered: deque[_ReceiptJob] = deque()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._changed = asyncio.Event()
        self._server: asyncio.Server | None = None

    # Lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> SmppPeer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
        for timer in self._timers:
            timer.cancel()
        await self.drop_connections()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # What tests set and read -----------------------------------------------------------------

    def configure(
        self, destination: str, behaviour: Behaviour, *, delay: float = 0.0, count: int = 0
    ) -> None:
        """How messages to ``destination`` (E.164, with or without "+") are treated."""
        self._rules[destination.removeprefix("+")] = _Rule(behaviour, delay, count)

    @property
    def bound_sessions(self) -> list[str]:
        return [s.bound_as for s in self._sessions if s.bound_as and not s.closed]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until ``predicate()`` holds; it is checked after every event of the peer."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def drop_connections(self) -> None:
        """Close every connection at once, without unbinding: a network failure or SMSC crash."""
        sessions = list(self._sessions)
        for session in sessions:
            self._close(session)
        for session in sessions:
            with contextlib.suppress(OSError):
                await session.writer.wait_closed()

    async def unbind_all(self) -> None:
        """§4.2: the SMSC ends every bound session politely (unbind, wait for unbind_resp)."""
        for session in [s for s in self._sessions if s.bound_as and not s.closed]:
            with contextlib.suppress(TimeoutError, ConnectionError):
                await self.request(lambda seq: Unbind(sequence_number=seq), session)
            self._close(session)

    async def request(self, build: Callable[[int], Pdu], session: _Session | None = None) -> Pdu:
        """Send ``build(sequence_number)`` to the ESME (on the first bound session unless
        given) and return its response."""
        if session is None:
            bound = [s for s in self._sessions if s.bound_as and not s.closed]
            if not bound:
                raise ConnectionError("no bound session")
            session = bound[0]
        pdu = build(session.next_sequence())
        future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
        session.pending[pdu.sequence_number] = future
        session.send(pdu)
        async with asyncio.timeout(5):
            return await future

    # Connections -----------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        session = _Session(reader, writer)
        self._sessions.append(session)
        try:
            while not session.closed:
                try:
                    data = await reader.read(65536)
                except OSError:
                    break
                if not data:
                    break
                try:
                    pdus = session.decoder.feed(data)
                except FramingError:
                    break
                for pdu in pdus:
                    self._handle(session, pdu)
        finally:
            self._close(session)
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            if task is not None:
                self._tasks.discard(task)

    def _close(self, session: _Session) -> None:
        if session.closed:
            return
        session.flush()
        session.closed = True
        session.writer.close()
        if session in self._sessions:
            self._sessions.remove(session)
        for future in session.pending.values():
            if not future.done():
                future.set_exception(ConnectionError("closed"))
        # Receipts sent and not acknowledged are delivered again on a later connection.
        for job in session.receipts.values():
            self._undelivered.append(job)
        session.receipts.clear()
        self._touch()

    def _touch(self) -> None:
        self._changed.set()

    def _handle(self, session: _Session, pdu: Pdu) -> None:
        if is_response(pdu.command_id):
            self._handle_response(session, pdu)
        elif isinstance(pdu, _BindRequest):
            self._bind(session, pdu)
        elif isinstance(pdu, SubmitSm):
            self._submit(session, pdu)
        elif isinstance(pdu, EnquireLink):
            self.enquire_links_received += 1
            session.send(EnquireLinkResp(sequence_number=pdu.sequence_number))
        elif isinstance(pdu, Unbind):
            self.unbinds_received += 1
            session.send(UnbindResp(sequence_number=pdu.sequence_number))
            self._close(session)
        elif isinstance(pdu, MalformedPdu):
            session.send(
                GenericNack(sequence_number=pdu.sequence_number, command_status=pdu.error_status)
            )
        else:
            session.send(
                GenericNack(
                    sequence_number=pdu.sequence_number,
                    command_status=CommandStatus.ESME_RINVCMDID,
                )
            )
        self._touch()

    def _handle_response(self, session: _Session, pdu: Pdu) -> None:
        if isinstance(pdu, GenericNack):
            self.generic_nacks.append(pdu)
        job = session.receipts.pop(pdu.sequence_number, None)
        if job is not None:
            if pdu.command_status == CommandStatus.ESME_ROK:
                self.receipts_acked += 1
                self.acked_message_ids.append(job.message_id)
            else:
                self.receipts_nacked += 1
                self._later(self.redelivery_delay, lambda: self._queue_receipt(job))
            return
        future = session.pending.pop(pdu.sequence_number, None)
        if future is not None and not future.done():
            future.set_result(pdu)

    def _bind(self, session: _Session, pdu: _BindRequest) -> None:
        kind, status = self._check_bind(session, pdu)
        self.binds.append((kind, pdu.system_id, status))
        resp: Pdu
        if isinstance(pdu, BindTransmitter):
            resp = BindTransmitterResp(sequence_number=pdu.sequence_number, command_status=status)
        elif isinstance(pdu, BindReceiver):
            resp = BindReceiverResp(sequence_number=pdu.sequence_number, command_status=status)
        else:
            resp = BindTransceiverResp(sequence_number=pdu.sequence_number, command_status=status)
        if status != CommandStatus.ESME_ROK:
            # Many SMSCs answer a refused bind without a body: the client must cope.
            session.send_bytes(struct.pack(">I", 16) + encode(resp)[4:16])
            return
        session.bound_as = kind
        session.send(replace(resp, system_id="yunting-smsc"))
        if session.receives:
            self._flush_receipts()

    def _check_bind(self, session: _Session, pdu: _BindRequest) -> tuple[str, int]:
        kind = {BindTransmitter: "transmitter", BindReceiver: "receiver"}.get(
            type(pdu), "transceiver"
        )
        if session.bound_as:
            return kind, CommandStatus.ESME_RALYBND
        if pdu.system_id != self.system_id:
            return kind, CommandStatus.ESME_RINVSYSID
        if pdu.password != self.password:
            return kind, CommandStatus.ESME_RINVPASWD
        return kind, CommandStatus.ESME_ROK

    # Messages --------------------------------------------------------------------------------

    def _submit(self, session: _Session, pdu: SubmitSm) -> None:
        if session.bound_as not in ("transmitter", "transceiver"):
            session.send(
                SubmitSmResp(
                    sequence_number=pdu.sequence_number,
                    command_status=CommandStatus.ESME_RINVBNDSTS,
                )
            )
            return
        destination = pdu.destination_addr
        rule = self._rules.get(destination, _Rule(Behaviour.DELIVERED))
        status = CommandStatus.ESME_ROK
        if rule.behaviour is Behaviour.REJECTED:
            status = CommandStatus.ESME_RINVDSTADR
        elif rule.behaviour is Behaviour.THROTTLED:
            seen = self._throttled.get(destination, 0)
            self._throttled[destination] = seen + 1
            if seen < rule.count:
                status = CommandStatus.ESME_RTHROTTLED
        message_id = ""
        if status == CommandStatus.ESME_ROK:
            self._next_id += 1
            message_id = f"{self._id_prefix}{self._next_id:08x}"
        payload = find_tlv(pdu.tlvs, TlvTag.MESSAGE_PAYLOAD)
        content = pdu.short_message if payload is None else payload
        concatenation = None
        if pdu.esm_class & ESM_CLASS_UDHI:
            concatenation, content = split_udh(content)
        text = decode_text(content, pdu.data_coding)
        self.submits.append(
            SubmitRecord(
                destination=destination,
                dest_addr_ton=pdu.dest_addr_ton,
                dest_addr_npi=pdu.dest_addr_npi,
                source=pdu.source_addr,
                text=text,
                data_coding=pdu.data_coding,
                esm_class=pdu.esm_class,
                registered_delivery=pdu.registered_delivery,
                concatenation=concatenation,
                used_payload=payload is not None,
                status=status,
                message_id=message_id,
                at=asyncio.get_running_loop().time(),
            )
        )
        resp = SubmitSmResp(
            sequence_number=pdu.sequence_number, command_status=status, message_id=message_id
        )
        job = None
        if message_id and pdu.registered_delivery & 0x03:
            job = self._receipt_job(rule, message_id, pdu, text)
        self.outstanding += 1
        self.max_outstanding = max(self.max_outstanding, self.outstanding)
        if self.response_delay > 0:
            self._spawn(self._respond_later(session, resp, rule, job))
        else:
            self._respond(session, resp, rule, job)

    async def _respond_later(
        self, session: _Session, resp: SubmitSmResp, rule: _Rule, job: _ReceiptJob | None
    ) -> None:
        await asyncio.sleep(self.response_delay)
        self._respond(session, resp, rule, job)

    def _respond(
        self, session: _Session, resp: SubmitSmResp, rule: _Rule, job: _ReceiptJob | None
    ) -> None:
        self.outstanding -= 1
        if job is not None and rule.behaviour is Behaviour.OUT_OF_ORDER:
            self._queue_receipt(job)
        session.send(resp)
        if job is not None:
            if rule.behaviour is Behaviour.DELAYED:
                self._later(rule.delay, lambda: self._queue_receipt(job))
            elif rule.behaviour is Behaviour.DUPLICATED:
                self._queue_receipt(job)
                self._queue_receipt(_copy(job))
            elif rule.behaviour is not Behaviour.OUT_OF_ORDER:
                self._queue_receipt(job)
        self._touch()

    def _receipt_job(
        self, rule: _Rule, message_id: str, pdu: SubmitSm, text: str
    ) -> _ReceiptJob | None:
        if rule.behaviour is Behaviour.NO_RECEIPT:
            return None
        if rule.behaviour is Behaviour.UNDELIVERABLE:
            stat, state = "UNDELIV", MessageState.UNDELIVERABLE
        else:
            stat, state = "DELIVRD", MessageState.DELIVERED
        return _ReceiptJob(
            message_id=message_id,
            destination=pdu.destination_addr,
            source=pdu.source_addr,
            stat=stat,
            state=state,
            text=text,
            submitted_at=datetime.now(self.receipt_timezone),
        )

    def _queue_receipt(self, job: _ReceiptJob) -> None:
        self._undelivered.append(job)
        self._flush_receipts()

    def _flush_receipts(self) -> None:
        receivers = [s for s in self._sessions if s.receives and not s.closed]
        if not receivers:
            return  # kept until an ESME binds to receive, as an SMSC stores them
        turn = 0
        while self._undelivered:
            job = self._undelivered.popleft()
            session = receivers[turn % len(receivers)]
            turn += 1
            self._deliver(session, job)
        self._touch()

    def _deliver(self, session: _Session, job: _ReceiptJob) -> None:
        job.deliveries += 1
        done = datetime.now(self.receipt_timezone)
        text = receipt_text(
            message_id=job.message_id,
            stat=job.stat,
            submitted_at=job.submitted_at,
            done_at=done,
            error="000" if job.stat == "DELIVRD" else "001",
            delivered=job.stat == "DELIVRD",
            # Appendix B: the first characters of the message; ASCII keeps the receipt readable.
            text=job.text.encode("ascii", "replace").decode("ascii"),
        )
        tlvs: tuple[Tlv, ...] = ()
        if self.receipt_tlvs:
            tlvs = (
                Tlv.cstring(TlvTag.RECEIPTED_MESSAGE_ID, job.message_id),
                Tlv.u8(TlvTag.MESSAGE_STATE, job.state),
            )
        seq = session.next_sequence()
        session.receipts[seq] = job
        self.receipts_sent += 1
        session.send(
            DeliverSm(
                sequence_number=seq,
                source_addr_ton=1,
                source_addr_npi=1,
                source_addr=job.destination,
                destination_addr=job.source,
                esm_class=ESM_CLASS_DELIVERY_RECEIPT,
                data_coding=DataCoding.DEFAULT,
                short_message=text.encode("ascii"),
                tlvs=tlvs,
            )
        )

    # Plumbing --------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _later(self, delay: float, callback: Callable[[], None]) -> None:
        def fire() -> None:
            self._timers.discard(handle)
            callback()

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(handle)


def mobile_originated(
    seq: int, text: str, *, sender: str, ton: int = 1, udh: bytes = b""
) -> DeliverSm:
    """A mobile-originated deliver_sm, as an SMSC hands over what the handset at ``sender``
    wrote back (``udh``: one part of a concatenated message)."""
    encoded = encode_text(text)
    return DeliverSm(
        sequence_number=seq,
        source_addr_ton=ton,
        source_addr_npi=1,
        source_addr=sender,
        destination_addr="106900001",
        esm_class=ESM_CLASS_UDHI if udh else 0,
        data_coding=encoded.data_coding,
        short_message=udh + encoded.octets,
    )


def _copy(job: _ReceiptJob) -> _ReceiptJob:
    return _ReceiptJob(
        message_id=job.message_id,
        destination=job.destination,
        source=job.source,
        stat=job.stat,
        state=job.state,
        text=job.text,
        submitted_at=job.submitted_at,
    )
