"""The clerk's side of electronic service through the real app (both databases): upload a
judgment, serve it on the case's parties from the form, follow it on the dashboard (filters,
live part, CSV, JSON), resend / fall back / mark for postal service, and download the
proof-of-service certificate. The embedded channel (the outbox) and the in-process worker."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pytest
from sqlalchemy import func, select

from tests.integration.conftest import Api, bearer
from yunting.service_delivery.ports import Channel, Reply
from yunting.service_delivery.tables import service_attempts, service_orders

PDF = b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, name
    return match.group(1)


async def make_case(api: Api, headers: dict[str, str]) -> str:
    r = await api.client.post(
        "/api/cases",
        json={
            "number": "(2026)浙0192民初88号",
            "title": "张伟诉某网店买卖合同纠纷",
            "cause": "买卖合同纠纷",
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    case_id: str = r.json()["id"]
    for side, person, counsel in (
        (
            "plaintiff",
            {"name": "张伟", "phone": "13800138000", "email": "zhang.wei@example.com"},
            {"name": "陈律师", "email": "chen@law.example.com"},
        ),
        ("defendant", {"name": "某网店", "phone": "13900139000"}, None),
    ):
        body: dict[str, Any] = {"person": person, "side": side}
        if counsel:
            body["counsel"] = counsel
        r = await api.client.post(f"/api/cases/{case_id}/parties", json=body, headers=headers)
        assert r.status_code == 201, r.text
    return case_id


async def upload(api: Api, case_id: str, headers: dict[str, str], data: bytes = PDF) -> Any:
    return await api.client.post(
        f"/api/cases/{case_id}/documents",
        files={"file": ("判决书.pdf", data, "application/pdf")},
        data={"title": "民事判决书", "kind": "judgment"},
        headers=headers,
    )


async def wait_for(api: Api, order_id: str, ok: Any, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(200):
        r = await api.client.get(f"/api/service/orders/{order_id}", headers=headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if ok(body):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(body)


@pytest.fixture
async def clerk(api: Api) -> dict[str, str]:
    session = await api.sign_in("clerk", "clerk-password")
    return {**bearer(session), "X-CSRF-Token": session["csrf_token"]}


async def test_a_clerk_serves_a_judgment_from_the_form_and_follows_it(
    api: Api, clerk: dict[str, str]
) -> None:
    case_id = await make_case(api, clerk)
    r = await upload(api, case_id, clerk)
    assert r.status_code == 201, r.text
    document = r.json()
    assert document["media_type"] == "application/pdf"
    assert len(document["sha256"]) == 64

    # The form offers the parties and counsel with masked addresses; the cookie session posts.
    await api.sign_in("clerk", "clerk-password")
    form_page = await api.client.get(f"/cases/{case_id}/service/new")
    assert form_page.status_code == 200
    html = form_page.text
    assert "张伟" in html
    assert "陈律师" in html
    assert "某网店" in html
    assert "138****8000" in html
    assert "13800138000" not in html
    csrf = hidden(html, "csrf_token")
    keys = {
        name: key
        for key, name in re.findall(
            r'name="(r\d+)_on" value="1"[^>]*>\s*<strong>([^<]+)</strong>', html
        )
    }
    assert set(keys) == {"张伟", "陈律师", "某网店"}, keys
    # Parties first by side, each followed by their counsel.
    assert list(keys) == ["张伟", "陈律师", "某网店"]
    form = {
        "csrf_token": csrf,
        "document_id": document["id"],
        "legal_basis": "《中华人民共和国民事诉讼法》第九十条",
        "deadline_kind": "appeal_judgment",
        "r0_on": "1",
        "r0_sms": "1",
        "r0_email": "1",
        "r0_tier": "tier1",
        "r0_consent": "起诉状所附送达地址确认书",
        "r2_on": "1",
        "r2_sms": "1",
        "r2_tier": "tier2",
        "r2_consent": "法院查明的被告常用手机号码",
    }
    # A recipient without a consent source: the form comes back with the message, nothing stored.
    refused = await api.client.post(f"/cases/{case_id}/service", data={**form, "r2_consent": ""})
    assert refused.status_code == 422
    assert "某网店" in refused.text
    # Without the CSRF token: refused.
    forged = await api.client.post(f"/cases/{case_id}/service", data={**form, "csrf_token": "x"})
    assert forged.status_code == 403
    async with api.app.state.resources.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(service_orders))).scalar() == 0

    posted = await api.client.post(f"/cases/{case_id}/service", data=form)
    assert posted.status_code == 303, posted.text
    order_path = posted.headers["location"]
    order_id = order_path.rsplit("/", 1)[1]

    # The in-process worker sends through the outbox: the plaintiff (tier 1) is served when the
    # message reaches their system; the defendant (tier 2) waits for an acknowledgement.
    def settled(body: dict[str, Any]) -> bool:
        return all(
            not c["in_flight"] or c["status"] == "sent"
            for r in body["recipients"]
            for c in r["channels"]
        ) and any(r["state"] == "served" for r in body["recipients"])

    order = await wait_for(api, order_id, settled, clerk)
    by_name = {r["name"]: r for r in order["recipients"]}
    plaintiff, defendant = by_name["张伟"], by_name["某网店"]
    assert plaintiff["state"] == "served"
    assert plaintiff["rule_id"] == "CN-OLR-31-1"
    assert plaintiff["deadline_on"] is not None
    assert {c["channel"] for c in plaintiff["channels"]} == {"sms", "email"}
    assert defendant["state"] == "awaiting_ack"
    assert defendant["served_at"] is None
    kinds = [e["kind"] for e in order["events"]]
    assert kinds[0] == "SERVICE_ORDERED"
    assert kinds.count("CONSENT_RECORDED") == 2
    assert kinds.count("DEEMED_SERVED") == 1
    assert all(len(e["sha256"]) == 64 and e["ledger_index"] >= 0 for e in order["events"])

    # The order page shows both, the evidence and the actions.
    page = await api.client.get(order_path)
    assert page.status_code == 200
    assert "已送达" in page.text
    assert "已到达，待确认" in page.text
    assert "DEEMED_SERVED" in page.text
    assert "/certificate.pdf" in page.text
    live = await api.client.get(f"{order_path}/live")
    assert live.status_code == 200
    assert "<html" not in live.text

    # The dashboard: counts per filter, the filter keeps its recipients, the live part alone.
    board = (await api.client.get("/api/service/dashboard", headers=clerk)).json()
    assert board["counts"]["all"] == 2
    assert board["counts"]["served"] == 1
    assert board["counts"]["pending"] == 1
    assert board["counts"]["failed"] == 0
    assert board["counts"]["overdue"] == 0
    assert sum(d["served"] for d in board["outcomes"]) == 1
    assert len(board["outcomes"]) == 14
    served_page = await api.client.get("/service?filter=served")
    assert served_page.status_code == 200
    assert "张伟" in served_page.text
    assert "某网店" not in served_page.text
    assert 'data-count="served">1<' in served_page.text
    assert (await api.client.get("/service?filter=nonsense")).status_code == 422
    live_board = await api.client.get("/service/live?filter=pending")
    assert "某网店" in live_board.text
    assert "张伟" not in live_board.text

    # CSV: a BOM, one row per recipient, masked addresses, no formula injection.
    exported = await api.client.get("/service/export.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    text = exported.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert {r["recipient"] for r in rows} == {"张伟", "某网店"}
    assert all("13800138000" not in v for r in rows for v in r.values())
    assert {r["state"] for r in rows} == {"served", "awaiting_ack"}

    # The certificate of the served plaintiff: a PDF naming the case, the rule and the hash.
    cert = await api.client.get(
        f"/api/service/recipients/{plaintiff['id']}/certificate.pdf", headers=clerk
    )
    assert cert.status_code == 200, cert.text
    assert cert.headers["content-type"] == "application/pdf"
    disposition = cert.headers["content-disposition"]
    assert "filename*=UTF-8''" in disposition
    assert plaintiff["certificate_no"] in disposition
    pdf = pdfium.PdfDocument(cert.content)
    text = "".join(str(pdf[i].get_textpage().get_text_range()) for i in range(len(pdf)))
    pdf.close()
    assert "电子送达凭证" in text
    assert "CN-OLR-31-1" in text
    assert document["sha256"][:16] in text.replace("\r", "").replace("\n", "")

    # Resend is refused while the same channel is in flight, allowed once it is final; a
    # fallback to email for the defendant is refused (no email on file) with the field named.
    sms_state = {c["channel"]: c for c in defendant["channels"]}["sms"]
    resend = await api.client.post(
        f"/api/service/recipients/{defendant['id']}/resend",
        json={"channel": "sms"},
        headers=clerk,
    )
    if sms_state["in_flight"]:
        assert resend.status_code == 409
    else:
        assert resend.status_code == 201
    fallback = await api.client.post(
        f"/api/service/recipients/{defendant['id']}/resend",
        json={"channel": "email", "fallback": True},
        headers=clerk,
    )
    assert fallback.status_code == 422
    assert fallback.json()["error"]["field"] == "email"

    # Postal service: recorded once, a second request is a conflict.
    postal = await api.client.post(
        f"/api/service/recipients/{defendant['id']}/postal",
        json={"reason": "被告未确认收到"},
        headers=clerk,
    )
    assert postal.status_code == 204
    again = await api.client.post(
        f"/api/service/recipients/{defendant['id']}/postal",
        json={"reason": "again"},
        headers=clerk,
    )
    assert again.status_code == 409
    # The order page's postal form: a reason is required; then back to the order page.
    postal_path = f"/service/recipients/{plaintiff['id']}/postal"
    empty_reason = await api.client.post(postal_path, data={"csrf_token": csrf, "reason": " "})
    assert empty_reason.status_code == 422
    by_form = await api.client.post(
        postal_path, data={"csrf_token": csrf, "reason": "原告申请纸质文书"}
    )
    assert by_form.status_code == 303
    assert by_form.headers["location"] == order_path
    order = await wait_for(api, order_id, lambda b: True, clerk)
    plaintiff_fallbacks = [
        e
        for e in order["events"]
        if e["kind"] == "FALLBACK_INITIATED" and e["recipient_id"] == plaintiff["id"]
    ]
    assert [e["raw"] for e in plaintiff_fallbacks] == ["原告申请纸质文书"]
    fallbacks = [
        e
        for e in order["events"]
        if e["kind"] == "FALLBACK_INITIATED" and e["recipient_id"] == defendant["id"]
    ]
    assert [(e["detail"], e["raw"]) for e in fallbacks] == [("postal", "被告未确认收到")]
    assert {r["name"]: r for r in order["recipients"]}["某网店"]["postal_requested"] is True


async def test_documents_and_orders_refuse_bad_input_and_wrong_roles(
    api: Api, clerk: dict[str, str]
) -> None:
    case_id = await make_case(api, clerk)
    not_pdf = await upload(api, case_id, clerk, b"PK\x03\x04 a zip file named .pdf")
    assert not_pdf.status_code == 422
    assert not_pdf.json()["error"]["code"] == "document_rejected"
    assert not_pdf.json()["error"]["reason"] == "not_pdf"
    empty = await upload(api, case_id, clerk, b"")
    assert empty.status_code == 422
    document = (await upload(api, case_id, clerk)).json()
    listed = (await api.client.get(f"/api/cases/{case_id}/documents", headers=clerk)).json()
    assert [d["id"] for d in listed] == [document["id"]]

    order = {
        "case_id": case_id,
        "document_id": document["id"],
        "recipients": [
            {
                "name": "张伟",
                "role": "plaintiff",
                "channels": ["sms", "email"],
                "consent_tier": "tier1",
                "consent_source": "送达地址确认书",
                "phone": "13800138000",
                "email": "zhang.wei@example.com",
            },
            {
                "name": "某网店",
                "role": "defendant",
                "channels": ["sms"],
                "consent_tier": "tier2",
                "consent_source": "法院查明",
                "phone": "12345",
            },
        ],
    }
    bad = await api.client.post("/api/service/orders", json=order, headers=clerk)
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["code"] == "invalid_address"
    assert bad.json()["error"]["field"] == "phone"
    bad_email = {**order, "recipients": [{**order["recipients"][0], "email": "not-an-email"}]}
    refused = await api.client.post("/api/service/orders", json=bad_email, headers=clerk)
    assert refused.status_code == 422
    no_recipients = await api.client.post(
        "/api/service/orders", json={**order, "recipients": []}, headers=clerk
    )
    assert no_recipients.status_code == 422
    async with api.app.state.resources.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(service_orders))).scalar() == 0
        assert (
            await conn.execute(select(func.count()).select_from(service_attempts))
        ).scalar() == 0

    # A judge may see but not order service; a clerk of another court sees nothing.
    judge = await api.sign_in("judge", "judge-password")
    judge_headers = {**bearer(judge), "X-CSRF-Token": judge["csrf_token"]}
    good = {**order, "recipients": [order["recipients"][0]]}
    assert (
        await api.client.post("/api/service/orders", json=good, headers=judge_headers)
    ).status_code == 403
    assert (await upload(api, case_id, judge_headers)).status_code == 403
    other = await api.sign_in("other", "other-password")
    other_headers = {**bearer(other), "X-CSRF-Token": other["csrf_token"]}
    assert (
        await api.client.post("/api/service/orders", json=good, headers=other_headers)
    ).status_code == 404
    created = await api.client.post("/api/service/orders", json=good, headers=clerk)
    assert created.status_code == 201, created.text
    order_id = created.json()["order_id"]
    assert (
        await api.client.get(f"/api/service/orders/{order_id}", headers=other_headers)
    ).status_code == 404
    board = (await api.client.get("/api/service/dashboard", headers=other_headers)).json()
    assert board["orders"] == []
    # Unknown ids and a signed-out client.
    assert (
        await api.client.get(
            "/api/service/orders/00000000-0000-0000-0000-000000000000", headers=clerk
        )
    ).status_code == 404
    api.client.cookies.clear()
    assert (await api.client.get("/api/service/dashboard")).status_code == 401


async def tier2_sms_recipient(api: Api, clerk: dict[str, str]) -> tuple[str, str]:
    """An order serving one tier-2 recipient by SMS, its message delivered: (order, recipient)."""
    case_id = await make_case(api, clerk)
    document = (await upload(api, case_id, clerk)).json()
    order = {
        "case_id": case_id,
        "document_id": document["id"],
        "recipients": [
            {
                "name": "某网店",
                "role": "defendant",
                "channels": ["sms"],
                "consent_tier": "tier2",
                "consent_source": "法院查明",
                "phone": "13900139000",
            }
        ],
    }
    created = await api.client.post("/api/service/orders", json=order, headers=clerk)
    assert created.status_code == 201, created.text
    order_id = created.json()["order_id"]
    body = await wait_for(
        api, order_id, lambda b: b["recipients"][0]["channels"][0]["status"] == "delivered", clerk
    )
    assert body["recipients"][0]["served_at"] is None  # tier 2: arrival does not serve
    return order_id, body["recipients"][0]["id"]


async def handset_replies(api: Api, text: str, *, at: datetime, part: str = "") -> None:
    """The tier-2 recipient's handset answers, as the SMSC hands it to the reply sink."""
    await api.app.state.resources.delivery.service.ingest_reply(
        Reply(
            channel=Channel.SMS,
            sender="+8613900139000",
            text=text,
            raw=f"deliver_sm {part or 'single'}",
            received_at=at,
            part=part,
        )
    )


