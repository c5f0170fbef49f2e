"""Parsing client messages: each kind of bad input gets its own code; good input is typed."""

from __future__ import annotations

import json
import uuid

import pytest

from yunting.signaling.errors import ErrorCode, RefusedError
from yunting.signaling.messages import (
    CLIENT_TYPES,
    HearingControl,
    Heartbeat,
    Hello,
    IceCandidate,
    MediaStart,
    Mute,
    SdpAnswer,
    encode,
    parse_client_message,
)

LIMIT = 4096
PID = uuid.uuid4()


def refused(raw: bytes | str) -> RefusedError:
    with pytest.raises(RefusedError) as caught:
        parse_client_message(raw, max_bytes=LIMIT)
    return caught.value


def test_hello_parses_to_a_typed_message() -> None:
    msg = parse_client_message(
        '{"v":1,"type":"hello","id":"a1","token":"yt1.x.y","resume_token":"r"}', max_bytes=LIMIT
    )
    assert msg == Hello(type="hello", id="a1", token="yt1.x.y", resume_token="r")


def test_bytes_are_accepted_as_utf8() -> None:
    pid = uuid.uuid4()
    raw = json.dumps({"v": 1, "type": "mute", "participant_id": str(pid), "kind": "audio"})
    msg = parse_client_message(raw.encode(), max_bytes=LIMIT)
    assert isinstance(msg, Mute)
    assert msg.participant_id == pid


def test_ice_candidate_uses_the_webrtc_field_names() -> None:
    raw = '{"v":1,"type":"ice_candidate","candidate":"candidate:1 1 UDP 1 10.0.0.1 9 typ host",'
    raw += '"sdpMid":"0","sdpMLineIndex":0}'
    msg = parse_client_message(raw, max_bytes=LIMIT)
    assert isinstance(msg, IceCandidate)
    assert (msg.sdp_mid, msg.sdp_mline_index) == ("0", 0)
    assert json.loads(encode(msg))["sdpMid"] == "0"


def test_every_client_type_is_known() -> None:
    assert {
        "hello", "heartbeat", "media_state", "admit", "deny", "call_in", "dismiss", "mute",
        "ask_unmute", "remove", "lock", "unlock", "hearing_action", "media_start", "sdp_answer",
        "ice_candidate", "leave",
    } == CLIENT_TYPES  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\xff\xfe not utf-8", ErrorCode.BAD_JSON),
        ("{not json", ErrorCode.BAD_JSON),
        ('{"v":1,"type":"heartbeat","rtt_ms":NaN}', ErrorCode.BAD_JSON),
        ("[1,2]", ErrorCode.BAD_MESSAGE),
        ('"hello"', ErrorCode.BAD_MESSAGE),
        ('{"type":"leave"}', ErrorCode.UNSUPPORTED_VERSION),
        ('{"v":2,"type":"leave"}', ErrorCode.UNSUPPORTED_VERSION),
        ('{"v":true,"type":"leave"}', ErrorCode.UNSUPPORTED_VERSION),
        ('{"v":"1","type":"leave"}', ErrorCode.UNSUPPORTED_VERSION),
        ('{"v":1}', ErrorCode.BAD_MESSAGE),
        ('{"v":1,"type":7}', ErrorCode.BAD_MESSAGE),
        ('{"v":1,"type":"welcome"}', ErrorCode.UNKNOWN_TYPE),  # server-only type
        ('{"v":1,"type":"format_disk"}', ErrorCode.UNKNOWN_TYPE),
        ('{"v":1,"type":"admit"}', ErrorCode.INVALID_MESSAGE),
        ('{"v":1,"type":"admit","participant_id":"judge"}', ErrorCode.INVALID_MESSAGE),
        ('{"v":1,"type":"media_state","mic":"true","camera":false}', ErrorCode.INVALID_MESSAGE),
        (
            f'{{"v":1,"type":"mute","participant_id":"{PID}","kind":"both"}}',
            ErrorCode.INVALID_MESSAGE,
        ),
        ('{"v":1,"type":"hearing_action","action":"cancel"}', ErrorCode.INVALID_MESSAGE),
        (
            f'{{"v":1,"type":"remove","participant_id":"{PID}","reason":""}}',
            ErrorCode.INVALID_MESSAGE,
        ),
        (
            '{"v":1,"type":"heartbeat","rtt_ms":1,"packet_loss_pct":101,"jitter_ms":1,'
            '"bitrate_kbps":1}',
            ErrorCode.INVALID_MESSAGE,
        ),
        ('{"v":1,"type":"leave","admin":true}', ErrorCode.INVALID_MESSAGE),  # no extra fields
        ('{"v":1,"type":"hello","token":""}', ErrorCode.INVALID_MESSAGE),
        ('{"v":1,"type":"leave","id":"' + "x" * 65 + '"}', ErrorCode.INVALID_MESSAGE),
        ("x" * (LIMIT + 1), ErrorCode.TOO_BIG),
        ("界" * (LIMIT // 2), ErrorCode.TOO_BIG),  # counted in UTF-8 bytes, not characters
    ],
)
def test_bad_input_gets_its_own_code(raw: bytes | str, code: ErrorCode) -> None:
    assert refused(raw).code is code


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 32_000 + "]" * 32_000,  # deeper than the decoder's recursion limit
        '{"v":1,"type":"leave","n":' + "9" * 5000 + "}",  # longer than Python's int digit limit
    ],
)
def test_pathological_json_inside_the_size_limit_is_bad_json(raw: str) -> None:
    with pytest.raises(RefusedError) as caught:
        parse_client_message(raw, max_bytes=65_536)
    assert caught.value.code is ErrorCode.BAD_JSON


def test_errors_carry_the_message_id_when_readable() -> None:
    assert refused('{"v":1,"id":"m7","type":"admit"}').ref == "m7"
    assert refused('{"v":9,"id":"m8","type":"admit"}').ref == "m8"
    assert refused("{oops").ref is None


def test_invalid_message_says_which_field() -> None:
    error = refused('{"v":1,"type":"hearing_action","action":"adjourn"}')
    assert "action" in error.message
    assert error.message.startswith("invalid hearing_action message")


def test_heartbeat_accepts_integers_for_floats() -> None:
    msg = parse_client_message(
        '{"v":1,"type":"heartbeat","rtt_ms":40,"packet_loss_pct":0,"jitter_ms":3,'
        '"bitrate_kbps":900}',
        max_bytes=LIMIT,
    )
    assert isinstance(msg, Heartbeat)
    assert msg.rtt_ms == 40.0


def test_action_and_sdp_parse() -> None:
    assert isinstance(
        parse_client_message('{"v":1,"type":"hearing_action","action":"start"}', max_bytes=LIMIT),
        HearingControl,
    )
    assert isinstance(
        parse_client_message('{"v":1,"type":"sdp_answer","sdp":"v=0"}', max_bytes=LIMIT), SdpAnswer
    )
    assert isinstance(
        parse_client_message('{"v":1,"type":"media_start"}', max_bytes=LIMIT), MediaStart
    )
    # The media node makes every offer: a browser's offer is not a message the server takes.
    with pytest.raises(RefusedError) as refused:
        parse_client_message('{"v":1,"type":"sdp_offer","sdp":"v=0"}', max_bytes=LIMIT)
    assert refused.value.code is ErrorCode.UNKNOWN_TYPE
