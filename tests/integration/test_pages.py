"""The server-rendered pages, through the real app (lifespan, middleware, error handlers, SQLite).

Each test gets a fresh migrated database with the demo data (court, clerk, judge, a case and a
hearing at 10:00 court time today) and an httpx client that keeps cookies like a browser.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from pydantic import SecretStr

from yunting.hearing.model import (
    Actor,
    HearingAction,
    HearingState,
    ParticipantState,
    Role,
    StaffRole,
)
from yunting.infra.clock import FrozenClock
from yunting.infra.demo import DemoResult, seed_demo
from yunting.infra.settings import Mode, Settings
from yunting.staff.service import StaffService
from yunting.web.app import create_app
from yunting.web.resources import AppResources

PASSWORD = "demo-password-123"
BASE_URL = "http://court.test"
TZ = ZoneInfo("Asia/Shanghai")
# 09:30 in Shanghai: the demo schedules its hearing at 10:00 the same day.
NOW = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
CASE_NUMBER = "(2026)浙0192民初1234号"


@dataclass
class Court:
    app: FastAPI
    client: httpx.AsyncClient
    resources: AppResources
    demo: DemoResult
    clock: FrozenClock

    @property
    def system(self) -> Actor:
        return Actor.system()

    async def hearing_state(self) -> HearingState:
        detail = await self.resources.hearings.get_hearing(
            actor=self.system, hearing_id=self.demo.hearing_id
        )
        return detail.hearing.state

    async def participant(self, role: Role) -> UUID:
        detail = await self.resources.hearings.get_hearing(
            actor=self.system, hearing_id=self.demo.hearing_id
        )
        return next(p.id for p in detail.participants if p.role is role)

    async def case_count(self) -> int:
        clerk = await self.resources.staff.get_user_by_username(username="clerk")
        assert clerk is not None
        return len(await self.resources.hearings.list_cases(actor=clerk.actor(), limit=200))


@pytest.fixture
async def court(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Court]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(sqlite_template, data_dir / "yunting.sqlite3")
    settings = Settings(
        mode=Mode.DEVELOPMENT,
        data_dir=data_dir,
        database_url="",
        redis_url="",
        public_base_url=BASE_URL,
        secret_key=SecretStr("pages-test-secret-0123456789abcdefghij"),
        default_locale="zh-CN",
        court_timezone="Asia/Shanghai",
    )
    clock = FrozenClock(NOW)
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        resources: AppResources = app.state.resources
        # Seed with cheap Argon2 parameters; verification reads them from the stored hash.
        seeding_staff = StaffService(
            db=resources.db,
            clock=clock,
            session_ttl=timedelta(hours=12),
            hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
        )
        demo = await seed_demo(
            hearings=resources.hearings,
            staff=seeding_staff,
            clock=clock,
            court_name="杭州互联网法院",
            password=PASSWORD,
            tz=TZ,
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield Court(app, client, resources, demo, clock)


# Helpers --------------------------------------------------------------------------------------


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


async def sign_in(
    client: httpx.AsyncClient, username: str = "clerk", *, next_url: str = ""
) -> httpx.Response:
    form = await client.get("/login")
    assert form.status_code == 200
    data = {
        "username": username,
        "password": PASSWORD,
        "login_csrf": hidden(form.text, "login_csrf"),
        "next": next_url,
    }
    return await client.post("/login", data=data)


async def csrf(client: httpx.AsyncClient, path: str = "/day") -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return hidden(page.text, "csrf_token")


async def post(
    client: httpx.AsyncClient,
    path: str,
    data: dict[str, str],
    *,
    form_page: str = "/day",
) -> httpx.Response:
    """Post a form with the session's CSRF token, read from the page at ``form_page``."""
    return await client.post(path, data={"csrf_token": await csrf(client, form_page), **data})