async def test_a_clerk_confirms_an_sms_reply_from_the_order_page(
    api: Api, clerk: dict[str, str]
) -> None:
    order_id, recipient_id = await tier2_sms_recipient(api, clerk)

    # The handset answers, as the SMSC hands it to the provider's reply sink.
    replied_at = datetime.now(UTC).replace(microsecond=0)
    await handset_replies(api, "收到了", at=replied_at)
    body = await wait_for(api, order_id, lambda b: True, clerk)
    (replied,) = [e for e in body["events"] if e["kind"] == "REPLY_RECEIVED"]
    assert (replied["summary"], replied["recipient_id"]) == ("收到了", recipient_id)
    reply_id = int(replied["detail"].removeprefix("reply:"))

    # The order page shows it for review, with the confirmation form (CSRF-protected).
    await api.sign_in("clerk", "clerk-password")
    order_path = f"/service/orders/{order_id}"
    page = await api.client.get(order_path)
    assert page.status_code == 200
    assert "收到了" in page.text
    action = f"/service/recipients/{recipient_id}/replies/{reply_id}/confirm"
    assert f'action="{action}"' in page.text
    assert "srv-reply-review" in page.text
    csrf = hidden(page.text, "csrf_token")
    assert (await api.client.post(action, data={"note": "x"})).status_code == 403  # no token
    too_long = await api.client.post(action, data={"csrf_token": csrf, "note": "x" * 1001})
    assert too_long.status_code == 422
    confirmed = await api.client.post(action, data={"csrf_token": csrf, "note": "回复称收到"})
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == order_path

    body = await wait_for(api, order_id, lambda b: True, clerk)
    recipient = body["recipients"][0]
    assert recipient["served_at"] is not None
    assert datetime.fromisoformat(recipient["served_at"]) == replied_at
    (acknowledged,) = [e for e in body["events"] if e["kind"] == "ACKNOWLEDGED"]
    assert acknowledged["detail"] == f"reply:{reply_id}"
    page = await api.client.get(order_path)
    assert f'action="{action}"' not in page.text
    assert "srv-reply-review" not in page.text

    # Again: a conflict, by form and by the API; a reply that is not this recipient's: 404;
    # a judge: 403.
    again = await api.client.post(action, data={"csrf_token": csrf, "note": ""})
    assert again.status_code == 409
    api_path = f"/api{action}"
    assert (await api.client.post(api_path, json={}, headers=clerk)).status_code == 409
    missing = await api.client.post(
        f"/api/service/recipients/{recipient_id}/replies/{reply_id + 1}/confirm",
        json={},
        headers=clerk,
    )
    assert missing.status_code == 404
    judge = await api.sign_in("judge", "judge-password")
    judge_headers = {**bearer(judge), "X-CSRF-Token": judge["csrf_token"]}
    assert (await api.client.post(api_path, json={}, headers=judge_headers)).status_code == 403


