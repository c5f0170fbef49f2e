"""SMS over SMPP 3.4: the ``Provider`` for electronic service by text message.

One ``SmppProvider`` keeps one bound session to an SMSC — a transceiver, or a transmitter and a
receiver on two connections — and reconnects with backoff when it drops. The protocol itself is
in ``smpp_pdu`` (sans-I/O); this module moves its bytes over asyncio streams:

* ``submit`` sends one submit_sm (§4.4), at most ``window`` unanswered at a time, matches the
  submit_sm_resp by sequence number and returns its message_id as ``Accepted.provider_id``.
  Throttling answers (ESME_RTHROTTLED, ESME_RMSGQFUL) pause all sending, then the submission is
  retried a bounded number of times.
* deliver_sm receipts (§4.6, appendix B) become ``Receipt``s, handed to the sink *before* the
  deliver_sm_resp goes out, so a receipt we fail to store is redelivered by the SMSC; a sink error
  is answered with ESME_RX_T_APPN ("temporary, try again").
* enquire_link (§4.11) keeps the link alive both ways; an unbind from the SMSC (§4.2) is answered
  and the session re-established; commands we do not implement get a generic_nack (§4.3).

Long text goes whole in the message_payload TLV (§5.3.2.32) by default, so one submission is one
SMSC message with one message_id and one receipt; ``long_messages="concatenated"`` splits it
into UDH parts instead for SMSCs without message_payload (the first part's message_id is then
the provider id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from yunting.infra.clock import Clock
from yunting.service_delivery.ports import (
    Accepted,
    Channel,
    FailureKind,
    ProviderError,
    Receipt,
    ReceiptSink,
    Reply,
    ReplySink,
    Submission,
)
from yunting.service_delivery.providers.smpp_pdu import (
    ESM_CLASS_UDHI,
    MAX_ADDR,
    MAX_PASSWORD,
    MAX_SEQUENCE_NUMBER,
    MAX_SERVICE_TYPE,
    MAX_SYSTEM_ID,
    MAX_SYSTEM_TYPE,
    REGISTERED_DELIVERY_FINAL,
    RESPONSE_BIT,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CommandId,
    CommandStatus,
    Concatenation,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    FramingError,
    GenericNack,
    MalformedPdu,
    Pdu,
    PduDecoder,
    PduError,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    TlvTag,
    Unbind,
    UnbindResp,
    UnknownPdu,
    command_name,
    decode_text,
    describe,
    encode,
    encode_text,
    is_delivery_receipt,
    is_response,
    parse_receipt,
    split_concatenated,
    split_udh,
    with_sequence_number,
)
from yunting.service_delivery.providers.smpp_status import (
    BIND_REFUSALS,
    command_status_meaning,
    receipt_status,
)

logger = logging.getLogger(__name__)

# E.164: a country code and subscriber number, at most 15 digits (ITU-T E.164 §6.1).
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# §5.2.5 / §5.2.6: destination as an international number in the ISDN (E.164) plan.
_TON_INTERNATIONAL = 1
_NPI_ISDN = 1
_READ_SIZE = 64 * 1024
_NOT_SENT_RETRIES = 3


class BindMode(StrEnum):
    TRANSCEIVER = "transceiver"  # one connection, bind_transceiver (§4.1.5)
    TRANSMITTER_RECEIVER = "transmitter_receiver"  # bind_transmitter + bind_receiver


class LongMessageMode(StrEnum):
    PAYLOAD = "payload"  # the whole text in message_payload (§5.3.2.32)
    CONCATENATED = "concatenated"  # UDH parts, esm_class 0x40 (3GPP TS 23.040 §9.2.3.24.1)


@dataclass(frozen=True, slots=True)
class SmppConfig:
    """How to reach and use one SMSC. Times are in seconds."""

    host: str
    port: int
    system_id: str
    password: str = field(repr=False)
    system_type: str = ""
    bind_mode: BindMode = BindMode.TRANSCEIVER
    # Our sender: the court's service number (e.g. a 106… code) as the operator assigned it.
    source_addr: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    service_type: str = ""
    window: int = 10  # submit_sm sent and not yet answered, at most
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    connect_timeout: float = 10.0
    reconnect_backoff_min: float = 1.0
    reconnect_backoff_max: float = 60.0
    throttle_pause: float = 1.0  # how long all sending stops after a throttling answer
    throttle_retries: int = 5  # resubmissions after throttling before TEMPORARY is raised
    long_messages: LongMessageMode = LongMessageMode.PAYLOAD
    # The zone of the SMSC clock that writes a receipt's "done date" (SMPP carries no zone).
    receipt_timezone: str = "Asia/Shanghai"
    receipt_concurrency: int = 32  # receipts being stored at once

    def __post_init__(self) -> None:
        # Settings hand over plain strings: make them the enums, refusing unknown words.
        for name, enum in (("bind_mode", BindMode), ("long_messages", LongMessageMode)):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, enum(value))
            except ValueError:
                expected = ", ".join(repr(m.value) for m in enum)
                raise ValueError(f"{name}: expected one of {expected}, got {value!r}") from None
        _check_text(self.system_id, MAX_SYSTEM_ID, "system_id")
        _check_text(self.password, MAX_PASSWORD, "password")
        _check_text(self.system_type, MAX_SYSTEM_TYPE, "system_type")
        _check_text(self.source_addr, MAX_ADDR, "source_addr")
        _check_text(self.service_type, MAX_SERVICE_TYPE, "service_type")
        if not self.host:
            raise ValueError("host: expected a host name or address, got ''")
        if not 0 < self.port < 65536:
            raise ValueError(f"port: expected 1..65535, got {self.port}")
        for name in ("source_addr_ton", "source_addr_npi"):
            if not 0 <= getattr(self, name) <= 255:
                raise ValueError(f"{name}: expected 0..255, got {getattr(self, name)}")
        if self.window < 1:
            raise ValueError(f"window: expected at least 1, got {self.window}")
        if self.receipt_concurrency < 1:
            raise ValueError(
                f"receipt_concurrency: expected at least 1, got {self.receipt_concurrency}"
            )
        if self.throttle_retries < 0:
            raise ValueError(f"throttle_retries: expected 0 or more, got {self.throttle_retries}")
        for name in (
            "enquire_link_interval",
            "response_timeout",
            "connect_timeout",
            "reconnect_backoff_min",
            "throttle_pause",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: expected a positive number, got {getattr(self, name)}")
        if self.reconnect_backoff_max < self.reconnect_backoff_min:
            raise ValueError(
                f"reconnect_backoff_max: expected at least {self.reconnect_backoff_min}, "
                f"got {self.reconnect_backoff_max}"
            )
        try:
            ZoneInfo(self.receipt_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"receipt_timezone: expected an IANA zone name, got {self.receipt_timezone!r}"
            ) from None


def _check_text(value: str, max_len: int, name: str) -> None:
    if not value.isascii() or len(value) > max_len - 1:
        raise ValueError(f"{name}: expected at most {max_len - 1} ASCII characters")


class SmppBindError(ProviderError):
    """The SMSC refused our credentials (bind_*_resp with ESME_RINVPASWD, ESME_RINVSYSID, ...):
    only a configuration change helps."""


class _ConnectionLostError(Exception):
    """The connection closed while a request was outstanding (it may or may not have arrived)."""


class _NotSentError(Exception):
    """The connection was already closed: the PDU was never written."""


class _Connection:
    """One TCP connection to the SMSC: framing, sequence numbers and the responses awaited."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        label: str,
        on_request: Callable[[_Connection, Pdu], None],
        on_close: Callable[[_Connection], None],
    ) -> None:
        self.label = label
        self._reader = reader
        self._writer = writer
        self._on_request = on_request
        self._on_close = on_close
        self._decoder = PduDecoder()
        self._pending: dict[int, asyncio.Future[Pdu]] = {}
        self._sequence = 0
        # PDUs written in one turn of the loop leave in one send(): under load that is one
        # system call for a window's worth of submit_sm or deliver_sm_resp, not one each.
        self._outgoing = bytearray()
        self._flush_scheduled = False
        self._loop = asyncio.get_running_loop()
        self.closed = asyncio.Event()
        self.close_reason = ""
        self._read_task = asyncio.create_task(self._read_loop(), name=f"smpp-read-{label}")

    def next_sequence(self) -> int:
        # §3.2: sequence numbers run 1..0x7FFFFFFF; wrapping is fine, the window is far smaller.
        self._sequence = self._sequence % MAX_SEQUENCE_NUMBER + 1
        return self._sequence

    def send(self, pdu: Pdu) -> None:
        self.send_encoded(encode(pdu))

    def send_encoded(self, data: bytes) -> None:
        if self.closed.is_set():
            raise _NotSentError(self.close_reason)
        self._outgoing += data
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._outgoing:
            self._writer.write(bytes(self._outgoing))
            self._outgoing.clear()

    async def request(self, pdu: Pdu) -> Pdu:
        """Send ``pdu`` and wait for the response with its sequence number (or a generic_nack).
        Callers bound the wait with ``asyncio.timeout``."""
        return await self.request_encoded(pdu.sequence_number, encode(pdu))

    async def request_encoded(self, sequence_number: int, data: bytes) -> Pdu:
        future: asyncio.Future[Pdu] = self._loop.create_future()
        self._pending[sequence_number] = future
        try:
            self.send_encoded(data)
            try:
                await self._writer.drain()
            except OSError as e:
                raise _ConnectionLostError(str(e)) from e
            return await future
        finally:
            self._pending.pop(sequence_number, None)

    def begin_close(self, reason: str) -> None:
        """Stop using the connection: fail what is outstanding and close the socket (data already
        written, such as an unbind_resp, is flushed first by the transport)."""
        if self.closed.is_set():
            return
        self.close_reason = reason
        self.closed.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(_ConnectionLostError(reason))
        self._pending.clear()
        self._flush()
        self._writer.close()
        self._on_close(self)

    async def close(self, reason: str) -> None:
        self.begin_close(reason)
        self._read_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._read_task
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def _read_loop(self) -> None:
        reason = "closed by the SMSC"
        try:
            while True:
                data = await self._reader.read(_READ_SIZE)
                if not data:
                    break
                for pdu in self._decoder.feed(data):
                    self._dispatch(pdu)
                    if self.closed.is_set():
                        return
        except FramingError as e:
            reason = f"unreadable stream: {e}"
            logger.error("smpp %s: %s; closing", self.label, reason)
        except OSError as e:
            reason = f"read failed: {e!r}"
        except Exception as e:
            # A bug of ours must not leave a half-dead connection that still looks bound.
            logger.exception("smpp %s: reading failed", self.label)
            reason = f"internal error: {e!r}"
        self.begin_close(reason)

    def _dispatch(self, pdu: Pdu) -> None:
        if is_response(pdu.command_id):
            future = self._pending.get(pdu.sequence_number)
            if future is not None and not future.done():
                future.set_result(pdu)
            else:
                # A response after its request timed out: the caller has already been told.
                logger.warning(
                    "smpp %s: %s seq=%d matches no outstanding request",
                    self.label,
                    command_name(pdu.command_id),
                    pdu.sequence_number,
                )
            return
        if isinstance(pdu, MalformedPdu):
            logger.warning("smpp %s: malformed PDU: %s", self.label, pdu.reason)
            self.send(
                GenericNack(sequence_number=pdu.sequence_number, command_status=pdu.error_status)
            )
            return
        self._on_request(self, pdu)