def text_of(html: str) -> str:
    """The page's visible text, roughly: tags out, whitespace folded."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# Sign-in --------------------------------------------------------------------------------------


async def test_signed_out_pages_redirect_to_login(court: Court) -> None:
    home = await court.client.get("/")
    assert home.status_code == 303
    assert home.headers["location"] == "/login"
    day = await court.client.get("/day?date=2026-11-24")
    assert day.status_code == 303
    assert day.headers["location"] == "/login?next=%2Fday%3Fdate%3D2026-11-24"
    hearing = await court.client.get(f"/hearings/{court.demo.hearing_id}")
    assert hearing.status_code == 303
    assert hearing.headers["location"].startswith("/login?next=%2Fhearings%2F")
    # A signed-out form post is refused the same way and changes nothing.
    before = await court.case_count()
    created = await court.client.post("/cases", data={"number": "x", "csrf_token": "x"})
    assert created.status_code == 303
    assert created.headers["location"] == "/login"
    assert await court.case_count() == before


async def test_login_success_sets_the_session_and_goes_to_next(court: Court) -> None:
    response = await sign_in(court.client, next_url="/cases")
    assert response.status_code == 303
    assert response.headers["location"] == "/cases"
    set_cookies = response.headers.get_list("set-cookie")
    session = next(c for c in set_cookies if c.startswith("yt_session="))
    assert "httponly" in session.lower()
    assert "samesite=lax" in session.lower()
    # The one-time login CSRF cookie is gone once used.
    assert any(c.startswith("yt_csrf=") and "Max-Age=0" in c for c in set_cookies)
    home = await court.client.get("/")
    assert home.headers["location"] == "/day"
    # Already signed in: the sign-in page sends you on.
    again = await court.client.get("/login?next=/cases")
    assert again.status_code == 303
    assert again.headers["location"] == "/cases"


async def test_login_failure_says_the_same_for_unknown_user_and_wrong_password(
    court: Court,
) -> None:
    messages = []
    for username, password in (("nobody", PASSWORD), ("clerk", "wrong-password")):
        form = await court.client.get("/login")
        response = await court.client.post(
            "/login",
            data={
                "username": username,
                "password": password,
                "login_csrf": hidden(form.text, "login_csrf"),
            },
        )
        assert response.status_code == 401
        assert "yt_session" not in court.client.cookies
        assert "用户名或密码不正确" in response.text
        # The username is kept, the password is not echoed back.
        assert f'value="{username}"' in response.text
        assert password not in response.text
        messages.append(re.search(r'role="alert">(.*?)</div>', response.text, re.S))
    assert messages[0]
    assert messages[1]
    assert messages[0].group(1) == messages[1].group(1)


async def test_login_page_throttles_repeated_failures(court: Court) -> None:
    for _ in range(10):
        form = await court.client.get("/login")
        failed = await court.client.post(
            "/login",
            data={
                "username": "clerk",
                "password": "wrong-password",
                "login_csrf": hidden(form.text, "login_csrf"),
            },
        )
        assert failed.status_code == 401
    form = await court.client.get("/login")
    refused = await court.client.post(
        "/login",
        data={
            "username": "clerk",
            "password": PASSWORD,
            "login_csrf": hidden(form.text, "login_csrf"),
        },
    )
    assert refused.status_code == 429
    assert "登录失败次数过多" in refused.text
    assert int(refused.headers["retry-after"]) > 0
    assert "yt_session" not in court.client.cookies


async def test_login_without_the_double_submit_token_is_refused(court: Court) -> None:
    data = {"username": "clerk", "password": PASSWORD}
    # No cookie and no field (a cross-site form post looks like this).
    missing = await court.client.post("/login", data={**data, "login_csrf": ""})
    assert missing.status_code == 403
    assert "yt_session" not in court.client.cookies
    # A field that does not match the cookie.
    await court.client.get("/login")
    forged = await court.client.post("/login", data={**data, "login_csrf": "A" * 43})
    assert forged.status_code == 403
    assert "yt_session" not in court.client.cookies
    assert "登录表单已过期" in forged.text
    # The re-rendered form carries a fresh pair, so the person can simply try again.
    retry = await court.client.post(
        "/login", data={**data, "login_csrf": hidden(forged.text, "login_csrf")}
    )
    assert retry.status_code == 303


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"]
)
async def test_login_never_redirects_off_site(court: Court, next_url: str) -> None:
    response = await sign_in(court.client, next_url=next_url)
    assert response.status_code == 303
    assert response.headers["location"] == "/day"


async def test_logout_needs_the_csrf_token_and_ends_the_session(court: Court) -> None:
    await sign_in(court.client)
    session_token = court.client.cookies["yt_session"]
    refused = await court.client.post("/logout", data={"csrf_token": "wrong"})
    assert refused.status_code == 403
    assert (await court.client.get("/day")).status_code == 200
    out = await post(court.client, "/logout", {})
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert "yt_session" not in court.client.cookies
    login_page = await court.client.get("/login")
    assert "您已安全退出" in login_page.text
    # The session is revoked on the server, not just forgotten by this browser.
    court.client.cookies.set("yt_session", session_token)
    assert (await court.client.get("/day")).status_code == 303


# Day view -------------------------------------------------------------------------------------


async def test_day_view_shows_todays_demo_hearing(court: Court) -> None:
    await sign_in(court.client)
    response = await court.client.get("/day")
    assert response.status_code == 200
    page = text_of(response.text)
    assert CASE_NUMBER in page
    assert "10:00" in page
    assert "已排期" in page  # the state badge
    for name in ("审判员 王芳", "张伟", "陈律师（代理人）"):
        assert name in page
    assert "2026年11月24日 星期二" in page
    assert f'href="/hearings/{court.demo.hearing_id}"' in response.text
    assert 'href="/day?date=2026-11-23"' in response.text
    assert 'href="/day?date=2026-11-25"' in response.text
    assert "杭州互联网法院" in page  # the court in the header
    assert response.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in response.headers["content-security-policy"]


async def test_day_view_of_an_empty_day_says_so(court: Court) -> None:
    await sign_in(court.client)
    response = await court.client.get("/day?date=2026-11-25")
    assert response.status_code == 200
    assert "这一天没有安排庭审" in response.text
    assert CASE_NUMBER not in response.text


async def test_day_view_uses_the_court_time_zone(court: Court) -> None:
    # 23:30 UTC on the 23rd is 07:30 on the 24th in Shanghai: the hearing belongs to the 24th.
    await sign_in(court.client)
    clerk = await court.resources.staff.get_user_by_username(username="clerk")
    assert clerk is not None
    await court.resources.hearings.schedule_hearing(
        actor=clerk.actor(),
        case_id=court.demo.case_id,
        scheduled_start=datetime(2026, 11, 23, 23, 30, tzinfo=UTC),
        expected_minutes=30,
        is_public=False,
        title="早间调解",
    )
    day = text_of((await court.client.get("/day?date=2026-11-24")).text)
    assert "早间调解" in day
    assert day.index("07:30") < day.index("10:00")  # in time order
    assert "早间调解" not in (await court.client.get("/day?date=2026-11-23")).text


async def test_day_view_with_a_bad_date(court: Court) -> None:
    await sign_in(court.client)
    response = await court.client.get("/day?date=2026-13-45")
    assert response.status_code == 422
    assert "日期格式不正确" in response.text


# Cases ----------------------------------------------------------------------------------------


async def test_create_case_then_a_duplicate_number_is_a_409(court: Court) -> None:
    await sign_in(court.client)
    data = {
        "number": "(2026)浙0192民初77号",
        "title": "李四诉王五借款合同纠纷",
        "cause": "借款合同纠纷",
    }
    created = await post(court.client, "/cases", data, form_page="/cases")
    assert created.status_code == 303
    case_id = UUID(created.headers["location"].removeprefix("/cases/"))
    page = await court.client.get(created.headers["location"])
    assert "案件已立案" in page.text  # the flash message, shown once
    assert "李四诉王五借款合同纠纷" in page.text
    assert "案件已立案" not in (await court.client.get(f"/cases/{case_id}")).text

    before = await court.case_count()
    duplicate = await post(court.client, "/cases", data, form_page="/cases")
    assert duplicate.status_code == 409
    assert "案号 (2026)浙0192民初77号 在本院已存在" in duplicate.text
    # The form keeps what was typed.
    assert 'value="李四诉王五借款合同纠纷"' in duplicate.text
    assert await court.case_count() == before


async def test_create_case_with_a_malformed_number_is_a_422(court: Court) -> None:
    await sign_in(court.client)
    before = await court.case_count()
    response = await post(
        court.client,
        "/cases",
        {"number": "case 42", "title": "标题", "cause": "案由"},
        form_page="/cases",
    )
    assert response.status_code == 422
    assert "请按“(2026)浙0192民初1234号”的格式填写案号" in response.text
    assert 'aria-invalid="true"' in response.text
    assert await court.case_count() == before


async def test_a_judge_cannot_create_cases(court: Court) -> None:
    await sign_in(court.client, "judge")
    page = await court.client.get("/cases")
    assert 'action="/cases"' not in page.text  # no form offered
    before = await court.case_count()
    response = await post(
        court.client,
        "/cases",
        {"number": "(2026)浙0192民初78号", "title": "标题", "cause": "案由"},
        form_page="/cases",
    )
    assert response.status_code == 403
    assert "您的角色无权执行此操作" in response.text
    assert await court.case_count() == before


async def test_add_party_with_counsel(court: Court) -> None:
    await sign_in(court.client)
    path = f"/cases/{court.demo.case_id}"
    response = await post(
        court.client,
        f"{path}/parties",
        {
            "side": "third_party",
            "name": "赵六",
            "phone": "139 0000 0009",
            "email": "zhao@example.com",
            "id_number_last4": "123x",
            "counsel_name": "钱律师",
            "counsel_phone": "13900000010",
        },
        form_page=path,
    )
    assert response.status_code == 303
    page = text_of((await court.client.get(path)).text)
    assert "第三人" in page
    assert "赵六" in page
    assert "钱律师" in page
    assert "139****0009" in page  # contacts are shown masked
    clerk = await court.resources.staff.get_user_by_username(username="clerk")
    assert clerk is not None
    parties = await court.resources.hearings.list_parties(
        actor=clerk.actor(), case_id=court.demo.case_id
    )
    assert len(parties) == 3
    added = next(p for p in parties if p.side.value == "third_party")
    person = await court.resources.hearings.get_person(
        actor=clerk.actor(), person_id=added.person_id
    )
    assert (person.phone, person.id_number_last4) == ("13900000009", "123X")


async def test_add_party_with_bad_contacts_changes_nothing(court: Court) -> None:
    await sign_in(court.client)
    path = f"/cases/{court.demo.case_id}"
    response = await post(
        court.client,
        f"{path}/parties",
        {"side": "", "name": "赵六", "phone": "12ab", "email": "not-an-email"},
        form_page=path,
    )
    assert response.status_code == 422
    page = response.text
    assert "手机号应为 6–20 位数字" in page
    assert "请填写有效的电子邮箱地址" in page
    assert "请选择诉讼地位" in page
    clerk = await court.resources.staff.get_user_by_username(username="clerk")
    assert clerk is not None
    parties = await court.resources.hearings.list_parties(
        actor=clerk.actor(), case_id=court.demo.case_id
    )
    assert len(parties) == 2


async def test_schedule_a_hearing_in_court_local_time(court: Court) -> None:
    await sign_in(court.client)
    path = f"/cases/{court.demo.case_id}"
    response = await post(
        court.client,
        f"{path}/hearings",
        {
            "scheduled_start": "2026-11-25T14:30",
            "expected_minutes": "90",
            "title": "第二次开庭",
            "recording_required": "on",
        },
        form_page=path,
    )
    assert response.status_code == 303
    hearing_id = UUID(response.headers["location"].removeprefix("/hearings/"))
    detail = await court.resources.hearings.get_hearing(actor=court.system, hearing_id=hearing_id)
    assert detail.hearing.scheduled_start == datetime(2026, 11, 25, 6, 30, tzinfo=UTC)
    assert detail.hearing.expected_minutes == 90
    assert detail.hearing.is_public is False
    assert detail.hearing.recording_required is True
    page = await court.client.get(response.headers["location"])
    assert "庭审已排期" in page.text
    assert "2026-11-25 14:30" in page.text


async def test_schedule_with_bad_input_is_a_422(court: Court) -> None:
    await sign_in(court.client)
    path = f"/cases/{court.demo.case_id}"
    hearings_before = await court.resources.hearings.list_hearings_for_case(
        actor=court.system, case_id=court.demo.case_id
    )
    response = await post(
        court.client,
        f"{path}/hearings",
        {"scheduled_start": "tomorrow", "expected_minutes": "3"},
        form_page=path,
    )
    assert response.status_code == 422
    assert "请选择开庭日期和时间" in response.text
    assert "预计时长应为 5 至 1440 分钟" in response.text
    hearings_after = await court.resources.hearings.list_hearings_for_case(
        actor=court.system, case_id=court.demo.case_id
    )
    assert len(hearings_after) == len(hearings_before)


# Hearing page ---------------------------------------------------------------------------------


async def test_add_participants_new_and_from_the_case_parties(court: Court) -> None:
    await sign_in(court.client)
    path = f"/hearings/{court.demo.hearing_id}"
    page = await court.client.get(path)
    # The choice list offers the case's parties and their counsel.
    choices = re.findall(r'<option value="((?:party|counsel):[0-9a-f-]+)"', page.text)
    assert len(choices) == 3
    counsel_choice = next(c for c in choices if c.startswith("counsel:"))
    # Counsel is already a participant as counsel; adding them as a witness is a new role.
    added = await post(
        court.client,
        f"{path}/participants",
        {"role": "witness", "existing": counsel_choice},
        form_page=path,
    )
    assert added.status_code == 303
    again = await post(
        court.client,
        f"{path}/participants",
        {"role": "witness", "existing": counsel_choice},
        form_page=path,
    )
    assert again.status_code == 409  # already a witness of this hearing
    interpreter = await post(
        court.client,
        f"{path}/participants",
        {"role": "interpreter", "name": "孙翻译", "phone": "13700000000"},
        form_page=path,
    )
    assert interpreter.status_code == 303
    shown = text_of((await court.client.get(path)).text)
    assert "参与人已添加" in shown
    assert "孙翻译" in shown
    assert "翻译人员" in shown
    assert "证人" in shown
    detail = await court.resources.hearings.get_hearing(
        actor=court.system, hearing_id=court.demo.hearing_id
    )
    assert sorted(p.role.value for p in detail.participants).count("witness") == 1


async def test_add_participant_needs_a_person_and_a_role(court: Court) -> None:
    await sign_in(court.client)
    path = f"/hearings/{court.demo.hearing_id}"
    response = await post(court.client, f"{path}/participants", {"role": ""}, form_page=path)
    assert response.status_code == 422
    assert "请选择角色" in response.text
    assert "请选择本案当事人，或填写新参与人的姓名" in response.text


async def test_buttons_follow_state_and_role(court: Court) -> None:
    path = f"/hearings/{court.demo.hearing_id}"
    await sign_in(court.client)
    clerk_page = await court.client.get(path)
    assert 'name="action" value="open_lobby"' in clerk_page.text
    assert 'name="action" value="cancel"' in clerk_page.text
    assert 'name="action" value="start"' not in clerk_page.text  # not valid from scheduled
    assert 'action="' + path + '/lock"' not in clerk_page.text  # the judge locks
    await post(court.client, f"{path}/state", {"action": "open_lobby"}, form_page=path)
    clerk_open = await court.client.get(path)
    assert 'name="action" value="start"' not in clerk_open.text  # valid now, but not a clerk's
    assert "需由其他人员操作" in clerk_open.text
    assert "开庭" in clerk_open.text

    judge = httpx.AsyncClient(transport=httpx.ASGITransport(app=court.app), base_url=BASE_URL)
    async with judge:
        await sign_in(judge, "judge")
        judge_page = await judge.get(path)
        assert 'name="action" value="start"' in judge_page.text
        assert f'action="{path}/lock"' in judge_page.text
        assert f'action="{path}/notices"' not in judge_page.text  # the clerk sends notices


async def test_state_actions_allowed_forbidden_and_illegal(court: Court) -> None:
    path = f"/hearings/{court.demo.hearing_id}"
    await sign_in(court.client)
    opened = await post(
        court.client,
        f"{path}/state",
        {"action": "open_lobby", "reason": "准时开放"},
        form_page=path,
    )
    assert opened.status_code == 303
    assert await court.hearing_state() is HearingState.OPEN
    page = await court.client.get(path)
    assert "庭审状态已变更为“候庭中”" in page.text
    assert "准时开放" in page.text  # the reason is in the audit trail

    # The clerk may not start the hearing: 403, a clear message, nothing changed.
    forbidden = await post(court.client, f"{path}/state", {"action": "start"}, form_page=path)
    assert forbidden.status_code == 403
    assert "您的角色（书记员）不能执行“开庭”" in forbidden.text
    assert await court.hearing_state() is HearingState.OPEN

    # Opening the lobby twice is not a transition the state machine has: 409.
    illegal = await post(court.client, f"{path}/state", {"action": "open_lobby"}, form_page=path)
    assert illegal.status_code == 409
    assert "庭审当前为“候庭中”，不能执行“开放候庭室”" in illegal.text
    assert await court.hearing_state() is HearingState.OPEN

    unknown = await post(court.client, f"{path}/state", {"action": "explode"}, form_page=path)
    assert unknown.status_code == 422
    assert await court.hearing_state() is HearingState.OPEN

    judge = httpx.AsyncClient(transport=httpx.ASGITransport(app=court.app), base_url=BASE_URL)
    async with judge:
        await sign_in(judge, "judge")
        started = await post(judge, f"{path}/state", {"action": "start"}, form_page=path)
        assert started.status_code == 303
        assert await court.hearing_state() is HearingState.IN_SESSION
        page = await judge.get(path)
        assert "hstate-in_session" in page.text
        audit = text_of(page.text)
        assert "候庭中 → 庭审中" in audit
        # The trail names who acted: the judge started, the clerk opened the lobby.
        assert "王芳 · 法院工作人员" in audit
        assert "李静 · 法院工作人员" in audit
        closed = await post(judge, f"{path}/state", {"action": "close"}, form_page=path)
        assert closed.status_code == 303
        final = await judge.get(path)
        assert "庭审已结束，状态不能再变更" in final.text
        assert 'name="action"' not in final.text  # no lifecycle buttons left
        assert f'action="{path}/participants"' not in final.text


async def test_lock_and_unlock(court: Court) -> None:
    path = f"/hearings/{court.demo.hearing_id}"
    await sign_in(court.client, "judge")
    locked = await post(court.client, f"{path}/lock", {"locked": "1"}, form_page=path)
    assert locked.status_code == 303
    detail = await court.resources.hearings.get_hearing(
        actor=court.system, hearing_id=court.demo.hearing_id
    )
    assert detail.hearing.locked is True
    page = await court.client.get(path)
    assert "已锁定入庭" in page.text
    assert "解除锁定" in page.text
    await post(court.client, f"{path}/lock", {"locked": "0"}, form_page=path)
    detail = await court.resources.hearings.get_hearing(
        actor=court.system, hearing_id=court.demo.hearing_id
    )
    assert detail.hearing.locked is False


async def test_posts_without_the_csrf_token_are_refused_and_change_nothing(
    court: Court,
) -> None:
    await sign_in(court.client)
    path = f"/hearings/{court.demo.hearing_id}"
    before = await court.case_count()
    attempts = [
        ("/cases", {"number": "(2026)浙0192民初99号", "title": "t", "cause": "c"}),
        (f"{path}/state", {"action": "open_lobby"}),
        (f"{path}/notices", {}),
        (f"/cases/{court.demo.case_id}/parties", {"side": "plaintiff", "name": "某人"}),
    ]
    for target, data in attempts:
        for token in (None, "wrong-token"):
            body = data if token is None else {**data, "csrf_token": token}
            response = await court.client.post(target, data=body)
            assert response.status_code == 403, target
            assert "表单已过期" in response.text
            assert response.headers["content-type"].startswith("text/html")
    assert await court.case_count() == before
    assert await court.hearing_state() is HearingState.SCHEDULED
    assert await court.resources.outbox.list_recent() == []
    clerk = await court.resources.staff.get_user_by_username(username="clerk")
    assert clerk is not None
    parties = await court.resources.hearings.list_parties(
        actor=clerk.actor(), case_id=court.demo.case_id
    )
    assert len(parties) == 2


# Join links, notices, the participant landing -------------------------------------------------


async def issue_link(court: Court, participant_id: UUID) -> str:
    path = f"/hearings/{court.demo.hearing_id}"
    issued = await post(
        court.client, f"{path}/participants/{participant_id}/join-link", {}, form_page=path
    )
    assert issued.status_code == 303
    page = await court.client.get(path)
    match = re.search(r'id="join-link-url" type="text" readonly value="([^"]+)"', page.text)
    assert match, "the issued link is shown"
    # Shown once: the next visit no longer has it.
    assert "join-link-url" not in (await court.client.get(path)).text
    return match.group(1)


async def test_join_link_landing_valid_tampered_and_revoked(court: Court) -> None:
    await sign_in(court.client)
    plaintiff = await court.participant(Role.PLAINTIFF)
    url = await issue_link(court, plaintiff)
    assert url.startswith(f"{BASE_URL}/j/yt1.")
    token_path = url.removeprefix(BASE_URL)

    visitor = httpx.AsyncClient(transport=httpx.ASGITransport(app=court.app), base_url=BASE_URL)
    async with visitor:
        landing = await visitor.get(token_path)
        assert landing.status_code == 200
        page = text_of(landing.text)
        assert "张伟，您好" in page
        assert CASE_NUMBER in page
        assert "原告" in page
        assert "10:00" in page
        assert "接下来怎么做" in page
        assert "退出" not in page  # no staff controls for a participant

        body, signature = token_path.rsplit(".", 1)
        flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
        tampered = await visitor.get(f"{body}.{flipped}")
        assert tampered.status_code == 401
        assert "链接无效" in tampered.text
        assert "请联系承办本案的书记员" in tampered.text

        garbage = await visitor.get("/j/not-a-token")
        assert garbage.status_code == 401
        assert "Traceback" not in garbage.text

        path = f"/hearings/{court.demo.hearing_id}"
        revoked = await post(
            court.client, f"{path}/participants/{plaintiff}/revoke-links", {}, form_page=path
        )
        assert revoked.status_code == 303
        assert "已作废 张伟 的 1 个入庭链接" in (await court.client.get(path)).text
        gone = await visitor.get(token_path)
        assert gone.status_code == 410
        assert "链接已作废" in gone.text


async def test_send_notices_and_see_them_in_the_outbox(court: Court) -> None:
    await sign_in(court.client)
    path = f"/hearings/{court.demo.hearing_id}"
    sent = await post(court.client, f"{path}/notices", {}, form_page=path)
    assert sent.status_code == 303
    page = await court.client.get(path)
    # Plaintiff, counsel and defendant, each by SMS and email.
    assert "开庭通知已发送：3 人，共 6 条短信和邮件" in page.text
    outbox = await court.client.get("/dev/outbox")
    assert outbox.status_code == 200
    links = re.findall(
        r'<a href="(http://court\.test/j/yt1\.[^"]+)" rel="noopener noreferrer">', outbox.text
    )
    assert len(links) == 6
    assert "13800000001" in outbox.text
    assert "开庭通知 Hearing notice" in outbox.text
    landing = await court.client.get(links[0].removeprefix(BASE_URL))
    assert landing.status_code == 200


async def test_user_content_is_escaped_everywhere(court: Court) -> None:
    await sign_in(court.client)
    path = f"/hearings/{court.demo.hearing_id}"
    evil = '<script>alert("x")</script>'
    await post(
        court.client,
        f"{path}/participants",
        {"role": "witness", "name": evil, "phone": "13700000001", "email": "w@example.com"},
        form_page=path,
    )
    await post(court.client, f"{path}/notices", {}, form_page=path)
    for target in (path, "/day", "/dev/outbox"):
        html = (await court.client.get(target)).text
        assert "<script>alert" not in html, target
        assert "&lt;script&gt;alert" in html, target


# Language, errors -----------------------------------------------------------------------------


async def test_language_switch_and_accept_language(court: Court) -> None:
    await sign_in(court.client)
    chinese = await court.client.get("/day")
    assert '<html lang="zh-CN">' in chinese.text
    assert "今日庭审" in chinese.text
    switched = await court.client.get("/lang/en?next=/day%3Fdate%3D2026-11-24")
    assert switched.status_code == 303
    assert switched.headers["location"] == "/day?date=2026-11-24"
    assert court.client.cookies["yt_lang"] == "en"
    english = await court.client.get("/day?date=2026-11-24")
    assert '<html lang="en">' in english.text
    assert "Today&#39;s hearings" in english.text or "Today's hearings" in english.text
    assert "Scheduled" in english.text
    assert "Tuesday, 24 November 2026" in english.text
    back = await court.client.get("/lang/zh-CN?next=//evil.example")
    assert back.headers["location"] == "/"
    assert court.client.cookies["yt_lang"] == "zh-CN"
    assert (await court.client.get("/lang/fr?next=/day")).status_code == 404

    # Without the cookie, the browser's Accept-Language decides.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=court.app), base_url=BASE_URL
    ) as browser:
        en = await browser.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
        assert '<html lang="en">' in en.text
        assert "Court staff sign-in" in en.text
        zh = await browser.get("/login", headers={"Accept-Language": "zh-TW,en;q=0.5"})
        assert '<html lang="zh-CN">' in zh.text
        assert "法院工作人员登录" in zh.text
        browser.cookies.set("yt_lang", "zh-CN")
        cookie_wins = await browser.get("/login", headers={"Accept-Language": "en"})
        assert '<html lang="zh-CN">' in cookie_wins.text


async def test_errors_are_pages_for_browsers_and_json_for_the_api(court: Court) -> None:
    await sign_in(court.client)
    missing = await court.client.get("/cases/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "找不到页面" in missing.text
    malformed = await court.client.get("/hearings/not-an-id")
    assert malformed.status_code == 404
    assert "找不到页面" in malformed.text
    nowhere = await court.client.get("/no/such/page")
    assert nowhere.status_code == 404
    assert nowhere.headers["content-type"].startswith("text/html")
    api = await court.client.get("/api/cases/00000000-0000-4000-8000-000000000000")
    assert api.status_code == 404
    assert api.json()["error"]["code"] == "not_found"


async def test_a_case_of_another_court_is_not_found(court: Court) -> None:
    other = await court.resources.hearings.ensure_court(name="北京互联网法院", code="BJ0491")
    staff = StaffService(
        db=court.resources.db,
        clock=court.clock,
        session_ttl=timedelta(hours=1),
        hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
    )
    await staff.create_user(
        court_id=other.id,
        username="bj-clerk",
        display_name="赵敏",
        role=StaffRole.CLERK,
        password=PASSWORD,
    )
    await sign_in(court.client, "bj-clerk")
    assert (await court.client.get(f"/cases/{court.demo.case_id}")).status_code == 404
    assert (await court.client.get(f"/hearings/{court.demo.hearing_id}")).status_code == 404
    day = await court.client.get("/day")
    assert CASE_NUMBER not in day.text
    assert "北京互联网法院" in day.text


async def test_participant_states_show_as_badges(court: Court) -> None:
    plaintiff = await court.participant(Role.PLAINTIFF)
    await court.resources.hearings.change_participant_state(
        actor=court.system,
        participant_id=plaintiff,
        to=ParticipantState.VERIFIED,
        action="participant.verify",
    )
    await sign_in(court.client)
    page = await court.client.get(f"/hearings/{court.demo.hearing_id}")
    assert 'class="badge pstate-verified">已核验<' in page.text
    day = await court.client.get("/day")
    assert 'class="badge pstate-verified">已核验<' in day.text


async def test_an_unexpected_failure_shows_a_page_not_a_traceback(
    court: Court, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sign_in(court.client)

    async def broken(**_: object) -> None:
        raise RuntimeError("database exploded: secret detail")

    monkeypatch.setattr(court.resources.hearings, "list_cases", broken)
    # As a real server would: the app answers, then the error propagates to be logged.
    transport = httpx.ASGITransport(app=court.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, cookies=court.client.cookies
    ) as browser:
        page = await browser.get("/cases")
        api = await browser.get("/api/cases", headers={"X-CSRF-Token": "x"})
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "系统错误" in page.text
    assert "secret detail" not in page.text
    assert "Traceback" not in page.text
    assert api.status_code == 500
    assert api.json() == {"error": {"code": "internal", "message": "internal server error"}}


# The join flow and the hearing room ------------------------------------------------------------


def json_block(html: str, element_id: str) -> dict[str, object]:
    """The JSON data block ``<script type="application/json" id=...>`` of a page."""
    match = re.search(
        rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.DOTALL
    )
    assert match, f"no JSON block {element_id}"
    data = json.loads(match.group(1))
    assert isinstance(data, dict)
    return data


async def plaintiff_link(court: Court) -> tuple[UUID, str]:
    """The plaintiff and the path of a fresh join link for them (issued by the clerk)."""
    await sign_in(court.client)
    plaintiff = await court.participant(Role.PLAINTIFF)
    url = await issue_link(court, plaintiff)
    return plaintiff, url.removeprefix(BASE_URL)


async def verify(court: Court, participant_id: UUID) -> None:
    await court.resources.hearings.change_participant_state(
        actor=court.system,
        participant_id=participant_id,
        to=ParticipantState.VERIFIED,
        action="participant.verify",
    )


def visitor(court: Court, language: str) -> httpx.AsyncClient:
    """A browser without a staff session, asking for ``language``."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=court.app),
        base_url=BASE_URL,
        headers={"Accept-Language": language},
    )


