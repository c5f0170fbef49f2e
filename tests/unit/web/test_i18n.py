"""Catalogs: complete in both languages, every key a page uses exists, locale negotiation."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest

from yunting.hearing.model import (
    ActorKind,
    CaseStatus,
    HearingAction,
    HearingState,
    ParticipantState,
    PartySide,
    Role,
    StaffRole,
)
from yunting.service_delivery.ports import Channel, MessagePurpose
from yunting.web.i18n import SUPPORTED_LOCALES, Translator, parse_accept_language

WEB = Path(__file__).resolve().parents[3] / "yunting" / "web"
CATALOG_DIR = WEB / "i18n"

# t("key") / t('key', ...) in templates and Python, and N_("key") marks in pages.py.
# A key built at run time (t("state." ~ x)) is not matched: its quote is followed by "~".
KEY_USE = re.compile(r"""\b(?:t|N_)\(\s*["']([^"'{}]+)["']\s*[,)]""")


def load(locale: str) -> dict[str, str]:
    data = json.loads((CATALOG_DIR / f"{locale}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def catalogs() -> dict[str, dict[str, str]]:
    return {locale: load(locale) for locale in SUPPORTED_LOCALES}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def used_keys() -> dict[str, set[str]]:
    """Every literal key used, with the files that use it."""
    # Sub-folders (templates/ledger/) bring their own strings file with their routes.
    files = [*sorted((WEB / "templates").glob("*.html")), WEB / "routes" / "pages.py"]
    found: dict[str, set[str]] = {}
    for path in files:
        for key in KEY_USE.findall(path.read_text(encoding="utf-8")):
            found.setdefault(key, set()).add(path.name)
    return found


def test_both_catalogs_have_the_same_keys(catalogs: dict[str, dict[str, str]]) -> None:
    zh, en = catalogs["zh-CN"], catalogs["en"]
    assert sorted(set(zh) - set(en)) == []
    assert sorted(set(en) - set(zh)) == []
    assert len(zh) > 200


def test_no_empty_values(catalogs: dict[str, dict[str, str]]) -> None:
    for locale, catalog in catalogs.items():
        empty = [key for key, value in catalog.items() if not isinstance(value, str) or not value]
        assert empty == [], f"{locale}: empty values for {empty}"


def test_placeholders_agree_between_languages(catalogs: dict[str, dict[str, str]]) -> None:
    zh, en = catalogs["zh-CN"], catalogs["en"]
    differ = {key for key in zh if placeholders(zh[key]) != placeholders(en[key])}
    assert differ == set()


def test_chinese_catalog_is_chinese(catalogs: dict[str, dict[str, str]]) -> None:
    # Catches an English string pasted into the Chinese catalog (or the files swapped).
    cjk = re.compile(r"[\u4e00-\u9fff]")
    zh = catalogs["zh-CN"]
    assert cjk.search(zh["nav.today"])
    assert cjk.search(zh["state.in_session"])
    assert not cjk.search(catalogs["en"]["state.in_session"])


def test_every_key_used_in_templates_and_pages_exists(
    catalogs: dict[str, dict[str, str]],
) -> None:
    used = used_keys()
    # The scan must actually see the pages, or this test would pass on nothing.
    assert len(used) > 150
    assert "login.error_failed" in used
    assert "flash.case_created" in used
    for locale, catalog in catalogs.items():
        missing = {key: sorted(files) for key, files in used.items() if key not in catalog}
        assert missing == {}, f"{locale} lacks keys used in pages"


@pytest.mark.parametrize(
    ("prefix", "values"),
    [
        ("state", [s.value for s in HearingState]),
        ("pstate", [s.value for s in ParticipantState]),
        ("action", [a.value for a in HearingAction]),
        ("role", [r.value for r in Role]),
        ("staff_role", [r.value for r in StaffRole]),
        ("side", [s.value for s in PartySide]),
        ("case_status", [s.value for s in CaseStatus]),
        ("actor_kind", [k.value for k in ActorKind]),
        ("channel", [c.value for c in Channel]),
        ("purpose", [p.value for p in MessagePurpose]),
        ("audit_action.hearing", [a.value for a in HearingAction]),
        (
            "audit_action",
            [
                "case.create",
                "hearing.schedule",
                "hearing.lock",
                "hearing.unlock",
                "hearing.notices_sent",
                "participant.add",
                "participant.issue_link",
                "participant.revoke_links",
            ],
        ),
        ("month", [str(m) for m in range(1, 13)]),
        ("weekday", [str(d) for d in range(7)]),
        ("lang", list(SUPPORTED_LOCALES)),
        (
            "join_invalid.heading",
            ["malformed", "bad_signature", "expired", "revoked", "removed", "hearing_over"],
        ),
        (
            "join_invalid.text",
            ["malformed", "bad_signature", "expired", "revoked", "removed", "hearing_over"],
        ),
    ],
)
def test_keys_built_at_run_time_exist(
    catalogs: dict[str, dict[str, str]], prefix: str, values: list[str]
) -> None:
    for locale, catalog in catalogs.items():
        missing = [v for v in values if f"{prefix}.{v}" not in catalog]
        assert missing == [], f"{locale}: {prefix}.* lacks {missing}"


def test_error_page_codes_have_titles_and_texts(catalogs: dict[str, dict[str, str]]) -> None:
    codes = [
        "not_found",
        "forbidden",
        "illegal_transition",
        "conflict",
        "invalid_token",
        "authentication_failed",
        "not_signed_in",
        "csrf_failed",
        "invalid",
        "method_not_allowed",
        "http_error",
        "internal",
    ]
    for catalog in catalogs.values():
        for code in codes:
            assert f"errorpage.{code}.title" in catalog
            assert f"errorpage.{code}.text" in catalog


def test_state_names_are_translated() -> None:
    translator = Translator.load(default="zh-CN")
    assert translator.gettext("zh-CN", "state.in_session") == "庭审中"
    assert translator.gettext("en", "state.in_session") == "In session"
    assert translator.gettext("en", "flash.state_changed", state="Paused") == (
        "The hearing is now: Paused."
    )


def test_missing_key_shows_the_key_instead_of_failing() -> None:
    translator = Translator.load(default="zh-CN")
    assert translator.gettext("en", "no.such.key") == "no.such.key"


@pytest.mark.parametrize(
    ("header", "default", "expected"),
    [
        ("zh", "en", "zh-CN"),
        ("zh-CN", "en", "zh-CN"),
        ("zh-TW", "en", "zh-CN"),  # any Chinese gets Simplified Chinese
        ("zh-Hant-HK,zh;q=0.9", "en", "zh-CN"),
        ("en-US", "zh-CN", "en"),
        ("en-US;q=0.8", "zh-CN", "en"),
        ("en-US;q=0.8, zh;q=0.9", "en", "zh-CN"),
        ("en-US, zh;q=0.8", "zh-CN", "en"),
        ("zh;q=0.5, en;q=0.5", "en", "zh-CN"),  # equal quality: the earlier one wins
        ("en;q=0", "zh-CN", "zh-CN"),  # q=0 means "not acceptable"
        ("zh;q=0, en;q=0.1", "zh-CN", "en"),
        ("fr-FR, de;q=0.9", "zh-CN", "zh-CN"),
        ("fr-FR, de;q=0.9", "en", "en"),
        ("", "zh-CN", "zh-CN"),
        ("!!!,;;;q=abc", "en", "en"),
        ("en;q=banana", "zh-CN", "zh-CN"),  # an unreadable quality counts as 0
        (",,, ;", "zh-CN", "zh-CN"),
    ],
)
def test_parse_accept_language(header: str, default: str, expected: str) -> None:
    assert parse_accept_language(header, default=default) == expected


def test_cookie_wins_over_the_header_unless_unsupported() -> None:
    translator = Translator.load(default="zh-CN")
    assert translator.negotiate(cookie="en", accept_language="zh-CN") == "en"
    assert translator.negotiate(cookie="zh-CN", accept_language="en-US") == "zh-CN"
    assert translator.negotiate(cookie="fr", accept_language="en-US") == "en"
    assert translator.negotiate(cookie=None, accept_language=None) == "zh-CN"
