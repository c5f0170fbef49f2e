"""The staff pages and the participant landing in a real browser against a real server.

The clerk signs in, finds today's demo hearing, issues a join link, sends the notices, finds
them in the development outbox and follows the link as the party would; the judge starts the
hearing the clerk opened; the language switch works; the pages fit a phone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ViewportSize, expect

from tests.e2e.conftest import (
    CHROMIUM,
    DEMO_PASSWORD,
    LiveServer,
    no_horizontal_scroll,
    open_demo_hearing,
    sign_in,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]

CASE_NUMBER = "(2026)浙0192民初1234号"
WIDE: ViewportSize = {"width": 1280, "height": 720}
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture
def context(browser: Browser, live_server: LiveServer) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport=WIDE, locale="zh-CN", base_url=live_server.base_url)
    ctx.set_default_timeout(5_000)
    try:
        yield ctx
    finally:
        ctx.close()


def test_clerk_issues_a_link_sends_notices_and_the_party_lands(
    browser: Browser, context: BrowserContext, live_server: LiveServer, screenshots: Path
) -> None:
    page = context.new_page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    sign_in(page, "clerk")

    # The day view: today's demo hearing with its people and state.
    expect(page.get_by_role("heading", name="今日庭审", level=1)).to_be_visible()
    card = page.locator(".hearing-card", has_text=CASE_NUMBER)
    expect(card).to_be_visible()
    expect(card.locator(".badge.hstate-scheduled")).to_have_text("已排期")
    expect(card.get_by_text("陈律师（代理人）")).to_be_visible()
    page.screenshot(path=str(screenshots / "day-1280x720.png"), full_page=True)

    # The hearing page: issue a join link for the plaintiff, shown once, copyable.
    open_demo_hearing(page)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="为 张伟 生成入庭链接").click()
    link_field = page.get_by_role("textbox", name="已为 张伟 生成入庭链接：")
    expect(link_field).to_have_value(re.compile(rf"^{re.escape(live_server.base_url)}/j/yt1\."))
    link = link_field.input_value()
    page.get_by_role("button", name="复制").click()
    expect(page.get_by_role("button", name="已复制")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == link

    # Send the notices; the flash message says how many went out.
    page.get_by_role("button", name="发送开庭通知").click()
    expect(page.get_by_role("status")).to_contain_text("开庭通知已发送：3 人，共 6 条短信和邮件")
    expect(page.locator("#join-link-url")).to_have_count(0)  # the link was shown only once
    page.screenshot(path=str(screenshots / "hearing-1280x720.png"), full_page=True)

    # The development outbox has the SMS with a clickable join link.
    page.get_by_role("link", name="开发发件箱").click()
    sms = page.locator("tr", has_text="13800000001").filter(has_text="短信").first
    expect(sms).to_contain_text("张伟，您好")
    sms_link = sms.locator("a[href*='/j/yt1.']")
    expect(sms_link).to_have_count(1)
    page.screenshot(path=str(screenshots / "outbox-1280x720.png"), full_page=True)

    # The party opens it on a phone, without any staff session.
    href = sms_link.get_attribute("href")
    assert href is not None
    assert href != link  # the notice carries a fresh link
    party = browser.new_context(viewport=PHONE, locale="zh-CN")
    try:
        landing = party.new_page()
        landing.goto(href)
        expect(landing.get_by_role("heading", level=1)).to_have_text("张伟，您好")
        expect(landing.get_by_text(CASE_NUMBER)).to_be_visible()
        expect(landing.get_by_text("张伟 · 原告")).to_be_visible()
        expect(landing.get_by_role("button", name="退出")).to_have_count(0)
        assert no_horizontal_scroll(landing)
        landing.screenshot(path=str(screenshots / "landing-390x844.png"), full_page=True)
        # A damaged link explains itself instead of failing.
        landing.goto(href[:-3] + "abc")
        expect(landing.get_by_role("heading", level=1)).to_have_text("链接无效")
        expect(landing.get_by_text("请联系承办本案的书记员")).to_be_visible()
    finally:
        party.close()
    # The server logged the visits, but never a join token (they are credentials).
    log = live_server.log()
    assert "GET /j/… -> 200" in log
    assert "yt1." not in log


def test_judge_starts_the_hearing_the_clerk_opened(
    browser: Browser, context: BrowserContext, live_server: LiveServer
) -> None:
    clerk = context.new_page()
    sign_in(clerk, "clerk")
    open_demo_hearing(clerk)
    state = clerk.locator("#hearing-state .badge").first
    expect(state).to_have_text("已排期")
    # The clerk cannot start a hearing: no such button, and the page says who can.
    expect(clerk.get_by_role("button", name="开庭", exact=True)).to_have_count(0)
    clerk.get_by_role("button", name="开放候庭室").click()
    expect(state).to_have_text("候庭中")
    expect(clerk.get_by_role("status")).to_contain_text("庭审状态已变更为“候庭中”")
    expect(clerk.get_by_text("需由其他人员操作")).to_be_visible()

    judge_context = browser.new_context(
        viewport=WIDE, locale="zh-CN", base_url=live_server.base_url
    )
    try:
        judge = judge_context.new_page()
        sign_in(judge, "judge")
        expect(judge.locator(".role-chip")).to_have_text("法官")
        open_demo_hearing(judge)
        judge.get_by_label("原因（选填）").fill("当事人均已到庭")
        judge.get_by_role("button", name="开庭", exact=True).click()
        judge_state = judge.locator("#hearing-state .badge").first
        expect(judge_state).to_have_text("庭审中")
        expect(judge_state).to_have_class(re.compile(r"hstate-in_session"))
        audit = judge.locator("#audit tbody tr").first
        expect(audit).to_contain_text("候庭中 → 庭审中")
        expect(audit).to_contain_text("当事人均已到庭")
    finally:
        judge_context.close()

    clerk.reload()
    expect(state).to_have_text("庭审中")


def test_language_switch(context: BrowserContext) -> None:
    page = context.new_page()
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("heading", level=1)).to_have_text("法院工作人员登录")
    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Court staff sign-in")
    page.get_by_label("Username").fill("clerk")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Today's hearings")
    expect(page.get_by_role("link", name="Cases")).to_be_visible()
    # Back to Chinese, on the same page.
    page.get_by_role("link", name="中文").click()
    expect(page).to_have_url(re.compile(r"/day$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("今日庭审")


def test_keyboard_skip_link_and_phone_layout(
    browser: Browser, live_server: LiveServer, screenshots: Path
) -> None:
    phone = browser.new_context(viewport=PHONE, locale="zh-CN", base_url=live_server.base_url)
    try:
        page = phone.new_page()
        page.goto("/login")
        # The first Tab reaches the skip link; following it lands in the form.
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="跳到主要内容")).to_be_focused()
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
        expect(page.get_by_label("用户名")).to_be_focused()
        page.keyboard.type("clerk")
        page.keyboard.press("Tab")
        page.keyboard.type(DEMO_PASSWORD)
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(r"/day$"))
        assert no_horizontal_scroll(page)
        page.screenshot(path=str(screenshots / "day-390x844.png"), full_page=True)
        open_demo_hearing(page)
        assert no_horizontal_scroll(page)
        # On a phone the hearing controls come before the participant list.
        control = page.get_by_role("heading", name="庭审控制").bounding_box()
        people = page.get_by_role("heading", name="参与人", exact=True).bounding_box()
        assert control is not None
        assert people is not None
        assert control["y"] < people["y"]
        page.screenshot(path=str(screenshots / "hearing-390x844.png"), full_page=True)
        page.goto("/cases")
        assert no_horizontal_scroll(page)
    finally:
        phone.close()
