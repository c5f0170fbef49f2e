"""SMPP 3.4 protocol data units, sans-I/O: PDUs to bytes, a byte stream to PDUs.

Nothing here touches a socket or a clock (cf. python-websockets' protocol core): the provider
(``smpp.py``) and the test SMSC (``tests/smpp_peer.py``) move bytes; this module says what they
mean. References are to the *Short Message Peer to Peer Protocol Specification v3.4*
(SMPP Developers Forum, Issue 1.2, 12 October 1999):

* §3.2 the PDU format: a 16-octet header (command_length, command_id, command_status,
  sequence_number, all big-endian unsigned 32-bit) and a body;
* §3.1 / §5.1 C-octet strings (NUL-terminated; the maximum lengths in §4 include the NUL) and
  TLVs (tag, length, value; §3.2.4, §5.3);
* §4 the PDU bodies used here: bind_*, unbind, submit_sm, deliver_sm, enquire_link,
  generic_nack and their responses;
* appendix B the delivery receipt text format.

Text: pure-ASCII text whose characters mean the same in GSM 03.38 and ASCII goes out with
data_coding 0x00 (the SMSC default alphabet), anything else as UCS-2 (data_coding 0x08,
UTF-16BE). Long text can be split into concatenated parts carrying a UDH
(``split_concatenated``) or sent whole in the message_payload TLV; the provider chooses.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from enum import IntEnum
from typing import ClassVar, cast

HEADER_LENGTH = 16
# The specification sets no limit on command_length; 64 KiB holds the largest message_payload
# we would ever send or accept and keeps a garbage length from making us buffer gigabytes.
MAX_PDU_LENGTH = 64 * 1024
INTERFACE_VERSION = 0x34  # §5.2.4: SMPP 3.4
MAX_SHORT_MESSAGE = 254  # §4.4.1: sm_length is one octet, 0-254
MAX_SEQUENCE_NUMBER = 0x7FFFFFFF  # §3.2: 0x00000001 to 0x7FFFFFFF

_HEADER = struct.Struct(">IIII")
_TLV_HEADER = struct.Struct(">HH")


class CommandId(IntEnum):
    """§5.1.2.1 command_id values; a response is its request with bit 31 set."""

    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    REPLACE_SM = 0x00000007
    REPLACE_SM_RESP = 0x80000007
    CANCEL_SM = 0x00000008
    CANCEL_SM_RESP = 0x80000008
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    OUTBIND = 0x0000000B
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    SUBMIT_MULTI = 0x00000021
    SUBMIT_MULTI_RESP = 0x80000021
    ALERT_NOTIFICATION = 0x00000102
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103


RESPONSE_BIT = 0x80000000


class CommandStatus(IntEnum):
    """§5.1.3 command_status values. What each means for a submission is in ``smpp_status``."""

    ESME_ROK = 0x00000000
    ESME_RINVMSGLEN = 0x00000001
    ESME_RINVCMDLEN = 0x00000002
    ESME_RINVCMDID = 0x00000003
    ESME_RINVBNDSTS = 0x00000004
    ESME_RALYBND = 0x00000005
    ESME_RINVPRTFLG = 0x00000006
    ESME_RINVREGDLVFLG = 0x00000007
    ESME_RSYSERR = 0x00000008
    ESME_RINVSRCADR = 0x0000000A
    ESME_RINVDSTADR = 0x0000000B
    ESME_RINVMSGID = 0x0000000C
    ESME_RBINDFAIL = 0x0000000D
    ESME_RINVPASWD = 0x0000000E
    ESME_RINVSYSID = 0x0000000F
    ESME_RCANCELFAIL = 0x00000011
    ESME_RREPLACEFAIL = 0x00000013
    ESME_RMSGQFUL = 0x00000014
    ESME_RINVSERTYP = 0x00000015
    ESME_RINVNUMDESTS = 0x00000033
    ESME_RINVDLNAME = 0x00000034
    ESME_RINVDESTFLAG = 0x00000040
    ESME_RINVSUBREP = 0x00000042
    ESME_RINVESMCLASS = 0x00000043
    ESME_RCNTSUBDL = 0x00000044
    ESME_RSUBMITFAIL = 0x00000045
    ESME_RINVSRCTON = 0x00000048
    ESME_RINVSRCNPI = 0x00000049
    ESME_RINVDSTTON = 0x00000050
    ESME_RINVDSTNPI = 0x00000051
    ESME_RINVSYSTYP = 0x00000053
    ESME_RINVREPFLAG = 0x00000054
    ESME_RINVNUMMSGS = 0x00000055
    ESME_RTHROTTLED = 0x00000058
    ESME_RINVSCHED = 0x00000061
    ESME_RINVEXPIRY = 0x00000062
    ESME_RINVDFTMSGID = 0x00000063
    ESME_RX_T_APPN = 0x00000064
    ESME_RX_P_APPN = 0x00000065
    ESME_RX_R_APPN = 0x00000066
    ESME_RQUERYFAIL = 0x00000067
    ESME_RINVOPTPARSTREAM = 0x000000C0
    ESME_ROPTPARNOTALLWD = 0x000000C1
    ESME_RINVPARLEN = 0x000000C2
    ESME_RMISSINGOPTPARAM = 0x000000C3
    ESME_RINVOPTPARAMVAL = 0x000000C4
    ESME_RDELIVERYFAILURE = 0x000000FE
    ESME_RUNKNOWNERR = 0x000000FF


class TlvTag(IntEnum):
    """§5.3.2 optional parameter tags this platform reads or writes (others are kept as bytes)."""

    RECEIPTED_MESSAGE_ID = 0x001E
    USER_MESSAGE_REFERENCE = 0x0204
    SAR_MSG_REF_NUM = 0x020C
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    MESSAGE_STATE = 0x0427


class MessageState(IntEnum):
    """§5.2.28 message_state, as carried in a receipt's message_state TLV."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8


