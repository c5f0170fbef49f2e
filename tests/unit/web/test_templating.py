"""Template helpers: links in outbox messages, court-local times, labels with a fallback."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.templating import Jinja2Templates
from jinja2 import DictLoader, Environment

from yunting.web.templating import install_template_helpers, linkify, local_time

SMS = "【(2026)浙0192民初1234号】张伟，您好：请点击链接核验身份并入庭：http://court.test/j/yt1.abc-_.XYZ"


def test_linkify_finds_a_url_glued_to_cjk_punctuation() -> None:
    html = str(linkify(SMS))
    assert html.endswith(
        '入庭：<a href="http://court.test/j/yt1.abc-_.XYZ" rel="noopener noreferrer">'
        "http://court.test/j/yt1.abc-_.XYZ</a>"
    )


def test_linkify_leaves_trailing_punctuation_out_of_the_link() -> None:
    html = str(linkify("see https://court.test/a. Then, http://court.test/b, ok"))
    assert '<a href="https://court.test/a" ' in html
    assert '<a href="http://court.test/b" ' in html
    assert "</a>. Then, " in html
    assert "</a>, ok" in html


def test_linkify_escapes_everything_else() -> None:
    html = str(linkify('<script>alert("x")</script> & http://court.test/x"onmouseover=alert(1)'))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; " in html
    # The quote ends the URL: it can never break out of the href attribute.
    assert '<a href="http://court.test/x" rel="noopener noreferrer">' in html
    assert "&#34;onmouseover=alert(1)" in html


def test_linkify_only_links_http_and_https() -> None:
    for text in ("javascript:alert(1)", "ftp://court.test/x", "data:text/html,hi"):
        assert "<a " not in str(linkify(text))


def test_local_time_is_the_court_time_zone() -> None:
    at = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    assert local_time(at, "Asia/Shanghai") == "2026-11-24 07:30"
    assert local_time(at, "Asia/Shanghai", "%H:%M") == "07:30"
    assert local_time(at, "UTC") == "2026-11-23 23:30"


def render(source: str, catalog: dict[str, str]) -> str:
    templates = Jinja2Templates(
        env=Environment(loader=DictLoader({"t.html": source}), autoescape=True)
    )
    install_template_helpers(templates)

    def t(key: str, **params: object) -> str:
        return catalog.get(key, key)

    return templates.env.get_template("t.html").render(t=t)


def test_label_translates_and_falls_back_to_the_raw_value() -> None:
    catalog = {"state.in_session": "庭审中"}
    assert render('{{ label("state", "in_session") }}', catalog) == "庭审中"
    # A value the catalogs do not know yet shows as itself, never as "state.adjourned".
    assert render('{{ label("state", "adjourned") }}', catalog) == "adjourned"
    assert render('{{ label("audit_action", "lobby.admit") }}', catalog) == "lobby.admit"


def test_mask_filters() -> None:
    source = '{{ "13800000001" | mask_phone }} {{ "zhangwei@example.com" | mask_email }}'
    assert render(source, {}) == "138****0001 z***@example.com"
