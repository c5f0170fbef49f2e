"""The recipient's page of electronic service (``/s/<token>``), through the real app on both
databases: the link read from the message the worker put in the outbox, the identity check by a
one-time code to the recipient's other channel or by the last four characters of the ID number,
the document served only with the pass (each fetch recorded first), acknowledgement, "report a
problem", and every way a visitor can get it wrong."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from tests.integration.conftest import API_SECRET
from yunting.hearing.model import Actor, StaffRole
from yunting.hearing.tokens import derive_key
from yunting.infra.clock import FrozenClock
from yunting.infra.db import Database
from yunting.infra.settings import Settings
from yunting.service_delivery import repository as repo
from yunting.service_delivery.documents import DocumentKind
from yunting.service_delivery.links import make_token
from yunting.service_delivery.model import ConsentTier, EvidenceKind
from yunting.service_delivery.outbox import OutboxMessage
from yunting.service_delivery.ports import Channel, MessagePurpose
from yunting.service_delivery.service import RecipientSpec, ServiceDeliveryService
from yunting.web.app import create_app
from yunting.web.resources import AppResources
from yunting.web.routes import service_recipient

PDF = b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
CASE_NUMBER = "(2026)浙0192民初1234号"
TITLE = "民事判决书"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r"https?://[^/\s]+(/s/[\w-]{22}\.[\w-]{22})")
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}
# 2026-11-24 09:30 in Beijing, a Tuesday.
START = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)


@dataclass
class Site:
    app: FastAPI
    resources: AppResources
    clock: FrozenClock
    clerk: Actor
    case_id: UUID
    tmp: Path

    @property
    def service(self) -> ServiceDeliveryService:
        assert self.resources.delivery is not None
        return self.resources.delivery.service

    def browser(self, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
        """A visitor with their own cookie jar (Chinese unless told otherwise)."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://court.test",
            headers=headers or ZH,
        )


@pytest.fixture
async def site(database: Database, tmp_path: Path) -> AsyncIterator[Site]:
    # The app's own worker sends the service messages into the outbox; the clock is frozen so
    # lockouts and rate limits can be waited out.
    clock = FrozenClock(START)
    settings = Settings(
        database_url=database.url,
        data_dir=tmp_path,
        secret_key=SecretStr(API_SECRET),
        public_base_url="http://court.test",
        max_request_bytes=64 * 1024,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        delivery_sweep_interval_s=0.2,
    )
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        resources: AppResources = app.state.resources
        court = await resources.hearings.ensure_court(name="杭州互联网法院", code="ZJ0192")
        clerk = await resources.staff.create_user(
            court_id=court.id,
            username="clerk",
            display_name="李静",
            role=StaffRole.CLERK,
            password="clerk-password",
        )
        case = await resources.hearings.create_case(
            actor=clerk.actor(), number=CASE_NUMBER, title="张伟诉某公司", cause="合同纠纷"
        )
        yield Site(app, resources, clock, clerk.actor(), case.id, tmp_path)


def recipient(tier: ConsentTier = ConsentTier.TIER2, **changes: object) -> RecipientSpec:
    values: dict[str, object] = {
        "name": "张伟",
        "role": "plaintiff",
        "channels": (Channel.SMS, Channel.EMAIL),
        "consent_tier": tier,
        "consent_source": "起诉状中填写并确认的送达地址",
        "phone": "138 0013 8000",
        "email": "zhang.wei@example.com",
        "id_last4": "123X",
    }
    values.update(changes)
    return RecipientSpec(**values)  # type: ignore[arg-type]


async def serve(site: Site, *specs: RecipientSpec) -> tuple[UUID, list[UUID]]:
    """A judgment served on ``specs``; the attempts are queued for the app's worker."""
    source = site.tmp / f"upload-{uuid4().hex}.pdf"
    source.write_bytes(PDF)
    document = await site.service.upload_document(
        actor=site.clerk,
        case_id=site.case_id,
        kind=DocumentKind.JUDGMENT,
        title=TITLE,
        filename="judgment.pdf",
        source=source,
    )
    order_id, attempts = await site.service.create_order(
        actor=site.clerk,
        case_id=site.case_id,
        document_id=document.id,
        legal_basis="民事诉讼法第九十条",
        deadline_kind="appeal_judgment",
        recipients=list(specs),
    )
    assert site.resources.delivery is not None
    await site.resources.delivery.queue.put(attempts)
    return order_id, attempts


async def messages(site: Site) -> list[OutboxMessage]:
    return await site.resources.outbox.list_recent(limit=500)