class DataCoding(IntEnum):
    """§5.2.19 data_coding values this module encodes or decodes as text."""

    DEFAULT = 0x00  # SMSC default alphabet (GSM 03.38 on most SMSCs)
    IA5 = 0x01  # IA5 / ASCII
    LATIN1 = 0x03
    UCS2 = 0x08  # ISO/IEC 10646, sent as UTF-16BE


# §5.2.12 esm_class bits.
ESM_CLASS_UDHI = 0x40  # the short_message starts with a user data header
ESM_CLASS_MESSAGE_TYPE = 0x3C  # bits 5-2
ESM_CLASS_DELIVERY_RECEIPT = 0x04  # "SMSC Delivery Receipt" (deliver_sm)
# §5.2.17 registered_delivery: 1 = a receipt on final outcome (success or failure).
REGISTERED_DELIVERY_FINAL = 0x01

# §4 maximum C-octet string sizes, *including* the terminating NUL.
MAX_SYSTEM_ID = 16
MAX_PASSWORD = 9
MAX_SYSTEM_TYPE = 13
MAX_ADDRESS_RANGE = 41
MAX_SERVICE_TYPE = 6
MAX_ADDR = 21
MAX_TIME = 17
MAX_MESSAGE_ID = 65


class PduError(ValueError):
    """A PDU could not be encoded, or bytes could not be framed into PDUs."""


class FramingError(PduError):
    """The byte stream cannot be split into PDUs any more (a bad command_length): the
    connection must be closed, since the next PDU boundary is unknown (§3.2)."""


