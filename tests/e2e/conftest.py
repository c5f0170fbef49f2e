"""A real ``yunting serve`` process and headless Chromium (Debian's, driven by Playwright).

The server runs from the same virtualenv as the tests, on a free loopback port, with its own
data directory, after ``yunting migrate`` and ``yunting demo`` — exactly what a newcomer runs.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# A fake camera and microphone, allowed without asking, and WebRTC over loopback (DESIGN.md,
# "Media topology").
MEDIA_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
]
YUNTING = Path(sys.executable).parent / "yunting"
DEMO_PASSWORD = "e2e-demo-password"
STARTUP_TIMEOUT_S = 20.0


@dataclass(frozen=True, slots=True)
class LiveServer:
    base_url: str
    data_dir: Path
    log_path: Path
    pid: int = 0

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_healthy(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"yunting serve exited with {process.returncode}:\n{log_path.read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=1) as response:  # noqa: S310 - our loopback server
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"yunting serve did not become healthy:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve_yunting(tmp_path_factory.mktemp("e2e-data")) as live:
        yield live


# Module scope, not session: while Playwright's sync API is alive it marks an event loop as
# running in this thread, and the async tests that run after this module need the thread free.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="module")
def media_browser(playwright: Playwright) -> Iterator[Browser]:
    """Chromium with a fake camera and microphone, for the room tests."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *MEDIA_ARGS]
    )
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def free_port() -> int:
    return _free_port()


@contextmanager
def serve_yunting(
    data_dir: Path, *, port: int | None = None, setup: bool = True, **settings: str
) -> Iterator[LiveServer]:
    """A ``yunting serve`` of one test module's own, after ``migrate`` and ``demo``, with extra
    ``YUNTING_*`` settings (``YUNTING_MEDIA_ENABLED="false"``, ...). For tests that change
    the demo hearing in ways the shared ``live_server``'s other tests must not see.
    ``setup=False`` with the ``port`` and ``data_dir`` of a server that died: its restart."""
    port = port if port is not None else _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNTING_")}
    env.update(
        YUNTING_MODE="development",
        YUNTING_DATA_DIR=str(data_dir),
        YUNTING_PUBLIC_BASE_URL=base_url,
        YUNTING_DEMO_PASSWORD=DEMO_PASSWORD,
        # INFO: the access log is on, so a test can check that join tokens never reach it.
        YUNTING_LOG_LEVEL="INFO",
        **settings,
    )
    for command in ("migrate", "demo") if setup else ():
        subprocess.run(
            [str(YUNTING), command], env=env, check=True, capture_output=True, timeout=60
        )
    log_path = data_dir / ("server.log" if setup else "server-restarted.log")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(YUNTING), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_healthy(base_url, process, log_path)
            yield LiveServer(
                base_url=base_url, data_dir=data_dir, log_path=log_path, pid=process.pid
            )
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# Page helpers the browser tests share -----------------------------------------------------------

CASE_TITLE = "张伟诉杭州某电子商务有限公司网络购物合同纠纷"  # the demo hearing's case


def sign_in(page: Page, username: str) -> None:
    page.goto("/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/day$"))


def open_demo_hearing(page: Page) -> None:
    page.goto("/day")
    page.get_by_role("link", name=CASE_TITLE).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(CASE_TITLE)


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))
