"""The hearing's record in real browsers: Chromium with fake devices, the real server.

1. Three participants, about 20 s in session with a pause in the middle: every segment is
   fetched and decoded with PyAV (frame counts and durations match the rows, the tracks cover
   the time in session), nothing is recorded during the pause, every segment and the sealed
   manifest verify against the ledger, and the composite rendered after close decodes. The
   plaintiff's camera and microphone are a flash-and-beep signal (tests/e2e/avsync.py): the
   audio/video offset is measured in its recorded tracks and in the composite, next to the same
   browser's own recording of the same open stream (the fixture is not at zero), and reported.
2. The server process is killed mid-hearing (SIGKILL): after the restart every segment closed
   before the crash decodes and verifies, and the record shows the gap with its times.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import statistics
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect

from tests.e2e.avsync import av_offsets, fake_capture_args, offset_changes, write_sync_sources
from tests.e2e.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    MEDIA_ARGS,
    LiveServer,
    free_port,
    serve_yunting,
)
from tests.e2e.room_support import (
    DEFENDANT,
    DEFENDANT_PHONE,
    JUDGE,
    PLAINTIFF,
    PLAINTIFF_PHONE,
    admit,
    code_from_outbox,
    judge_enters_room,
    new_context,
    party_enters_lobby,
    pid_of,
    wait_for_participant_state,
    wait_until_receiving,
)
from yunting.recording.composite import grid_layout

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]

COMPOSITE = (640, 360, 15)
RECORDING_ENV = {
    "YUNTING_RECORDING_SEGMENT_S": "4",
    "YUNTING_RECORDING_COMPOSITE_WIDTH": str(COMPOSITE[0]),
    "YUNTING_RECORDING_COMPOSITE_HEIGHT": str(COMPOSITE[1]),
    "YUNTING_RECORDING_COMPOSITE_FPS": str(COMPOSITE[2]),
}
RENDER_TIMEOUT_MS = 240_000
# Capture times come from the publishers' sender reports: the first frame after a resume was
# captured a little before it reached the recorder.
CAPTURE_SLACK = timedelta(milliseconds=600)

# The browser's own recording of the plaintiff's open stream (the fixture is not at zero, and
# its offset wanders on a loaded host), from just after the start to just before the close;
# its wall-clock start places it on the record's clock.
START_LOCAL_RECORD = """() => new Promise((resolve, reject) => {
  const recorder = new MediaRecorder(window.yuntingRoom.localStream(),
                                     { mimeType: "video/webm;codecs=vp8,opus" });
  const chunks = [];
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstart = () => resolve(Date.now());
  recorder.onerror = (event) => reject(event.error);
  window.testReference = { recorder, chunks };
  recorder.start(1000);
})"""
STOP_LOCAL_RECORD = """async () => {
  const { recorder, chunks } = window.testReference;
  const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
  recorder.stop();
  await stopped;
  const url = await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(new Blob(chunks, { type: "video/webm" }));
  });
  return url.slice(url.indexOf(",") + 1);
}"""


@pytest.fixture
def sync_browser(playwright: Playwright, tmp_path: Path) -> Iterator[Browser]:
    """Chromium whose camera and microphone are the flash-and-beep signal."""
    y4m, wav = write_sync_sources(tmp_path / "sources")
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[*CHROMIUM_ARGS, *MEDIA_ARGS, *fake_capture_args(y4m, wav)],
    )
    try:
        yield browser
    finally:
        browser.close()


def hearing_id_of(page: Page) -> str:
    match = re.search(r"/hearings/([0-9a-f-]{36})/", page.url)
    assert match, page.url
    return match.group(1)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def api(page: Page, path: str) -> Any:
    response = page.request.get(path)
    assert response.ok, (path, response.status, response.text())
    return response.json()


def fetch(page: Page, url: str, target: Path) -> Path:
    response = page.request.get(url)
    assert response.ok, (url, response.status)
    target.write_bytes(response.body())
    return target


def record_link_from_outbox(context: BrowserContext, phone: str) -> str:
    """The link to the hearing's record the court sent by SMS to ``phone``."""
    outbox = context.new_page()
    try:
        outbox.goto("/dev/outbox")
        row = outbox.locator("tbody tr", has_text=phone).filter(has_text="庭审录像").first
        match = re.search(r"https?://\S+?/recording\b", row.inner_text())
        assert match, row.inner_text()
        return match.group(0)
    finally:
        outbox.close()


