"""The session cookie, set the same way by the API and the sign-in page."""

from __future__ import annotations

from datetime import datetime

from starlette.responses import Response

from yunting.staff.model import NewSession

SESSION_COOKIE = "yt_session"


def set_session_cookie(
    response: Response, session: NewSession, *, secure: bool, now: datetime
) -> None:
    # Max-Age, not Expires: a browser whose clock is wrong would otherwise drop the cookie at
    # once (or keep it too long); the server checks the real expiry on every request anyway.
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=max(0, int((session.expires_at - now).total_seconds())),
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
