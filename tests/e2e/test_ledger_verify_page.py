"""/verify in a real browser: a dropped file is hashed by Web Crypto (never uploaded), found in
the ledger, and the proof and Ed25519 signature are re-checked by the browser itself."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.e2e.conftest import CHROMIUM, LiveServer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]

APPEND = """
import asyncio, sys
from datetime import UTC, datetime
from yunting.infra.db import Database
from yunting.infra.ledger import append

async def main() -> None:
    db = Database(sys.argv[1])
    await db.start()
    try:
        await append(db, kind="DOCUMENT_SERVED", subject_id="order-1", content_sha256=sys.argv[2],
                     event={"document": "判决书"}, at=datetime.now(UTC))
    finally:
        await db.stop()

asyncio.run(main())
"""


@pytest.fixture
def page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    ctx = browser.new_context(locale="en-US", base_url=live_server.base_url)
    ctx.set_default_timeout(10_000)
    try:
        yield ctx.new_page()
    finally:
        ctx.close()


def test_a_dropped_file_is_found_and_checked_in_the_browser(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    document = tmp_path / "judgment.pdf"
    document.write_bytes(b"%PDF-1.7 judgment of (2026) Zhe 0192 Min Chu 1234\n")
    digest = hashlib.sha256(document.read_bytes()).hexdigest()
    url = f"sqlite+aiosqlite:///{live_server.data_dir / 'yunting.sqlite3'}"
    subprocess.run([sys.executable, "-c", APPEND, url, digest], check=True, timeout=60)

    page.goto("/verify")
    page.set_input_files("#verify-file", str(document))
    page.wait_for_url(f"**/verify?sha256={digest}")
    expect(page.get_by_text("Recorded in the evidence ledger")).to_be_visible()
    check = page.locator('[data-browser-check="0"]')
    expect(check).to_have_text(
        "Your browser independently checked the entry, the inclusion proof and the signature "
        "as well."
    )
    expect(check).to_have_class("browser-check check-ok")


def test_an_unknown_file_is_not_found(page: Page, tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_bytes(b"never logged")
    page.goto("/verify")
    page.set_input_files("#verify-file", str(other))
    expect(page.get_by_text("This fingerprint is not in the ledger")).to_be_visible()
    expect(page.locator("#f-sha256")).to_have_value(hashlib.sha256(b"never logged").hexdigest())


def test_the_browser_catches_a_proof_the_server_got_wrong(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    """The browser does not take the server's word: change one audit-path hash on the way."""
    digest = hashlib.sha256(b"receipt 42").hexdigest()
    url = f"sqlite+aiosqlite:///{live_server.data_dir / 'yunting.sqlite3'}"
    subprocess.run([sys.executable, "-c", APPEND, url, digest], check=True, timeout=60)

    def corrupt(route: Route) -> None:
        response = route.fetch()
        html = response.text()
        start = html.index('<script type="application/json" id="ledger-data">')
        island = html[start:]
        marker = '"audit_path": ["'
        at = island.index(marker) + len(marker)
        flipped = "B" if island[at] == "A" else "A"
        route.fulfill(response=response, body=html[: start + at] + flipped + island[at + 1 :])

    page.route(f"**/verify?sha256={digest}", corrupt)
    page.goto(f"/verify?sha256={digest}")
    check = page.locator('[data-browser-check="0"]')
    expect(check).to_have_text("Your browser's check FAILED: the proof it received does not hold.")
    expect(check).to_have_class("browser-check check-bad")