def act(judge: Page, action: str, *, confirm: bool = False) -> None:
    judge.get_by_role("button", name=action, exact=True).click()
    if confirm:
        judge.locator("#reason-confirm").click()


def decode(path: Path) -> tuple[str, int, float, int]:
    """Kind, frames (video) or samples (audio), seconds from first to last frame's end,
    width. Everything is read inside the ``with``: a PyAV stream must not outlive its file."""
    with av.open(str(path)) as container:
        stream = container.streams[0]
        kind = stream.type
        frames = list(container.decode(stream))
        assert frames, path
        if kind == "video":
            pts = [float(f.pts * f.time_base) for f in frames]
            step = (pts[-1] - pts[0]) / max(1, len(pts) - 1)
            return "video", len(frames), pts[-1] - pts[0] + step, frames[0].width
        samples = sum(f.samples for f in frames)
        return "audio", samples, samples / frames[0].sample_rate, 0


def close_hearing(judge: Page) -> None:
    act(judge, "闭庭", confirm=True)
    # The close waits for the open segments to be written and the manifest sealed.
    expect(judge.get_by_role("heading", name="庭审已结束")).to_be_visible(timeout=20_000)


def test_a_hearing_of_three_is_recorded_sealed_verified_and_rendered(
    media_browser: Browser,
    sync_browser: Browser,
    tmp_path: Path,
    screenshots: Path,
) -> None:
    with serve_yunting(tmp_path / "data", **RECORDING_ENV) as server:
        record = run_hearing_with_a_pause(
            media_browser, sync_browser, server, tmp_path, screenshots
        )
    check_record(record, tmp_path, screenshots)


