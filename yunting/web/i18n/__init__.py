"""Simplified Chinese and English for every user-facing page.

Catalogs are flat JSON files (``zh-CN.json``, ``en.json``) with the same keys; a test checks that.
The locale comes from the ``yt_lang`` cookie (set by the language switch), else the browser's
Accept-Language, else the configured default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

SUPPORTED_LOCALES = ("zh-CN", "en")
LANG_COOKIE = "yt_lang"
_DIR = Path(__file__).parent


class Translator:
    """Holds the catalogs. Built once per app (not at import)."""

    def __init__(self, catalogs: Mapping[str, Mapping[str, str]], *, default: str) -> None:
        if default not in catalogs:
            raise ValueError(f"default locale {default!r} has no catalog")
        self.catalogs = catalogs
        self.default = default

    @classmethod
    def load(cls, *, default: str) -> Translator:
        catalogs = {
            locale: json.loads((_DIR / f"{locale}.json").read_text(encoding="utf-8"))
            for locale in SUPPORTED_LOCALES
        }
        return cls(catalogs, default=default)

    def gettext(self, locale: str, key: str, **params: object) -> str:
        text = self.catalogs.get(locale, {}).get(key) or self.catalogs[self.default].get(key)
        if text is None:
            # A missing key shows itself instead of crashing the page; a test catches it first.
            return key
        return text.format(**params) if params else text

    def negotiate(self, *, cookie: str | None, accept_language: str | None) -> str:
        if cookie in SUPPORTED_LOCALES:
            return cookie
        return parse_accept_language(accept_language or "", default=self.default)


def parse_accept_language(header: str, *, default: str) -> str:
    """Pick zh-CN or en from an Accept-Language header by quality, RFC 9110 §12.5.4."""
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        if not tag:
            continue
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        if tag.startswith("zh"):
            # Any Chinese: the platform serves Simplified Chinese.
            choices.append((quality, -index, "zh-CN"))
        elif tag.startswith("en"):
            choices.append((quality, -index, "en"))
    choices = [c for c in choices if c[0] > 0]
    if not choices:
        return default
    return max(choices)[2]
