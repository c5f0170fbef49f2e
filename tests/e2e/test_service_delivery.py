"""Electronic service in a real browser on the embedded default (`make run`): the clerk serves the
demo judgment from the case page, the plaintiff (tier 1) is served when the message reaches
them, the defendant (tier 2) opens the link from the outbox, proves who they are with a code
sent to their other channel, opens the judgment and acknowledges it; the clerk's order page
follows all of it without a reload, and the certificate downloads as a PDF naming the rule."""

from __future__ import annotations

import re
from pathlib import Path

import pypdfium2 as pdfium  # type: ignore[import-untyped]
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.conftest import CASE_TITLE, serve_yunting, sign_in
from tests.e2e.room_support import new_context
from yunting.infra.demo import DEMO_CASE_NUMBER

DEFENDANT = "杭州某电子商务有限公司（代表人 刘洋）"
DEFENDANT_PHONE = "13800000003"
DEFENDANT_EMAIL = "legal@shop.example.com"
# The live parts refresh every 4 s; a loaded CI machine gets more than one refresh.
LIVE_TIMEOUT_MS = 30_000


def newest_in_outbox(context: BrowserContext, to: str, contains: str, pattern: str) -> str:
    """The first match of ``pattern`` in the newest outbox message to ``to`` with ``contains``."""
    outbox = context.new_page()
    try:
        outbox.goto("/dev/outbox")
        row = outbox.locator("tbody tr", has_text=to).filter(has_text=contains).first
        match = re.search(pattern, row.inner_text())
        assert match, row.inner_text()
        return match.group(0)
    finally:
        outbox.close()


def candidate(form: Page, name: str) -> str:
    """The form's key (r0, r1 ...) of the recipient named ``name``."""
    box = form.locator(
        "fieldset.srv-candidate legend strong", has_text=re.compile(f"^{re.escape(name)}$")
    )
    key = box.locator("xpath=preceding-sibling::input").get_attribute("name")
    assert key
    return key.removesuffix("_on")