def run_hearing_with_a_pause(
    media_browser: Browser,
    sync_browser: Browser,
    server: LiveServer,
    tmp_path: Path,
    screenshots: Path,
) -> dict[str, Any]:
    judge_context = new_context(media_browser, server)
    defendant_context = new_context(media_browser, server)
    plaintiff_context = new_context(sync_browser, server)
    try:
        judge, (plaintiff_link, defendant_link) = judge_enters_room(
            judge_context, parties=(PLAINTIFF, DEFENDANT)
        )
        hearing_id = hearing_id_of(judge)
        plaintiff = party_enters_lobby(plaintiff_context, plaintiff_link, PLAINTIFF_PHONE)
        defendant = party_enters_lobby(defendant_context, defendant_link, DEFENDANT_PHONE)
        admit(judge, PLAINTIFF)
        admit(judge, DEFENDANT)
        rec = judge.locator("#rec-indicator")
        expect(rec).to_have_attribute("data-rec", "idle")
        act(judge, "开庭")
        for page in (plaintiff, defendant):
            wait_for_participant_state(page, "in_hearing")
        ids = {name: pid_of(judge, name) for name in (JUDGE, PLAINTIFF, DEFENDANT)}
        wait_until_receiving(judge, [ids[PLAINTIFF], ids[DEFENDANT]])
        # Only the plaintiff's microphone stays on: the composite's sound is its beeps alone.
        for page in (judge, defendant):
            page.locator("#toggle-mic").click()
            expect(page.locator("#toggle-mic")).to_have_attribute("aria-pressed", "false")
        # The judge sees the recording live; the parties are told nothing about it.
        expect(rec).to_have_attribute("data-rec", "recording")
        expect(rec).to_contain_text("录制中")
        expect(plaintiff.locator("#rec-indicator")).to_be_hidden()
        reference_started_ms = plaintiff.evaluate(START_LOCAL_RECORD)
        judge.wait_for_timeout(9000)
        judge.screenshot(path=str(screenshots / "recording-room-judge-zh-1280x720.png"))

        act(judge, "休庭")
        expect(judge.locator("#hearing-banner")).to_have_text(re.compile("休庭"))
        expect(rec).to_have_attribute("data-rec", "idle")
        judge.wait_for_timeout(5000)
        act(judge, "继续开庭")
        expect(rec).to_have_attribute("data-rec", "recording")
        judge.wait_for_timeout(9500)
        reference = plaintiff.evaluate(STOP_LOCAL_RECORD)
        (tmp_path / "reference.webm").write_bytes(base64.b64decode(reference))
        close_hearing(judge)

        # The playback page: the composite renders with its progress shown, then plays.
        judge.goto(f"/hearings/{hearing_id}/recording")
        expect(judge.get_by_role("heading", name="庭审录像")).to_be_visible()
        expect(judge.locator("#rec-verification")).to_have_attribute("data-state", "ok")
        expect(judge.locator("#composite-body")).to_have_attribute(
            "data-status", "done", timeout=RENDER_TIMEOUT_MS
        )
        expect(judge.locator("#composite-video")).to_be_visible()
        expect(judge.locator(".rec-gap-item[data-kind=stopped]")).to_have_count(1)
        # The pause is drawn on the timeline bar where it happened (placed by the script).
        gap = judge.locator(".rec-bar .rec-gap-stopped")
        assert 0 < float(gap.evaluate("e => parseFloat(e.style.left)")) < 100
        assert float(gap.evaluate("e => e.getBoundingClientRect().width")) > 10
        judge.screenshot(path=str(screenshots / "recording-page-zh-1280x720.png"), full_page=True)
        judge.goto(f"/lang/en?next=/hearings/{hearing_id}/recording")
        expect(judge.get_by_role("heading", name="Hearing record")).to_be_visible()
        expect(judge.locator("#rec-verification")).to_contain_text("match the evidence ledger")
        judge.screenshot(path=str(screenshots / "recording-page-en-1280x720.png"), full_page=True)

        # The judge shares the record with the parties (a link goes out by SMS); the defendant
        # opens the link, proves who they are with a code, and plays the same composite.
        judge.locator("#f-share-reason").fill("当事人申请查阅")
        expect(judge.locator("input[name=notify]")).to_be_checked()
        judge.locator("#rec-share-toggle").click()
        expect(judge.locator("#rec-sharing")).to_have_attribute("data-shared", "yes")
        viewer = defendant_context.new_page()
        viewer.goto(record_link_from_outbox(defendant_context, DEFENDANT_PHONE))
        viewer.get_by_role("button", name="发送验证码").click()
        expect(viewer.locator("#rec-party-sent")).to_be_visible()
        viewer.get_by_label("验证码", exact=True).fill(
            code_from_outbox(defendant_context, DEFENDANT_PHONE)
        )
        viewer.get_by_role("button", name="核验", exact=True).click()
        expect(viewer.locator("#rec-party-notice")).to_be_visible()
        expect(viewer.locator("#rec-sharing")).to_have_count(0)
        expect(viewer.locator("#rec-verification")).to_have_attribute("data-state", "ok")
        expect(viewer.locator("#composite-video")).to_be_visible()
        viewer.wait_for_function("document.getElementById('composite-video').readyState >= 1")
        viewer.screenshot(path=str(screenshots / "recording-party-zh-1280x720.png"), full_page=True)

        data = api(judge, f"/api/hearings/{hearing_id}/recording")
        verification = api(judge, f"/api/hearings/{hearing_id}/recording/verification")
        files: dict[str, Path] = {}
        (tmp_path / "files").mkdir()
        for track in data["tracks"]:
            for segment in track["segments"]:
                files[segment["id"]] = fetch(
                    judge, segment["url"], tmp_path / "files" / f"{segment['id']}.webm"
                )
        composite = fetch(judge, data["composite"]["url"], tmp_path / "composite.webm")
        return {
            "data": data,
            "verification": verification,
            "files": files,
            "composite": composite,
            "ids": ids,
            "reference_started_at": datetime.fromtimestamp(reference_started_ms / 1000, UTC),
        }
    finally:
        for context in (judge_context, plaintiff_context, defendant_context):
            context.close()