async def test_a_concatenated_sms_reply_is_confirmed_as_one_message(
    api: Api, clerk: dict[str, str]
) -> None:
    order_id, recipient_id = await tier2_sms_recipient(api, clerk)
    first_at = datetime.now(UTC).replace(microsecond=0)
    # A long reply in two parts; the operator hands over the second one first.
    for text, part, seconds in (("判决书，谢谢", "17/2/2", 0), ("我已收到", "17/1/2", 3)):
        await handset_replies(api, text, at=first_at + timedelta(seconds=seconds), part=part)
    body = await wait_for(api, order_id, lambda b: True, clerk)
    replied = [e for e in body["events"] if e["kind"] == "REPLY_RECEIVED"]
    assert [e["summary"] for e in replied] == ["[2/2] 判决书，谢谢", "[1/2] 我已收到"]
    first_id, second_id = (int(e["detail"].removeprefix("reply:")) for e in replied)

    # One form, for the whole message, named by the part stored first.
    await api.sign_in("clerk", "clerk-password")
    page = await api.client.get(f"/service/orders/{order_id}")
    assert page.text.count('class="srv-reply-confirm"') == 1
    assert f'action="/service/recipients/{recipient_id}/replies/{first_id}/confirm"' in page.text
    assert "整条回复（共 2 段，已收到 2 段）：</strong> 我已收到判决书，谢谢" in page.text

    # Confirming it by either part confirms the message once.
    path = f"/api/service/recipients/{recipient_id}/replies/{{}}/confirm"
    confirmed = await api.client.post(path.format(second_id), json={}, headers=clerk)
    assert confirmed.status_code == 204, confirmed.text
    again = await api.client.post(path.format(first_id), json={}, headers=clerk)
    assert again.status_code == 409
    body = await wait_for(api, order_id, lambda b: True, clerk)
    (acknowledged,) = [e for e in body["events"] if e["kind"] == "ACKNOWLEDGED"]
    assert acknowledged["detail"] == f"reply:{first_id}"
    # Served when the message was all there: when its last part arrived.
    served_at = datetime.fromisoformat(body["recipients"][0]["served_at"])
    assert served_at == first_at + timedelta(seconds=3)
    page = await api.client.get(f"/service/orders/{order_id}")
    assert 'class="srv-reply-confirm"' not in page.text