async def test_join_flow_page_in_both_languages(court: Court) -> None:
    _, path = await plaintiff_link(court)
    async with visitor(court, "zh-CN") as zh, visitor(court, "en") as en:
        chinese = await zh.get(path)
        english = await en.get(path)
    assert chinese.status_code == english.status_code == 200
    # The steps, starting with the identity check by a code to the masked contacts.
    page = text_of(chinese.text)
    for text in ("核验身份", "庭审纪律", "检查设备", "候庭室", "短信发送至 138****0001"):
        assert text in page, text
    assert "邮件发送至 z***@example.com" in page
    assert 'data-verified="false"' in chinese.text
    page = text_of(english.text)
    for text in (
        "Identity",
        "Declaration",
        "Devices",
        "Waiting room",
        "Text message to 138****0001",
    ):
        assert text in page, text
    assert "I will not record, photograph or broadcast this hearing" in page
    assert '<script type="module" src="/static/js/join.js">' in english.text
    # The script's strings travel with the page, in the page's language.
    strings = json_block(english.text, "yt-strings")
    assert strings["verify.error_locked"] == (
        "Too many wrong attempts: this code no longer works. Ask for a new one."
    )
    assert json_block(chinese.text, "yt-strings")["verify.error_locked"].startswith("错误次数过多")
    # The address holds the token: no Referer carries it anywhere, and the language switch
    # sends it back in a form body, not a query string.
    assert chinese.headers["referrer-policy"] == "no-referrer"
    assert "/lang/en?next=" not in chinese.text
    assert 'action="/lang/en"' in chinese.text