def test_the_clerk_serves_the_demo_judgment_and_follows_it_to_served(
    browser: Browser, tmp_path: Path, screenshots: Path
) -> None:
    with serve_yunting(tmp_path / "data") as server:
        clerk_context = new_context(browser, server)
        party_context = new_context(browser, server)
        try:
            clerk = clerk_context.new_page()
            sign_in(clerk, "clerk")
            clerk.goto("/cases")
            clerk.get_by_role("link", name=DEMO_CASE_NUMBER).click()
            expect(clerk.get_by_role("heading", level=1)).to_have_text(CASE_TITLE)
            clerk.get_by_role("link", name="发起电子送达").click()
            expect(clerk.get_by_role("heading", level=1)).to_have_text("发起电子送达")
            # The demo judgment is there and chosen.
            expect(clerk.locator("input[name=document_id]:checked")).to_have_count(1)
            expect(clerk.locator("#order-form")).to_contain_text("民事判决书")
            plaintiff_key = candidate(clerk, "张伟")
            defendant_key = candidate(clerk, DEFENDANT)
            clerk.locator(f"#{plaintiff_key}-consent").fill("起诉状所附送达地址确认书")
            clerk.locator(f"#{defendant_key}-tier").select_option("tier2")
            clerk.locator(f"#{defendant_key}-consent").fill("法院查明的被告常用手机号码及邮箱")
            clerk.screenshot(path=str(screenshots / "service-new-zh.png"), full_page=True)
            clerk.get_by_role("button", name="发出送达").click()
            expect(clerk.locator(".notice-success")).to_contain_text("送达已发出")
            order_url = clerk.url

            # The plaintiff gave the address: served when the messages reach it (the outbox).
            plaintiff_row = clerk.locator(".srv-recipient").filter(
                has=clerk.locator("strong", has_text=re.compile("^张伟$"))
            )
            expect(plaintiff_row).to_have_attribute("data-state", "served", timeout=LIVE_TIMEOUT_MS)
            expect(plaintiff_row).to_contain_text("上诉期限届满日")
            defendant_row = clerk.locator(".srv-recipient", has_text=DEFENDANT)
            expect(defendant_row).to_have_attribute(
                "data-state", "awaiting_ack", timeout=LIVE_TIMEOUT_MS
            )

            # The defendant opens the SMS link; the code goes to their email (the other channel).
            link = newest_in_outbox(
                party_context, DEFENDANT_PHONE, "民事判决书", r"https?://\S+/s/\S+"
            )
            party = party_context.new_page()
            party.goto(link)
            expect(party.locator("body")).to_contain_text("民事判决书")
            expect(party.locator("#srv-document")).to_have_count(0)
            party.locator("#srv-code-request button").click()
            code = newest_in_outbox(party_context, DEFENDANT_EMAIL, "验证码", r"\b\d{6}\b")
            party.locator("#f-code").fill(code)
            party.locator("#srv-code-check button[type=submit]").click()
            expect(party.locator("#srv-document")).to_be_visible()
            # The judgment opens in the browser (a PDF), recorded as CONTENT_ACCESSED.
            with party.expect_popup() as opened:
                party.locator("#srv-view").click()
            viewer = opened.value
            viewer.wait_for_load_state()
            viewer.close()
            party.screenshot(path=str(screenshots / "service-recipient-zh.png"), full_page=True)
            party.locator("#srv-ack button").click()
            expect(party.locator("#srv-acknowledged")).to_be_visible()
            expect(party.locator("#srv-served")).to_contain_text("视为送达")
            expect(party.locator("#srv-deadline")).to_be_visible()

            # The clerk's page follows without a reload.
            clerk.evaluate("window.__marker = 1")
            expect(defendant_row).to_have_attribute("data-state", "served", timeout=LIVE_TIMEOUT_MS)
            assert clerk.evaluate("window.__marker") == 1  # no reload happened
            assert clerk.url == order_url
            for kind in ("CONTENT_ACCESSED", "ACKNOWLEDGED"):
                expect(clerk.locator(f".srv-events tr[data-kind={kind}]")).to_have_count(1)
            expect(clerk.locator(".srv-events tr[data-kind=DEEMED_SERVED]")).to_have_count(2)
            clerk.screenshot(path=str(screenshots / "service-order-zh.png"), full_page=True)

            # The defendant's proof of service: a PDF named after the case and the recipient.
            with clerk.expect_download() as download_info:
                defendant_row.get_by_role("link", name="电子送达凭证").click()
            download = download_info.value
            name = download.suggested_filename
            assert name.startswith("电子送达凭证-"), name
            assert name.endswith(".pdf")
            print(f"certificate file name: {name}")
            saved = tmp_path / "certificate.pdf"
            download.save_as(saved)
            pdf = pdfium.PdfDocument(saved.read_bytes())
            text = "".join(str(pdf[i].get_textpage().get_text_range()) for i in range(len(pdf)))
            pdf.close()
            text = re.sub(r"\s+", " ", text)
            assert "电子送达凭证" in text
            # Tier 2: opening the judgment after the identity check is the first event that
            # serves (a rebuttable presumption, 第三十一条第二款第（二）项); the acknowledgement
            # that followed is in the timeline.
            assert "CN-OLR-31-2-2" in text
            assert "138****0003" in text
            assert DEFENDANT_PHONE not in text

            # The dashboard: both served, the filter and the English page.
            clerk.goto("/service?filter=served")
            expect(clerk.locator("tbody tr[data-state=served]")).to_have_count(2)
            expect(clerk.locator('.count[data-count="failed"]')).to_have_text("0")
            clerk.screenshot(path=str(screenshots / "service-dashboard-zh.png"), full_page=True)
            clerk.goto("/lang/en?next=/service")
            expect(clerk.get_by_role("heading", level=1)).to_have_text("Service dashboard")
            expect(clerk.locator("tbody tr")).to_have_count(2)
            clerk.screenshot(path=str(screenshots / "service-dashboard-en.png"), full_page=True)
        finally:
            clerk_context.close()
            party_context.close()
