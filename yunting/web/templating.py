"""Jinja helpers shared by every page: court-local times, enum labels, safe link detection.

Installed once on the app's ``Jinja2Templates`` by ``create_app``. Everything here escapes what
it is given; templates never need ``|safe`` on user content.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

from yunting.infra.logging import mask_email, mask_phone

# http(s) URLs as they appear in our notices; CJK punctuation and brackets end a URL.
_URL_RE = re.compile(r"https?://[A-Za-z0-9\-._~:/?#@!$&*+,;=%]+")
_TRAILING = ".,;:!?"


def linkify(text: str) -> Markup:
    """Escape ``text`` and turn http(s) URLs in it into links. Nothing else becomes markup."""
    out: list[str] = []
    position = 0
    for match in _URL_RE.finditer(text):
        url = match.group(0)
        end = match.end()
        while url and url[-1] in _TRAILING:
            url = url[:-1]
            end -= 1
        out.append(str(escape(text[position : match.start()])))
        out.append(f'<a href="{escape(url)}" rel="noopener noreferrer">{escape(url)}</a>')
        position = end
    out.append(str(escape(text[position:])))
    return Markup("".join(out))  # noqa: S704 - every piece above is escaped


def local_time(value: datetime, tz: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Format an aware UTC datetime in the court's time zone."""
    return value.astimezone(ZoneInfo(tz)).strftime(fmt)


@pass_context
def label(context: Context, prefix: str, value: object) -> str:
    """The translation of ``prefix.value`` (a state, role, action ...), else the raw value.

    Audit rows may carry actions newer than the catalogs; they show as-is instead of as a key.
    """
    raw = str(value)
    key = f"{prefix}.{raw}"
    translate: Any = context["t"]
    text = str(translate(key))
    return raw if text == key else text


def install_template_helpers(templates: Jinja2Templates) -> None:
    templates.env.filters["linkify"] = linkify
    templates.env.filters["local_time"] = local_time
    templates.env.filters["mask_phone"] = mask_phone
    templates.env.filters["mask_email"] = mask_email
    templates.env.globals["label"] = label
