"""The flash-and-beep sources (tests/e2e/avsync.py) through Chromium's fake camera and
microphone, opened by the app's own ``openLocalMedia`` (devices.js: its constraints, echo
cancellation and all) and recorded by the browser's own MediaRecorder: the recording has
flashes and beeps to pair, and the fixture's own offset is printed.

That offset is not zero and not the same from one browser to the next: Chromium starts its
fake camera and microphone separately, so their loops begin tens of ms apart, and then stay
that far apart for as long as the devices are open. A recording test compares its offset with
one measured in the same browser session, not with zero.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Playwright, Route

import yunting
from tests.e2e.avsync import av_offsets, fake_capture_args, write_sync_sources
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, MEDIA_ARGS

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]

# A secure context (getUserMedia needs one; about:blank and data: pages are not) without a
# server: localhost, answered by the page's own route.
ORIGIN = "http://localhost"
PAGE = """<!doctype html><title>avsync</title><script type="module">
import { openLocalMedia } from "/js/devices.js";
window.openLocalMedia = openLocalMedia;
</script>"""
RECORD_MS = 4_000
STATIC_JS = Path(yunting.__file__).parent / "web" / "static" / "js"

RECORD = """async (ms) => {
  const media = await window.openLocalMedia();
  if (media.audio !== "ok" || media.video !== "ok") {
    throw new Error(`camera ${media.video}, microphone ${media.audio}`);
  }
  const stream = media.stream;
  const recorder = new MediaRecorder(stream, { mimeType: "video/webm;codecs=vp8,opus" });
  const chunks = [];
  recorder.ondataavailable = (event) => chunks.push(event.data);
  const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
  recorder.start(1000);
  await new Promise((resolve) => setTimeout(resolve, ms));
  recorder.stop();
  await stopped;
  const settings = {
    video: stream.getVideoTracks()[0].getSettings(),
    audio: stream.getAudioTracks()[0].getSettings(),
  };
  stream.getTracks().forEach((track) => track.stop());
  const url = await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(new Blob(chunks, { type: "video/webm" }));
  });
  return { webm: url.slice(url.indexOf(",") + 1), settings };
}"""


def serve(route: Route) -> None:
    path = route.request.url.removeprefix(ORIGIN)
    if path.startswith("/js/"):
        script = STATIC_JS / Path(path).name
        route.fulfill(content_type="text/javascript", body=script.read_text(encoding="utf-8"))
    else:
        route.fulfill(content_type="text/html", body=PAGE)


@pytest.fixture
def page(playwright: Playwright, tmp_path: Path) -> Iterator[Page]:
    y4m, wav = write_sync_sources(tmp_path / "sources")
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[*CHROMIUM_ARGS, *MEDIA_ARGS, *fake_capture_args(y4m, wav)],
    )
    try:
        page = browser.new_page()
        page.route(f"{ORIGIN}/**", serve)
        page.goto(f"{ORIGIN}/avsync")
        page.wait_for_function("window.openLocalMedia !== undefined")
        yield page
    finally:
        browser.close()


def test_a_browser_recording_of_the_fake_devices_pairs_flashes_with_beeps(
    page: Page, tmp_path: Path
) -> None:
    recorded: dict[str, Any] = page.evaluate(RECORD, RECORD_MS)
    path = tmp_path / "recorded.webm"
    path.write_bytes(base64.b64decode(recorded["webm"]))

    result = av_offsets(path)

    video, audio = recorded["settings"]["video"], recorded["settings"]["audio"]
    print(
        f"fake devices through MediaRecorder: {result}; camera {video['width']}x"
        f"{video['height']} at {video['frameRate']} fps, microphone {audio['sampleRate']} Hz"
    )
    assert result.count >= 3, result
    assert result.median_ms is not None
    # A sanity bound for the fixture (the devices' start skew is tens of ms), not a measure
    # of anything the app does.
    assert abs(result.median_ms) < 250, result
