"""Helpers for the hearing-room browser tests: a media-capable Chromium, the join flow a
party goes through, and reading what a page believes and what media it received."""

from __future__ import annotations

import re
import time
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.e2e.conftest import LiveServer, open_demo_hearing, sign_in

PLAINTIFF = "张伟"
PLAINTIFF_PHONE = "13800000001"
DEFENDANT = "杭州某电子商务有限公司（代表人 刘洋）"
DEFENDANT_PHONE = "13800000003"
JUDGE = "审判员 王芳"
TIMEOUT_MS = 10_000
# Media over loopback connects in well under a second; the budget is for a loaded CI machine.
MEDIA_TIMEOUT_S = 30.0
Stats = dict[str, dict[str, int]]


def new_context(browser: Browser, server: LiveServer, *, locale: str = "zh-CN") -> BrowserContext:
    context = browser.new_context(
        viewport={"width": 1280, "height": 720}, locale=locale, base_url=server.base_url
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context


def issue_link(page: Page, name: str) -> str:
    """On the hearing page: a fresh join link for ``name``, as the court would send it."""
    page.get_by_role("button", name=f"为 {name} 生成入庭链接").click()
    link = page.get_by_role("textbox", name=f"已为 {name} 生成入庭链接：").input_value()
    assert "/j/yt1." in link
    return link


def code_from_outbox(context: BrowserContext, phone: str) -> str:
    """The newest one-time code sent by SMS to ``phone``, read off the development outbox."""
    outbox = context.new_page()
    try:
        outbox.goto("/dev/outbox")
        row = outbox.locator("tbody tr", has_text=phone).filter(has_text="验证码").first
        match = re.search(r"\b(\d{6})\b", row.inner_text())
        assert match, row.inner_text()
        return match.group(1)
    finally:
        outbox.close()


def tab_to(page: Page, target: Locator, *, limit: int = 80) -> None:
    """Press Tab until ``target`` has the focus: it is reachable by keyboard alone."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{target} cannot be reached with the Tab key")


def room_state(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate("window.yuntingRoom.state()")
    return state


def wait_for_participant_state(page: Page, state: str) -> None:
    page.wait_for_function(
        "state => window.yuntingRoom && window.yuntingRoom.state().participantState === state",
        arg=state,
    )


def judge_enters_room(
    context: BrowserContext, *, parties: tuple[str, ...], signed_in: bool = False
) -> tuple[Page, list[str]]:
    """The judge signs in (unless ``signed_in``), issues join links for ``parties`` on the
    hearing page, enters the room and opens the lobby. Returns the judge's room page and the
    links."""
    judge = context.new_page()
    if not signed_in:
        sign_in(judge, "judge")
    open_demo_hearing(judge)
    links = [issue_link(judge, name) for name in parties]
    judge.get_by_role("link", name="进入庭审室").click()
    expect(judge.get_by_role("heading", name="庭审控制")).to_be_visible()
    judge.get_by_role("button", name="开放候庭室").click()
    expect(judge.locator("#hearing-banner")).to_have_text(re.compile("等待开庭"))
    return judge, links


def party_enters_lobby(context: BrowserContext, link: str, phone: str) -> Page:
    """A party follows its link: the code from the outbox, the declaration, the device check
    (the fake devices pass it), then the lobby."""
    page = context.new_page()
    page.goto(link)
    page.get_by_role("button", name="发送验证码").click()
    expect(page.locator("#code-sent")).to_be_visible()
    page.get_by_label("验证码", exact=True).fill(code_from_outbox(context, phone))
    page.get_by_role("button", name="核验", exact=True).click()
    page.get_by_role("checkbox").check()
    page.get_by_role("button", name="继续", exact=True).click()
    if page.locator("#device-camera").is_visible():
        expect(page.locator("#microphone-status")).to_have_text(re.compile("^麦克风正常"))
    page.get_by_role("button", name="进入候庭室").click()
    expect(page).to_have_url(re.compile(r"/room$"))
    wait_for_participant_state(page, "in_lobby")
    return page


def admit(judge: Page, name: str) -> None:
    judge.get_by_role("button", name=f"准许 {name} 入庭").click()
    expect(judge.get_by_role("button", name=f"准许 {name} 入庭")).to_have_count(0)


def pid_of(page: Page, name: str) -> str:
    """The participant id of ``name`` as the page's roster has it."""
    for person in room_state(page)["people"]:
        if person["display_name"] == name:
            return str(person["participant_id"])
    raise AssertionError(f"{name} is not in the roster of {page.url}")


def media_stats(page: Page) -> Stats:
    """What the page's peer connection received, per publisher (``getStats()`` inbound-rtp)."""
    stats: Stats = page.evaluate("window.yuntingRoom.mediaStats()")
    return stats


def growth(page: Page, *, wait_s: float = 1.5) -> Stats:
    """How much each publisher's received figures grew over ``wait_s``."""
    before = media_stats(page)
    page.wait_for_timeout(wait_s * 1000)
    after = media_stats(page)
    return {
        pid: {key: value - before.get(pid, {}).get(key, 0) for key, value in figures.items()}
        for pid, figures in after.items()
    }


def wait_until_receiving(page: Page, pids: list[str], *, video: bool = True) -> Stats:
    """Until ``page`` decodes video frames (if ``video``) and receives audio samples from each
    of ``pids``, both growing; the growth seen last."""
    deadline = time.monotonic() + MEDIA_TIMEOUT_S
    while True:
        grown = growth(page)
        if all(_flowing(grown.get(pid, {}), video=video) for pid in pids):
            return grown
        if time.monotonic() > deadline:
            raise AssertionError(f"{page.url} does not receive from all of {pids}: {grown}")


def _flowing(figures: dict[str, int], *, video: bool) -> bool:
    audio = figures.get("audio_samples_received", 0) > 0
    return audio and (not video or figures.get("video_frames_decoded", 0) > 0)


def sent_stats(page: Page) -> dict[str, int]:
    """Packets the page's peer connection sent, by kind (``getStats()`` outbound-rtp)."""
    stats: dict[str, int] = page.evaluate("window.yuntingRoom.sentStats()")
    return stats
