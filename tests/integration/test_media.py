"""The media node with real aiortc clients over loopback, through the real signaling server.

Each client decodes what it receives (PyAV inside aiortc), so "media arrives" means frames were
decoded from the forwarded packets; the server decodes nothing (its receivers' decoders stay
idle) and the forwarded frames are the publishers' own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.media_support import VIDEO_SIZE, Node, media_node
from yunting.infra.db import Database
from yunting.media.forwarding import EncodedFrame
from yunting.media.node import TrackInfo

pytestmark = pytest.mark.usefixtures("database")


@pytest.fixture
async def node(database: Database, tmp_path: Path) -> AsyncIterator[Node]:
    async with media_node(database, tmp_path) as served:
        yield served


async def test_everyone_decodes_everyone_and_court_controls_are_enforced(node: Node) -> None:
    court = node.court
    taps: list[tuple[TrackInfo, EncodedFrame]] = []
    node.media.add_tap(court.hearing_id, lambda info, frame: taps.append((info, frame)))

    judge, judge_media = await node.enter("judge")
    judge_id = judge.frames[0]["participant_id"]
    plaintiff, plaintiff_media = await node.enter("plaintiff", court.tokens["plaintiff"])
    observer, observer_media = await node.enter("observer", court.tokens["observer"])
    # The lobby may not negotiate media.
    await plaintiff.send({"type": "media_start"})
    assert (await plaintiff.next("error"))["code"] == "illegal_state"
    await node.admit(judge, "plaintiff")
    await node.admit(judge, "observer")
    for client in (judge_media, plaintiff_media, observer_media):
        await client.start()

    pid = str(court.ids["plaintiff"])
    # Everyone decodes audio and video from every publisher; the observer publishes nothing.
    assert await judge_media.grows(pid, "video")
    assert await judge_media.grows(pid, "audio")
    assert await plaintiff_media.grows(judge_id, "video")
    assert await plaintiff_media.grows(judge_id, "audio")
    assert await observer_media.grows(judge_id, "video")
    assert await observer_media.grows(pid, "audio")
    assert judge_media.sizes[pid] == VIDEO_SIZE
    assert observer_media.offers[-1]["publish"] == {"audio": None, "video": None}
    observer_id = str(court.ids["observer"])
    assert all(t["participant_id"] != observer_id for t in judge_media.offers[-1]["tracks"])
    # The server forwarded encoded frames and decoded none of them.
    hearing = node.media.hearings[court.hearing_id]
    for track in hearing.published.values():
        assert track.frames_forwarded > 0
    kinds = {(info.participant_id, info.kind) for info, _ in taps}
    assert (court.ids["plaintiff"], "video") in kinds
    video = [f for info, f in taps if info.kind == "video"]
    assert video
    assert video[0].keyframe
    assert video[0].size == VIDEO_SIZE

    # Mute: the plaintiff's audio stops reaching the others; ask_unmute lets it through again.
    await judge.send({"type": "mute", "participant_id": pid, "kind": "audio"})
    await plaintiff.next("muted")
    await asyncio.sleep(0.5)  # what was already in flight
    assert not await judge_media.grows(pid, "audio", by=3, within=1.5)
    assert await judge_media.grows(pid, "video")
    await judge.send({"type": "ask_unmute", "participant_id": pid, "kind": "audio"})
    await plaintiff.next("unmute_requested")
    assert await judge_media.grows(pid, "audio")

    # Dismissed to the lobby: its peer is closed, and the others renegotiate it away.
    offers_before = len(judge_media.offers)
    await judge.send({"type": "dismiss", "participant_id": pid})
    await plaintiff.next("participant_state", lambda f: f["state"] == "in_lobby")
    await judge.next("sdp_offer")
    for _ in range(100):
        if len(judge_media.offers) > offers_before:
            break
        await asyncio.sleep(0.05)
    assert all(t["participant_id"] != pid for t in judge_media.offers[-1]["tracks"])
    assert court.ids["plaintiff"] not in hearing.peers
    assert not await plaintiff_media.grows(judge_id, "video", by=3, within=1.5)

    # Called back in: a new peer, media both ways again (the late joiner gets a keyframe).
    await judge.send({"type": "call_in", "participant_id": pid})
    await plaintiff.next("participant_state", lambda f: f["state"] == "in_hearing")
    await plaintiff_media.start()
    assert await plaintiff_media.grows(judge_id, "video")
    assert await judge_media.grows(pid, "video")

    for client in (judge_media, plaintiff_media, observer_media):
        await client.close()
    for peer in (judge, plaintiff, observer):
        await peer.close()


async def test_answers_out_of_turn_and_garbage_get_media_failed(node: Node) -> None:
    judge, media = await node.enter("judge")
    # An answer with no peer at all.
    await judge.send({"type": "sdp_answer", "sdp": "v=0"})
    assert (await judge.next("error"))["code"] == "media_failed"
    await media.start()
    await judge.next("sdp_offer")
    # Garbage for an answer: refused, the peer is dropped, and a fresh start works.
    media._queue = asyncio.Queue()  # this client does not answer the offer itself
    await judge.send({"type": "sdp_answer", "sdp": "v=0\r\nthis is not sdp"})
    error = await judge.next("error")
    assert error["code"] == "media_failed"
    assert (
        node.court.hearing_id not in node.media.hearings
        or not node.media.hearings[node.court.hearing_id].peers
    )
    await media.close()
    await judge.close()
