"""Render a page with the locale, translations and the signed-in user in its context."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from yunting.web.i18n import LANG_COOKIE, SUPPORTED_LOCALES
from yunting.web.resources import AppResources


def locale_of(request: Request) -> str:
    resources: AppResources = request.app.state.resources
    return resources.translator.negotiate(
        cookie=request.cookies.get(LANG_COOKIE),
        accept_language=request.headers.get("accept-language"),
    )


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render ``template``. Pages set ``request.state.staff`` (a StaffPrincipal) when signed in."""
    resources: AppResources = request.app.state.resources
    locale = locale_of(request)
    translator = resources.translator

    def t(key: str, **params: object) -> str:
        return translator.gettext(locale, key, **params)

    staff = getattr(request.state, "staff", None)
    full: dict[str, Any] = {
        "request": request,
        "t": t,
        "locale": locale,
        "locales": SUPPORTED_LOCALES,
        "staff": staff,
        "csrf_token": staff.session.csrf_token if staff is not None else "",
        "is_development": resources.settings.is_development,
        "court_timezone": resources.settings.court_timezone,
    }
    full.update(context or {})
    return resources.templates.TemplateResponse(request, template, full, status_code=status_code)