async def test_verified_participants_skip_the_code(court: Court) -> None:
    plaintiff, path = await plaintiff_link(court)
    await verify(court, plaintiff)
    async with visitor(court, "zh-CN") as browser:
        landing = await browser.get(path)
    assert 'data-verified="true"' in landing.text


async def test_language_switch_on_a_token_page_posts_the_way_back(court: Court) -> None:
    _, path = await plaintiff_link(court)
    async with visitor(court, "zh-CN") as browser:
        switched = await browser.post("/lang/en", data={"next": f"{path}/room"})
        assert switched.status_code == 303
        assert switched.headers["location"] == f"{path}/room"
        assert browser.cookies["yt_lang"] == "en"
        elsewhere = await browser.post("/lang/zh-CN", data={"next": "//evil.example/x"})
        assert elsewhere.headers["location"] == "/"
        assert (await browser.post("/lang/fr", data={"next": "/"})).status_code == 404


async def test_room_page_for_a_verified_participant_in_both_languages(court: Court) -> None:
    plaintiff, path = await plaintiff_link(court)
    await verify(court, plaintiff)
    token = path.removeprefix("/j/")
    async with visitor(court, "zh-CN") as zh, visitor(court, "en") as en:
        chinese = await zh.get(f"{path}/room")
        english = await en.get(f"{path}/room")
    assert chinese.status_code == english.status_code == 200
    assert "等待法庭准许入庭" in chinese.text
    assert "退出庭审" in chinese.text
    assert "Waiting to be admitted" in english.text
    assert "Leave the hearing" in english.text
    assert '<script type="module" src="/static/js/room.js">' in chinese.text
    config = json_block(chinese.text, "room-config")
    assert config["mode"] == "participant"
    assert config["hearing_id"] == str(court.demo.hearing_id)
    assert config["participant_id"] == str(plaintiff)
    assert config["websocket_path"] == f"/ws/hearings/{court.demo.hearing_id}"
    assert config["ice_servers"] == []
    assert config["may_publish"] is True
    # The script reads the token from the address; the page's data never carries it.
    assert token not in json.dumps(config)
    assert token not in json.dumps(json_block(chinese.text, "yt-strings"))
    assert chinese.headers["referrer-policy"] == "no-referrer"
    assert chinese.headers["cache-control"] == "no-store"
    # The controls' rules come from the tables the server enforces.
    controls = config["controls"]
    assert isinstance(controls, dict)
    actions = controls["actions"]
    assert [a["action"] for a in actions] == [
        "open_lobby",
        "start",
        "pause",
        "suspend",
        "resume",
        "close",
    ]
    assert actions[1] == {"action": "start", "from": ["open"], "permission": "hearing.start"}
    assert "participant.remove" in controls["permissions"]["judge"]
    assert "participant.remove" not in controls["permissions"]["clerk"]
    strings = json_block(english.text, "yt-strings")
    assert strings["roomctl.admit_label"] == "Admit {name}"
    assert strings["state.in_session"] == "In session"