async def link_of(site: Site, attempt_id: UUID) -> tuple[str, OutboxMessage]:
    """The path of the link in the message the worker sent for ``attempt_id``."""
    for _ in range(200):
        for message in await messages(site):
            if message.purpose is MessagePurpose.SERVICE and message.reference == str(attempt_id):
                found = LINK.search(message.body)
                assert found is not None, message.body
                return found.group(1), message
        await asyncio.sleep(0.05)
    raise AssertionError("the worker sent no message for the attempt")


async def links(site: Site, *specs: RecipientSpec) -> tuple[UUID, dict[tuple[str, str], str]]:
    """Serve ``specs``; their links by (recipient name, channel)."""
    order_id, attempts = await serve(site, *specs)
    found = {}
    for attempt_id in attempts:
        path, message = await link_of(site, attempt_id)
        access = await site.service.open_link(token=path.removeprefix("/s/"))
        found[(access.recipient.name, message.channel.value)] = path
    return order_id, found


async def code_sent(site: Site, *, to: str) -> str:
    """The newest one-time code in the outbox for the address ``to``."""
    for message in await messages(site):
        if message.purpose is MessagePurpose.ONE_TIME_CODE and message.recipient == to:
            found = re.search(r"\b\d{6}\b", message.body)
            assert found is not None, message.body
            return found.group()
    raise AssertionError(f"no code sent to {to}")


