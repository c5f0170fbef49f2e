"""The ``yunting`` command as a newcomer runs it: real processes, real uvicorn, real Redis."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

YUNTING = str(Path(sys.executable).with_name("yunting"))
REDIS_URL = os.environ.get("YUNTING_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def run(args: list[str], env: dict[str, str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [YUNTING, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
        **kwargs,  # type: ignore[call-overload]
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("YUNTING_")}
    base.update(
        YUNTING_DATA_DIR=str(tmp_path / "data"),
        YUNTING_ARGON2_TIME_COST="1",
        YUNTING_ARGON2_MEMORY_KIB="1024",
    )
    return base


def counts(data_dir: Path) -> dict[str, int]:
    with sqlite3.connect(data_dir / "yunting.sqlite3") as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in ("courts", "staff_users", "cases", "hearings", "participants", "persons")
        }


def test_migrate_and_demo_are_idempotent(env: dict[str, str]) -> None:
    assert run(["migrate"], env).returncode == 0
    assert run(["migrate"], env).returncode == 0
    first = run(["demo"], env)
    assert first.returncode == 0, first.stderr
    assert "clerk" in first.stdout
    assert "yunting-demo" in first.stdout
    after_first = counts(Path(env["YUNTING_DATA_DIR"]))
    assert after_first["hearings"] == 1
    assert after_first["participants"] == 5  # judge, clerk, plaintiff, counsel, defendant
    second = run(["demo"], env)
    assert second.returncode == 0
    assert "already there" in second.stdout
    assert counts(Path(env["YUNTING_DATA_DIR"])) == after_first


def test_create_user(env: dict[str, str]) -> None:
    assert run(["migrate"], env).returncode == 0
    no_password = run(["create-user", "clerk9", "--role", "clerk", "--court", "ZJ0192"], env)
    assert no_password.returncode == 2
    assert "YUNTING_NEW_USER_PASSWORD" in no_password.stderr
    env = {**env, "YUNTING_NEW_USER_PASSWORD": "a-good-password"}
    ok = run(["create-user", "clerk9", "--role", "clerk", "--court", "ZJ0192"], env)
    assert ok.returncode == 0, ok.stderr
    again = run(["create-user", "clerk9", "--role", "clerk", "--court", "ZJ0192"], env)
    assert again.returncode == 1
    assert "taken" in again.stderr
    bad_role = run(["create-user", "x1", "--role", "emperor", "--court", "ZJ0192"], env)
    assert bad_role.returncode == 2
    short = run(
        ["create-user", "clerk10", "--role", "clerk", "--court", "ZJ0192"],
        {**env, "YUNTING_NEW_USER_PASSWORD": "short"},
    )
    assert short.returncode == 1
    assert "at least" in short.stderr


def test_production_refuses_the_default_secret(env: dict[str, str]) -> None:
    result = run(["serve"], {**env, "YUNTING_MODE": "production"})
    assert result.returncode == 2
    assert "YUNTING_SECRET_KEY" in result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve(env: dict[str, str], tmp_path: Path) -> Iterator[object]:
    started: list[subprocess.Popen[str]] = []
    log_path = tmp_path / "server.log"

    def start(extra: dict[str, str]) -> str:
        assert run(["migrate"], env).returncode == 0
        port = free_port()
        # A file, not a pipe: a pipe nobody reads would block the server once full.
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [YUNTING, "serve", "--port", str(port)],
                env={**env, **extra},
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        started.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                return base
            except httpx.TransportError:
                if proc.poll() is not None:
                    raise AssertionError(log_path.read_text()) from None
                time.sleep(0.1)
        raise AssertionError("server did not come up")

    yield start
    for proc in started:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise


def test_serve_answers_health_with_real_redis(serve: object, env: dict[str, str]) -> None:
    base = serve({"YUNTING_REDIS_URL": REDIS_URL})  # type: ignore[operator]
    r = httpx.get(f"{base}/healthz", timeout=5)
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["redis"] == "ok"
    assert r.headers["x-request-id"]
    assert httpx.get(f"{base}/openapi.json", timeout=5).json()["info"]["title"]


def test_health_reports_redis_down(serve: object) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    base = serve({"YUNTING_REDIS_URL": dead})  # type: ignore[operator]
    r = httpx.get(f"{base}/healthz", timeout=10)
    assert r.status_code == 503
    assert r.json() == {**r.json(), "status": "degraded", "redis": "error", "database": "ok"}
