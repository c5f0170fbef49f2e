from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from yunting.infra.settings import DEFAULT_SECRET, Mode, Settings, load_settings


def test_development_accepts_the_default_secret() -> None:
    settings = Settings(mode=Mode.DEVELOPMENT)
    assert settings.secret_key.get_secret_value() == DEFAULT_SECRET


@pytest.mark.parametrize("secret", [DEFAULT_SECRET, "short-secret"])
def test_production_refuses_default_or_short_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="YUNTING_SECRET_KEY"):
        Settings(mode=Mode.PRODUCTION, secret_key=secret)  # type: ignore[arg-type]


def test_production_accepts_a_real_secret() -> None:
    settings = Settings(mode=Mode.PRODUCTION, secret_key="k" * 40)  # type: ignore[arg-type]
    assert settings.mode is Mode.PRODUCTION


def test_reads_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("YUNTING_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("YUNTING_REDIS_URL", "redis://127.0.0.1:6390/3")
    monkeypatch.setenv(
        "YUNTING_ICE_SERVERS",
        '[{"urls": ["turn:turn.court.example:3478"], "username": "u", "credential": "c"}]',
    )
    settings = load_settings()
    assert settings.data_dir == tmp_path
    assert settings.redis_url == "redis://127.0.0.1:6390/3"
    assert settings.ice_servers[0].urls == ["turn:turn.court.example:3478"]
    assert settings.effective_database_url == (
        f"sqlite+aiosqlite:///{(tmp_path / 'yunting.sqlite3').resolve()}"
    )


def test_explicit_database_url_wins() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/x"
    assert Settings(database_url=url).effective_database_url == url


def test_production_refusal_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUNTING_MODE", "production")
    monkeypatch.delenv("YUNTING_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError):
        load_settings()