async def test_room_page_sends_an_unverified_participant_to_the_identity_check(
    court: Court,
) -> None:
    _, path = await plaintiff_link(court)
    async with visitor(court, "zh-CN") as browser:
        room = await browser.get(f"{path}/room")
    assert room.status_code == 303
    assert room.headers["location"] == path


async def test_room_page_refuses_bad_and_revoked_links(court: Court) -> None:
    plaintiff, path = await plaintiff_link(court)
    await verify(court, plaintiff)
    body, signature = path.rsplit(".", 1)
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    async with visitor(court, "zh-CN") as browser:
        tampered = await browser.get(f"{body}.{flipped}/room")
        assert tampered.status_code == 401
        assert "链接无效" in tampered.text
        assert "room.js" not in tampered.text
        garbage = await browser.get("/j/not-a-token/room")
        assert garbage.status_code == 401
        hearing = f"/hearings/{court.demo.hearing_id}"
        await post(
            court.client, f"{hearing}/participants/{plaintiff}/revoke-links", {}, form_page=hearing
        )
        revoked = await browser.get(f"{path}/room")
        assert revoked.status_code == 410
        assert "链接已作废" in revoked.text
        assert "room.js" not in revoked.text


async def test_staff_room_page_needs_a_judge_or_clerk_signed_in(court: Court) -> None:
    path = f"/hearings/{court.demo.hearing_id}/room"
    signed_out = await court.client.get(path)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/login?" + urlencode({"next": path})

    await sign_in(court.client)
    hearing_page = await court.client.get(f"/hearings/{court.demo.hearing_id}")
    assert f'href="{path}"' in hearing_page.text
    assert "进入庭审室" in hearing_page.text
    room = await court.client.get(path)
    assert room.status_code == 200
    config = json_block(room.text, "room-config")
    assert config["mode"] == "staff"
    assert config["room_token_path"] == f"/api/hearings/{court.demo.hearing_id}/room-token"
    assert config["hearing_page"] == f"/hearings/{court.demo.hearing_id}"
    # The script asks for its room token with the session and this CSRF token.
    assert f'data-csrf="{hidden(hearing_page.text, "csrf_token")}"' in room.text
    assert "庭审控制" not in text_of(room.text)  # the panel is the script's, per role

    # An administrator has no place in a hearing room.
    staff = StaffService(
        db=court.resources.db,
        clock=court.clock,
        session_ttl=timedelta(hours=1),
        hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
    )
    clerk = await court.resources.staff.get_user_by_username(username="clerk")
    assert clerk is not None
    await staff.create_user(
        court_id=clerk.court_id,
        username="admin",
        display_name="管理员",
        role=StaffRole.ADMIN,
        password=PASSWORD,
    )
    async with visitor(court, "zh-CN") as admin:
        await sign_in(admin, "admin")
        refused = await admin.get(path)
        assert refused.status_code == 403
        assert "room.js" not in refused.text
        page = await admin.get(f"/hearings/{court.demo.hearing_id}")
        assert f'href="{path}"' not in page.text