def check_record(record: dict[str, Any], tmp_path: Path, screenshots: Path) -> None:
    data, verification, files = record["data"], record["verification"], record["files"]
    ids: dict[str, str] = record["ids"]
    # Every segment and the seal verify against the ledger.
    assert verification["ok"], verification
    assert verification["tree_head_signed"]
    assert all(c["ok"] for c in verification["segments"])
    assert len(verification["segments"]) == data["segment_count"]
    assert verification["manifest"]["ok"]
    assert data["sealed"]

    (pause,) = data["interruptions"]
    assert pause["kind"] == "stopped"
    paused, resumed = when(pause["start"]), when(pause["end"])
    started, ended = when(data["started_at"]), when(data["ended_at"])
    in_session = (ended - started) - (resumed - paused)
    assert timedelta(seconds=15) < in_session < timedelta(seconds=30), in_session

    # Three publishers, microphone and camera each.
    assert {(t["participant_id"], t["kind"]) for t in data["tracks"]} == {
        (pid, kind) for pid in ids.values() for kind in ("audio", "video")
    }
    for track in data["tracks"]:
        covered = 0.0
        for segment in track["segments"]:
            kind, count, seconds, width = decode(files[segment["id"]])
            assert kind == track["kind"]
            length = segment["duration_ms"] / 1000
            if kind == "video":
                assert count == segment["frames"], segment
                assert width == segment["width"]
                assert abs(seconds - length) <= max(0.25, 0.05 * length), (segment, seconds)
            else:
                assert abs(seconds - length) <= 0.1, (segment, seconds)
            covered += length
            # Nothing recorded while the hearing was paused, and no segment spans the pause.
            start, end = when(segment["started_at"]), when(segment["ended_at"])
            assert not (paused + CAPTURE_SLACK < start < resumed - CAPTURE_SLACK), segment
            assert not (start < paused and resumed < end), segment
        # Each track covers the time in session, less its first keyframe's wait at each start.
        assert covered >= in_session.total_seconds() - 3.0, (track["kind"], covered, in_session)
        assert covered <= in_session.total_seconds() + 1.0, (track["kind"], covered, in_session)

    # The composite decodes: the whole span (pause included) at its frame rate, with sound.
    width, height, fps = COMPOSITE
    span = (ended - started).total_seconds()
    with av.open(str(record["composite"])) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        assert (video.codec_context.width, video.codec_context.height) == (width, height)
        frames = samples = 0
        for packet in container.demux(video, audio):
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    frames += 1
                else:
                    samples += frame.samples
    assert abs(frames - span * fps) <= 0.05 * span * fps, (frames, span)
    assert abs(samples / 48_000 - span) <= 0.5, (samples, span)

    # Audio/video alignment of the plaintiff: recorded tracks, composite, and the browser's own.
    plaintiff = ids[PLAINTIFF]
    by_kind = {t["kind"]: t for t in data["tracks"] if t["participant_id"] == plaintiff}

    def placed(kind: str) -> list[tuple[Path, float]]:
        return [
            (files[s["id"]], (when(s["started_at"]) - started).total_seconds())
            for s in by_kind[kind]["segments"]
        ]

    tracks = av_offsets(placed("video"), placed("audio"))
    videos = [t for t in data["tracks"] if t["kind"] == "video"]
    index = [t["participant_id"] for t in videos].index(plaintiff)
    cell = grid_layout(len(videos), width, height)[index]
    composite = av_offsets(record["composite"], region=(cell.x, cell.y, cell.width, cell.height))
    reference = av_offsets(
        [(tmp_path / "reference.webm", (record["reference_started_at"] - started).total_seconds())]
    )
    # Each pair against the browser's at the same flash; the composite against the tracks.
    recorded_vs_browser = offset_changes(tracks, reference)
    composite_vs_recorded = offset_changes(composite, tracks)
    figures = {
        "browser_own_recording": _figures(reference.offsets_ms),
        "recorded_tracks": _figures(tracks.offsets_ms),
        "composite": _figures(composite.offsets_ms),
        "recorded_minus_browser": _figures(recorded_vs_browser),
        "composite_minus_recorded": _figures(composite_vs_recorded),
    }
    (screenshots / "avsync.json").write_text(json.dumps(figures, indent=2))
    print(f"A/V offset (audio minus video, ms): {json.dumps(figures)}")
    # The hearing is ~20 s in session, a flash a second: most of them are found and paired.
    for changes in (recorded_vs_browser, composite_vs_recorded):
        assert len(changes) >= 10, figures
    # Lip sync: the record must not move sound against picture by more than a broadcast's
    # tolerance (ITU-R BT.1359: detectable beyond +45 / -125 ms) over what the browser itself
    # captured at the same moment, typically, and no segment is misplaced by more than a
    # frame interval beyond it (a segment placed by arrival instead of capture time was
    # ~150 ms off on a loaded host).
    assert -125 <= statistics.median(recorded_vs_browser) <= 90, figures
    assert all(-125 - 67 <= change <= 90 + 67 for change in recorded_vs_browser), figures
    # The composite shows, at each of its frames, the latest picture due: a flash appears at
    # the first composite frame after it, up to one frame interval (67 ms at 15 fps) after
    # the recorded track has it, while the sound keeps its place. Measured: 45-56 ms.
    frame_ms = 1000 / fps
    assert -frame_ms - 45 <= statistics.median(composite_vs_recorded) <= 45, figures


def _figures(values: Sequence[float]) -> dict[str, Any]:
    return {
        "pairs": len(values),
        "median_ms": round(statistics.median(values), 1) if values else None,
        "min_ms": round(min(values), 1) if values else None,
        "max_ms": round(max(values), 1) if values else None,
    }


