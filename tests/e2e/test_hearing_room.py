"""The hearing room in real browsers (fake camera and microphone) against a real server.

A party opens the link the judge issued, reads the one-time code in the development outbox,
verifies, ticks the conduct declaration by keyboard, passes the device check and waits in the
lobby; the judge, in the room from the hearing page, admits them by keyboard; the party sees
the hearing. Everything here is signaling: it must hold with the media node on and off.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    expect,
)

from tests.e2e.conftest import (
    CHROMIUM,
    LiveServer,
    no_horizontal_scroll,
    open_demo_hearing,
    serve_yunting,
    sign_in,
)
from tests.e2e.room_support import (
    DEFENDANT,
    DEFENDANT_PHONE,
    PLAINTIFF,
    PLAINTIFF_PHONE,
    TIMEOUT_MS,
    code_from_outbox,
    issue_link,
    new_context,
    room_state,
    tab_to,
    wait_for_participant_state,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]

WIDE: ViewportSize = {"width": 1280, "height": 720}
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(scope="module", params=["media-off", "media-on"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server of this module's own (its tests open and run the demo hearing), once without
    and once with the media node."""
    enabled = "true" if request.param == "media-on" else "false"
    data_dir = tmp_path_factory.mktemp(f"room-{request.param}")
    with serve_yunting(data_dir, YUNTING_MEDIA_ENABLED=enabled) as live:
        yield live


def verify_identity(page: Page, context: BrowserContext, phone: str, hint: str) -> None:
    expect(page.get_by_role("heading", name="核验身份", level=2)).to_be_visible()
    page.get_by_role("button", name="发送验证码").click()
    expect(page.locator("#code-sent")).to_have_text(f"验证码已发送至 {hint}，10 分钟内有效。")
    # A wrong code first: the page says so and how many tries are left.
    code = code_from_outbox(context, phone)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    page.get_by_label("验证码", exact=True).fill(wrong)
    page.get_by_role("button", name="核验", exact=True).click()
    expect(page.locator("#f-code-err")).to_have_text("验证码不正确，还可尝试 4 次。")
    page.get_by_label("验证码", exact=True).fill(code)
    page.get_by_role("button", name="核验", exact=True).click()