async def test_staff_room_page_of_a_closed_hearing(court: Court) -> None:
    hearing = court.demo.hearing_id
    for action in (HearingAction.OPEN_LOBBY, HearingAction.START, HearingAction.CLOSE):
        await court.resources.hearings.change_hearing_state(
            actor=court.system, hearing_id=hearing, action=action
        )
    await sign_in(court.client, "judge")
    page = await court.client.get(f"/hearings/{hearing}")
    assert f'href="/hearings/{hearing}/room"' not in page.text
    room = await court.client.get(f"/hearings/{hearing}/room")
    assert room.status_code == 200
    assert "庭审已结束" in room.text
    assert "room.js" not in room.text


async def test_device_check_shows_in_the_staff_attendance_log(court: Court) -> None:
    plaintiff, path = await plaintiff_link(court)
    await verify(court, plaintiff)
    token = path.removeprefix("/j/")
    async with visitor(court, "zh-CN") as browser:
        recorded = await browser.post(
            "/api/join/device-check",
            json={"camera": "missing", "microphone": "ok", "speaker": "ok"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert recorded.status_code == 201, recorded.text
    page = text_of((await court.client.get(f"/hearings/{court.demo.hearing_id}")).text)
    assert "张伟 设备检查 没有摄像头" in page
    await court.client.get("/lang/en")
    english = text_of((await court.client.get(f"/hearings/{court.demo.hearing_id}")).text)
    assert "Device check No camera" in english
