"""Domain errors -> HTTP, in one place. JSON for the API; a rendered page for browser routes."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from yunting.hearing.errors import (
    ConflictError,
    HearingError,
    IllegalTransitionError,
    InvalidTokenError,
    NotFoundError,
    PermissionDeniedError,
)
from yunting.identity.errors import (
    CodeRejectedError,
    IdentityError,
    NoContactError,
    RateLimitedError,
)
from yunting.infra.errors import InvalidInputError
from yunting.infra.ledger.errors import (
    EntryNotFoundError,
    InvalidEntryError,
    InvalidTreeSizeError,
    LedgerError,
)
from yunting.service_delivery.errors import (
    DocumentRejectedError,
    IdentityCheckError,
    InvalidAddressError,
    LinkInvalidError,
    ServiceConflictError,
    ServiceDeliveryError,
    ServiceNotFoundError,
)
from yunting.staff.errors import (
    AuthenticationError,
    SessionInvalidError,
    StaffError,
    TooManyAttemptsError,
    UsernameTakenError,
)
from yunting.web.render import render

logger = logging.getLogger(__name__)


class CsrfError(Exception):
    """A state-changing request without the session's CSRF token."""


def status_for(exc: Exception) -> tuple[int, str]:
    """The HTTP status and stable error code for a domain exception."""
    mapping: list[tuple[type[Exception], int, str]] = [
        (NotFoundError, 404, "not_found"),
        (PermissionDeniedError, 403, "forbidden"),
        (IllegalTransitionError, 409, "illegal_transition"),
        (ConflictError, 409, "conflict"),
        (InvalidTokenError, 401, "invalid_token"),
        (AuthenticationError, 401, "authentication_failed"),
        (SessionInvalidError, 401, "not_signed_in"),
        (UsernameTakenError, 409, "conflict"),
        (TooManyAttemptsError, 429, "rate_limited"),
        (CsrfError, 403, "csrf_failed"),
        (InvalidInputError, 422, "invalid"),
        (EntryNotFoundError, 404, "not_found"),
        (InvalidTreeSizeError, 422, "invalid"),
        (InvalidEntryError, 422, "invalid"),
        (CodeRejectedError, 422, "code_rejected"),
        (RateLimitedError, 429, "rate_limited"),
        (NoContactError, 409, "no_contact"),
        (DocumentRejectedError, 422, "document_rejected"),
        (InvalidAddressError, 422, "invalid_address"),
        (ServiceNotFoundError, 404, "not_found"),
        (ServiceConflictError, 409, "conflict"),
        (LinkInvalidError, 404, "link_invalid"),
        (IdentityCheckError, 422, "identity_check_failed"),
    ]
    for kind, status, code in mapping:
        if isinstance(exc, kind):
            return status, code
    return 500, "internal"


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": {"code": code, "message": message, **extra}}


def is_api_request(request: Request) -> bool:
    """JSON for the API and machine endpoints; everything else is a browser page."""
    path = request.url.path
    return path == "/api" or path.startswith(("/api/", "/healthz", "/docs", "/openapi", "/redoc"))


def html_error(request: Request, status: int, code: str) -> Response:
    """The error page for browser routes: translated, no exception text, no stack trace."""
    return render(request, "error.html", {"status": status, "code": code}, status_code=status)


def login_redirect(request: Request) -> Response:
    """Send a signed-out browser to the sign-in page, back to this page afterwards."""
    target = "/login"
    if request.method == "GET":
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target += "?" + urlencode({"next": here})
    return RedirectResponse(target, status_code=303)


def install_error_handlers(app: FastAPI) -> None:
    async def domain_error(request: Request, exc: Exception) -> Response:
        status, code = status_for(exc)
        if not is_api_request(request):
            if isinstance(exc, SessionInvalidError):
                return login_redirect(request)
            return html_error(request, status, code)
        extra: dict[str, object] = {}
        headers: dict[str, str] = {}
        if isinstance(exc, InvalidTokenError):
            extra["reason"] = exc.reason
        elif isinstance(exc, CodeRejectedError):
            extra.update(reason=exc.reason, attempts_left=exc.attempts_left)
        elif isinstance(exc, DocumentRejectedError):
            extra["reason"] = exc.reason
        elif isinstance(exc, InvalidAddressError):
            extra["field"] = exc.field
        elif isinstance(exc, IdentityCheckError):
            extra.update(reason=exc.reason, attempts_left=exc.attempts_left)
        elif isinstance(exc, TooManyAttemptsError):
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
        elif isinstance(exc, RateLimitedError):
            extra.update(reason=exc.reason, retry_at=exc.retry_at.isoformat())
            wait = max(1, int((exc.retry_at - datetime.now(UTC)).total_seconds()) + 1)
            headers["Retry-After"] = str(wait)
        return JSONResponse(
            error_body(code, str(exc), **extra), status_code=status, headers=headers
        )

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        details = [
            {
                "location": ".".join(str(p) for p in err.get("loc", ())),
                "message": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        if not is_api_request(request):
            # A malformed id in a page URL names nothing: a 404 page, not a validation report.
            if any(err.get("loc", ("",))[0] == "path" for err in exc.errors()):
                return html_error(request, 404, "not_found")
            return html_error(request, 422, "invalid")
        return JSONResponse(
            error_body("invalid", "the request is not valid", details=details), status_code=422
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed", 401: "not_signed_in"}.get(
            exc.status_code, "http_error"
        )
        if not is_api_request(request):
            return html_error(request, exc.status_code, code)
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def unexpected_error(request: Request, exc: Exception) -> Response:
        # Starlette logs the traceback after this answers; the person sees no exception text.
        if not is_api_request(request):
            return html_error(request, 500, "internal")
        return JSONResponse(error_body("internal", "internal server error"), status_code=500)

    for kind in (
        HearingError,
        StaffError,
        CsrfError,
        InvalidInputError,
        IdentityError,
        LedgerError,
        ServiceDeliveryError,
    ):
        app.add_exception_handler(kind, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
