"""FastAPI dependencies, as ``Annotated`` aliases (cf. full-stack-fastapi-template api/deps.py).

Staff authenticate with the ``yt_session`` cookie (browser) or ``Authorization: Bearer <session
token>`` (API clients). Cookie-authenticated requests that change state must carry the session's
CSRF token in ``X-CSRF-Token`` (forms: the ``csrf_token`` field, checked by the page routes).
Participants authenticate with their join token as ``Authorization: Bearer yt1.…``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from yunting.hearing.model import Actor
from yunting.hearing.tokens import TOKEN_PREFIX
from yunting.staff.errors import SessionInvalidError
from yunting.staff.model import StaffSession
from yunting.web.cookies import SESSION_COOKIE
from yunting.web.errors import CsrfError
from yunting.web.resources import AppResources

CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# auto_error=False: we raise our own errors with our own JSON shape.
_bearer = HTTPBearer(auto_error=False, description="Staff session token or participant join token")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="Staff session cookie")


def client_address(request: Request) -> str:
    """The caller's address (uvicorn applies X-Forwarded-For only from trusted proxies)."""
    return request.client.host if request.client else "unknown"


def get_resources(request: Request) -> AppResources:
    resources: AppResources = request.app.state.resources
    return resources


Resources = Annotated[AppResources, Depends(get_resources)]


@dataclass(frozen=True, slots=True)
class StaffPrincipal:
    session: StaffSession
    via_cookie: bool
    raw_token: str

    @property
    def actor(self) -> Actor:
        return self.session.user.actor()


async def optional_staff(
    request: Request,
    resources: Resources,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> StaffPrincipal | None:
    if bearer is not None and not bearer.credentials.startswith(TOKEN_PREFIX + "."):
        session = await resources.staff.resolve_session(token=bearer.credentials)
        return StaffPrincipal(session=session, via_cookie=False, raw_token=bearer.credentials)
    if cookie:
        try:
            session = await resources.staff.resolve_session(token=cookie)
        except SessionInvalidError:
            return None
        return StaffPrincipal(session=session, via_cookie=True, raw_token=cookie)
    return None


async def current_staff(
    request: Request, principal: Annotated[StaffPrincipal | None, Depends(optional_staff)]
) -> StaffPrincipal:
    if principal is None:
        raise SessionInvalidError("sign in as court staff first")
    if principal.via_cookie and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")

        if not hmac.compare_digest(sent.encode(), principal.session.csrf_token.encode()):
            raise CsrfError(f"missing or wrong {CSRF_HEADER} header")
    return principal


Staff = Annotated[StaffPrincipal, Depends(current_staff)]
OptionalStaff = Annotated[StaffPrincipal | None, Depends(optional_staff)]


async def current_actor(
    request: Request,
    resources: Resources,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    principal: OptionalStaff,
) -> Actor:
    """A staff user or a participant holding a join token."""
    if bearer is not None and bearer.credentials.startswith(TOKEN_PREFIX + "."):
        claims = await resources.hearings.verify_join_token(token=bearer.credentials)
        hearing = await resources.hearings.get_hearing(
            actor=Actor.system(), hearing_id=claims.hearing_id
        )
        return resources.hearings.actor_for(claims, court_id=hearing.hearing.court_id)
    staff = await current_staff(request, principal)
    return staff.actor


AnyActor = Annotated[Actor, Depends(current_actor)]