def test_a_crash_mid_hearing_keeps_every_closed_segment_and_records_the_gap(
    media_browser: Browser, tmp_path: Path, screenshots: Path
) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    with serve_yunting(data_dir, port=port, **RECORDING_ENV) as first:
        judge_context = new_context(media_browser, first)
        plaintiff_context = new_context(media_browser, first)
        judge, (link,) = judge_enters_room(judge_context, parties=(PLAINTIFF,))
        hearing_id = hearing_id_of(judge)
        plaintiff = party_enters_lobby(plaintiff_context, link, PLAINTIFF_PHONE)
        admit(judge, PLAINTIFF)
        act(judge, "开庭")
        wait_for_participant_state(plaintiff, "in_hearing")
        wait_until_receiving(judge, [pid_of(judge, PLAINTIFF)])
        # Until at least two segments per track are committed (4 s each).
        deadline = time.monotonic() + 60
        while True:
            before = api(judge, f"/api/hearings/{hearing_id}/recording")
            if before["tracks"] and all(len(t["segments"]) >= 2 for t in before["tracks"]):
                break
            assert time.monotonic() < deadline, before
            judge.wait_for_timeout(500)
        judge.wait_for_timeout(1500)  # into the next, open segments
        os.kill(first.pid, signal.SIGKILL)
        crashed_at = datetime.now().astimezone()
    with serve_yunting(data_dir, port=port, setup=False, **RECORDING_ENV):
        try:
            # Both pages reconnect by themselves; the room is rebuilt and recording goes on.
            rec = judge.locator("#rec-indicator")
            expect(rec).to_have_attribute("data-rec", "recording", timeout=60_000)
            wait_for_participant_state(plaintiff, "in_hearing")
            judge.wait_for_timeout(5000)
            close_hearing(judge)
            judge.goto(f"/hearings/{hearing_id}/recording")
            expect(judge.locator("#rec-verification")).to_have_attribute("data-state", "ok")
            gap_item = judge.locator(".rec-gap-item[data-kind=gap]")
            expect(gap_item).to_have_count(1)
            expect(gap_item).to_contain_text("服务器重启")
            judge.screenshot(path=str(screenshots / "recording-crash-gap-zh.png"), full_page=True)
            after = api(judge, f"/api/hearings/{hearing_id}/recording")
            verification = api(judge, f"/api/hearings/{hearing_id}/recording/verification")
            files = tmp_path / "files"
            files.mkdir()
            fetched = {
                s["id"]: fetch(judge, s["url"], files / f"{s['id']}.webm")
                for t in after["tracks"]
                for s in t["segments"]
            }
        finally:
            for context in (judge_context, plaintiff_context):
                context.close()
    assert verification["ok"], verification
    # Every segment committed before the crash is still there, decodes and verifies.
    committed = {s["id"]: s for t in before["tracks"] for s in t["segments"]}
    assert committed.keys() <= fetched.keys()
    for segment_id, segment in committed.items():
        kind, count, seconds, width = decode(fetched[segment_id])
        if kind == "video":
            assert count == segment["frames"], segment
            assert width == segment["width"], segment
        else:
            assert count > 0, segment
        # A segment that ran its length holds more than a second; one cut short by a keyframe
        # of another size (the browser's encoder ramping up its resolution) may hold a frame.
        if segment["close_reason"] == "rotate":
            assert seconds > 1.0, segment
    recorded_s = sum(s["duration_ms"] for s in committed.values() if s["width"] is not None) / 1000
    assert recorded_s > 4.0, list(committed.values())
    # The gap: from the last segment before the crash to the restart, with its times.
    (gap,) = [i for i in after["interruptions"] if i["kind"] == "gap"]
    gap_start, gap_end = when(gap["start"]), when(gap["end"])
    assert gap_start <= crashed_at <= gap_end, (gap, crashed_at)
    last_before = max(when(s["ended_at"]) for t in before["tracks"] for s in t["segments"])
    assert gap_start >= last_before
    # At most the open segments were lost: what was open spans at most one segment's length
    # (4 s) plus the keyframe wait before the crash.
    assert gap_start - last_before <= timedelta(seconds=6), (gap_start, last_before)
    # Segments continue after the restart.
    assert any(
        when(s["started_at"]) >= gap_end - CAPTURE_SLACK
        for t in after["tracks"]
        for s in t["segments"]
    )