def csrf(page: httpx.Response) -> str:
    found = CSRF_FIELD.search(page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def alert(page: httpx.Response) -> str:
    found = re.search(r'id="srv-alert" role="alert"><p>([^<]*)</p>', page.text)
    return found.group(1) if found else ""


def verified(page: httpx.Response) -> bool:
    return 'data-verified="true"' in page.text


async def post(
    client: httpx.AsyncClient, path: str, data: dict[str, str] | None = None
) -> httpx.Response:
    """Post a form of the page at the link ``path`` belongs to, with its CSRF token."""
    root = "/".join(path.split("/")[:3])
    page = await client.get(root)
    return await client.post(path, data={"csrf_token": csrf(page), **(data or {})})


async def verify_by_code(site: Site, client: httpx.AsyncClient, path: str, *, to: str) -> None:
    r = await post(client, f"{path}/code")
    assert r.status_code == 200, r.text
    r = await post(client, f"{path}/verify", {"code": await code_sent(site, to=to)})
    assert r.status_code == 303, alert(r)
    site.clock.advance(61)  # the next code for this recipient may be asked for


async def recipient_events(
    site: Site, order_id: UUID, name: str = "张伟", kind: EvidenceKind | None = None
) -> list[repo.EventRow]:
    view = await site.service.get_order(actor=site.clerk, order_id=order_id)
    (row,) = [r for r in view.recipients if r.name == name]
    events = await site.service.events(actor=site.clerk, order_id=order_id, recipient_id=row.id)
    return [e for e in events if e.recipient_id == row.id and (kind is None or e.kind == kind)]


async def recipient_row(site: Site, order_id: UUID, name: str = "张伟") -> repo.RecipientRow:
    view = await site.service.get_order(actor=site.clerk, order_id=order_id)
    (row,) = [r for r in view.recipients if r.name == name]
    return row


# The link ------------------------------------------------------------------------------------


async def test_unknown_and_altered_links_get_one_page_that_says_nothing_more(site: Site) -> None:
    _, found = await links(site, recipient(channels=(Channel.SMS,)))
    path = found[("张伟", "sms")]
    token = path.removeprefix("/s/")
    altered = token[:30] + ("A" if token[30] != "A" else "B") + token[31:]
    other_attempt = "AAAAAAAAAAAAAAAAAAAAAA." + token[23:]
    # Made with the server's own key, for an attempt that does not exist.
    no_attempt = make_token(derive_key(API_SECRET, "service-link"), uuid4())
    async with site.browser() as client:
        pages = [
            await client.get(f"/s/{t}")
            for t in ("nonsense", altered, other_attempt, no_attempt, token + "x")
        ]
        assert {p.status_code for p in pages} == {404}
        # The same page whatever was wrong: no hint about why.
        bodies = {re.sub(r"/s/[^\"]*", "", p.text) for p in pages}
        assert len(bodies) == 1
        assert "此链接无法使用" in pages[0].text
        assert pages[0].headers["cache-control"] == "no-store"
        assert (await client.get(f"/s/{altered}/document")).status_code == 404
        r = await client.post(f"/s/{altered}/acknowledge", data={"csrf_token": "x"})
        assert r.status_code == 404
        r = await client.get(f"/s/{altered}", headers=EN)
        assert "This link cannot be used" in r.text
        # The real link still works.
        assert (await client.get(path)).status_code == 200


async def test_the_page_names_the_document_and_shows_it_only_after_identity(site: Site) -> None:
    _, found = await links(site, recipient())
    path = found[("张伟", "sms")]
    sha = hashlib.sha256(PDF).hexdigest()
    async with site.browser() as client:
        r = await client.get(path)
        assert r.status_code == 200
        assert not verified(r)
        for text in ("杭州互联网法院", CASE_NUMBER, TITLE, sha[:16], sha):
            assert text in r.text
        # The identity step: a code to the other channel (the link came by SMS) or the ID digits.
        assert "验证码将发送至邮箱 z***@example.com。" in r.text
        assert "zhang.wei" not in r.text
        assert 'action="' + path + '/code"' in r.text
        assert 'action="' + path + '/id"' in r.text
        # Nothing of the document before that: no link to it, and the file is refused.
        assert f"{path}/document" not in r.text
        assert "张伟" not in r.text
        r = await client.get(f"{path}/document")
        assert r.status_code == 303
        assert r.headers["location"] == path
        assert r.content != PDF
        # Our page's policy: no inline script or style, no framing.
        policy = (await client.get(path)).headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy


# Identity by a one-time code ------------------------------------------------------------------


async def test_a_code_to_the_other_channel_opens_the_document_and_every_fetch_is_recorded(
    site: Site,
) -> None:
    order_id, found = await links(site, recipient())
    sms_link, email_link = found[("张伟", "sms")], found[("张伟", "email")]
    async with site.browser() as client:
        r = await post(client, f"{sms_link}/code")
        assert r.status_code == 200
        assert 'id="srv-code-sent"' in r.text
        # The SMS link's code went by email, to the address on file, and not by SMS.
        sent = [m for m in await messages(site) if m.purpose is MessagePurpose.ONE_TIME_CODE]
        assert [(m.channel, m.recipient) for m in sent] == [
            (Channel.EMAIL, "zhang.wei@example.com")
        ]
        code = await code_sent(site, to="zhang.wei@example.com")

        # Empty, wrong: clear errors; the document stays shut.
        r = await post(client, f"{sms_link}/verify", {"code": ""})
        assert r.status_code == 422
        assert alert(r) == "请输入消息中的验证码。"
        wrong = "000000" if code != "000000" else "111111"
        r = await post(client, f"{sms_link}/verify", {"code": wrong})
        assert r.status_code == 422
        assert alert(r) == "验证码不正确，还可尝试 4 次。"
        assert not verified(r)

        r = await post(client, f"{sms_link}/verify", {"code": code})
        assert r.status_code == 303
        assert r.headers["location"] == sms_link
        (cookie,) = [
            c for c in r.headers.get_list("set-cookie") if c.startswith("yt_service_pass=")
        ]
        lowered = cookie.lower()
        assert "httponly" in lowered
        assert "samesite=strict" in lowered
        assert f"path={sms_link.lower()}" in lowered
        assert "max-age=1800" in lowered
        assert "secure" not in lowered  # the site is http here

        page = await client.get(sms_link)
        assert verified(page)
        assert "张伟" in page.text
        assert f'href="{sms_link}/document"' in page.text
        assert f'href="{sms_link}/document?download=1"' in page.text
        assert 'target="_blank"' in page.text

        # View in the browser: the PDF inline, its Chinese title as the file name.
        site.clock.advance(60)
        r = await client.get(
            f"{sms_link}/document", headers={"User-Agent": "Mozilla/5.0 (recipient test)"}
        )
        assert r.status_code == 200
        assert r.content == PDF
        assert r.headers["content-type"] == "application/pdf"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "private, no-store"
        disposition = r.headers["content-disposition"]
        assert disposition.startswith("inline; ")
        assert "filename*=UTF-8''%E6%B0%91%E4%BA%8B%E5%88%A4%E5%86%B3%E4%B9%A6.pdf" in disposition
        assert re.search(r'filename="document-[0-9a-f]{12}\.pdf"', disposition)
        # Download: the same bytes as an attachment.
        r = await client.get(f"{sms_link}/document?download=1")
        assert r.status_code == 200
        assert r.content == PDF
        assert r.headers["content-disposition"].startswith("attachment; ")
        # A reader fetching the rest of a file it has is not a new access; a fresh open is.
        r = await client.get(f"{sms_link}/document", headers={"Range": "bytes=10-"})
        assert r.status_code == 206
        assert r.content == PDF[10:]
        r = await client.get(f"{sms_link}/document", headers={"Range": "bytes=0-9"})
        assert r.status_code == 206
        assert r.content == PDF[:10]
        # A resume whose validator does not match gets the whole file: an access again.
        r = await client.get(
            f"{sms_link}/document", headers={"Range": "bytes=10-", "If-Range": '"stale"'}
        )
        assert r.status_code == 200
        assert r.content == PDF

    accessed = await recipient_events(site, order_id, kind=EvidenceKind.CONTENT_ACCESSED)
    assert len(accessed) == 4
    raws = [json.loads(e.raw) for e in accessed]
    assert [r["download"] for r in raws] == [False, True, False, False]
    assert {r["method"] for r in raws} == {"otp_email"}
    assert raws[0]["user_agent"] == "Mozilla/5.0 (recipient test)"
    assert raws[0]["ip"]
    assert raws[0]["document"] == hashlib.sha256(PDF).hexdigest()
    assert raws[2]["range"] == "bytes=0-9"
    assert {e.channel for e in accessed} == {"sms"}  # the link they came through
    assert all(e.sha256 == hashlib.sha256(e.raw.encode()).hexdigest() for e in accessed)
    # Tier 2: opening the document after the check is a rebuttable presumption of service.
    row = await recipient_row(site, order_id)
    assert row.served_at is not None
    assert row.presumption is True

    # The email link sends its code the other way: by SMS.
    async with site.browser() as client:
        await verify_by_code(site, client, email_link, to="+8613800138000")
        assert verified(await client.get(email_link))


async def test_a_used_code_does_not_open_the_page_again(site: Site) -> None:
    _, found = await links(site, recipient(channels=(Channel.EMAIL,)))
    path = found[("张伟", "email")]
    async with site.browser() as first:
        await post(first, f"{path}/code")
        code = await code_sent(site, to="+8613800138000")
        assert (await post(first, f"{path}/verify", {"code": code})).status_code == 303
    # Someone replaying the same code from another browser.
    async with site.browser() as second:
        r = await post(second, f"{path}/verify", {"code": code})
        assert r.status_code == 422
        assert alert(r) == "验证码已使用过，请重新获取。"
        assert not verified(await second.get(path))


async def test_a_code_from_one_mailbox_does_not_open_the_link_that_came_to_it(site: Site) -> None:
    # The code for the SMS link goes to the mailbox; the email link must not take it, or the
    # mailbox alone would open the document.
    _, found = await links(site, recipient())
    sms_link, email_link = found[("张伟", "sms")], found[("张伟", "email")]
    async with site.browser() as client:
        await post(client, f"{sms_link}/code")
        mailed = await code_sent(site, to="zhang.wei@example.com")
        r = await post(client, f"{email_link}/verify", {"code": mailed})
        assert r.status_code == 422
        assert not verified(await client.get(email_link))


async def test_without_a_second_channel_the_code_goes_to_the_link_s_own(site: Site) -> None:
    order_id, found = await links(site, recipient(channels=(Channel.SMS,), email=None))
    path = found[("张伟", "sms")]
    async with site.browser() as client:
        page = await client.get(path)
        assert "法院没有您的其他联系方式" in page.text
        await verify_by_code(site, client, path, to="+8613800138000")
        assert (await client.get(f"{path}/document")).status_code == 200
    (event,) = await recipient_events(site, order_id, kind=EvidenceKind.CONTENT_ACCESSED)
    assert json.loads(event.raw)["method"] == "otp_sms"
    assert event.channel == "sms"


async def test_asking_for_codes_too_often_says_how_long_to_wait(site: Site) -> None:
    _, found = await links(site, recipient())
    path = found[("张伟", "sms")]
    async with site.browser() as client:
        assert (await post(client, f"{path}/code")).status_code == 200
        site.clock.advance(20)
        r = await post(client, f"{path}/code")
        assert r.status_code == 429
        assert alert(r) == "验证码刚刚已发送，请 40 秒后再试。"
        r = await client.post(f"{path}/code", data={"csrf_token": csrf(r)}, headers=EN)
        assert r.status_code == 429
        assert "40 seconds" in alert(r)


# Identity by the ID number's last four characters ---------------------------------------------


async def test_id_digits_lock_after_five_wrong_tries_and_never_tell_what_is_on_file(
    site: Site,
) -> None:
    _, found = await links(
        site,
        recipient(name="张伟", channels=(Channel.SMS,)),
        recipient(name="李娜", channels=(Channel.SMS,), id_last4=None, phone="13900139000"),
    )
    with_id, without_id = found[("张伟", "sms")], found[("李娜", "sms")]

    async def answers(path: str, digits: str, tries: int) -> list[tuple[int, str]]:
        out = []
        async with site.browser() as client:
            for _ in range(tries):
                r = await post(client, f"{path}/id", {"id_last4": digits})
                out.append((r.status_code, alert(r)))
        return out

    # Not an answer: said so, and not counted.
    async with site.browser() as client:
        for bad in ("", "12", "12345", "abcd"):
            r = await post(client, f"{with_id}/id", {"id_last4": bad})
            assert r.status_code == 422
            assert "四位" in alert(r)
    seen_with = await answers(with_id, "0000", 6)
    # Without an ID number on file, even the number the other recipient has is simply "wrong".
    seen_without = await answers(without_id, "123X", 6)
    assert seen_with == seen_without
    assert [status for status, _ in seen_with] == [422] * 4 + [429, 429]
    assert "还可尝试 4 次" in seen_with[0][1]
    assert "还可尝试 1 次" in seen_with[3][1]
    assert "30 分钟" in seen_with[4][1]
    # Locked: even the right answer is refused, and the page says so before anyone tries.
    async with site.browser() as client:
        r = await post(client, f"{with_id}/id", {"id_last4": "123X"})
        assert r.status_code == 429
        page = await client.get(with_id)
        assert 'id="srv-id-locked"' in page.text
        assert not verified(page)
    site.clock.advance(31 * 60)
    async with site.browser() as client:
        # Full-width characters from a Chinese IME, lower-case x: the same answer.
        r = await post(client, f"{with_id}/id", {"id_last4": "１２３x"})
        assert r.status_code == 303
        assert verified(await client.get(with_id))
        assert (await client.get(f"{with_id}/document")).status_code == 200
    assert await answers(without_id, "123X", 1) == [seen_with[0]]


async def test_lockouts_double_and_the_third_closes_the_id_check_but_not_the_code(
    site: Site,
) -> None:
    _, found = await links(site, recipient())
    path, email_link = found[("张伟", "sms")], found[("张伟", "email")]

    async def five_wrong(client: httpx.AsyncClient) -> list[int]:
        wrong = [await post(client, f"{path}/id", {"id_last4": "0000"}) for _ in range(5)]
        return [r.status_code for r in wrong]

    async with site.browser() as client:
        assert await five_wrong(client) == [422] * 4 + [429]
        site.clock.advance(30 * 60 + 1)
        r = await post(client, f"{path}/id", {"id_last4": "0000"})
        assert alert(r) == "与法院的记录不符。还可尝试 4 次。"
        assert await five_wrong(client) == [422] * 3 + [429, 429]
        # The second lockout lasts an hour: 30 minutes on, even the right answer is refused.
        site.clock.advance(30 * 60 + 1)
        r = await post(client, f"{path}/id", {"id_last4": "123X"})
        assert r.status_code == 429
        assert "30 分钟" in alert(r)
        site.clock.advance(30 * 60)
        # The third lockout closes the check: the right answer is refused, however long one
        # waits, and the page no longer offers the form.
        assert await five_wrong(client) == [422] * 4 + [403]
        r = await post(client, f"{path}/id", {"id_last4": "0000"})
        assert r.status_code == 403
        assert "已关闭" in alert(r)
        site.clock.advance(30 * 24 * 3600)
        r = await post(client, f"{path}/id", {"id_last4": "123X"})
        assert r.status_code == 403
        assert not verified(r)
        page = await client.get(path)
        assert 'id="srv-id-closed"' in page.text
        assert 'id="srv-id-check"' not in page.text
        stored = await site.service.open_link(token=path.removeprefix("/s/"))
        assert (stored.recipient.id_check_lockouts, stored.recipient.id_check_failures) == (3, 0)
        # The one-time code, to the address the court has, still opens the document.
        assert (await post(client, f"{path}/code")).status_code == 200
        code = await code_sent(site, to="zhang.wei@example.com")
        r = await post(client, f"{path}/verify", {"code": code})
        assert r.status_code == 303
        assert verified(await client.get(path))
    # Another link of the same recipient is closed too: the count is the recipient's.
    async with site.browser(EN) as client:
        r = await post(client, f"{email_link}/id", {"id_last4": "123X"})
        assert r.status_code == 403
        assert "closed" in alert(r)


async def test_a_right_answer_before_the_check_closes_starts_the_count_afresh(
    site: Site,
) -> None:
    _, found = await links(site, recipient(channels=(Channel.SMS,)))
    path = found[("张伟", "sms")]
    async with site.browser() as client:
        for _ in range(5):
            await post(client, f"{path}/id", {"id_last4": "0000"})
        site.clock.advance(30 * 60)
        assert (await post(client, f"{path}/id", {"id_last4": "123X"})).status_code == 303
    stored = await site.service.open_link(token=path.removeprefix("/s/"))
    assert (stored.recipient.id_check_lockouts, stored.recipient.id_check_failures) == (0, 0)
    assert stored.recipient.locked_until is None


async def test_id_digits_are_recorded_as_the_method(site: Site) -> None:
    order_id, found = await links(site, recipient(channels=(Channel.EMAIL,)))
    path = found[("张伟", "email")]
    async with site.browser() as client:
        assert (await post(client, f"{path}/id", {"id_last4": "123X"})).status_code == 303
        assert (await client.get(f"{path}/document?download=1")).status_code == 200
    (event,) = await recipient_events(site, order_id, kind=EvidenceKind.CONTENT_ACCESSED)
    assert json.loads(event.raw)["method"] == "id_digits"
    assert json.loads(event.raw)["download"] is True


# Acknowledgement and service -------------------------------------------------------------------


async def test_a_tier2_recipient_is_deemed_served_when_they_acknowledge(site: Site) -> None:
    order_id, found = await links(site, recipient(ConsentTier.TIER2, channels=(Channel.EMAIL,)))
    path = found[("张伟", "email")]
    # Delivered to an address the court found: not served yet.
    assert (await recipient_row(site, order_id)).served_at is None
    async with site.browser() as client:
        await verify_by_code(site, client, path, to="+8613800138000")
        page = await client.get(path)
        assert 'id="srv-not-served"' in page.text
        assert 'id="srv-ack"' in page.text
        site.clock.advance(4 * 60)  # 09:35:01 Beijing time
        r = await post(client, f"{path}/acknowledge")
        assert r.status_code == 303
        assert r.headers["location"] == path
        page = await client.get(path)
        assert "已记录您的确认收悉。" in page.text
        assert "您已于2026年11月24日 星期二 09:35（北京时间）确认收悉。" in page.text
        assert 'id="srv-ack"' not in page.text
        assert "已于2026年11月24日 星期二 09:35（北京时间）视为送达。" in page.text
        row = await recipient_row(site, order_id)
        assert row.served_at == site.clock.now()
        assert row.presumption is False
        assert row.deadline_on is not None
        last_day = date.fromisoformat(row.deadline_on)
        assert last_day == date(2026, 12, 9)  # 15 days from 24 November (CPL art. 171)
        assert "上诉期限的最后一日为2026年12月9日 星期三。" in page.text
        # A second acknowledgement: nothing new, the same page.
        site.clock.advance(60)
        r = await post(client, f"{path}/acknowledge")
        assert r.status_code == 303
        again = await client.get(path)
        assert "您已于2026年11月24日 星期二 09:35（北京时间）确认收悉。" in again.text
        # Both events are listed in what the recipient has done.
        assert 'data-kind="acknowledged"' in again.text
        assert 'data-kind="deemed_served"' in again.text
        # In English too.
        english = await client.get(path, headers=EN)
        assert "You acknowledged receipt on Tuesday, 24 November 2026 09:35" in english.text
        assert "the last day to do so is Wednesday, 9 December 2026." in english.text

    acknowledged = await recipient_events(site, order_id, kind=EvidenceKind.ACKNOWLEDGED)
    assert len(acknowledged) == 1
    raw = json.loads(acknowledged[0].raw)
    assert raw["method"] == "otp_sms"
    assert raw["statement"] == "本人确认已收到上述文书。"
    assert raw["document"] == hashlib.sha256(PDF).hexdigest()
    served = await recipient_events(site, order_id, kind=EvidenceKind.DEEMED_SERVED)
    assert len(served) == 1


async def test_two_quick_acknowledgements_make_one_event(site: Site) -> None:
    order_id, found = await links(site, recipient(channels=(Channel.EMAIL,)))
    path = found[("张伟", "email")]
    async with site.browser() as client:
        await post(client, f"{path}/id", {"id_last4": "123X"})
        token = csrf(await client.get(path))
        results = await asyncio.gather(
            *(client.post(f"{path}/acknowledge", data={"csrf_token": token}) for _ in range(3))
        )
        assert {r.status_code for r in results} == {303}
    assert len(await recipient_events(site, order_id, kind=EvidenceKind.ACKNOWLEDGED)) == 1


async def test_a_tier1_recipient_sees_they_were_served_on_delivery(site: Site) -> None:
    order_id, found = await links(site, recipient(ConsentTier.TIER1, channels=(Channel.SMS,)))
    path = found[("张伟", "sms")]
    # The outbox is the recipient's own system: served when the message arrived there.
    row = await recipient_row(site, order_id)
    assert row.served_at == START
    async with site.browser(EN) as client:
        await verify_by_code(site, client, path, to="zhang.wei@example.com")
        page = await client.get(path)
        assert "Deemed served on Tuesday, 24 November 2026 09:30 (Beijing time)." in page.text
        assert 'id="srv-presumption"' not in page.text
        assert "the last day to do so is Wednesday, 9 December 2026." in page.text
        assert 'data-kind="deemed_served"' in page.text
        assert 'id="srv-ack"' in page.text  # they may still say they received it
        assert "Electronic service" in page.text
        zh = await client.get(path, headers=ZH)
        assert "已于2026年11月24日 星期二 09:30（北京时间）视为送达。" in zh.text
        # The page's language switch (a form: the token stays out of the query string) wins
        # over the browser's language.
        assert '<input type="hidden" name="next" value="' + path + '">' in zh.text
        r = await client.post("/lang/en", data={"next": path})
        assert r.status_code == 303
        assert r.headers["location"] == path
        english = await client.get(path, headers=ZH)
        assert "Deemed served on Tuesday, 24 November 2026 09:30" in english.text


# Report a problem ------------------------------------------------------------------------------


async def test_a_problem_report_is_kept_verbatim_and_the_court_is_told(site: Site) -> None:
    order_id, found = await links(site, recipient(channels=(Channel.EMAIL,)))
    path = found[("张伟", "email")]
    text = "第一页是空白的。\r\n  The second page is missing; 请重新送达。  "
    async with site.browser() as client:
        await post(client, f"{path}/id", {"id_last4": "123X"})
        # "Other" needs words; an unknown reason is refused; too long keeps the text.
        r = await post(client, f"{path}/problem", {"reason": "other", "text": "  "})
        assert r.status_code == 422
        assert "请说明问题。" in r.text
        r = await post(client, f"{path}/problem", {"reason": "bored", "text": "x"})
        assert r.status_code == 422
        assert "请选择问题类型。" in r.text
        long_text = "太长了" + "x" * 1998
        r = await post(client, f"{path}/problem", {"reason": "other", "text": long_text})
        assert r.status_code == 422
        assert "最多 2000 字" in r.text
        assert f"\n{long_text}</textarea>" in r.text
        assert 'value="other" checked' in r.text
        # PostgreSQL text cannot hold NUL, and the words are kept verbatim or not at all.
        r = await post(client, f"{path}/problem", {"reason": "other", "text": "a\x00b"})
        assert r.status_code == 422
        assert "无法保存的字符" in r.text
        assert await recipient_events(site, order_id, kind=EvidenceKind.REJECTED) == []

        r = await post(client, f"{path}/problem", {"reason": "unreadable", "text": text})
        assert r.status_code == 303
        page = await client.get(path)
        assert "已告知法院：文书无法打开、不完整或无法阅读。" in page.text
        assert 'data-kind="rejected"' in page.text
        # "Not me" without words is enough.
        r = await post(client, f"{path}/problem", {"reason": "not_me"})
        assert r.status_code == 303

    rejected = await recipient_events(site, order_id, kind=EvidenceKind.REJECTED)
    assert [(e.detail, e.raw) for e in rejected] == [("unreadable", text), ("not_me", "")]
    assert rejected[0].sha256 == hashlib.sha256(text.encode()).hexdigest()


# What a visitor can get wrong ------------------------------------------------------------------


async def test_forms_without_the_csrf_token_are_refused(site: Site) -> None:
    order_id, found = await links(site, recipient(channels=(Channel.EMAIL,)))
    path = found[("张伟", "email")]
    async with site.browser() as client:
        await post(client, f"{path}/id", {"id_last4": "123X"})
        for form in ({}, {"csrf_token": "forged-" + "x" * 40}, {"csrf_token": "伪造的令牌"}):
            for action in ("acknowledge", "problem", "code", "id", "verify"):
                r = await client.post(f"{path}/{action}", data={**form, "reason": "not_me"})
                assert r.status_code == 403, action
                assert "表单已失效" in alert(r)
    assert await recipient_events(site, order_id, kind=EvidenceKind.ACKNOWLEDGED) == []
    assert await recipient_events(site, order_id, kind=EvidenceKind.REJECTED) == []
    assert not [m for m in await messages(site) if m.purpose is MessagePurpose.ONE_TIME_CODE]


async def test_an_expired_or_forged_pass_goes_back_to_the_identity_step(site: Site) -> None:
    order_id, found = await links(site, recipient(channels=(Channel.EMAIL,)))
    path = found[("张伟", "email")]
    async with site.browser() as client:
        await post(client, f"{path}/id", {"id_last4": "123X"})
        assert verified(await client.get(path))
        value = client.cookies.get("yt_service_pass", path=path)
        assert value
        # Forged: the signature of another payload.
        payload, _, mac = value.partition(".")
        client.cookies.set("yt_service_pass", payload + "x." + mac, path=path)
        assert not verified(await client.get(path))
        client.cookies.set("yt_service_pass", value, path=path)
        assert verified(await client.get(path))
        # Expired after 30 minutes.
        site.clock.advance(30 * 60 + 1)
        page = await client.get(path)
        assert page.status_code == 200
        assert not verified(page)
        r = await client.get(f"{path}/document")
        assert r.status_code == 303
        r = await post(client, f"{path}/acknowledge")
        assert r.status_code == 403
        assert "身份核验已过期" in alert(r)
        assert not verified(r)
    assert await recipient_events(site, order_id, kind=EvidenceKind.ACKNOWLEDGED) == []
    assert await recipient_events(site, order_id, kind=EvidenceKind.CONTENT_ACCESSED) == []


async def test_a_pass_opens_only_the_link_it_was_given_for(site: Site) -> None:
    _, found = await links(
        site,
        recipient(name="张伟"),
        recipient(name="李娜", phone="13900139000", email="li.na@example.com", id_last4="5678"),
    )
    mine, my_other, theirs = (
        found[("张伟", "sms")],
        found[("张伟", "email")],
        found[("李娜", "sms")],
    )
    async with site.browser() as client:
        await post(client, f"{mine}/id", {"id_last4": "123X"})
        value = client.cookies.get("yt_service_pass", path=mine)
        assert value
    for other in (theirs, my_other):
        async with site.browser() as intruder:
            intruder.cookies.set("yt_service_pass", value, path=other)
            page = await intruder.get(other)
            assert page.status_code == 200
            assert not verified(page)
            assert (await intruder.get(f"{other}/document")).status_code == 303


async def test_a_missing_document_is_an_error_page_not_a_crash(site: Site) -> None:
    order_id, found = await links(site, recipient(channels=(Channel.EMAIL,)))
    path = found[("张伟", "email")]
    access = await site.service.open_link(token=path.removeprefix("/s/"))
    stored = await site.service.document_path(access.document)
    async with site.browser() as client:
        await post(client, f"{path}/id", {"id_last4": "123X"})
        stored.write_bytes(PDF.replace(b"Catalog", b"Catalgo"))  # altered on disk
        r = await client.get(f"{path}/document")
        assert r.status_code == 503
        assert "文书暂时无法显示" in r.text
        stored.unlink()
        r = await client.get(f"{path}/document")
        assert r.status_code == 503
    assert await recipient_events(site, order_id, kind=EvidenceKind.CONTENT_ACCESSED) == []


def test_every_key_the_route_uses_is_in_both_catalogs() -> None:
    source = Path(service_recipient.__file__).read_text(encoding="utf-8")
    used = set(re.findall(r"""\b(?:t|N_)\(\s*["']([^"'{}]+)["']""", source))
    used |= {f"srv_recipient.reason.{r}" for r in service_recipient.PROBLEM_REASONS}
    used |= {f"srv_recipient.code_to.{c.value}" for c in Channel}
    used |= {"srv_recipient.deadline.appeal_judgment", "srv_recipient.deadline.appeal_ruling"}
    catalogs = Path(service_recipient.__file__).parents[1] / "i18n"
    assert len(used) > 20
    for locale in ("zh-CN", "en"):
        catalog = json.loads((catalogs / f"{locale}.json").read_text(encoding="utf-8"))
        assert sorted(used - set(catalog)) == [], locale


# Replies from the handset (the development outbox stands in for the SMSC) ------------------------


async def test_a_reply_from_the_outbox_s_phone_is_the_recipient_s_evidence(site: Site) -> None:
    order_id, (sms_attempt,) = await serve(site, recipient(channels=(Channel.SMS,)))
    _, message = await link_of(site, sms_attempt)
    async with site.browser() as client:
        page = await client.get("/dev/outbox")
        assert page.status_code == 200
        action = f"/dev/outbox/{message.id}/reply"
        assert f'action="{action}"' in page.text
        token = csrf(page)

        # Refused, and nothing stored: no token, an empty or too long reply, a message that is
        # not an SMS of service (a one-time code, an unknown id).
        assert (await client.post(action, data={"text": "收到"})).status_code == 403
        assert (
            await client.post(action, data={"csrf_token": token, "text": " "})
        ).status_code == 422
        too_long = await client.post(action, data={"csrf_token": token, "text": "x" * 501})
        assert too_long.status_code == 422
        unknown = await client.post(
            f"/dev/outbox/{uuid4()}/reply", data={"csrf_token": token, "text": "收到"}
        )
        assert unknown.status_code == 404
        assert await recipient_events(site, order_id, kind=EvidenceKind.REPLY_RECEIVED) == []

        sent = await client.post(action, data={"csrf_token": token, "text": "收到，谢谢"})
        assert sent.status_code == 303
        assert sent.headers["location"] == f"/dev/outbox#msg-{message.id}"

    (replied,) = await recipient_events(site, order_id, kind=EvidenceKind.REPLY_RECEIVED)
    assert (replied.summary, replied.attempt_id, replied.channel) == (
        "收到，谢谢",
        sms_attempt,
        "sms",
    )
    assert replied.at == site.clock.now()
    assert json.loads(replied.raw) == {
        "outbox_reply_to": str(message.id),
        "from": "+8613800138000",
        "text": "收到，谢谢",
    }
    # Tier 2: the reply waits for the clerk; it does not serve by itself.
    assert (await recipient_row(site, order_id)).served_at is None