class _BodyError(Exception):
    """A framed PDU whose body is malformed; becomes a ``MalformedPdu`` (answer generic_nack)."""

    def __init__(self, status: CommandStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Tlv:
    """An optional parameter (§3.2.4): unknown tags are kept, in order, as raw bytes."""

    tag: int
    value: bytes

    @classmethod
    def cstring(cls, tag: int, text: str) -> Tlv:
        return cls(tag, text.encode("ascii") + b"\x00")

    @classmethod
    def u8(cls, tag: int, number: int) -> Tlv:
        return cls(tag, bytes((number,)))


def find_tlv(tlvs: tuple[Tlv, ...], tag: int) -> bytes | None:
    """The value of the first TLV with ``tag``, or None."""
    for tlv in tlvs:
        if tlv.tag == tag:
            return tlv.value
    return None


# PDUs ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Base:
    sequence_number: int
    command_status: int = CommandStatus.ESME_ROK
    # The PDU's bytes as received (set by the decoder, empty when built locally): the evidence is
    # what the peer sent, not our re-encoding of it.
    raw: bytes = field(default=b"", repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Known(_Base):
    COMMAND_ID: ClassVar[CommandId]

    @property
    def command_id(self) -> int:
        return int(self.COMMAND_ID)

    def encode_body(self) -> bytes:
        return b""

    @classmethod
    def _decode_fields(cls, r: _Reader) -> dict[str, object]:
        return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Bind(_Known):
    """§4.1.1 / §4.1.3 / §4.1.5 bind_transmitter, bind_receiver, bind_transceiver."""

    system_id: str
    password: str
    system_type: str = ""
    interface_version: int = INTERFACE_VERSION
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""

    def encode_body(self) -> bytes:
        return b"".join(
            (
                _cstr(self.system_id, MAX_SYSTEM_ID, "system_id"),
                _cstr(self.password, MAX_PASSWORD, "password"),
                _cstr(self.system_type, MAX_SYSTEM_TYPE, "system_type"),
                _u8s(self.interface_version, self.addr_ton, self.addr_npi),
                _cstr(self.address_range, MAX_ADDRESS_RANGE, "address_range"),
            )
        )

    @classmethod
    def _decode_fields(cls, r: _Reader) -> dict[str, object]:
        return {
            "system_id": r.cstring(MAX_SYSTEM_ID, "system_id", CommandStatus.ESME_RINVSYSID),
            "password": r.cstring(MAX_PASSWORD, "password", CommandStatus.ESME_RINVPASWD),
            "system_type": r.cstring(MAX_SYSTEM_TYPE, "system_type", CommandStatus.ESME_RINVSYSTYP),
            "interface_version": r.u8(),
            "addr_ton": r.u8(),
            "addr_npi": r.u8(),
            "address_range": r.cstring(MAX_ADDRESS_RANGE, "address_range"),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransmitter(_Bind):
    COMMAND_ID: ClassVar[CommandId] = CommandId.BIND_TRANSMITTER


@dataclass(frozen=True, slots=True, kw_only=True)
class BindReceiver(_Bind):
    COMMAND_ID: ClassVar[CommandId] = CommandId.BIND_RECEIVER


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiver(_Bind):
    COMMAND_ID: ClassVar[CommandId] = CommandId.BIND_TRANSCEIVER


@dataclass(frozen=True, slots=True, kw_only=True)
class _BindResp(_Known):
    """§4.1.2 / §4.1.4 / §4.1.6: system_id of the SMSC, optional sc_interface_version TLV. An
    error response may come without a body, which decodes to the defaults."""

    system_id: str = ""
    tlvs: tuple[Tlv, ...] = ()

    def encode_body(self) -> bytes:
        return _cstr(self.system_id, MAX_SYSTEM_ID, "system_id") + _encode_tlvs(self.tlvs)

    @classmethod
    def _decode_fields(cls, r: _Reader) -> dict[str, object]:
        if not r.remaining:
            return {}
        return {"system_id": r.cstring(MAX_SYSTEM_ID, "system_id"), "tlvs": r.tlvs()}


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransmitterResp(_BindResp):
    COMMAND_ID: ClassVar[CommandId] = CommandId.BIND_TRANSMITTER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class BindReceiverResp(_BindResp):
    COMMAND_ID: ClassVar[CommandId] = CommandId.BIND_RECEIVER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiverResp(_BindResp):
    COMMAND_ID: ClassVar[CommandId] = CommandId.BIND_TRANSCEIVER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class Unbind(_Known):
    """§4.2.1."""

    COMMAND_ID: ClassVar[CommandId] = CommandId.UNBIND


@dataclass(frozen=True, slots=True, kw_only=True)
class UnbindResp(_Known):
    """§4.2.2."""

    COMMAND_ID: ClassVar[CommandId] = CommandId.UNBIND_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLink(_Known):
    """§4.11.1."""

    COMMAND_ID: ClassVar[CommandId] = CommandId.ENQUIRE_LINK


@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLinkResp(_Known):
    """§4.11.2."""

    COMMAND_ID: ClassVar[CommandId] = CommandId.ENQUIRE_LINK_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericNack(_Known):
    """§4.3.1: the answer to a PDU that could not be understood at all."""

    COMMAND_ID: ClassVar[CommandId] = CommandId.GENERIC_NACK


@dataclass(frozen=True, slots=True, kw_only=True)
class _ShortMessage(_Known):
    """§4.4.1 submit_sm and §4.6.1 deliver_sm share one body layout."""

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = DataCoding.DEFAULT
    sm_default_msg_id: int = 0
    short_message: bytes = b""
    tlvs: tuple[Tlv, ...] = ()

    def encode_body(self) -> bytes:
        if len(self.short_message) > MAX_SHORT_MESSAGE:
            raise PduError(
                f"short_message: expected at most {MAX_SHORT_MESSAGE} octets, "
                f"got {len(self.short_message)}"
            )
        if self.short_message and find_tlv(self.tlvs, TlvTag.MESSAGE_PAYLOAD) is not None:
            # §5.3.2.32: with message_payload, sm_length must be 0.
            raise PduError("expected an empty short_message with message_payload, got both")
        return b"".join(
            (
                _cstr(self.service_type, MAX_SERVICE_TYPE, "service_type"),
                _u8s(self.source_addr_ton, self.source_addr_npi),
                _cstr(self.source_addr, MAX_ADDR, "source_addr"),
                _u8s(self.dest_addr_ton, self.dest_addr_npi),
                _cstr(self.destination_addr, MAX_ADDR, "destination_addr"),
                _u8s(self.esm_class, self.protocol_id, self.priority_flag),
                _time(self.schedule_delivery_time, "schedule_delivery_time"),
                _time(self.validity_period, "validity_period"),
                _u8s(
                    self.registered_delivery,
                    self.replace_if_present_flag,
                    self.data_coding,
                    self.sm_default_msg_id,
                    len(self.short_message),
                ),
                self.short_message,
                _encode_tlvs(self.tlvs),
            )
        )

    @classmethod
    def _decode_fields(cls, r: _Reader) -> dict[str, object]:
        fields: dict[str, object] = {
            "service_type": r.cstring(MAX_SERVICE_TYPE, "service_type"),
            "source_addr_ton": r.u8(),
            "source_addr_npi": r.u8(),
            "source_addr": r.cstring(MAX_ADDR, "source_addr", CommandStatus.ESME_RINVSRCADR),
            "dest_addr_ton": r.u8(),
            "dest_addr_npi": r.u8(),
            "destination_addr": r.cstring(
                MAX_ADDR, "destination_addr", CommandStatus.ESME_RINVDSTADR
            ),
            "esm_class": r.u8(),
            "protocol_id": r.u8(),
            "priority_flag": r.u8(),
            "schedule_delivery_time": r.cstring(
                MAX_TIME, "schedule_delivery_time", CommandStatus.ESME_RINVSCHED
            ),
            "validity_period": r.cstring(
                MAX_TIME, "validity_period", CommandStatus.ESME_RINVEXPIRY
            ),
            "registered_delivery": r.u8(),
            "replace_if_present_flag": r.u8(),
            "data_coding": r.u8(),
            "sm_default_msg_id": r.u8(),
        }
        sm_length = r.u8()
        if sm_length > MAX_SHORT_MESSAGE:
            raise _BodyError(
                CommandStatus.ESME_RINVMSGLEN,
                f"sm_length: expected at most {MAX_SHORT_MESSAGE}, got {sm_length}",
            )
        fields["short_message"] = r.octets(sm_length, "short_message")
        fields["tlvs"] = r.tlvs()
        return fields

    @property
    def message_bytes(self) -> bytes:
        """The message content: message_payload if present (§5.3.2.32), else short_message."""
        payload = find_tlv(self.tlvs, TlvTag.MESSAGE_PAYLOAD)
        return self.short_message if payload is None else payload


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSm(_ShortMessage):
    COMMAND_ID: ClassVar[CommandId] = CommandId.SUBMIT_SM


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSm(_ShortMessage):
    COMMAND_ID: ClassVar[CommandId] = CommandId.DELIVER_SM


@dataclass(frozen=True, slots=True, kw_only=True)
class _MessageIdResp(_Known):
    """§4.4.2 submit_sm_resp / §4.6.2 deliver_sm_resp. The body is absent when command_status is
    non-zero (§4.4.2), which decodes to an empty message_id."""

    message_id: str = ""

    def encode_body(self) -> bytes:
        return _cstr(self.message_id, MAX_MESSAGE_ID, "message_id")

    @classmethod
    def _decode_fields(cls, r: _Reader) -> dict[str, object]:
        if not r.remaining:
            return {}
        return {"message_id": r.cstring(MAX_MESSAGE_ID, "message_id")}


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSmResp(_MessageIdResp):
    COMMAND_ID: ClassVar[CommandId] = CommandId.SUBMIT_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSmResp(_MessageIdResp):
    COMMAND_ID: ClassVar[CommandId] = CommandId.DELIVER_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownPdu(_Base):
    """A well-framed PDU whose command we do not implement; the body is kept verbatim."""

    command_id: int
    body: bytes = b""

    def encode_body(self) -> bytes:
        return self.body


@dataclass(frozen=True, slots=True, kw_only=True)
class MalformedPdu(_Base):
    """A well-framed PDU whose body does not parse. ``error_status`` is what to answer with in a
    generic_nack (§4.3.1); framing is intact, so the stream goes on."""

    command_id: int
    error_status: int
    reason: str


Pdu = (
    BindTransmitter
    | BindReceiver
    | BindTransceiver
    | BindTransmitterResp
    | BindReceiverResp
    | BindTransceiverResp
    | Unbind
    | UnbindResp
    | EnquireLink
    | EnquireLinkResp
    | GenericNack
    | SubmitSm
    | SubmitSmResp
    | DeliverSm
    | DeliverSmResp
    | UnknownPdu
    | MalformedPdu
)

_KNOWN: dict[int, type[_Known]] = {
    cls.COMMAND_ID: cls
    for cls in (
        BindTransmitter,
        BindReceiver,
        BindTransceiver,
        BindTransmitterResp,
        BindReceiverResp,
        BindTransceiverResp,
        Unbind,
        UnbindResp,
        EnquireLink,
        EnquireLinkResp,
        GenericNack,
        SubmitSm,
        SubmitSmResp,
        DeliverSm,
        DeliverSmResp,
    )
}


def is_response(command_id: int) -> bool:
    """§5.1.2.1: responses have bit 31 set."""
    return bool(command_id & RESPONSE_BIT)


def command_name(command_id: int) -> str:
    try:
        return CommandId(command_id).name.lower()
    except ValueError:
        return f"command_0x{command_id:08X}"


def status_name(status: int) -> str:
    try:
        return CommandStatus(status).name
    except ValueError:
        return f"0x{status:08X}"


# Encoding --------------------------------------------------------------------------------------


def encode(pdu: Pdu) -> bytes:
    """The PDU's bytes: the §3.2 header followed by its body."""
    if isinstance(pdu, MalformedPdu):
        raise PduError("a malformed PDU cannot be encoded")
    # A response echoes the request's number, whatever the peer chose; only 32 bits are checked.
    if not 0 <= pdu.sequence_number <= 0xFFFFFFFF:
        raise PduError(f"sequence_number: expected a 32-bit number, got {pdu.sequence_number}")
    body = pdu.encode_body()
    length = HEADER_LENGTH + len(body)
    if length > MAX_PDU_LENGTH:
        raise PduError(f"command_length: expected at most {MAX_PDU_LENGTH}, got {length}")
    return _HEADER.pack(length, pdu.command_id, pdu.command_status, pdu.sequence_number) + body


def with_sequence_number(data: bytes, sequence_number: int) -> bytes:
    """An encoded PDU with another sequence number (§3.2): encode once, number when sending."""
    if len(data) < HEADER_LENGTH:
        raise PduError(f"expected at least {HEADER_LENGTH} octets, got {len(data)}")
    return data[:12] + sequence_number.to_bytes(4, "big") + data[16:]


def _cstr(value: str, max_len: int, name: str) -> bytes:
    # Values are not quoted in errors: address fields hold phone numbers.
    try:
        data = value.encode("ascii")
    except UnicodeEncodeError:
        raise PduError(f"{name}: expected ASCII characters only") from None
    if len(data) > max_len - 1:
        raise PduError(f"{name}: expected at most {max_len - 1} characters, got {len(data)}")
    if b"\x00" in data:
        raise PduError(f"{name}: expected no NUL characters")
    return data + b"\x00"


def _time(value: str, name: str) -> bytes:
    # §7.1.1: absolute or relative time, "YYMMDDhhmmsstnnp", or empty for "not set".
    if value and len(value) != MAX_TIME - 1:
        raise PduError(f"{name}: expected 0 or {MAX_TIME - 1} characters, got {len(value)}")
    return _cstr(value, MAX_TIME, name)


def _u8s(*numbers: int) -> bytes:
    try:
        return bytes(numbers)
    except ValueError:
        raise PduError(f"expected integer fields in 0..255, got {numbers}") from None


def _encode_tlvs(tlvs: tuple[Tlv, ...]) -> bytes:
    out = bytearray()
    for tlv in tlvs:
        if not 0 <= tlv.tag <= 0xFFFF or len(tlv.value) > 0xFFFF:
            raise PduError(f"TLV 0x{tlv.tag:04X}: expected a 16-bit tag and length")
        out += _TLV_HEADER.pack(tlv.tag, len(tlv.value))
        out += tlv.value
    return bytes(out)


# Decoding --------------------------------------------------------------------------------------


class _Reader:
    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self._data = data
        self._pos = pos

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def u8(self) -> int:
        if self._pos >= len(self._data):
            raise _BodyError(CommandStatus.ESME_RINVCMDLEN, "body ends inside a fixed field")
        value = self._data[self._pos]
        self._pos += 1
        return value

    def cstring(
        self, max_len: int, name: str, status: CommandStatus = CommandStatus.ESME_RINVPARLEN
    ) -> str:
        end = self._data.find(b"\x00", self._pos, self._pos + max_len)
        if end < 0:
            if len(self._data) - self._pos < max_len:
                raise _BodyError(CommandStatus.ESME_RINVCMDLEN, f"{name}: no terminating NUL")
            raise _BodyError(status, f"{name}: longer than {max_len - 1} characters")
        # latin-1 keeps every byte: a peer's odd bytes survive into the evidence.
        value = self._data[self._pos : end].decode("latin-1")
        self._pos = end + 1
        return value

    def octets(self, n: int, name: str) -> bytes:
        if n > self.remaining:
            raise _BodyError(CommandStatus.ESME_RINVCMDLEN, f"{name}: body ends before {n} octets")
        value = self._data[self._pos : self._pos + n]
        self._pos += n
        return value

    def tlvs(self) -> tuple[Tlv, ...]:
        out: list[Tlv] = []
        data = self._data
        while self._pos < len(data):
            if self.remaining < _TLV_HEADER.size:
                raise _BodyError(CommandStatus.ESME_RINVOPTPARSTREAM, "truncated TLV header")
            tag, length = _TLV_HEADER.unpack_from(data, self._pos)
            self._pos += _TLV_HEADER.size
            if length > self.remaining:
                raise _BodyError(
                    CommandStatus.ESME_RINVPARLEN,
                    f"TLV 0x{tag:04X}: length {length} exceeds the {self.remaining} octets left",
                )
            out.append(Tlv(tag, data[self._pos : self._pos + length]))
            self._pos += length
        return tuple(out)


def decode(data: bytes) -> Pdu:
    """Decode one whole PDU. Framing errors raise ``FramingError``; a malformed body yields a
    ``MalformedPdu`` and an unimplemented command an ``UnknownPdu``."""
    if len(data) < HEADER_LENGTH:
        raise FramingError(f"expected at least {HEADER_LENGTH} octets, got {len(data)}")
    length, command_id, status, sequence = _HEADER.unpack_from(data)
    if length != len(data):
        raise FramingError(f"command_length says {length} octets, got {len(data)}")
    cls = _KNOWN.get(command_id)
    if cls is None:
        return UnknownPdu(
            command_id=command_id,
            command_status=status,
            sequence_number=sequence,
            body=data[HEADER_LENGTH:],
            raw=data,
        )
    try:
        fields = cls._decode_fields(_Reader(data, HEADER_LENGTH))
    except _BodyError as e:
        return MalformedPdu(
            command_id=command_id,
            command_status=status,
            sequence_number=sequence,
            error_status=e.status,
            reason=f"{command_name(command_id)}: {e.reason}",
            raw=data,
        )
    # Octets after a header-only PDU, or after a response's last field, are ignored: being strict
    # about a peer's padding would break service for nothing.
    return cast(Pdu, cls(sequence_number=sequence, command_status=status, raw=data, **fields))


class PduDecoder:
    """Splits a TCP byte stream into PDUs (§3.2), whatever the read boundaries.

    ``feed`` returns the PDUs completed by ``data`` (possibly none). A command_length below 16 or
    above ``max_length`` raises ``FramingError``: the stream cannot be resynchronised, and every
    later call raises it again.
    """

    def __init__(self, *, max_length: int = MAX_PDU_LENGTH) -> None:
        if max_length < HEADER_LENGTH:
            raise ValueError(f"max_length: expected at least {HEADER_LENGTH}, got {max_length}")
        self._max_length = max_length
        self._buffer = bytearray()
        self._broken: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Octets received that are not yet a whole PDU."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Pdu]:
        if self._broken is not None:
            raise self._broken
        buffer = self._buffer
        buffer += data
        out: list[Pdu] = []
        pos = 0
        available = len(buffer)
        while available - pos >= 4:
            # Check the length as soon as its 4 octets are in: garbage is refused at once.
            length = int.from_bytes(buffer[pos : pos + 4], "big")
            if length < HEADER_LENGTH or length > self._max_length:
                self._broken = FramingError(
                    f"command_length: expected {HEADER_LENGTH}..{self._max_length}, got {length}"
                )
                del buffer[:]
                raise self._broken
            if available - pos < length:
                break
            out.append(decode(bytes(buffer[pos : pos + length])))
            pos += length
        if pos:
            del buffer[:pos]
        return out


# Text ------------------------------------------------------------------------------------------

# Characters that are the same code in GSM 03.38 (default alphabet, unpacked) and in ASCII/IA5
# and Latin-1. Only these go out as data_coding 0x00: "@", "$", "_", "`", and the GSM extension
# characters ([ ] { } \ ^ ~ |) differ between alphabets, and what 0x00 means is SMSC
# configuration, so text containing them is sent as UCS-2, which means the same everywhere.
GSM_ASCII_SAFE = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 !\"#%&'()*+,-./:;<=>?\n\r"
)
# 3GPP TS 23.040 §9.2.3.24.1: one concatenated part carries 153 GSM or 67 UCS-2 characters
# (a 6-octet UDH takes the rest of 140 octets); a single message 160 or 70.
SINGLE_PART_OCTETS = {DataCoding.DEFAULT: 160, DataCoding.UCS2: 140}
CONCATENATED_PART_OCTETS = {DataCoding.DEFAULT: 153, DataCoding.UCS2: 134}
MAX_PARTS = 255


@dataclass(frozen=True, slots=True)
class EncodedText:
    data_coding: DataCoding
    octets: bytes

    @property
    def fits_single_part(self) -> bool:
        return len(self.octets) <= SINGLE_PART_OCTETS[self.data_coding]


def encode_text(text: str) -> EncodedText:
    """Choose data_coding (§5.2.19) for ``text``: 0x00 when every character is the same in GSM
    03.38 and ASCII, else 0x08 UCS-2 as UTF-16BE (characters beyond the BMP become surrogate
    pairs, which handsets decode as UTF-16)."""
    if GSM_ASCII_SAFE.issuperset(text):
        return EncodedText(DataCoding.DEFAULT, text.encode("ascii"))
    return EncodedText(DataCoding.UCS2, text.encode("utf-16-be", "surrogatepass"))


def decode_text(octets: bytes, data_coding: int) -> str:
    """The text of a short_message or message_payload. UCS-2 as UTF-16BE; everything else as
    Latin-1, which reads the ASCII of delivery receipts right and never fails."""
    if data_coding == DataCoding.UCS2:
        return octets.decode("utf-16-be", "replace")
    return octets.decode("latin-1")


@dataclass(frozen=True, slots=True)
class Concatenation:
    """A concatenated-message information element (3GPP TS 23.040 §9.2.3.24.1 / .8)."""

    reference: int
    total: int
    sequence: int  # 1-based


def split_concatenated(encoded: EncodedText, *, reference: int) -> list[bytes]:
    """short_message octets for each part, each starting with a UDH (send with esm_class 0x40).

    Text that fits one message is returned as one part without a UDH. UCS-2 parts never split a
    surrogate pair. ``reference`` (0-255) must differ between messages in flight to one handset.
    """
    if not 0 <= reference <= 0xFF:
        raise PduError(f"reference: expected 0..255, got {reference}")
    if encoded.fits_single_part:
        return [encoded.octets]
    size = CONCATENATED_PART_OCTETS[encoded.data_coding]
    octets = encoded.octets
    chunks: list[bytes] = []
    pos = 0
    while pos < len(octets):
        end = min(pos + size, len(octets))
        if (
            encoded.data_coding == DataCoding.UCS2
            and end < len(octets)
            and 0xD8 <= octets[end - 2] <= 0xDB
        ):
            end -= 2  # the last code unit is a high surrogate: keep the pair together
        chunks.append(octets[pos:end])
        pos = end
    if len(chunks) > MAX_PARTS:
        raise PduError(f"expected at most {MAX_PARTS} parts, got {len(chunks)}")
    total = len(chunks)
    return [
        bytes((0x05, 0x00, 0x03, reference, total, i)) + chunk
        for i, chunk in enumerate(chunks, start=1)
    ]


def split_udh(short_message: bytes) -> tuple[Concatenation | None, bytes]:
    """Strip the UDH from a short_message sent with esm_class 0x40: the concatenation element (8-
    or 16-bit reference) if there is one, and the content."""
    if not short_message:
        return None, short_message
    udh_length = short_message[0]
    if udh_length + 1 > len(short_message):
        return None, short_message
    header = short_message[1 : udh_length + 1]
    content = short_message[udh_length + 1 :]
    concat: Concatenation | None = None
    pos = 0
    while pos + 2 <= len(header):
        iei, iel = header[pos], header[pos + 1]
        value = header[pos + 2 : pos + 2 + iel]
        if iei == 0x00 and iel == 3 and len(value) == 3:
            concat = Concatenation(value[0], value[1], value[2])
        elif iei == 0x08 and iel == 4 and len(value) == 4:
            concat = Concatenation(int.from_bytes(value[:2], "big"), value[2], value[3])
        pos += 2 + iel
    return concat, content


# A readable dump (evidence, tests) -------------------------------------------------------------

_TEXT_CODINGS = frozenset({DataCoding.DEFAULT, DataCoding.IA5, DataCoding.LATIN1, DataCoding.UCS2})
_CSTRING_TLVS = frozenset({TlvTag.RECEIPTED_MESSAGE_ID})
_U8_TLVS = frozenset({TlvTag.MESSAGE_STATE, TlvTag.SC_INTERFACE_VERSION})


def describe(pdu: Pdu) -> str:
    """One line naming the command, header and every body field and TLV: what a clerk or a
    judge can read in the evidence next to the hex."""
    parts = [
        command_name(pdu.command_id),
        f"seq={pdu.sequence_number}",
        f"status=0x{pdu.command_status:08X}({status_name(pdu.command_status)})",
    ]
    if isinstance(pdu, _Bind):
        parts += [
            f"system_id={pdu.system_id!r}",
            "password=***",
            f"system_type={pdu.system_type!r}",
            f"interface_version=0x{pdu.interface_version:02X}",
            f"addr_ton={pdu.addr_ton}",
            f"addr_npi={pdu.addr_npi}",
            f"address_range={pdu.address_range!r}",
        ]
    elif isinstance(pdu, _BindResp):
        parts.append(f"system_id={pdu.system_id!r}")
        parts += [_describe_tlv(t) for t in pdu.tlvs]
    elif isinstance(pdu, _MessageIdResp):
        parts.append(f"message_id={pdu.message_id!r}")
    elif isinstance(pdu, _ShortMessage):
        parts += [
            f"service_type={pdu.service_type!r}",
            f"source_addr={pdu.source_addr_ton}/{pdu.source_addr_npi}/{pdu.source_addr!r}",
            f"destination_addr={pdu.dest_addr_ton}/{pdu.dest_addr_npi}/{pdu.destination_addr!r}",
            f"esm_class=0x{pdu.esm_class:02X}",
            f"registered_delivery={pdu.registered_delivery}",
            f"data_coding=0x{pdu.data_coding:02X}",
            f"short_message={_describe_octets(pdu.short_message, pdu.data_coding, pdu.esm_class)}",
        ]
        parts += [_describe_tlv(t, pdu.data_coding) for t in pdu.tlvs]
    elif isinstance(pdu, UnknownPdu):
        parts.append(f"body={pdu.body.hex()}")
    elif isinstance(pdu, MalformedPdu):
        parts.append(f"error={pdu.reason!r}")
    return " ".join(parts)


def _describe_octets(octets: bytes, data_coding: int, esm_class: int) -> str:
    if esm_class & ESM_CLASS_UDHI or data_coding not in _TEXT_CODINGS:
        return f"hex:{octets.hex()}"
    return repr(decode_text(octets, data_coding))


def _describe_tlv(tlv: Tlv, data_coding: int = DataCoding.DEFAULT) -> str:
    try:
        name = TlvTag(tlv.tag).name.lower()
    except ValueError:
        name = f"tlv_0x{tlv.tag:04X}"
    if tlv.tag in _CSTRING_TLVS:
        text = tlv.value.rstrip(b"\x00").decode("latin-1")
        return f"{name}={text!r}"
    if tlv.tag in _U8_TLVS and len(tlv.value) == 1:
        return f"{name}={tlv.value[0]}"
    if tlv.tag == TlvTag.MESSAGE_PAYLOAD:
        return f"{name}={_describe_octets(tlv.value, data_coding, 0)}"
    return f"{name}=hex:{tlv.value.hex()}"


# Delivery receipts -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """What a delivery receipt says (appendix B text and the §5.3.2 TLVs). Missing fields are
    empty / None: SMSCs differ, and a partial receipt is still evidence."""

    message_id: str
    stat: str  # upper case: DELIVRD, UNDELIV, ...; "" when absent
    error: str  # the text's err: field, else the network_error_code TLV as hex
    submitted_at: datetime | None
    done_at: datetime | None
    submitted_count: int | None
    delivered_count: int | None
    text: str  # the first characters of the original message, as the SMSC quotes them
    message_state: int | None  # the message_state TLV


_TEXT_FIELD = re.compile(r"(?i)\btext:")
_RECEIPT_FIELD = re.compile(
    # The value starts right after the colon: with "stat: err:000" a skipped blank would make
    # "err:000" the status.
    r"(?i)\b(id|sub|dlvrd|submit[ _]date|done[ _]date|stat|err):(\S*)",
)


def parse_receipt_text(text: str, *, tz: tzinfo) -> DeliveryReceipt:
    """Parse appendix B's "id:IIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done
    date:YYMMDDhhmm stat:DDDDDDD err:E text:..." in any order and case; dates may carry seconds
    and are read in ``tz`` (the SMSC's time zone). Anything missing or unreadable is left empty."""
    match = _TEXT_FIELD.search(text)
    head, quoted = (text[: match.start()], text[match.end() :]) if match else (text, "")
    found: dict[str, str] = {}
    for key, value in _RECEIPT_FIELD.findall(head):
        found.setdefault(key.lower().replace("_", " "), value)
    return DeliveryReceipt(
        message_id=found.get("id", ""),
        stat=found.get("stat", "").upper(),
        error=found.get("err", ""),
        submitted_at=_receipt_time(found.get("submit date", ""), tz),
        done_at=_receipt_time(found.get("done date", ""), tz),
        submitted_count=_count(found.get("sub", "")),
        delivered_count=_count(found.get("dlvrd", "")),
        text=quoted,
        message_state=None,
    )


def _receipt_time(value: str, tz: tzinfo) -> datetime | None:
    if not value.isdigit() or len(value) not in (10, 12):
        return None
    digits = [int(value[i : i + 2]) for i in range(0, len(value), 2)]
    second = digits[5] if len(digits) == 6 else 0
    try:
        return datetime(
            2000 + digits[0], digits[1], digits[2], digits[3], digits[4], second, tzinfo=tz
        )
    except ValueError:
        return None


def _count(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def is_delivery_receipt(pdu: DeliverSm) -> bool:
    """§5.2.12: esm_class message type "SMSC Delivery Receipt"; or, for SMSCs that leave
    esm_class at 0, a receipted_message_id TLV (§5.3.2.12)."""
    if pdu.esm_class & ESM_CLASS_MESSAGE_TYPE == ESM_CLASS_DELIVERY_RECEIPT:
        return True
    return find_tlv(pdu.tlvs, TlvTag.RECEIPTED_MESSAGE_ID) is not None


def parse_receipt(pdu: DeliverSm, *, tz: tzinfo) -> DeliveryReceipt:
    """The receipt a deliver_sm carries. The receipted_message_id and message_state TLVs
    (§5.3.2.12, §5.3.2.35) win over the text, which SMSCs format loosely."""
    from_text = parse_receipt_text(decode_text(pdu.message_bytes, pdu.data_coding), tz=tz)
    receipted = find_tlv(pdu.tlvs, TlvTag.RECEIPTED_MESSAGE_ID)
    state = find_tlv(pdu.tlvs, TlvTag.MESSAGE_STATE)
    network_error = find_tlv(pdu.tlvs, TlvTag.NETWORK_ERROR_CODE)
    message_id = from_text.message_id
    if receipted is not None and receipted.rstrip(b"\x00"):
        message_id = receipted.rstrip(b"\x00").decode("latin-1")
    error = from_text.error
    if not error and network_error:
        error = network_error.hex()
    return DeliveryReceipt(
        message_id=message_id,
        stat=from_text.stat,
        error=error,
        submitted_at=from_text.submitted_at,
        done_at=from_text.done_at,
        submitted_count=from_text.submitted_count,
        delivered_count=from_text.delivered_count,
        text=from_text.text,
        message_state=state[0] if state is not None and len(state) == 1 else None,
    )


def receipt_text(
    *,
    message_id: str,
    stat: str,
    submitted_at: datetime,
    done_at: datetime,
    error: str = "000",
    delivered: bool = False,
    text: str = "",
) -> str:
    """Appendix B receipt text, as an SMSC writes it (used by the test SMSC)."""
    dlvrd = "001" if delivered else "000"
    return (
        f"id:{message_id} sub:001 dlvrd:{dlvrd} submit date:{submitted_at:%y%m%d%H%M} "
        f"done date:{done_at:%y%m%d%H%M} stat:{stat} err:{error} text:{text[:20]}"
    )
