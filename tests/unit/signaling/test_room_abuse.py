"""Bad input: an error (or a close with a documented code), the room unchanged, others served."""

from __future__ import annotations

import json

import pytest

from tests.unit.signaling.harness import Harness, closes, error_codes, frames
from yunting.hearing.model import Role
from yunting.signaling.outputs import Close, Send
from yunting.signaling.room import RoomConfig

BAD_INPUTS = [
    (b"\x80\x81", "bad_json"),
    ("{", "bad_json"),
    ("[]", "bad_message"),
    ('{"type":"leave"}', "unsupported_version"),
    ('{"v":2,"type":"leave"}', "unsupported_version"),
    ('{"v":1,"type":"teleport"}', "unknown_type"),
    ('{"v":1,"type":"admit"}', "invalid_message"),
    ('{"v":1,"type":"mute","participant_id":"x","kind":"audio"}', "invalid_message"),
]


@pytest.mark.parametrize(("raw", "code"), BAD_INPUTS)
def test_bad_input_is_an_error_and_changes_nothing(raw: str | bytes, code: str) -> None:
    h = Harness()
    judge, _ = h.join(Role.JUDGE)
    before = h.room.snapshot()
    out = h.raw(judge.conn, raw)
    assert error_codes(out, judge.conn) == [code]
    assert [o for o in out if not isinstance(o, Send)] == []
    assert h.room.snapshot() == before


def test_consecutive_protocol_errors_close_with_4400_and_a_good_message_resets() -> None:
    h = Harness()
    judge, _ = h.join(Role.JUDGE)
    other, _ = h.join(Role.CLERK)
    for _ in range(4):
        h.raw(judge.conn, "{")
    h.send(judge, "heartbeat", rtt_ms=1, packet_loss_pct=0, jitter_ms=0, bitrate_kbps=0)
    for _ in range(4):
        assert closes(h.raw(judge.conn, "{"), judge.conn) == []
    out = h.raw(judge.conn, "{")
    assert closes(out, judge.conn)[0].code == 4400
    assert frames(out, judge.conn)[-1] == {"v": 1, "type": "bye", "reason": "protocol_errors"}
    # The rest of the room carries on.
    roster = frames(out, other.conn, "roster")[-1]
    presence = {e["participant_id"]: e["presence"] for e in roster["participants"]}
    assert presence[str(judge.pid)] == "reconnecting"


def test_oversized_message_is_refused_then_closed_with_1009() -> None:
    h = Harness(config=RoomConfig(max_message_bytes=2048))
    clerk, _ = h.join(Role.CLERK)
    before = h.room.snapshot()
    out = h.send(clerk, "sdp_answer", sdp="a" * 4000, id="big")
    (error,) = frames(out, clerk.conn, "error")
    assert error["code"] == "too_big"
    assert error["ref"] is None  # not parsed, so no id
    assert closes(out, clerk.conn)[0].code == 1009
    assert h.room.snapshot().hearing_state is before.hearing_state


def test_flooding_is_rate_limited_then_closed_with_4429() -> None:
    h = Harness(config=RoomConfig(rate_per_s=20, rate_burst=40, flood_close_after=40))
    flooder, _ = h.join(Role.PLAINTIFF)
    clerk, _ = h.join(Role.CLERK)
    h.advance(10)  # joining spent a token; let the bucket fill up
    hb = json.dumps(
        {"v": 1, "type": "heartbeat", "rtt_ms": 1, "packet_loss_pct": 0, "jitter_ms": 0,
         "bitrate_kbps": 1}
    )  # fmt: skip
    out = []
    for _ in range(40):
        out += h.raw(flooder.conn, hb)
    assert error_codes(out, flooder.conn) == []
    out = h.raw(flooder.conn, hb)
    assert error_codes(out, flooder.conn) == ["rate_limited"]
    out = []
    for _ in range(38):
        out += h.raw(flooder.conn, hb)
    assert out == []  # said once, not once per message
    out = h.raw(flooder.conn, hb)
    assert closes(out, flooder.conn)[0].code == 4429
    # Another connection is unaffected.
    assert error_codes(h.send(clerk, "lock"), clerk.conn) == ["forbidden"]


def test_the_rate_recovers_after_a_pause() -> None:
    h = Harness(config=RoomConfig(rate_per_s=10, rate_burst=2, flood_close_after=10))
    party, _ = h.join(Role.PLAINTIFF)
    h.advance(1)
    for _ in range(2):
        h.send(party, "media_state", mic=True, camera=True)
    out = h.send(party, "media_state", mic=True, camera=True)
    assert error_codes(out, party.conn) == ["rate_limited"]
    h.advance(0.1)
    assert h.send(party, "media_state", mic=False, camera=True) == []


def test_forbidden_commands_neither_close_nor_count_as_protocol_errors() -> None:
    h = Harness()
    party, _ = h.join(Role.PLAINTIFF)
    h.advance(0)
    for i in range(10):
        h.advance(0.2)
        out = h.send(party, "hearing_action", action="start", id=str(i))
        assert error_codes(out, party.conn) == ["forbidden"]
        assert not [o for o in out if isinstance(o, Close)]


def test_input_on_unknown_or_closed_connections_is_ignored() -> None:
    h = Harness()
    assert h.raw("never-opened", "{") == []
    assert h.room.disconnect("never-opened", h.now) == []
    assert h.room.on_committed("no-such-command", h.now, ok=True) == []
