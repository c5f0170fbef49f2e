"""The browser scripts' strings: every key they use exists in both languages and is sent with
the page that runs them; the keys they build at run time exist for every value."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from yunting.hearing.model import HearingState, Permission
from yunting.signaling.errors import ErrorCode
from yunting.signaling.messages import HealthLevel, Presence
from yunting.signaling.outputs import AttendanceEvent, AttendanceReason
from yunting.web.i18n import SUPPORTED_LOCALES
from yunting.web.routes.pages import CLIENT_STRING_PREFIXES

WEB = Path(__file__).resolve().parents[3] / "yunting" / "web"
SCRIPTS = {"join": WEB / "static" / "js" / "join.js", "room": WEB / "static" / "js" / "room.js"}
# Any quoted string that looks like a catalog key: "area.name" or "area.name.more".
QUOTED_KEY = re.compile(r"""["'`]([a-z_]+\.[a-z_.]+[a-z_])["'`]""")
# Permission names ("lobby.admit") look like keys too: the room checks them, never shows them.
NOT_KEYS = {p.value for p in Permission}


def catalog(locale: str) -> dict[str, str]:
    data = json.loads((WEB / "i18n" / f"{locale}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def catalogs() -> dict[str, dict[str, str]]:
    return {locale: catalog(locale) for locale in SUPPORTED_LOCALES}


# label("room.presence", value): a prefix, completed at run time (checked below).
LABEL_PREFIX = re.compile(r"""\blabel\(\s*["']([^"']+)["']""")


def literal_keys(area: str) -> set[str]:
    text = SCRIPTS[area].read_text(encoding="utf-8")
    prefixes = set(LABEL_PREFIX.findall(text))
    return {
        key
        for key in QUOTED_KEY.findall(text)
        if key not in NOT_KEYS and key not in prefixes and not key.startswith("yunting.")
    }


@pytest.mark.parametrize("area", sorted(SCRIPTS))
def test_every_literal_key_exists_and_is_sent_with_the_page(
    catalogs: dict[str, dict[str, str]], area: str
) -> None:
    keys = literal_keys(area)
    # The scan must see the script's keys, or this test would pass on nothing.
    assert len(keys) > 30
    prefixes = CLIENT_STRING_PREFIXES[area]
    assert sorted(k for k in keys if not k.startswith(prefixes)) == []
    for locale, strings in catalogs.items():
        assert sorted(keys - set(strings)) == [], locale


def dynamic(prefix: str, values: list[str]) -> list[str]:
    return [f"{prefix}{value}" for value in values]


ROOM_RUNTIME_KEYS = [
    *dynamic("room.banner.", [s.value for s in HearingState]),
    *dynamic("room.now.", [s.value for s in HearingState]),
    *dynamic("sigerr.", [c.value for c in ErrorCode]),
    *dynamic("health.", [h.value for h in HealthLevel]),
    *dynamic("room.presence.", [p.value for p in Presence]),
    *dynamic("room.conn.", ["connecting", "connected", "reconnecting", "waiting", "ended"]),
    *dynamic("room.local_video_", ["denied", "missing", "error", "off"]),
    *dynamic("room.local_audio_", ["denied", "missing", "error", "off"]),
    *dynamic(
        "roomctl.action_text.", ["open_lobby", "start", "pause", "suspend", "resume", "close"]
    ),
    # The per-participant controls: short text, full name, and the question before some.
    *[
        f"roomctl.{control}{suffix}"
        for control in (
            "admit",
            "deny",
            "dismiss",
            "remove",
            "call_in",
            "mute_audio",
            "mute_video",
            "ask_unmute_audio",
            "ask_unmute_video",
        )
        for suffix in ("", "_label")
    ],
    *dynamic("roomctl.", ["deny_text", "dismiss_text", "remove_text"]),
    *[
        f"final.{reason}.{part}"
        for reason in (
            "left",
            "ended",
            "closed",
            "removed",
            "denied",
            "token",
            "must_verify",
            "forbidden",
            "no_hearing",
            "replaced",
            "protocol",
            "unavailable",
            "signed_out",
            "staff_forbidden",
        )
        for part in ("title", "text")
    ],
]


def test_keys_the_room_builds_at_run_time_exist(catalogs: dict[str, dict[str, str]]) -> None:
    prefixes = CLIENT_STRING_PREFIXES["room"]
    assert [k for k in ROOM_RUNTIME_KEYS if not k.startswith(prefixes)] == []
    for locale, strings in catalogs.items():
        assert [k for k in ROOM_RUNTIME_KEYS if k not in strings] == [], locale


def test_the_attendance_log_names_every_event_and_reason(
    catalogs: dict[str, dict[str, str]],
) -> None:
    # The staff hearing page shows the log through these labels (the device check included).
    for locale, strings in catalogs.items():
        events = [e.value for e in AttendanceEvent if f"attendance_event.{e.value}" not in strings]
        reasons = [
            r.value
            for r in AttendanceReason
            if r is not AttendanceReason.NONE and f"attendance_reason.{r.value}" not in strings
        ]
        assert events == [], locale
        assert reasons == [], locale
