"""The SMPP 3.4 codec, with no socket: PDUs to bytes and back, text, concatenation, the stream
decoder and delivery receipts."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest

from yunting.service_delivery.providers.smpp_pdu import (
    ESM_CLASS_DELIVERY_RECEIPT,
    MAX_PDU_LENGTH,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CommandId,
    CommandStatus,
    Concatenation,
    DataCoding,
    DeliverSm,
    DeliverSmResp,
    EncodedText,
    EnquireLink,
    EnquireLinkResp,
    FramingError,
    GenericNack,
    MalformedPdu,
    MessageState,
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
    decode,
    decode_text,
    describe,
    encode,
    encode_text,
    is_delivery_receipt,
    parse_receipt,
    parse_receipt_text,
    receipt_text,
    split_concatenated,
    split_udh,
)

CST = timezone(timedelta(hours=8))

EVERY_PDU: list[Pdu] = [
    BindTransmitter(sequence_number=1, system_id="court", password="secret", system_type="SVC"),
    BindReceiver(
        sequence_number=2,
        system_id="court",
        password="pw",
        addr_ton=1,
        addr_npi=1,
        address_range="^86",
    ),
    BindTransceiver(sequence_number=3, system_id="c" * 15, password="p" * 8),
    BindTransmitterResp(sequence_number=1, system_id="smsc"),
    BindReceiverResp(
        sequence_number=2,
        system_id="smsc",
        tlvs=(Tlv.u8(TlvTag.SC_INTERFACE_VERSION, 0x34),),
    ),
    BindTransceiverResp(sequence_number=3, command_status=CommandStatus.ESME_RINVPASWD),
    Unbind(sequence_number=4),
    UnbindResp(sequence_number=4),
    EnquireLink(sequence_number=0x7FFFFFFF),
    EnquireLinkResp(sequence_number=0x7FFFFFFF),
    GenericNack(sequence_number=9, command_status=CommandStatus.ESME_RINVCMDID),
    SubmitSm(
        sequence_number=10,
        service_type="CMT",
        source_addr_ton=5,
        source_addr_npi=0,
        source_addr="10690000",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="8613800138000",
        esm_class=0x40,
        protocol_id=0,
        priority_flag=1,
        schedule_delivery_time="000001000000000R",
        validity_period="261231235959032+",
        registered_delivery=1,
        replace_if_present_flag=0,
        data_coding=DataCoding.UCS2,
        short_message="法院通知".encode("utf-16-be"),
        tlvs=(Tlv(0x1403, b"\x01\x02"), Tlv(TlvTag.USER_MESSAGE_REFERENCE, b"\x00\x07")),
    ),
    SubmitSm(
        sequence_number=11,
        destination_addr="8613800138000",
        tlvs=(Tlv(TlvTag.MESSAGE_PAYLOAD, b"x" * 1000),),
    ),
    SubmitSmResp(sequence_number=10, message_id="0a1b2c3d"),
    SubmitSmResp(sequence_number=11, command_status=CommandStatus.ESME_RTHROTTLED),
    DeliverSm(
        sequence_number=12,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="8613800138000",
        destination_addr="10690000",
        esm_class=ESM_CLASS_DELIVERY_RECEIPT,
        short_message=b"id:0a1b2c3d stat:DELIVRD",
        tlvs=(
            Tlv.cstring(TlvTag.RECEIPTED_MESSAGE_ID, "0a1b2c3d"),
            Tlv.u8(TlvTag.MESSAGE_STATE, MessageState.DELIVERED),
            Tlv(TlvTag.NETWORK_ERROR_CODE, b"\x03\x00\x01"),
        ),
    ),
    DeliverSmResp(sequence_number=12),
    DeliverSmResp(sequence_number=13, command_status=CommandStatus.ESME_RX_T_APPN),
    UnknownPdu(command_id=0x00000103, sequence_number=14, body=b"\x00\x01\x02"),
]


@pytest.mark.parametrize("pdu", EVERY_PDU, ids=lambda p: type(p).__name__)
def test_every_pdu_round_trips(pdu: Pdu) -> None:
    data = encode(pdu)
    assert struct.unpack(">I", data[:4])[0] == len(data)
    back = decode(data)
    assert back == pdu
    assert type(back) is type(pdu)
    assert back.raw == data  # the received bytes are kept for the evidence
    assert encode(back) == data


def test_submit_sm_is_laid_out_as_section_4_4_1_says() -> None:
    pdu = SubmitSm(
        sequence_number=7,
        source_addr="court",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="8613800138000",
        registered_delivery=1,
        data_coding=DataCoding.UCS2,
        short_message="你好".encode("utf-16-be"),
    )
    body = (
        b"\x00"  # service_type
        + b"\x00\x00court\x00"  # source_addr_ton, source_addr_npi, source_addr
        + b"\x01\x01"
        + b"8613800138000\x00"  # dest TON, NPI, destination_addr
        + b"\x00\x00\x00"  # esm_class, protocol_id, priority_flag
        + b"\x00\x00"  # schedule_delivery_time, validity_period
        + b"\x01\x00\x08\x00"  # registered_delivery, replace_if_present, data_coding, default id
        + b"\x04"
        + b"\x4f\x60\x59\x7d"  # sm_length, short_message (UTF-16BE 你好)
    )
    header = struct.pack(">IIII", 16 + len(body), 0x00000004, 0, 7)
    assert encode(pdu) == header + body


def test_header_only_pdus_are_sixteen_octets() -> None:
    assert encode(EnquireLink(sequence_number=1)) == bytes.fromhex(
        "00000010000000150000000000000001"
    )


def test_error_responses_without_a_body_decode_to_defaults() -> None:
    # §4.4.2: no body when command_status is non-zero; many SMSCs do the same for bind_resp.
    for command_id, cls in (
        (CommandId.SUBMIT_SM_RESP, SubmitSmResp),
        (CommandId.BIND_TRANSCEIVER_RESP, BindTransceiverResp),
    ):
        data = struct.pack(">IIII", 16, command_id, CommandStatus.ESME_RINVPASWD, 5)
        pdu = decode(data)
        assert isinstance(pdu, cls)
        assert pdu.command_status == CommandStatus.ESME_RINVPASWD
        assert pdu.sequence_number == 5


@pytest.mark.parametrize(
    ("pdu", "message"),
    [
        (BindTransmitter(sequence_number=1, system_id="x" * 16, password=""), "system_id"),
        (BindTransmitter(sequence_number=1, system_id="court", password="123456789"), "password"),
        (
            BindTransmitter(sequence_number=1, system_id="c", password="p", system_type="t" * 13),
            "system_type",
        ),
        (SubmitSm(sequence_number=1, destination_addr="1" * 21), "destination_addr"),
        (SubmitSm(sequence_number=1, source_addr="法院"), "ASCII"),
        (SubmitSm(sequence_number=1, service_type="a\x00b"), "NUL"),
        (SubmitSm(sequence_number=1, validity_period="2612"), "validity_period"),
        (SubmitSm(sequence_number=1, short_message=b"x" * 255), "short_message"),
        (
            SubmitSm(
                sequence_number=1,
                short_message=b"x",
                tlvs=(Tlv(TlvTag.MESSAGE_PAYLOAD, b"y"),),
            ),
            "message_payload",
        ),
        (SubmitSm(sequence_number=1, esm_class=256), "0..255"),
        (SubmitSmResp(sequence_number=1, message_id="m" * 65), "message_id"),
        (
            SubmitSm(sequence_number=1, tlvs=(Tlv(TlvTag.MESSAGE_PAYLOAD, b"x" * MAX_PDU_LENGTH),)),
            "TLV",
        ),
        (EnquireLink(sequence_number=-1), "sequence_number"),
    ],
)
def test_values_that_break_the_spec_are_refused_when_encoding(pdu: Pdu, message: str) -> None:
    with pytest.raises(PduError, match=message):
        encode(pdu)


def test_c_octet_strings_at_their_maximum_length_are_fine() -> None:
    pdu = SubmitSmResp(sequence_number=1, message_id="m" * 64)
    assert decode(encode(pdu)) == pdu


def test_unknown_tlvs_are_kept_in_order() -> None:
    tlvs = (Tlv(0x1401, b"a"), Tlv(TlvTag.RECEIPTED_MESSAGE_ID, b"id\x00"), Tlv(0x1402, b""))
    pdu = DeliverSm(sequence_number=3, tlvs=tlvs)
    back = decode(encode(pdu))
    assert isinstance(back, DeliverSm)
    assert back.tlvs == tlvs


def _frame(command_id: int, body: bytes, seq: int = 77) -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, 0, seq) + body


@pytest.mark.parametrize(
    ("data", "status"),
    [
        # submit_sm whose body stops after service_type
        (_frame(CommandId.SUBMIT_SM, b"\x00\x01"), CommandStatus.ESME_RINVCMDLEN),
        # bind with a system_id of 20 characters and no NUL within 16
        (_frame(CommandId.BIND_TRANSMITTER, b"x" * 20 + b"\x00"), CommandStatus.ESME_RINVSYSID),
        # sm_length says 10 octets, 2 follow
        (
            # service_type and the 15 fixed fields and empty strings up to sm_default_msg_id
            _frame(CommandId.DELIVER_SM, b"\x00" * 16 + b"\x0a" + b"ab"),
            CommandStatus.ESME_RINVCMDLEN,
        ),
        # a TLV header cut short
        (
            _frame(CommandId.BIND_TRANSMITTER_RESP, b"smsc\x00\x02"),
            CommandStatus.ESME_RINVOPTPARSTREAM,
        ),
        # a TLV longer than what is left
        (
            _frame(CommandId.BIND_TRANSMITTER_RESP, b"smsc\x00\x02\x10\x00\x05\x34"),
            CommandStatus.ESME_RINVPARLEN,
        ),
    ],
)
def test_malformed_bodies_become_malformed_pdus_with_the_status_to_nack(
    data: bytes, status: int
) -> None:
    pdu = decode(data)
    assert isinstance(pdu, MalformedPdu)
    assert pdu.error_status == status
    assert pdu.sequence_number == 77  # so the generic_nack can name the PDU


def test_unknown_commands_are_kept_with_their_body() -> None:
    pdu = decode(_frame(0x00000103, b"\x01\x02\x03"))
    assert isinstance(pdu, UnknownPdu)
    assert pdu.command_id == CommandId.DATA_SM
    assert pdu.body == b"\x01\x02\x03"


# Text ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "coding"),
    [
        ("Hello, court! 2026-01-05 10:00 (room 3)?", DataCoding.DEFAULT),
        ("line\nbreak", DataCoding.DEFAULT),
        ("", DataCoding.DEFAULT),
        # Characters whose code differs between GSM 03.38 and ASCII go as UCS-2.
        ("mail me@court", DataCoding.UCS2),
        ("fee $5", DataCoding.UCS2),
        ("https://c.test/s/ab_cd", DataCoding.UCS2),
        ("[1]", DataCoding.UCS2),
        ("【北京互联网法院】您的案件将于1月5日开庭", DataCoding.UCS2),
        ("Café", DataCoding.UCS2),
        ("emoji 🙂", DataCoding.UCS2),
    ],
)
def test_text_is_encoded_in_an_alphabet_every_smsc_reads_the_same(
    text: str, coding: DataCoding
) -> None:
    encoded = encode_text(text)
    assert encoded.data_coding == coding
    assert decode_text(encoded.octets, encoded.data_coding) == text


def test_chinese_is_ucs2_big_endian() -> None:
    assert encode_text("法院").octets == b"\x6c\xd5\x96\x62"


def _reassemble(parts: list[bytes], coding: DataCoding) -> tuple[str, list[Concatenation]]:
    heads: list[Concatenation] = []
    content = b""
    for part in parts:
        head, body = split_udh(part)
        assert head is not None
        heads.append(head)
        content += body
    return decode_text(content, coding), heads


def test_long_chinese_text_is_split_into_67_character_parts() -> None:
    text = "依照《中华人民共和国民事诉讼法》第九十条，本院向您电子送达判决书。" * 6
    assert len(text) == 198
    parts = split_concatenated(encode_text(text), reference=42)
    assert [len(p) - 6 for p in parts] == [134, 134, 128]  # 67 + 67 + 64 characters
    assert all(p[:6] == bytes((5, 0, 3, 42, 3, i)) for i, p in enumerate(parts, start=1))
    back, heads = _reassemble(parts, DataCoding.UCS2)
    assert back == text
    assert heads == [Concatenation(42, 3, 1), Concatenation(42, 3, 2), Concatenation(42, 3, 3)]


def test_long_ascii_text_is_split_into_153_character_parts() -> None:
    text = "Hearing notice. " * 25  # 400 characters
    parts = split_concatenated(encode_text(text), reference=7)
    assert [len(p) - 6 for p in parts] == [153, 153, 94]
    assert _reassemble(parts, DataCoding.DEFAULT)[0] == text


@pytest.mark.parametrize(
    ("text", "parts"),
    [("法" * 70, 1), ("法" * 71, 2), ("a" * 160, 1), ("a" * 161, 2)],
)
def test_single_message_limits_are_70_and_160_characters(text: str, parts: int) -> None:
    split = split_concatenated(encode_text(text), reference=1)
    assert len(split) == parts
    if parts == 1:
        assert split[0] == encode_text(text).octets  # no UDH on a single message


def test_a_surrogate_pair_is_never_split_between_parts() -> None:
    text = "法" * 66 + "🙂" + "院" * 10  # the emoji would straddle the 67-unit boundary
    parts = split_concatenated(encode_text(text), reference=1)
    assert len(parts[0]) - 6 == 132  # the first part stops before the pair
    assert _reassemble(parts, DataCoding.UCS2)[0] == text


def test_too_many_parts_or_a_bad_reference_is_refused() -> None:
    with pytest.raises(PduError, match="at most 255 parts"):
        split_concatenated(EncodedText(DataCoding.DEFAULT, b"a" * 153 * 256), reference=1)
    with pytest.raises(PduError, match="reference"):
        split_concatenated(encode_text("a"), reference=256)


def test_a_16_bit_reference_udh_is_read_too() -> None:
    head, body = split_udh(bytes((6, 8, 4, 0x12, 0x34, 2, 1)) + b"abc")
    assert head == Concatenation(0x1234, 2, 1)
    assert body == b"abc"


# The stream decoder ----------------------------------------------------------------------------


def test_the_decoder_reassembles_pdus_fed_one_byte_at_a_time() -> None:
    stream = b"".join(encode(p) for p in EVERY_PDU)
    decoder = PduDecoder()
    out: list[Pdu] = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i : i + 1])
    assert out == EVERY_PDU
    assert decoder.buffered == 0


def test_the_decoder_handles_many_pdus_and_a_partial_one_in_one_read() -> None:
    first, second, third = (encode(p) for p in EVERY_PDU[:3])
    decoder = PduDecoder()
    assert decoder.feed(first + second + third[:5]) == EVERY_PDU[:2]
    assert decoder.buffered == 5
    assert decoder.feed(third[5:]) == [EVERY_PDU[2]]


@pytest.mark.parametrize(
    "garbage",
    [
        struct.pack(">I", 15) + b"\x00" * 12,  # shorter than a header
        struct.pack(">I", 0),
        struct.pack(">I", MAX_PDU_LENGTH + 1),
        b"GET / HTTP/1.1\r\n\r\n",  # someone pointed a web client at us
    ],
)
def test_the_decoder_refuses_impossible_lengths_and_stays_refused(garbage: bytes) -> None:
    decoder = PduDecoder()
    good = encode(EnquireLink(sequence_number=1))
    with pytest.raises(FramingError, match="command_length"):
        decoder.feed(good + garbage)
    with pytest.raises(FramingError):
        decoder.feed(good)


def test_the_length_is_checked_before_the_whole_pdu_arrives() -> None:
    decoder = PduDecoder(max_length=1024)
    with pytest.raises(FramingError, match=r"16\.\.1024, got 4096"):
        decoder.feed(struct.pack(">I", 4096))


def test_a_malformed_pdu_does_not_stop_the_stream() -> None:
    decoder = PduDecoder()
    out = decoder.feed(
        _frame(CommandId.SUBMIT_SM, b"\x00") + encode(EnquireLink(sequence_number=2))
    )
    assert isinstance(out[0], MalformedPdu)
    assert out[1] == EnquireLink(sequence_number=2)


# Delivery receipts -----------------------------------------------------------------------------

STANDARD = (
    "id:0A1B2C3D sub:001 dlvrd:001 submit date:2601051000 done date:2601051002 "
    "stat:DELIVRD err:000 text:Your hearing is on"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            STANDARD,
            {
                "message_id": "0A1B2C3D",
                "stat": "DELIVRD",
                "error": "000",
                "submitted_at": datetime(2026, 1, 5, 10, 0, tzinfo=CST),
                "done_at": datetime(2026, 1, 5, 10, 2, tzinfo=CST),
                "submitted_count": 1,
                "delivered_count": 1,
                "text": "Your hearing is on",
            },
        ),
        (  # keys in any case, seconds in the dates, another order
            "STAT:undeliv ID:77 Done Date:260105100259 Submit Date:260105100001 Err:011",
            {
                "message_id": "77",
                "stat": "UNDELIV",
                "error": "011",
                "submitted_at": datetime(2026, 1, 5, 10, 0, 1, tzinfo=CST),
                "done_at": datetime(2026, 1, 5, 10, 2, 59, tzinfo=CST),
            },
        ),
        (  # only id and stat
            "id:abc stat:EXPIRED",
            {"message_id": "abc", "stat": "EXPIRED", "submitted_at": None, "done_at": None},
        ),
        (  # underscores, as some SMSCs write
            "id:1 submit_date:2601051000 done_date:2601051000 stat:DELIVRD",
            {"done_at": datetime(2026, 1, 5, 10, 0, tzinfo=CST)},
        ),
        (  # an empty stat must not swallow the next field
            "id:1 stat: err:000",
            {"stat": "", "error": "000"},
        ),
        (  # fields inside the quoted text do not count
            "id:1 stat:DELIVRD text:stat:UNDELIV id:2",
            {"message_id": "1", "stat": "DELIVRD", "text": "stat:UNDELIV id:2"},
        ),
        (  # impossible dates and counts are left empty
            "id:1 sub:x dlvrd: submit date:2613011200 done date:26010510 stat:DELIVRD",
            {
                "submitted_at": None,
                "done_at": None,
                "submitted_count": None,
                "delivered_count": None,
            },
        ),
        ("", {"message_id": "", "stat": "", "error": "", "text": ""}),
        ("not a receipt at all", {"message_id": "", "stat": ""}),
    ],
)
def test_receipt_text_is_parsed_tolerantly(text: str, expected: dict[str, object]) -> None:
    receipt = parse_receipt_text(text, tz=CST)
    for name, value in expected.items():
        assert getattr(receipt, name) == value, name


def test_receipt_text_round_trips_through_the_writer() -> None:
    at = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    text = receipt_text(
        message_id="ff01", stat="DELIVRD", submitted_at=at, done_at=at, delivered=True, text="x"
    )
    parsed = parse_receipt_text(text, tz=UTC)
    assert (parsed.message_id, parsed.stat, parsed.done_at, parsed.text) == (
        "ff01",
        "DELIVRD",
        at,
        "x",
    )


def _receipt(
    short_message: bytes, *tlvs: Tlv, esm_class: int = ESM_CLASS_DELIVERY_RECEIPT
) -> DeliverSm:
    return DeliverSm(sequence_number=1, esm_class=esm_class, short_message=short_message, tlvs=tlvs)


def test_receipt_tlvs_win_over_the_text() -> None:
    pdu = _receipt(
        b"id:12345 stat:DELIVRD",
        Tlv.cstring(TlvTag.RECEIPTED_MESSAGE_ID, "3039"),
        Tlv.u8(TlvTag.MESSAGE_STATE, MessageState.UNDELIVERABLE),
        Tlv(TlvTag.NETWORK_ERROR_CODE, b"\x03\x00\x0b"),
    )
    receipt = parse_receipt(pdu, tz=UTC)
    assert receipt.message_id == "3039"
    assert receipt.message_state == MessageState.UNDELIVERABLE
    assert receipt.stat == "DELIVRD"  # kept: the evidence shows both
    assert receipt.error == "03000b"  # no err: in the text, so the TLV


def test_a_receipt_with_only_tlvs_or_only_text_is_read() -> None:
    only_tlvs = _receipt(b"", Tlv.cstring(TlvTag.RECEIPTED_MESSAGE_ID, "9"), esm_class=0)
    assert is_delivery_receipt(only_tlvs)
    assert parse_receipt(only_tlvs, tz=UTC).message_id == "9"
    only_text = _receipt(STANDARD.encode())
    assert is_delivery_receipt(only_text)
    assert parse_receipt(only_text, tz=UTC).message_id == "0A1B2C3D"
    assert parse_receipt(only_text, tz=UTC).message_state is None


def test_a_mobile_originated_message_is_not_a_receipt() -> None:
    assert not is_delivery_receipt(_receipt("收到".encode("utf-16-be"), esm_class=0))


def test_describe_reads_a_pdu_out_and_hides_the_password() -> None:
    bind = describe(BindTransceiver(sequence_number=1, system_id="court", password="secret"))
    assert "secret" not in bind
    assert "system_id='court'" in bind
    receipt = describe(EVERY_PDU[15])
    assert "deliver_sm seq=12" in receipt
    assert "receipted_message_id='0a1b2c3d'" in receipt
    assert "message_state=2" in receipt
    assert "short_message='id:0a1b2c3d stat:DELIVRD'" in receipt
    nack = describe(SubmitSmResp(sequence_number=3, command_status=0x58))
    assert "status=0x00000058(ESME_RTHROTTLED)" in nack