def test_party_verifies_checks_devices_waits_and_is_admitted(
    media_browser: Browser, server: LiveServer, screenshots: Path
) -> None:
    judge_context = new_context(media_browser, server)
    party_context = new_context(media_browser, server)
    try:
        # The judge issues the plaintiff's link, enters the room and opens the lobby.
        judge = judge_context.new_page()
        sign_in(judge, "judge")
        open_demo_hearing(judge)
        link = issue_link(judge, PLAINTIFF)
        judge.get_by_role("link", name="进入庭审室").click()
        expect(judge).to_have_url(re.compile(r"/hearings/[0-9a-f-]+/room$"))
        banner = judge.locator("#hearing-banner")
        expect(banner).to_have_text(re.compile("候庭室未开放"))
        expect(judge.get_by_role("heading", name="庭审控制")).to_be_visible()
        judge.get_by_role("button", name="开放候庭室").click()
        expect(banner).to_have_text(re.compile("等待开庭"))
        expect(judge.locator("#conn-indicator")).to_have_text("已连接")

        # The party: identity by a code from the outbox.
        party = party_context.new_page()
        party.goto(link)
        expect(party.get_by_role("heading", level=1)).to_have_text(f"{PLAINTIFF}，您好")
        verify_identity(party, party_context, PLAINTIFF_PHONE, "138****0001")

        # The declaration, by keyboard only; continuing without the tick is refused.
        declaration = party.get_by_role("heading", name="庭审纪律声明")
        expect(declaration).to_be_focused()
        tick = party.get_by_role(
            "checkbox", name=re.compile("我承诺不对本次庭审录音、录像、拍照或传播")
        )
        go_on = party.get_by_role("button", name="继续", exact=True)
        tab_to(party, go_on)
        party.keyboard.press("Enter")
        expect(party.get_by_text("请勾选声明后继续。")).to_be_visible()
        expect(tick).to_be_focused()
        party.keyboard.press("Space")
        expect(tick).to_be_checked()
        party.keyboard.press("Tab")
        expect(go_on).to_be_focused()
        party.keyboard.press("Enter")

        # The device check with the fake camera and microphone.
        expect(party.get_by_role("heading", name="检查摄像头、麦克风和扬声器")).to_be_focused()
        expect(party.locator("#camera-status")).to_have_text("摄像头正常：您应能看到自己的画面。")
        expect(party.locator("#microphone-status")).to_have_text(re.compile("^麦克风正常"))
        party.wait_for_function(
            "() => document.getElementById('camera-preview').videoWidth > 0", timeout=TIMEOUT_MS
        )
        # The fake microphone beeps: the level meter hears it.
        expect(party.locator("#mic-heard")).to_have_text("已检测到声音。")
        party.get_by_role("button", name="播放测试声音").click()
        party.get_by_role("button", name="听到了").click()
        expect(party.locator("#speaker-status")).to_have_text("扬声器正常。")
        expect(party.locator("#devices-summary")).to_be_hidden()
        party.get_by_role("button", name="进入候庭室").click()

        # The lobby: waiting, first in line, own camera, nothing of the hearing.
        expect(party).to_have_url(re.compile(r"/j/yt1\.[^/]+/room$"))
        expect(party.get_by_role("heading", name="等待法庭准许入庭")).to_be_visible()
        expect(party.locator("#lobby-position")).to_have_text(re.compile("排第 1 位"))
        wait_for_participant_state(party, "in_lobby")
        assert room_state(party)["lobbyPosition"] == 1
        party.wait_for_function("() => document.getElementById('lobby-preview').videoWidth > 0")
        expect(party.locator("#video-grid .tile")).to_have_count(0)

        # The judge admits the party, by keyboard only.
        admit = judge.get_by_role("button", name=f"准许 {PLAINTIFF} 入庭")
        expect(admit).to_be_visible()
        tab_to(judge, admit)
        judge.keyboard.press("Enter")

        # The party is in the hearing: the presiding judge first and larger, names and roles.
        wait_for_participant_state(party, "in_hearing")
        expect(party.locator("#view-hearing")).to_be_visible()
        expect(party.locator("#view-lobby")).to_be_hidden()
        presiding = party.locator("#video-grid .tile.presiding")
        expect(presiding).to_contain_text("审判员 王芳")
        expect(presiding).to_contain_text("审判长")
        expect(party.locator("#video-grid .tile.self")).to_contain_text(f"{PLAINTIFF}（您）")
        presiding_box = presiding.bounding_box()
        own_box = party.locator("#video-grid .tile.self").bounding_box()
        assert presiding_box is not None
        assert own_box is not None
        assert presiding_box["width"] > own_box["width"]
        expect(party.get_by_role("button", name="准许入庭")).to_have_count(0)  # no controls
        expect(judge.get_by_role("heading", name="庭上 (2)")).to_be_visible()
        expect(judge.locator("#video-grid .tile", has_text=PLAINTIFF)).to_be_visible()
        assert room_state(party)["hearingState"] == "open"

        # The device check is in the attendance log the court reads.
        hearing_page = judge_context.new_page()
        open_demo_hearing(hearing_page)
        row = hearing_page.locator("#attendance tbody tr", has_text="设备检查").first
        expect(row).to_contain_text(PLAINTIFF)
        expect(row).to_contain_text("摄像头和麦克风正常")
        declared = hearing_page.locator("#attendance tbody tr", has_text="签署庭审纪律声明")
        expect(declared.first).to_contain_text(PLAINTIFF)
        expect(declared.first).to_contain_text("声明文本第 1 版")
        hearing_page.close()

        party.screenshot(path=str(screenshots / "room-party-zh-1280x720.png"))
        judge.screenshot(path=str(screenshots / "room-judge-zh-1280x720.png"))

        # English: the page reloads and resumes its place in the hearing (no new admission).
        party.get_by_role("button", name="English").click()
        expect(party.locator("html")).to_have_attribute("lang", "en")
        wait_for_participant_state(party, "in_hearing")
        expect(party.locator("#video-grid .tile.presiding")).to_contain_text("Presiding judge")
        expect(party.get_by_role("button", name="Leave the hearing")).to_be_visible()
        judge.get_by_role("link", name="English").click()
        expect(judge.get_by_role("heading", name="Court controls")).to_be_visible()
        expect(judge.get_by_role("heading", name="In the hearing (2)")).to_be_visible()
        party.screenshot(path=str(screenshots / "room-party-en-1280x720.png"))
        judge.screenshot(path=str(screenshots / "room-judge-en-1280x720.png"))

        # On a phone the room fits the width.
        party.set_viewport_size(PHONE)
        expect(party.locator("#video-grid .tile.presiding")).to_be_visible()
        assert no_horizontal_scroll(party)
        party.screenshot(path=str(screenshots / "room-party-en-390x844.png"), full_page=True)
    finally:
        party_context.close()
        judge_context.close()
    # The server logged the visits, never a join token.
    log = server.log()
    assert "GET /j/… -> 200" in log
    assert "yt1." not in log


