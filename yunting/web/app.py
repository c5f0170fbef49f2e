"""The FastAPI application factory. No module-level app: ``create_app(settings)`` builds one."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import Receive, Scope, Send

from yunting import __version__
from yunting.infra.clock import Clock, SystemClock
from yunting.infra.ledger import build_ledger
from yunting.infra.settings import Settings
from yunting.web.errors import install_error_handlers
from yunting.web.middleware import BodyLimitMiddleware, RequestContextMiddleware
from yunting.web.resources import AppResources
from yunting.web.routes import (
    auth,
    cases,
    dev,
    health,
    hearings,
    join,
    ledger,
    pages,
    recording,
    room,
    service,
    service_recipient,
)
from yunting.web.templating import install_template_helpers

logger = logging.getLogger(__name__)
WEB_DIR = Path(__file__).parent

DESCRIPTION = """
Yunting (云庭) — online hearings and electronic service for courts.

**Authentication.** Staff sign in at `POST /api/auth/sign-in`; browsers then use the
`yt_session` cookie and send the session's CSRF token in `X-CSRF-Token` on every request that
changes something. API clients send `Authorization: Bearer <session_token>` instead.
Participants (parties, counsel, witnesses) use their join token as
`Authorization: Bearer yt1.…` and see only their own hearing.

**Errors.** Every error is JSON: `{"error": {"code": "...", "message": "..."}}` with a stable
`code` (`not_found`, `forbidden`, `illegal_transition`, `conflict`, `invalid`, `invalid_token`,
`not_signed_in`, `csrf_failed`, `too_large`).
"""


class YuntingApp(FastAPI):
    """FastAPI with one fast path: hearing-room websockets go straight to their endpoint.

    Measured on the idle-connection bench, the middleware stack and router kept about 8 KiB of
    suspended frames per open room socket; the room sockets are most of the connections a
    busy node holds, for hours each.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hearing_id = room.room_socket_hearing(scope)
        if hearing_id is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        await room.serve_room_socket(hearing_id, scope, receive, send)


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    """Build the web application. Resources are created in the lifespan and closed after."""
    the_clock = clock or SystemClock()
    templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
    install_template_helpers(templates)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = await AppResources.build(settings, clock=the_clock, templates=templates)
        app.state.resources = resources
        # Plain attributes some routers read directly.
        app.state.settings = settings
        app.state.db = resources.db
        app.state.clock = the_clock
        app.state.ledger = build_ledger(settings, resources.db, the_clock)
        logger.info("yunting %s started (%s)", __version__, settings.mode)
        try:
            yield
        finally:
            await resources.close()
            logger.info("yunting stopped")

    app = YuntingApp(
        title="Yunting 云庭",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)

    def limit_for(path: str) -> int:
        # Uploads: a case's court documents (the API and the clerk's form).
        if path.startswith("/api/documents") or (
            path.startswith(("/api/cases/", "/cases/")) and path.endswith("/documents")
        ):
            return settings.max_upload_bytes
        return settings.max_request_bytes

    # Added last runs first: the request id must exist before anything logs.
    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for)
    app.add_middleware(RequestContextMiddleware)

    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(cases.router)
    app.include_router(hearings.router)
    app.include_router(join.router)
    app.include_router(room.router)
    app.router.routes.append(room.WEBSOCKET_ROUTE)
    app.include_router(ledger.router)
    app.include_router(ledger.page_router)
    app.include_router(recording.router)
    app.include_router(recording.page_router)
    app.include_router(service_recipient.router)
    app.include_router(service.router)
    app.include_router(service.page_router)
    app.include_router(pages.router)
    if settings.is_development:
        app.include_router(dev.router)
    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static")), name="static")
    return app
