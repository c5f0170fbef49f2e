"""The session cookie, set the same way by the API and the sign-in page."""

from __future__ import annotations

from starlette.responses import Response

from yunting.staff.model import NewSession

SESSION_COOKIE = "yt_session"


def set_session_cookie(response: Response, session: NewSession, *, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        expires=session.expires_at,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