class _Link:
    """One bind (transceiver, transmitter or receiver), kept up: connect, bind, keep alive,
    and after a drop reconnect with exponential backoff."""

    def __init__(
        self,
        *,
        config: SmppConfig,
        bind: type[BindTransceiver] | type[BindTransmitter] | type[BindReceiver],
        label: str,
        on_request: Callable[[_Connection, Pdu], None],
    ) -> None:
        self._config = config
        self._bind = bind
        self.label = label
        self._on_request = on_request
        self.connection: _Connection | None = None  # set while bound
        self.bound = asyncio.Event()
        self.refusal: SmppBindError | None = None
        self.last_error = ""
        self.first_attempt: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stop_requested = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"smpp-{self.label}")

    def stop_reconnecting(self) -> None:
        self._stop_requested.set()

    async def stop(self) -> None:
        self._stop_requested.set()
        conn = self.connection
        if conn is not None and not conn.closed.is_set():
            # §4.2: a polite unbind; the SMSC answers and we close.
            try:
                async with asyncio.timeout(min(self._config.response_timeout, 5.0)):
                    await conn.request(Unbind(sequence_number=conn.next_sequence()))
            except (TimeoutError, _ConnectionLostError, _NotSentError):
                logger.info("smpp %s: no unbind_resp; closing anyway", self.label)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _supervise(self) -> None:
        try:
            await self._reconnect_forever()
        finally:
            if not self.first_attempt.done():
                self.first_attempt.set_result(None)

    async def _reconnect_forever(self) -> None:
        backoff = self._config.reconnect_backoff_min
        while not self._stop_requested.is_set():
            bound = False
            try:
                bound = await self._session()
            except SmppBindError as e:
                self.refusal = e
                self.last_error = str(e)
                logger.error("smpp %s: %s", self.label, e)
            except (OSError, TimeoutError, _ConnectionLostError, _NotSentError, PduError) as e:
                self.last_error = f"{type(e).__name__}: {e}"
                logger.warning(
                    "smpp %s: connection to %s:%d failed: %s",
                    self.label,
                    self._config.host,
                    self._config.port,
                    self.last_error,
                )
            except Exception as e:
                # The supervisor must outlive a bug of ours, or the SMS channel stays down.
                self.last_error = f"{type(e).__name__}: {e}"
                logger.exception("smpp %s: session failed", self.label)
            if not self.first_attempt.done():
                self.first_attempt.set_result(None)
            if self._stop_requested.is_set():
                break
            if bound:
                backoff = self._config.reconnect_backoff_min
            logger.info("smpp %s: reconnecting in %.1fs", self.label, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._config.reconnect_backoff_max)

    def _connection_closed(self, conn: _Connection) -> None:
        # Synchronously, so no submission picks up a connection that is already gone.
        if self.connection is conn:
            self.connection = None
            self.bound.clear()

    async def _session(self) -> bool:
        """Connect, bind and serve until the connection ends. True if it got bound."""
        cfg = self._config
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(cfg.host, cfg.port), cfg.connect_timeout
        )
        conn = _Connection(
            reader,
            writer,
            label=self.label,
            on_request=self._on_request,
            on_close=self._connection_closed,
        )
        try:
            bind = self._bind(
                sequence_number=conn.next_sequence(),
                system_id=cfg.system_id,
                password=cfg.password,
                system_type=cfg.system_type,
            )
            async with asyncio.timeout(cfg.response_timeout):
                resp = await conn.request(bind)
            if resp.command_id != bind.command_id | RESPONSE_BIT or resp.command_status:
                raise self._refused(bind, resp)
            self.refusal = None
            self.connection = conn
            self.bound.set()
            if not self.first_attempt.done():
                self.first_attempt.set_result(None)
            logger.info(
                "smpp %s: bound to %s:%d as %s", self.label, cfg.host, cfg.port, cfg.system_id
            )
            await self._keep_alive(conn)
            if not self._stop_requested.is_set():
                logger.warning("smpp %s: connection lost: %s", self.label, conn.close_reason)
            return True
        finally:
            await conn.close("session ended")

    def _refused(self, bind: Pdu, resp: Pdu) -> Exception:
        meaning = command_status_meaning(resp.command_status)
        raw = f"{describe(resp)} pdu={resp.raw.hex()}"
        message = (
            f"SMSC {self._config.host}:{self._config.port} refused {command_name(bind.command_id)}"
            f" as system_id {self._config.system_id!r}: {meaning.name}"
            f" (0x{resp.command_status:08X})"
        )
        if resp.command_status in BIND_REFUSALS:
            return SmppBindError(
                message + "; check the SMPP system_id, password and system_type",
                kind=FailureKind.TECHNICAL,
                raw=raw,
                code=meaning.name,
            )
        # Anything else (a generic_nack, ESME_RSYSERR, ESME_RALYBND...) may pass: retry.
        return _ConnectionLostError(message)

    async def _keep_alive(self, conn: _Connection) -> None:
        """§4.11: an enquire_link every interval; no answer in time means the link is dead."""
        cfg = self._config
        while not conn.closed.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(cfg.enquire_link_interval):
                    await conn.closed.wait()
                return
            try:
                async with asyncio.timeout(cfg.response_timeout):
                    resp = await conn.request(EnquireLink(sequence_number=conn.next_sequence()))
            except TimeoutError:
                conn.begin_close("no enquire_link_resp in time")
                return
            except (_ConnectionLostError, _NotSentError):
                return
            if not isinstance(resp, EnquireLinkResp):
                logger.warning(
                    "smpp %s: enquire_link answered with %s",
                    self.label,
                    command_name(resp.command_id),
                )