# Stands in for a browser whose camera is refused or whose devices are missing.
DENY_CAMERA = """
(() => {
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (constraints) =>
    constraints && constraints.video
      ? Promise.reject(new DOMException("Permission denied", "NotAllowedError"))
      : original(constraints);
})();
"""
NO_DEVICES = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("Requested device not found", "NotFoundError"));
"""


def test_device_check_explains_refused_and_missing_devices(
    media_browser: Browser, server: LiveServer, screenshots: Path
) -> None:
    judge_context = new_context(media_browser, server)
    try:
        judge = judge_context.new_page()
        sign_in(judge, "judge")
        open_demo_hearing(judge)
        link = issue_link(judge, DEFENDANT)

        # The camera refused: said so, with what it means; the party may go on by audio.
        refused = new_context(media_browser, server)
        try:
            refused.add_init_script(DENY_CAMERA)
            page = refused.new_page()
            page.goto(link)
            verify_identity(page, refused, DEFENDANT_PHONE, "138****0003")
            page.get_by_role("checkbox").check()
            page.get_by_role("button", name="继续", exact=True).click()
            expect(page.locator("#camera-status")).to_have_text(re.compile("^您未允许使用摄像头"))
            expect(page.locator("#microphone-status")).to_have_text(re.compile("^麦克风正常"))
            summary = page.locator("#devices-summary")
            expect(summary).to_contain_text("法庭和其他参与人将看不到您")
            expect(summary).not_to_contain_text("听不到您的声音")
            page.screenshot(path=str(screenshots / "devices-denied-1280x720.png"), full_page=True)
            page.get_by_role("button", name="进入候庭室").click()
            expect(page).to_have_url(re.compile(r"/room$"))
        finally:
            refused.close()

        # No devices at all; the identity is already verified, so the check comes first.
        missing = new_context(media_browser, server)
        try:
            missing.add_init_script(NO_DEVICES)
            page = missing.new_page()
            page.goto(link)
            page.get_by_role("checkbox").check()
            page.get_by_role("button", name="继续", exact=True).click()
            expect(page.locator("#camera-status")).to_have_text(re.compile("^未找到摄像头"))
            expect(page.locator("#microphone-status")).to_have_text(re.compile("^未找到麦克风"))
            expect(page.locator("#devices-summary")).to_contain_text("听不到您的声音")
            page.get_by_role("button", name="播放测试声音").click()
            page.get_by_role("button", name="没有听到").click()
            expect(page.locator("#devices-summary")).to_contain_text("您可能听不到庭审声音")
            page.get_by_role("button", name="进入候庭室").click()
            expect(page).to_have_url(re.compile(r"/room$"))
        finally:
            missing.close()

        # Both results are in the attendance log, newest first.
        open_demo_hearing(judge)
        rows = judge.locator("#attendance tbody tr", has_text=DEFENDANT).filter(has_text="设备检查")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text("没有摄像头")
        expect(rows.nth(1)).to_contain_text("未允许使用摄像头")
    finally:
        judge_context.close()
