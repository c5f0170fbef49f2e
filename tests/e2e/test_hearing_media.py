"""Media in real browsers: Chromium with fake camera and microphone, through our media node.

"Receives" is proven from each page's own ``getStats()``: the video frames it decoded and the
audio samples it received from each publisher keep growing (``window.yuntingRoom.mediaStats``).
Each test has a server of its own, since each runs the demo hearing its own way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import CHROMIUM, LiveServer, open_demo_hearing, serve_yunting, sign_in
from tests.e2e.room_support import (
    DEFENDANT,
    DEFENDANT_PHONE,
    JUDGE,
    PLAINTIFF,
    PLAINTIFF_PHONE,
    admit,
    growth,
    issue_link,
    judge_enters_room,
    new_context,
    party_enters_lobby,
    pid_of,
    room_state,
    sent_stats,
    wait_for_participant_state,
    wait_until_receiving,
)

OBSERVER = "李明"
OBSERVER_PHONE = "13900000009"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with serve_yunting(tmp_path) as live:
        yield live


def test_everyone_sees_and_hears_everyone_and_the_court_controls_hold(
    media_browser: Browser, server: LiveServer, screenshots: Path
) -> None:
    judge_context = new_context(media_browser, server)
    plaintiff_context = new_context(media_browser, server)
    defendant_context = new_context(media_browser, server)
    try:
        judge, (plaintiff_link, defendant_link) = judge_enters_room(
            judge_context, parties=(PLAINTIFF, DEFENDANT)
        )
        plaintiff = party_enters_lobby(plaintiff_context, plaintiff_link, PLAINTIFF_PHONE)
        defendant = party_enters_lobby(defendant_context, defendant_link, DEFENDANT_PHONE)
        # Waiting in the lobby, the parties receive nothing of the hearing.
        assert growth(plaintiff) == {}
        admit(judge, PLAINTIFF)
        admit(judge, DEFENDANT)
        judge.get_by_role("button", name="开庭", exact=True).click()
        for page in (plaintiff, defendant):
            wait_for_participant_state(page, "in_hearing")

        # 1. Everyone decodes video and receives audio from everyone else.
        ids = {name: pid_of(judge, name) for name in (JUDGE, PLAINTIFF, DEFENDANT)}
        pages = {JUDGE: judge, PLAINTIFF: plaintiff, DEFENDANT: defendant}
        for name, page in pages.items():
            wait_until_receiving(page, [pid for other, pid in ids.items() if other != name])
        plaintiff.screenshot(path=str(screenshots / "media-plaintiff-zh-1280x720.png"))
        judge.screenshot(path=str(screenshots / "media-judge-zh-1280x720.png"))

        # 2. The judge mutes the plaintiff: nobody receives the plaintiff's audio any more,
        # while the plaintiff's video still flows.
        judge.get_by_role("button", name=f"将 {PLAINTIFF} 的麦克风静音").click()
        expect(plaintiff.get_by_text("法庭已将您的麦克风静音。")).to_be_visible()
        judge.wait_for_timeout(1000)  # packets in flight when the mute landed
        for page in (judge, defendant):
            grown = growth(page)[ids[PLAINTIFF]]
            assert grown["audio_packets_received"] == 0, grown
            assert grown["audio_samples_received"] == 0, grown
            assert grown["video_frames_decoded"] > 0, grown
        # Asked to unmute, the plaintiff's audio flows again.
        judge.get_by_role("button", name=f"解除静音并请 {PLAINTIFF} 打开麦克风").click()
        expect(plaintiff.get_by_text("法庭请您重新打开麦克风。")).to_be_visible()
        for page in (judge, defendant):
            wait_until_receiving(page, [ids[PLAINTIFF]])

        # 5. The judge dismisses the defendant to the lobby: the defendant receives nothing of
        # the hearing, and nobody receives the defendant.
        judge.get_by_role("button", name=f"将 {DEFENDANT} 退回候庭室").click()
        judge.get_by_role("dialog").get_by_role("button", name="退回候庭室").click()
        wait_for_participant_state(defendant, "in_lobby")
        expect(defendant.locator("#view-lobby")).to_be_visible()
        assert room_state(defendant)["mediaConnection"] is None
        assert growth(defendant) == {}
        judge.wait_for_timeout(1000)
        for page in (judge, plaintiff):
            assert not any(growth(page).get(ids[DEFENDANT], {}).values())

        # The room in English: the language switch reloads the page, which resumes its place.
        for page in (judge, plaintiff):
            page.get_by_role("button", name="English").or_(
                page.get_by_role("link", name="English")
            ).click()
            expect(page.locator("html")).to_have_attribute("lang", "en")
            wait_for_participant_state(page, "in_hearing")
        wait_until_receiving(plaintiff, [ids[JUDGE]])
        wait_until_receiving(judge, [ids[PLAINTIFF]])
        plaintiff.screenshot(path=str(screenshots / "media-plaintiff-en-1280x720.png"))
        judge.screenshot(path=str(screenshots / "media-judge-en-1280x720.png"))
    finally:
        for context in (defendant_context, plaintiff_context, judge_context):
            context.close()


def test_a_party_whose_page_closes_comes_back_inside_the_grace_period_without_the_lobby(
    media_browser: Browser, server: LiveServer
) -> None:
    judge_context = new_context(media_browser, server)
    plaintiff_context = new_context(media_browser, server)
    try:
        judge, (link,) = judge_enters_room(judge_context, parties=(PLAINTIFF,))
        plaintiff = party_enters_lobby(plaintiff_context, link, PLAINTIFF_PHONE)
        admit(judge, PLAINTIFF)
        judge.get_by_role("button", name="开庭", exact=True).click()
        wait_for_participant_state(plaintiff, "in_hearing")
        judge_id, plaintiff_id = pid_of(judge, JUDGE), pid_of(judge, PLAINTIFF)
        wait_until_receiving(plaintiff, [judge_id])

        # The tab closes; the party opens the link again, passes the device check again and is
        # straight back in the hearing: no lobby, nobody admits anyone.
        plaintiff.close()
        reopened = plaintiff_context.new_page()
        reopened.goto(link)
        expect(reopened.get_by_role("heading", name="检查摄像头、麦克风和扬声器")).to_be_visible()
        expect(reopened.locator("#microphone-status")).to_have_text(re.compile("^麦克风正常"))
        reopened.get_by_role("button", name="进入候庭室").click()
        wait_for_participant_state(reopened, "in_hearing")
        assert room_state(reopened)["lobbyPosition"] is None
        expect(judge.get_by_role("button", name=f"准许 {PLAINTIFF} 入庭")).to_have_count(0)
        wait_until_receiving(reopened, [judge_id])
        wait_until_receiving(judge, [plaintiff_id])
        # The attendance log says what happened: a disconnect, then resumed, not a new entry.
        hearing_page = judge_context.new_page()
        open_demo_hearing(hearing_page)
        rows = hearing_page.locator("#attendance tbody tr", has_text=PLAINTIFF)
        expect(rows.filter(has_text="恢复").first).to_be_visible()
        expect(rows.filter(has_text="准许入庭")).to_have_count(1)
    finally:
        plaintiff_context.close()
        judge_context.close()


def test_an_observer_of_a_public_hearing_receives_everything_and_publishes_nothing(
    media_browser: Browser, server: LiveServer, screenshots: Path
) -> None:
    judge_context = new_context(media_browser, server)
    plaintiff_context = new_context(media_browser, server)
    observer_context = new_context(media_browser, server)
    try:
        # The court adds a member of the public to this public hearing as an observer.
        staff = judge_context.new_page()
        sign_in(staff, "judge")
        open_demo_hearing(staff)
        staff.get_by_label("角色").select_option(label="旁听人员")
        staff.get_by_label("姓名或名称").fill(OBSERVER)
        staff.get_by_label("手机号").fill(OBSERVER_PHONE)
        staff.get_by_role("button", name="添加参与人").click()
        observer_link = issue_link(staff, OBSERVER)
        staff.close()

        judge, (plaintiff_link,) = judge_enters_room(
            judge_context, parties=(PLAINTIFF,), signed_in=True
        )
        plaintiff = party_enters_lobby(plaintiff_context, plaintiff_link, PLAINTIFF_PHONE)
        observer = party_enters_lobby(observer_context, observer_link, OBSERVER_PHONE)
        admit(judge, PLAINTIFF)
        admit(judge, OBSERVER)
        judge.get_by_role("button", name="开庭", exact=True).click()
        wait_for_participant_state(observer, "in_hearing")
        ids = {name: pid_of(judge, name) for name in (JUDGE, PLAINTIFF, OBSERVER)}

        # The observer sees and hears the judge and the plaintiff ...
        wait_until_receiving(observer, [ids[JUDGE], ids[PLAINTIFF]])
        # ... and sends nothing, has no microphone or camera button, and nobody receives it.
        assert sent_stats(observer) == {"audio_packets_sent": 0, "video_packets_sent": 0}
        expect(observer.get_by_role("button", name=re.compile("麦克风"))).to_have_count(0)
        wait_until_receiving(judge, [ids[PLAINTIFF]])
        wait_until_receiving(plaintiff, [ids[JUDGE]])
        for page in (judge, plaintiff):
            assert ids[OBSERVER] not in growth(page)
        observer.screenshot(path=str(screenshots / "media-observer-zh-1280x720.png"))
    finally:
        for context in (observer_context, plaintiff_context, judge_context):
            context.close()