class SmppProvider:
    """Implements ``Provider`` for ``Channel.SMS`` over SMPP 3.4. Build once, ``start`` it with
    the receipt sink, ``stop`` it at shutdown; ``submit`` may be called concurrently."""

    channel: Channel = Channel.SMS

    def __init__(self, config: SmppConfig, *, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._tz = ZoneInfo(config.receipt_timezone)
        self._window = asyncio.Semaphore(config.window)
        self._receipt_slots = asyncio.Semaphore(config.receipt_concurrency)
        self._sink: ReceiptSink | None = None
        self._replies: ReplySink | None = None
        self._links: list[_Link] = []
        self._transmitter: _Link | None = None
        self._receipt_tasks: set[asyncio.Task[None]] = set()
        # Cleared while the SMSC has asked us to slow down; a timer sets it again.
        self._unpaused = asyncio.Event()
        self._unpaused.set()
        self._resume_timer: asyncio.TimerHandle | None = None
        self._reference = 0  # the next concatenation reference
        self._started = False

    async def start(self, receipts: ReceiptSink, replies: ReplySink | None = None) -> None:
        """Connect and bind. Returns once the first bind attempt has finished: if the SMSC
        refuses the credentials, raises ``SmppBindError``; if it cannot be reached, logs and keeps
        retrying in the background (submissions fail as technical until bound)."""
        if self._started:
            raise RuntimeError("SmppProvider.start: already started")
        self._started = True
        self._sink = receipts
        self._replies = replies
        cfg = self._config
        if cfg.bind_mode is BindMode.TRANSCEIVER:
            binds: list[tuple[type[BindTransceiver | BindTransmitter | BindReceiver], str]] = [
                (BindTransceiver, "transceiver")
            ]
        else:
            binds = [(BindTransmitter, "transmitter"), (BindReceiver, "receiver")]
        self._links = [
            _Link(config=cfg, bind=bind, label=label, on_request=self._on_request)
            for bind, label in binds
        ]
        self._transmitter = self._links[0]
        for link in self._links:
            link.start()
        await asyncio.gather(*(link.first_attempt for link in self._links))
        refused = [link.refusal for link in self._links if link.refusal is not None]
        if refused:
            await self.stop()
            raise refused[0]
        for link in self._links:
            if not link.bound.is_set():
                logger.warning(
                    "smpp %s: not bound yet (%s); retrying in the background",
                    link.label,
                    link.last_error,
                )

    async def stop(self) -> None:
        """Let receipts being stored finish (their acknowledgements go out), then unbind and
        close. Submissions still waiting fail as technical."""
        for link in self._links:
            link.stop_reconnecting()
        if self._receipt_tasks:
            _, pending = await asyncio.wait(
                self._receipt_tasks, timeout=min(self._config.response_timeout, 5.0)
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for link in self._links:
            await link.stop()
        # Receipts that arrived during the unbind: unacknowledged, so the SMSC resends them.
        for task in list(self._receipt_tasks):
            task.cancel()
        await asyncio.gather(*self._receipt_tasks, return_exceptions=True)
        self._links = []
        self._transmitter = None
        if self._resume_timer is not None:
            self._resume_timer.cancel()
            self._resume()
        self._started = False

    async def submit(self, submission: Submission) -> Accepted:
        """Send ``submission`` as one submit_sm (or one per concatenated part) and return the
        SMSC's message_id with the submit_sm_resp verbatim. Raises ``ProviderError``: PERMANENT
        for a number that is not E.164 or that the SMSC calls invalid (ESME_RINVDSTADR),
        TEMPORARY when still throttled after the retries, TECHNICAL for anything else (no bind,
        no answer in time, connection lost — the message may then have arrived)."""
        if submission.channel is not Channel.SMS:
            raise ProviderError(
                f"expected an SMS submission, got {submission.channel}",
                kind=FailureKind.TECHNICAL,
                code="wrong_channel",
            )
        parts = self._build(submission)
        responses: list[SubmitSmResp] = []
        for part in parts:
            try:
                responses.append(await self._submit_part(part))
            except ProviderError as e:
                if responses:
                    # Earlier parts were taken: the evidence says which.
                    e.raw = " | ".join([*(_raw(r) for r in responses), e.raw])
                raise
        accepted = Accepted(
            provider_id=responses[0].message_id, raw=" | ".join(_raw(r) for r in responses)
        )
        logger.info(
            "smpp: submitted attempt %s as %s (%d part(s))",
            submission.attempt_id,
            accepted.provider_id,
            len(parts),
            extra={"attempt_id": str(submission.attempt_id), "provider_id": accepted.provider_id},
        )
        return accepted

    def _build(self, submission: Submission) -> list[bytes]:
        """The submit_sm PDUs for ``submission``, encoded with sequence number 0."""
        cfg = self._config
        if not _E164.fullmatch(submission.recipient):
            raise ProviderError(
                "expected an E.164 number: '+', country code and number, at most 15 digits",
                kind=FailureKind.PERMANENT,
                code="invalid_address",
            )
        encoded = encode_text(submission.body)
        base = SubmitSm(
            sequence_number=0,
            service_type=cfg.service_type,
            source_addr_ton=cfg.source_addr_ton,
            source_addr_npi=cfg.source_addr_npi,
            source_addr=cfg.source_addr,
            dest_addr_ton=_TON_INTERNATIONAL,
            dest_addr_npi=_NPI_ISDN,
            destination_addr=submission.recipient[1:],
            registered_delivery=REGISTERED_DELIVERY_FINAL if submission.request_receipt else 0,
            data_coding=encoded.data_coding,
        )
        if encoded.fits_single_part:
            parts = [replace(base, short_message=encoded.octets)]
        elif self._config.long_messages is LongMessageMode.PAYLOAD:
            parts = [replace(base, tlvs=(Tlv(TlvTag.MESSAGE_PAYLOAD, encoded.octets),))]
        else:
            reference = self._reference
            self._reference = (reference + 1) % 256
            try:
                chunks = split_concatenated(encoded, reference=reference)
            except PduError as e:
                raise ProviderError(
                    f"message cannot be sent: {e}", kind=FailureKind.TECHNICAL, code="too_long"
                ) from e
            parts = [replace(base, esm_class=ESM_CLASS_UDHI, short_message=c) for c in chunks]
        try:
            return [encode(part) for part in parts]
        except PduError as e:
            raise ProviderError(
                f"message cannot be sent: {e}", kind=FailureKind.TECHNICAL, code="too_long"
            ) from e

    async def _submit_part(self, part: bytes) -> SubmitSmResp:
        cfg = self._config
        throttled = 0
        unsent = 0
        while True:
            async with self._window:
                # Checked inside the window: submissions queued behind it must not rush out the
                # moment a throttling answer frees their slot.
                await self._unpaused.wait()
                conn = await self._bound_transmitter()
                sequence = conn.next_sequence()
                try:
                    async with asyncio.timeout(cfg.response_timeout):
                        resp = await conn.request_encoded(
                            sequence, with_sequence_number(part, sequence)
                        )
                except _NotSentError:
                    # Never written (the link dropped just now): send it after the rebind.
                    unsent += 1
                    if unsent <= _NOT_SENT_RETRIES:
                        continue
                    raise ProviderError(
                        "the connection to the SMSC keeps closing",
                        kind=FailureKind.TECHNICAL,
                        code="not_bound",
                    ) from None
                except TimeoutError:
                    raise ProviderError(
                        f"no submit_sm_resp within {cfg.response_timeout}s "
                        "(the SMSC may still have taken the message)",
                        kind=FailureKind.TECHNICAL,
                        code="timeout",
                    ) from None
                except _ConnectionLostError as e:
                    raise ProviderError(
                        f"connection lost before submit_sm_resp ({e}); "
                        "the SMSC may have taken the message",
                        kind=FailureKind.TECHNICAL,
                        code="connection_lost",
                    ) from e
            if isinstance(resp, SubmitSmResp) and resp.command_status == CommandStatus.ESME_ROK:
                if not resp.message_id:
                    logger.warning("smpp: submit_sm_resp without message_id; receipts won't match")
                return resp
            if not isinstance(resp, SubmitSmResp | GenericNack):
                raise ProviderError(
                    f"expected submit_sm_resp, got {command_name(resp.command_id)}",
                    kind=FailureKind.TECHNICAL,
                    raw=_raw(resp),
                    code="protocol_error",
                )
            meaning = command_status_meaning(resp.command_status)
            if meaning.slow_down:
                self._pause(cfg.throttle_pause)
                logger.warning(
                    "smpp: SMSC says %s; pausing submissions for %.1fs",
                    meaning.name,
                    cfg.throttle_pause,
                )
                if throttled < cfg.throttle_retries:
                    throttled += 1
                    continue
            raise ProviderError(
                f"SMSC refused the message: {meaning.name} (0x{resp.command_status:08X})",
                kind=meaning.kind or FailureKind.TECHNICAL,
                raw=_raw(resp),
                code=meaning.name,
            )

    def _pause(self, seconds: float) -> None:
        """Hold every submission for ``seconds`` from now (a later pause extends an earlier)."""
        loop = asyncio.get_running_loop()
        resume_at = loop.time() + seconds
        if self._resume_timer is not None:
            if self._resume_timer.when() >= resume_at:
                return
            self._resume_timer.cancel()
        self._unpaused.clear()
        self._resume_timer = loop.call_at(resume_at, self._resume)

    def _resume(self) -> None:
        self._resume_timer = None
        self._unpaused.set()

    async def _bound_transmitter(self) -> _Connection:
        link = self._transmitter
        if link is None:
            raise ProviderError(
                "SmppProvider is not started", kind=FailureKind.TECHNICAL, code="not_started"
            )
        if link.connection is None:
            if link.refusal is not None:
                raise ProviderError(
                    str(link.refusal),
                    kind=FailureKind.TECHNICAL,
                    raw=link.refusal.raw,
                    code=link.refusal.code,
                )
            # Ride out a reconnect; an SMSC that stays away is a technical failure.
            try:
                await asyncio.wait_for(link.bound.wait(), self._config.response_timeout)
            except TimeoutError:
                raise ProviderError(
                    f"not bound to the SMSC ({link.last_error or 'connecting'})",
                    kind=FailureKind.TECHNICAL,
                    code="not_bound",
                ) from None
        conn = link.connection
        if conn is None:
            raise ProviderError(
                "not bound to the SMSC", kind=FailureKind.TECHNICAL, code="not_bound"
            )
        return conn

    # Requests from the SMSC -----------------------------------------------------------------

    def _on_request(self, conn: _Connection, pdu: Pdu) -> None:
        if isinstance(pdu, DeliverSm):
            task = asyncio.create_task(self._deliver(conn, pdu))
            self._receipt_tasks.add(task)
            task.add_done_callback(self._receipt_tasks.discard)
        elif isinstance(pdu, EnquireLink):
            conn.send(EnquireLinkResp(sequence_number=pdu.sequence_number))
        elif isinstance(pdu, Unbind):
            # §4.2: the SMSC ends the session (maintenance, rebalancing): answer, close, rebind.
            logger.info("smpp %s: unbind from the SMSC", conn.label)
            conn.send(UnbindResp(sequence_number=pdu.sequence_number))
            conn.begin_close("unbound by the SMSC")
        elif isinstance(pdu, UnknownPdu) and pdu.command_id == CommandId.ALERT_NOTIFICATION:
            pass  # §4.12: no response is defined, and we do not use it
        else:
            # Named, not described: a request's body may carry numbers and text.
            logger.warning(
                "smpp %s: answering %s seq=%d with generic_nack",
                conn.label,
                command_name(pdu.command_id),
                pdu.sequence_number,
            )
            conn.send(
                GenericNack(
                    sequence_number=pdu.sequence_number,
                    command_status=CommandStatus.ESME_RINVCMDID,
                )
            )

    async def _deliver(self, conn: _Connection, pdu: DeliverSm) -> None:
        status: int = CommandStatus.ESME_ROK
        async with self._receipt_slots:
            try:
                if is_delivery_receipt(pdu):
                    await self._store_receipt(pdu)
                elif self._replies is not None:
                    await self._replies(mobile_originated(pdu, received_at=self._clock.now()))
                else:
                    # Nobody to hand a reply from the handset to (a provider started without a
                    # reply sink): acknowledged so the SMSC does not resend it forever.
                    logger.warning("smpp %s: ignoring a mobile-originated message", conn.label)
            except Exception:
                logger.exception(
                    "smpp %s: storing a receipt or reply failed; asking for redelivery", conn.label
                )
                status = CommandStatus.ESME_RX_T_APPN
        try:
            conn.send(DeliverSmResp(sequence_number=pdu.sequence_number, command_status=status))
        except _NotSentError:
            logger.info(
                "smpp %s: receipt not acknowledged (connection closed); the SMSC will resend",
                conn.label,
            )

    async def _store_receipt(self, pdu: DeliverSm) -> None:
        parsed = parse_receipt(pdu, tz=self._tz)
        if not parsed.message_id:
            # Nothing to match it to, and redelivery would not change that; it is still what
            # the SMSC said, so it is kept verbatim (provider id "", never applied).
            logger.warning(
                "smpp: receipt without a message id (stat %r); stored unmatched", parsed.stat
            )
        status = receipt_status(message_state=parsed.message_state, stat=parsed.stat)
        receipt = Receipt(
            channel=Channel.SMS,
            provider_id=parsed.message_id,
            status=status,
            raw=_raw(pdu),
            received_at=self._clock.now(),
            happened_at=parsed.done_at.astimezone(UTC) if parsed.done_at else None,
            error_code=parsed.error,
        )
        sink = self._sink
        if sink is None:
            raise RuntimeError("SmppProvider: a receipt arrived before start()")
        await sink(receipt)
        logger.info(
            "smpp: receipt %s for %s",
            status,
            receipt.provider_id,
            extra={"provider_id": receipt.provider_id},
        )


def mobile_originated(pdu: DeliverSm, *, received_at: datetime) -> Reply:
    """A deliver_sm that is not a receipt, as a ``Reply``: the sender's number ("+" before it
    when its type of number is international, §5.2.5), the text without its user data header
    (one ``Reply`` per part of a concatenated message: each is acknowledged on its own), and
    the PDU verbatim."""
    sender = pdu.source_addr
    if pdu.source_addr_ton == _TON_INTERNATIONAL and sender and not sender.startswith("+"):
        sender = "+" + sender
    octets = pdu.message_bytes
    concat: Concatenation | None = None
    if pdu.esm_class & ESM_CLASS_UDHI:
        concat, octets = split_udh(octets)
    return Reply(
        channel=Channel.SMS,
        sender=sender,
        text=decode_text(octets, pdu.data_coding),
        raw=_raw(pdu),
        received_at=received_at,
        part=f"{concat.reference}/{concat.sequence}/{concat.total}" if concat else "",
    )


def _raw(pdu: Pdu) -> str:
    """Evidence text: the PDU read out, then its bytes as received."""
    return f"{describe(pdu)} pdu={pdu.raw.hex()}"
