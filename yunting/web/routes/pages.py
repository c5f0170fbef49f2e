"""Server-rendered pages: staff sign-in, the day view, cases, hearings; the participant landing.

Pages that need staff resolve the session cookie and otherwise redirect to ``/login``. Every form
that changes something carries the session's CSRF token in a hidden ``csrf_token`` field, checked
before anything else. Actions answer with a redirect back (POST-redirect-GET) and a flash message;
domain errors re-render the page with a translated message and the status the API uses for the
same error, having changed nothing. The services do every permission check; the pages only hide
buttons a role cannot use.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import math
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from yunting.hearing.errors import (
    ConflictError,
    IllegalTransitionError,
    InvalidTokenError,
    NotFoundError,
    PermissionDeniedError,
)
from yunting.hearing.model import (
    ACTION_PERMISSION,
    FINAL_HEARING_STATES,
    HEARING_ACTIONS,
    ROLE_PERMISSIONS,
    Actor,
    Court,
    Hearing,
    HearingAction,
    HearingState,
    Participant,
    ParticipantState,
    Party,
    PartySide,
    Permission,
    Person,
    Role,
    StaffRole,
    staff_may,
)
from yunting.hearing.service import CASE_NUMBER_RE, HearingDetail
from yunting.hearing.tokens import JoinClaims, derive_key
from yunting.infra.errors import InvalidInputError
from yunting.infra.logging import mask_email, mask_phone
from yunting.staff.errors import AuthenticationError, SessionInvalidError, TooManyAttemptsError
from yunting.web.cookies import SESSION_COOKIE, clear_session_cookie, set_session_cookie
from yunting.web.deps import Resources, StaffPrincipal, client_address
from yunting.web.errors import CsrfError, status_for
from yunting.web.i18n import LANG_COOKIE, SUPPORTED_LOCALES
from yunting.web.render import locale_of, render
from yunting.web.resources import AppResources
from yunting.web.routes.cases import create_person
from yunting.web.schemas import CaseCreate, HearingCreate, PersonCreate

logger = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "yt_csrf"
FLASH_COOKIE = "yt_flash"
FLASH_MAX_AGE_S = 120
LANG_MAX_AGE_S = 365 * 24 * 3600
CASES_PER_PAGE = 50

# Our own pages need nothing from elsewhere: no inline script, no inline style, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)

# The order people are listed in: the bench first, then the parties and their counsel.
ROLE_ORDER: tuple[Role, ...] = (
    Role.JUDGE,
    Role.CLERK,
    Role.PLAINTIFF,
    Role.COUNSEL,
    Role.DEFENDANT,
    Role.THIRD_PARTY,
    Role.WITNESS,
    Role.INTERPRETER,
    Role.OBSERVER,
)
# Actions that end or abort a hearing ask for confirmation in the browser.
DANGEROUS_ACTIONS = frozenset({HearingAction.CLOSE, HearingAction.CANCEL, HearingAction.SUSPEND})
DOMAIN_ERRORS = (
    ConflictError,
    IllegalTransitionError,
    PermissionDeniedError,
    InvalidInputError,
    NotFoundError,
)
DomainError = (
    ConflictError
    | IllegalTransitionError
    | PermissionDeniedError
    | InvalidInputError
    | NotFoundError
)
Translate = Callable[..., str]


def N_(key: str) -> str:  # noqa: N802 - the gettext convention for "translated later"
    """Mark a catalog key that is translated later; the i18n test scans for these."""
    return key


# Small helpers --------------------------------------------------------------------------------


def safe_next(value: str | None, default: str = "/day") -> str:
    """A same-site relative path to go to after sign-in or a language switch, else ``default``.

    Refuses absolute and scheme-relative URLs (``//evil.example``, ``/\\evil.example``) and
    control characters, so the parameter cannot be used to send people elsewhere.
    """
    if not value or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return default
    return value


def translator(request: Request) -> Translate:
    resources: AppResources = request.app.state.resources
    locale = locale_of(request)

    def t(key: str, **params: object) -> str:
        return resources.translator.gettext(locale, key, **params)

    return t


def court_tz(resources: AppResources) -> ZoneInfo:
    return ZoneInfo(resources.settings.court_timezone)


def secure_cookies(resources: AppResources) -> bool:
    return resources.settings.public_base_url.startswith("https")


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def role_rank(role: Role) -> int:
    return ROLE_ORDER.index(role)


def ordered(participants: Iterable[Participant]) -> list[Participant]:
    return sorted(participants, key=lambda p: (role_rank(p.role), p.display_name))


# Flash messages: a short-lived signed cookie read once by the next page ------------------------


@dataclass(frozen=True, slots=True)
class Flash:
    key: str
    params: dict[str, str]
    link: str = ""
    link_expires_at: str = ""


def _flash_key(resources: AppResources) -> bytes:
    return derive_key(resources.settings.secret_key.get_secret_value(), "flash")


def set_flash(response: Response, resources: AppResources, flash: Flash) -> None:
    payload = json.dumps(
        {"k": flash.key, "p": flash.params, "l": flash.link, "x": flash.link_expires_at},
        separators=(",", ":"),
        ensure_ascii=True,
    ).encode()
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    signature = hmac.new(_flash_key(resources), body.encode(), "sha256").hexdigest()
    # HttpOnly and short-lived: a join link shown here must not linger in the browser.
    response.set_cookie(
        FLASH_COOKIE,
        f"{body}.{signature}",
        max_age=FLASH_MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(resources),
        path="/",
    )


def read_flash(request: Request, resources: AppResources) -> Flash | None:
    raw = request.cookies.get(FLASH_COOKIE, "")
    body, _, signature = raw.partition(".")
    if not body or not signature:
        return None
    expected = hmac.new(_flash_key(resources), body.encode(), "sha256").hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return Flash(
            key=str(data["k"]),
            params={str(k): str(v) for k, v in dict(data["p"]).items()},
            link=str(data.get("l", "")),
            link_expires_at=str(data.get("x", "")),
        )
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None


def done(url: str, resources: AppResources, key: str, **params: object) -> RedirectResponse:
    response = redirect(url)
    set_flash(response, resources, Flash(key, {k: str(v) for k, v in params.items()}))
    return response


# Rendering ------------------------------------------------------------------------------------


async def page(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
) -> HTMLResponse:
    """Render a page with the court, the pending flash message and our security headers."""
    resources: AppResources = request.app.state.resources
    staff: StaffPrincipal | None = getattr(request.state, "staff", None)
    full: dict[str, Any] = {"court": None, "flash": None, "flash_message": "", "errors": {}}
    if staff is not None:
        full["court"] = await resources.hearings.get_court(court_id=staff.session.user.court_id)
    flash = read_flash(request, resources)
    if flash is not None:
        full["flash"] = flash
        full["flash_message"] = translator(request)(flash.key, **flash.params)
    full.update(context or {})
    response = render(request, template, full, status_code=status)
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path="/")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def error_message(t: Translate, exc: Exception) -> str:
    """A translated sentence for a domain error (the service's English detail is shown under it)."""
    if isinstance(exc, PermissionDeniedError):
        return t("error.forbidden")
    if isinstance(exc, IllegalTransitionError):
        return t("error.illegal_transition")
    if isinstance(exc, ConflictError):
        return t("error.conflict")
    if isinstance(exc, NotFoundError):
        return t("error.not_found")
    return t("error.invalid")


def failure(t: Translate, exc: DomainError, message: str | None = None) -> dict[str, Any]:
    """Context and status for re-rendering a page after ``exc``."""
    status, _ = status_for(exc)
    return {
        "error": message or error_message(t, exc),
        "error_detail": str(exc),
        "status": status,
    }


# Authentication -------------------------------------------------------------------------------


async def page_staff(request: Request, resources: Resources) -> StaffPrincipal:
    """The signed-in staff user (session cookie), else a redirect to the sign-in page."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            session = await resources.staff.resolve_session(token=token)
        except SessionInvalidError:
            pass
        else:
            principal = StaffPrincipal(session=session, via_cookie=True, raw_token=token)
            request.state.staff = principal
            return principal
    # errors.py turns this into 303 /login?next=<this page> for browser routes.
    raise SessionInvalidError("sign in as court staff first")


PageStaff = Annotated[StaffPrincipal, Depends(page_staff)]


async def checked_form(request: Request, staff: StaffPrincipal) -> FormData:
    """The posted form, after checking its ``csrf_token`` against the session's."""
    form = await request.form()
    sent = form.get("csrf_token")
    if not isinstance(sent, str) or not hmac.compare_digest(
        sent.encode(), staff.session.csrf_token.encode()
    ):
        logger.warning("form without a valid csrf_token refused", extra={"path": request.url.path})
        raise CsrfError("missing or wrong csrf_token form field")
    return form


async def optional_page_staff(request: Request, resources: AppResources) -> StaffPrincipal | None:
    try:
        return await page_staff(request, resources)
    except SessionInvalidError:
        return None


@router.get("/")
async def home(request: Request, resources: Resources) -> Response:
    if await optional_page_staff(request, resources) is None:
        return redirect("/login")
    return redirect("/day")


@router.get("/lang/{locale}")
async def switch_language(
    locale: str, resources: Resources, next_url: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    return _language_switched(locale, resources, next_url)


@router.post("/lang/{locale}")
async def switch_language_posted(locale: str, request: Request, resources: Resources) -> Response:
    """The language switch on pages whose address holds a join token (``/j/<token>``): the way
    back travels in the form body, so the token never lands in a query string, the browser
    history of another address, or a log."""
    form = await request.form()
    return _language_switched(locale, resources, field(form, "next"))


def _language_switched(locale: str, resources: AppResources, next_url: str | None) -> Response:
    if locale not in SUPPORTED_LOCALES:
        raise NotFoundError(f"no locale {locale}")
    response = redirect(safe_next(next_url, "/"))
    response.set_cookie(
        LANG_COOKIE,
        locale,
        max_age=LANG_MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(resources),
        path="/",
    )
    return response


def double_submit_token(request: Request, cookie: str) -> str:
    """The token of a double-submit CSRF cookie: the one the browser holds if well-formed (so
    two open tabs of the same form both work), else a new one."""
    current = request.cookies.get(cookie, "")
    if 32 <= len(current) <= 64 and current.replace("-", "").replace("_", "").isalnum():
        return current
    return secrets.token_urlsafe(32)


async def _login_page(
    request: Request,
    resources: AppResources,
    *,
    next_url: str,
    username: str = "",
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    token = double_submit_token(request, LOGIN_CSRF_COOKIE)
    response = await page(
        request,
        "login.html",
        {"login_csrf": token, "next": next_url, "username": username, "error": error},
        status=status,
    )
    # Double-submit cookie against login CSRF (someone signing you in as them). Strict: a
    # cross-site form post never carries it.
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(resources),
        path="/login",
    )
    return response


@router.get("/login")
async def login_form(
    request: Request,
    resources: Resources,
    next_url: Annotated[str | None, Query(alias="next")] = None,
) -> Response:
    target = safe_next(next_url)
    if await optional_page_staff(request, resources) is not None:
        return redirect(target)
    request.state.staff = None
    return await _login_page(request, resources, next_url=target)


@router.post("/login")
async def login_submit(request: Request, resources: Resources) -> Response:
    form = await request.form()
    t = translator(request)
    username = field(form, "username")[:64]
    password = form.get("password")
    password = password if isinstance(password, str) else ""
    target = safe_next(field(form, "next"))
    sent = field(form, "login_csrf")
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not sent or not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        return await _login_page(
            request,
            resources,
            next_url=target,
            username=username,
            error=t("login.error_expired"),
            status=403,
        )
    if not username or not password or len(password) > 200:
        return await _login_page(
            request,
            resources,
            next_url=target,
            username=username,
            error=t("login.error_failed"),
            status=401,
        )
    try:
        session = await resources.staff.sign_in(
            username=username, password=password, client=client_address(request)
        )
    except TooManyAttemptsError as e:
        page = await _login_page(
            request,
            resources,
            next_url=target,
            username=username,
            error=t("login.error_throttled", minutes=max(1, math.ceil(e.retry_after_s / 60))),
            status=429,
        )
        page.headers["Retry-After"] = str(max(1, math.ceil(e.retry_after_s)))
        return page
    except AuthenticationError:
        # One message for an unknown user and a wrong password.
        return await _login_page(
            request,
            resources,
            next_url=target,
            username=username,
            error=t("login.error_failed"),
            status=401,
        )
    response = redirect(target)
    set_session_cookie(
        response, session, secure=secure_cookies(resources), now=resources.clock.now()
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, resources: Resources, staff: PageStaff) -> Response:
    await checked_form(request, staff)
    await resources.staff.sign_out(token=staff.raw_token)
    response = done("/login", resources, N_("flash.signed_out"))
    clear_session_cookie(response)
    return response


# Day view -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DayItem:
    hearing: Hearing
    case_number: str
    case_title: str
    participants: list[Participant]

    @property
    def ends_at(self) -> datetime:
        return self.hearing.scheduled_start + timedelta(minutes=self.hearing.expected_minutes)


def long_date(t: Translate, day: date) -> str:
    return t(
        "date.long",
        year=day.year,
        day=day.day,
        month_name=t(f"month.{day.month}"),
        weekday=t(f"weekday.{day.weekday()}"),
    )


# Dates a court calendar can mean; keeps prev/next links and arithmetic away from date.min/max.
MIN_DAY = date(2000, 1, 1)
MAX_DAY = date(2199, 12, 31)


@router.get("/day")
async def day_view(
    request: Request,
    resources: Resources,
    staff: PageStaff,
    day_text: Annotated[str | None, Query(alias="date")] = None,
) -> HTMLResponse:
    t = translator(request)
    today = resources.clock.now().astimezone(court_tz(resources)).date()
    day, error, status = today, "", 200
    if day_text:
        try:
            day = date.fromisoformat(day_text)
            if not MIN_DAY <= day <= MAX_DAY:
                raise ValueError(day_text)
        except ValueError:
            day, error, status = today, t("day.bad_date"), 422
    found = await resources.hearings.list_hearings_for_day(actor=staff.actor, day=day)
    cases: dict[UUID, tuple[str, str]] = {}
    items: list[DayItem] = []
    for hearing, participants in sorted(found, key=lambda pair: pair[0].scheduled_start):
        if hearing.case_id not in cases:
            case = await resources.hearings.get_case(actor=staff.actor, case_id=hearing.case_id)
            cases[hearing.case_id] = (case.number, case.title)
        number, title = cases[hearing.case_id]
        items.append(DayItem(hearing, number, title, ordered(participants)))
    return await page(
        request,
        "day.html",
        {
            "day": day,
            "day_label": long_date(t, day),
            "is_today": day == today,
            "prev_day": (day - timedelta(days=1)).isoformat(),
            "next_day": (day + timedelta(days=1)).isoformat(),
            "items": items,
            "error": error,
        },
        status=status,
    )


# Cases ----------------------------------------------------------------------------------------


FIELD_ERRORS: Mapping[str, str] = {
    "number": N_("field_error.number"),
    "title": N_("field_error.title"),
    "cause": N_("field_error.cause"),
    "name": N_("field_error.name"),
    "phone": N_("field_error.phone"),
    "email": N_("field_error.email"),
    "id_number_last4": N_("field_error.id_number_last4"),
    "side": N_("field_error.side"),
    "scheduled_start": N_("field_error.scheduled_start"),
    "expected_minutes": N_("field_error.expected_minutes"),
    "role": N_("field_error.role"),
    "person": N_("field_error.person"),
    "display_name": N_("field_error.display_name"),
}


def field_errors(t: Translate, exc: ValidationError, *, prefix: str = "") -> dict[str, str]:
    """Translated messages per form field from a pydantic validation error."""
    found: dict[str, str] = {}
    for err in exc.errors():
        loc = err.get("loc", ())
        name = str(loc[0]) if loc else ""
        key = FIELD_ERRORS.get(name, N_("field_error.generic"))
        found.setdefault(prefix + name, t(key))
    return found


def invalid(t: Translate, errors: Mapping[str, str]) -> dict[str, Any]:
    return {"error": t("error.form_invalid"), "errors": dict(errors), "status": 422}


async def _cases_context(
    resources: AppResources, staff: StaffPrincipal, page_number: int
) -> dict[str, Any]:
    cases = await resources.hearings.list_cases(
        actor=staff.actor, limit=CASES_PER_PAGE + 1, offset=(page_number - 1) * CASES_PER_PAGE
    )
    return {
        "cases": cases[:CASES_PER_PAGE],
        "page_number": page_number,
        "has_more": len(cases) > CASES_PER_PAGE,
        "may_create": staff_may(staff.session.user.role, Permission.CASE_CREATE),
        "values": {},
    }


@router.get("/cases")
async def cases_page(
    request: Request,
    resources: Resources,
    staff: PageStaff,
    page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    return await page(request, "cases.html", await _cases_context(resources, staff, page_number))


@router.post("/cases")
async def create_case(request: Request, resources: Resources, staff: PageStaff) -> Response:
    form = await checked_form(request, staff)
    t = translator(request)
    values = {name: field(form, name) for name in ("number", "title", "cause")}
    outcome: dict[str, Any]
    try:
        data = CaseCreate.model_validate(values)
    except ValidationError as e:
        outcome = invalid(t, field_errors(t, e))
    else:
        if not CASE_NUMBER_RE.match(data.number):
            outcome = invalid(t, {"number": t("field_error.number")})
        else:
            try:
                case = await resources.hearings.create_case(
                    actor=staff.actor, number=data.number, title=data.title, cause=data.cause
                )
            except ConflictError as e:
                outcome = failure(t, e, t("error.case_number_taken", number=data.number))
                outcome["errors"] = {"number": t("error.case_number_taken", number=data.number)}
            except DOMAIN_ERRORS as e:
                outcome = failure(t, e)
            else:
                return done(f"/cases/{case.id}", resources, N_("flash.case_created"))
    context = await _cases_context(resources, staff, 1)
    context.update(outcome, values=values)
    return await page(request, "cases.html", context, status=outcome["status"])


@dataclass(frozen=True, slots=True)
class PartyView:
    party: Party
    person: Person
    counsel: Person | None


async def _party_views(
    resources: AppResources, actor: Actor, parties: Iterable[Party]
) -> list[PartyView]:
    views: list[PartyView] = []
    for party in parties:
        person = await resources.hearings.get_person(actor=actor, person_id=party.person_id)
        counsel = (
            await resources.hearings.get_person(actor=actor, person_id=party.counsel_person_id)
            if party.counsel_person_id
            else None
        )
        views.append(PartyView(party, person, counsel))
    side_order = list(PartySide)
    return sorted(views, key=lambda v: side_order.index(v.party.side))


async def _case_context(
    resources: AppResources, staff: StaffPrincipal, case_id: UUID
) -> dict[str, Any]:
    actor = staff.actor
    case = await resources.hearings.get_case(actor=actor, case_id=case_id)
    parties = await resources.hearings.list_parties(actor=actor, case_id=case.id)
    hearings = await resources.hearings.list_hearings_for_case(actor=actor, case_id=case.id)
    role = staff.session.user.role
    tomorrow = resources.clock.now().astimezone(court_tz(resources)).date() + timedelta(days=1)
    return {
        "case": case,
        "parties": await _party_views(resources, actor, parties),
        "hearings": sorted(hearings, key=lambda h: h.scheduled_start),
        "sides": list(PartySide),
        "may_add_party": staff_may(role, Permission.PARTICIPANT_ADD),
        "may_schedule": staff_may(role, Permission.HEARING_SCHEDULE),
        "values": {},
        "hearing_values": {
            "scheduled_start": f"{tomorrow.isoformat()}T09:30",
            "expected_minutes": "60",
            "recording_required": "on",
        },
    }


@router.get("/cases/{case_id}")
async def case_page(
    case_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> HTMLResponse:
    return await page(request, "case.html", await _case_context(resources, staff, case_id))


def _person(
    t: Translate, form: FormData, *, prefix: str = ""
) -> tuple[PersonCreate | None, dict[str, str]]:
    raw = {
        "name": field(form, prefix + "name"),
        "phone": field(form, prefix + "phone").replace(" ", "").replace("-", "") or None,
        "email": field(form, prefix + "email") or None,
        "id_number_last4": field(form, prefix + "id_number_last4") or None,
    }
    try:
        return PersonCreate.model_validate(raw), {}
    except ValidationError as e:
        return None, field_errors(t, e, prefix=prefix)


@router.post("/cases/{case_id}/parties")
async def add_party(
    case_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> Response:
    form = await checked_form(request, staff)
    t = translator(request)
    values = {
        name: field(form, name)
        for name in (
            "name",
            "phone",
            "email",
            "id_number_last4",
            "side",
            "counsel_name",
            "counsel_phone",
            "counsel_email",
        )
    }
    person, errors = _person(t, form)
    counsel: PersonCreate | None = None
    if any(values[k] for k in ("counsel_name", "counsel_phone", "counsel_email")):
        counsel, counsel_errors = _person(t, form, prefix="counsel_")
        errors.update(counsel_errors)
    side = values["side"] if values["side"] in set(PartySide) else None
    if side is None:
        errors["side"] = t("field_error.side")
    outcome: dict[str, Any]
    if errors or person is None or side is None:
        outcome = invalid(t, errors)
    else:
        try:
            # The case first, so a wrong id creates no orphan person records.
            await resources.hearings.get_case(actor=staff.actor, case_id=case_id)
            person_id = await create_person(resources.hearings, staff.actor, person)
            counsel_id = (
                await create_person(resources.hearings, staff.actor, counsel) if counsel else None
            )
            await resources.hearings.add_party(
                actor=staff.actor,
                case_id=case_id,
                person_id=person_id,
                side=PartySide(side),
                counsel_person_id=counsel_id,
            )
        except DOMAIN_ERRORS as e:
            outcome = failure(t, e)
        else:
            return done(f"/cases/{case_id}#parties", resources, N_("flash.party_added"))
    context = await _case_context(resources, staff, case_id)
    context.update(outcome, values=values)
    return await page(request, "case.html", context, status=outcome["status"])


def parse_local_datetime(text: str, tz: ZoneInfo) -> datetime | None:
    """``2026-11-24T09:30`` from a datetime-local input, in the court's time zone."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is not None or not MIN_DAY <= parsed.date() <= MAX_DAY:
        return None
    return parsed.replace(tzinfo=tz)


@router.post("/cases/{case_id}/hearings")
async def schedule_hearing(
    case_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> Response:
    form = await checked_form(request, staff)
    t = translator(request)
    values = {
        name: field(form, name)
        for name in ("scheduled_start", "expected_minutes", "is_public", "recording_required")
    }
    values["title"] = field(form, "title")
    start = parse_local_datetime(values["scheduled_start"], court_tz(resources))
    outcome: dict[str, Any]
    try:
        data = HearingCreate.model_validate(
            {
                "case_id": case_id,
                "scheduled_start": start,
                "expected_minutes": values["expected_minutes"],
                "is_public": bool(values["is_public"]),
                "recording_required": bool(values["recording_required"]),
                "title": values["title"],
            }
        )
    except ValidationError as e:
        outcome = invalid(t, field_errors(t, e))
    else:
        try:
            hearing = await resources.hearings.schedule_hearing(
                actor=staff.actor,
                case_id=case_id,
                scheduled_start=data.scheduled_start,
                expected_minutes=data.expected_minutes,
                is_public=data.is_public,
                recording_required=data.recording_required,
                title=data.title,
            )
        except DOMAIN_ERRORS as e:
            outcome = failure(t, e)
        else:
            return done(f"/hearings/{hearing.id}", resources, N_("flash.hearing_scheduled"))
    context = await _case_context(resources, staff, case_id)
    context.update(outcome, hearing_values=values)
    return await page(request, "case.html", context, status=outcome["status"])


# Hearings -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParticipantView:
    participant: Participant
    phone: str
    email: str
    party_side: PartySide | None

    @property
    def final(self) -> bool:
        return self.participant.state is ParticipantState.REMOVED


@dataclass(frozen=True, slots=True)
class PersonChoice:
    value: str
    name: str
    side: PartySide
    is_counsel: bool


def available_actions(
    state: HearingState, role: StaffRole
) -> tuple[list[HearingAction], list[HearingAction]]:
    """Actions valid from ``state`` that ``role`` may take, and those only someone else may."""
    mine: list[HearingAction] = []
    others: list[HearingAction] = []
    for action, (sources, _target) in HEARING_ACTIONS.items():
        if state not in sources:
            continue
        (mine if staff_may(role, ACTION_PERMISSION[action]) else others).append(action)
    return mine, others


_COUNT_REASON = re.compile(r"^(\d+) (revoked|messages)$")


def audit_row(
    t: Translate,
    row: Mapping[str, Any],
    names: Mapping[UUID, str],
    actor_names: Mapping[UUID, str],
) -> dict[str, Any]:
    """An audit event with whom it concerns and its reason in words (the service stores a few
    machine reasons)."""
    reason = str(row["reason"])
    counted = _COUNT_REASON.match(reason)
    if row["action"] == "participant.add" and reason in set(Role):
        reason = t(f"role.{reason}")
    elif counted:
        key = N_("audit_reason.revoked") if counted[2] == "revoked" else N_("audit_reason.messages")
        reason = t(key, count=counted[1])
    subject = names.get(row["entity_id"], "") if row["entity"] == "participant" else ""
    actor_id = row["actor_id"]
    actor_name = ""
    if actor_id is not None:
        actor_name = actor_names.get(actor_id, "") or names.get(actor_id, "")
    return {**row, "reason_text": reason, "subject": subject, "actor_name": actor_name}


async def _hearing_context(
    request: Request, resources: AppResources, staff: StaffPrincipal, hearing_id: UUID
) -> dict[str, Any]:
    t = translator(request)
    actor = staff.actor
    detail = await resources.hearings.get_hearing(actor=actor, hearing_id=hearing_id)
    hearing = detail.hearing
    audit = await resources.hearings.audit_trail(actor=actor, hearing_id=hearing.id)
    party_views = await _party_views(
        resources,
        actor,
        await resources.hearings.list_parties(actor=actor, case_id=hearing.case_id),
    )
    sides = {v.party.id: v.party.side for v in party_views}
    participants: list[ParticipantView] = []
    for p in ordered(detail.participants):
        person = await resources.hearings.get_person(actor=actor, person_id=p.person_id)
        participants.append(
            ParticipantView(
                participant=p,
                phone=mask_phone(person.phone) if person.phone else "",
                email=mask_email(person.email) if person.email else "",
                party_side=sides.get(p.party_id) if p.party_id else None,
            )
        )
    choices: list[PersonChoice] = []
    for view in party_views:
        choices.append(
            PersonChoice(f"party:{view.party.id}", view.person.name, view.party.side, False)
        )
        if view.counsel is not None:
            choices.append(
                PersonChoice(f"counsel:{view.party.id}", view.counsel.name, view.party.side, True)
            )
    names = {p.id: p.display_name for p in detail.participants}
    actor_names = await resources.staff.display_names(
        court_id=hearing.court_id,
        user_ids=[
            r["actor_id"]
            for r in audit
            if r["actor_kind"] == "staff" and isinstance(r["actor_id"], UUID)
        ],
    )
    attendance = await resources.hearings.attendance(actor=actor, hearing_id=hearing.id)
    room = resources.rooms.owned_room(hearing.id)
    live = None
    if room is not None:
        snapshot = room.snapshot()
        live = {"online": sum(m.online for m in snapshot.members), "lobby": len(snapshot.lobby)}
    role = staff.session.user.role
    is_final = hearing.state in FINAL_HEARING_STATES
    mine, others = available_actions(hearing.state, role)
    return {
        "hearing": hearing,
        "case": detail.case,
        "participants": participants,
        "choices": choices,
        "roles": list(Role),
        "actions": mine,
        "other_actions": others,
        "dangerous_actions": DANGEROUS_ACTIONS,
        "audit": [audit_row(t, row, names, actor_names) for row in reversed(audit)],
        "attendance": list(reversed(attendance)),
        "live": live,
        "is_final": is_final,
        "ends_at": hearing.scheduled_start + timedelta(minutes=hearing.expected_minutes),
        "may_lock": staff_may(role, Permission.HEARING_LOCK) and not is_final,
        "may_add": staff_may(role, Permission.PARTICIPANT_ADD) and not is_final,
        "may_issue": staff_may(role, Permission.PARTICIPANT_ISSUE_LINK) and not is_final,
        "may_revoke": staff_may(role, Permission.PARTICIPANT_REVOKE_LINK),
        "may_notify": staff_may(role, Permission.NOTICE_SEND) and not is_final,
        "may_enter_room": role in ROOM_STAFF_ROLES and not is_final,
        "values": {},
    }


async def _hearing_page(
    request: Request,
    resources: AppResources,
    staff: StaffPrincipal,
    hearing_id: UUID,
    outcome: Mapping[str, Any] | None = None,
) -> HTMLResponse:
    context = await _hearing_context(request, resources, staff, hearing_id)
    context.update(outcome or {})
    return await page(request, "hearing.html", context, status=context.get("status", 200))


@router.get("/hearings/{hearing_id}")
async def hearing_page(
    hearing_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> HTMLResponse:
    return await _hearing_page(request, resources, staff, hearing_id)


@router.post("/hearings/{hearing_id}/state")
async def change_state(
    hearing_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> Response:
    form = await checked_form(request, staff)
    t = translator(request)
    reason = field(form, "reason")[:500]
    try:
        action = HearingAction(field(form, "action"))
    except ValueError:
        return await _hearing_page(
            request, resources, staff, hearing_id, invalid(t, {"action": t("error.invalid")})
        )
    try:
        transition = await resources.hearings.change_hearing_state(
            actor=staff.actor, hearing_id=hearing_id, action=action, reason=reason
        )
    except PermissionDeniedError as e:
        message = t(
            "error.action_forbidden",
            action=t(f"action.{action.value}"),
            role=t(f"staff_role.{staff.session.user.role.value}"),
        )
        return await _hearing_page(request, resources, staff, hearing_id, failure(t, e, message))
    except IllegalTransitionError as e:
        detail = await resources.hearings.get_hearing(actor=staff.actor, hearing_id=hearing_id)
        message = t(
            "error.illegal_action",
            action=t(f"action.{action.value}"),
            state=t(f"state.{detail.hearing.state.value}"),
        )
        return await _hearing_page(request, resources, staff, hearing_id, failure(t, e, message))
    except DOMAIN_ERRORS as e:
        return await _hearing_page(request, resources, staff, hearing_id, failure(t, e))
    await resources.rooms.hearing_changed(
        hearing_id=hearing_id, action=action.value, reason=reason, by=None
    )
    return done(
        f"/hearings/{hearing_id}",
        resources,
        N_("flash.state_changed"),
        state=t(f"state.{transition.to_state.value}"),
    )


@router.post("/hearings/{hearing_id}/lock")
async def lock(
    hearing_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> Response:
    form = await checked_form(request, staff)
    t = translator(request)
    locked = field(form, "locked") == "1"
    try:
        await resources.hearings.set_locked(actor=staff.actor, hearing_id=hearing_id, locked=locked)
    except DOMAIN_ERRORS as e:
        return await _hearing_page(request, resources, staff, hearing_id, failure(t, e))
    await resources.rooms.hearing_changed(
        hearing_id=hearing_id, action="lock" if locked else "unlock", reason="", by=None
    )
    key = N_("flash.locked") if locked else N_("flash.unlocked")
    return done(f"/hearings/{hearing_id}", resources, key)


@router.post("/hearings/{hearing_id}/participants")
async def add_participant(
    hearing_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> Response:
    form = await checked_form(request, staff)
    t = translator(request)
    names = ("role", "existing", "display_name", "name", "phone", "email", "id_number_last4")
    values = {name: field(form, name) for name in names}
    errors: dict[str, str] = {}
    role = Role(values["role"]) if values["role"] in set(Role) else None
    if role is None:
        errors["role"] = t("field_error.role")
    if len(values["display_name"]) > 200:
        errors["display_name"] = t("field_error.display_name")
    person: PersonCreate | None = None
    existing = values["existing"]
    if not existing:
        if values["name"]:
            person, person_errors = _person(t, form)
            errors.update(person_errors)
        else:
            errors["person"] = t("field_error.person")
    outcome: dict[str, Any] = {}
    if errors or role is None:
        outcome = invalid(t, errors)
    else:
        try:
            detail = await resources.hearings.get_hearing(actor=staff.actor, hearing_id=hearing_id)
            party_id: UUID | None = None
            if existing:
                person_id, party_id = await _existing_person(
                    resources, staff.actor, detail.case.id, existing
                )
            elif person is not None:
                person_id = await create_person(resources.hearings, staff.actor, person)
            else:  # excluded by the checks above
                raise InvalidInputError("choose a party of the case or enter a new person")
            await resources.hearings.add_participant(
                actor=staff.actor,
                hearing_id=hearing_id,
                person_id=person_id,
                role=role,
                party_id=party_id,
                display_name=values["display_name"],
            )
        except DOMAIN_ERRORS as e:
            outcome = failure(t, e)
        else:
            return done(
                f"/hearings/{hearing_id}#participants", resources, N_("flash.participant_added")
            )
    outcome["values"] = values
    return await _hearing_page(request, resources, staff, hearing_id, outcome)


async def _existing_person(
    resources: AppResources, actor: Actor, case_id: UUID, choice: str
) -> tuple[UUID, UUID]:
    """``party:<id>`` or ``counsel:<id>`` from the form -> (person id, party id)."""
    kind, _, raw_id = choice.partition(":")
    try:
        party_id = UUID(raw_id)
    except ValueError as e:
        raise InvalidInputError(f"expected party:<id> or counsel:<id>, got {choice!r}") from e
    for party in await resources.hearings.list_parties(actor=actor, case_id=case_id):
        if party.id != party_id:
            continue
        if kind == "party":
            return party.person_id, party.id
        if kind == "counsel" and party.counsel_person_id is not None:
            return party.counsel_person_id, party.id
    raise NotFoundError(f"no party {raw_id} in this case")


async def _participant_of(
    resources: AppResources, actor: Actor, hearing_id: UUID, participant_id: UUID
) -> Participant:
    detail = await resources.hearings.get_hearing(actor=actor, hearing_id=hearing_id)
    for participant in detail.participants:
        if participant.id == participant_id:
            return participant
    raise NotFoundError(f"no participant {participant_id} in hearing {hearing_id}")


@router.post("/hearings/{hearing_id}/participants/{participant_id}/join-link")
async def issue_join_link(
    hearing_id: UUID,
    participant_id: UUID,
    request: Request,
    resources: Resources,
    staff: PageStaff,
) -> Response:
    await checked_form(request, staff)
    t = translator(request)
    try:
        participant = await _participant_of(resources, staff.actor, hearing_id, participant_id)
        link = await resources.hearings.issue_join_link(
            actor=staff.actor, participant_id=participant.id
        )
    except DOMAIN_ERRORS as e:
        return await _hearing_page(request, resources, staff, hearing_id, failure(t, e))
    response = redirect(f"/hearings/{hearing_id}#join-link")
    expires = link.expires_at.astimezone(court_tz(resources)).strftime("%Y-%m-%d %H:%M")
    set_flash(
        response,
        resources,
        Flash(
            N_("flash.link_issued"),
            {"name": participant.display_name},
            link=link.url,
            link_expires_at=expires,
        ),
    )
    return response


@router.post("/hearings/{hearing_id}/participants/{participant_id}/revoke-links")
async def revoke_join_links(
    hearing_id: UUID,
    participant_id: UUID,
    request: Request,
    resources: Resources,
    staff: PageStaff,
) -> Response:
    await checked_form(request, staff)
    t = translator(request)
    try:
        participant = await _participant_of(resources, staff.actor, hearing_id, participant_id)
        count = await resources.hearings.revoke_join_links(
            actor=staff.actor, participant_id=participant.id
        )
    except DOMAIN_ERRORS as e:
        return await _hearing_page(request, resources, staff, hearing_id, failure(t, e))
    await resources.rooms.access_revoked(hearing_id=hearing_id, participant_id=participant.id)
    return done(
        f"/hearings/{hearing_id}#participants",
        resources,
        N_("flash.links_revoked"),
        name=participant.display_name,
        count=count,
    )


@router.post("/hearings/{hearing_id}/notices")
async def send_notices(
    hearing_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> Response:
    await checked_form(request, staff)
    t = translator(request)
    try:
        results = await resources.hearings.send_hearing_notices(
            actor=staff.actor, hearing_id=hearing_id, sender=resources.sender
        )
    except DOMAIN_ERRORS as e:
        return await _hearing_page(request, resources, staff, hearing_id, failure(t, e))
    recipients = len({r.participant_id for r in results})
    return done(
        f"/hearings/{hearing_id}",
        resources,
        N_("flash.notices_sent"),
        messages=len(results),
        people=recipients,
    )


# The participant's join flow and the hearing room ---------------------------------------------

# Links that can never work again answer 410 Gone; links that are not ours (or were altered), 401.
GONE_REASONS = frozenset({"expired", "revoked", "removed", "hearing_over"})
# A party in one of these states proves identity (again) before entering the room.
NEEDS_VERIFICATION = frozenset({ParticipantState.INVITED, ParticipantState.LEFT})
# The catalog keys the browser scripts use, sent along with the page that runs them.
CLIENT_STRING_PREFIXES: Mapping[str, tuple[str, ...]] = {
    "join": ("verify.", "declaration.", "devices.", "joinflow."),
    "recording": ("rec.",),
    "room": (
        "room.",
        "lobby.",
        "roomctl.",
        "sigerr.",
        "final.",
        "health.",
        "devices.",
        "role.",
        "state.",
        "pstate.",
        "action.",
    ),
}
# The hearing actions the room offers (cancelling is done from the hearing page).
ROOM_ACTIONS = (
    HearingAction.OPEN_LOBBY,
    HearingAction.START,
    HearingAction.PAUSE,
    HearingAction.SUSPEND,
    HearingAction.RESUME,
    HearingAction.CLOSE,
)


def client_strings(request: Request, area: str) -> dict[str, str]:
    """The translated strings (placeholders kept) that ``area``'s script shows."""
    resources: AppResources = request.app.state.resources
    t = translator(request)
    prefixes = CLIENT_STRING_PREFIXES[area]
    catalog = resources.translator.catalogs[resources.translator.default]
    return {key: t(key) for key in catalog if key.startswith(prefixes)}


def room_controls() -> dict[str, Any]:
    """What each control needs (docs/signaling.md), so the room hides what a role cannot do.

    Taken from the same tables the server enforces; the server checks every message again.
    """
    return {
        # A list: the buttons keep this order (the lifecycle's), whatever a JSON encoder does.
        "actions": [
            {
                "action": a.value,
                "from": sorted(s.value for s in HEARING_ACTIONS[a][0]),
                "permission": ACTION_PERMISSION[a].value,
            }
            for a in ROOM_ACTIONS
        ],
        "permissions": {r.value: sorted(p.value for p in ROLE_PERMISSIONS[r]) for r in Role},
    }


def ice_servers(resources: AppResources) -> list[dict[str, Any]]:
    return [s.model_dump(exclude_none=True) for s in resources.settings.ice_servers]


@dataclass(frozen=True, slots=True)
class JoinView:
    claims: JoinClaims
    detail: HearingDetail
    participant: Participant
    person: Person
    court: Court


async def join_refused(request: Request, reason: str) -> HTMLResponse:
    logger.info("join link refused: %s", reason)  # the reason only, never the token
    status = 410 if reason in GONE_REASONS else 401
    return await page(request, "join_invalid.html", {"reason": reason}, status=status)


async def join_view(
    token: str, request: Request, resources: AppResources, *, for_record: bool = False
) -> JoinView | str:
    """What a join link shows, or the reason it is refused. Never logs the token.
    ``for_record``: the link opens a closed hearing's record (the caller checks the share)."""
    request.state.staff = None
    try:
        claims = await resources.hearings.verify_join_token(token=token, for_record=for_record)
    except InvalidTokenError as e:
        return e.reason
    # The token is verified: read the hearing on the system's behalf, as the API does.
    system = Actor.system()
    detail = await resources.hearings.get_hearing(actor=system, hearing_id=claims.hearing_id)
    if not any(p.id == claims.participant_id for p in detail.participants):
        return "removed"
    participant, person = await resources.hearings.get_participant_with_person(
        actor=system, participant_id=claims.participant_id
    )
    court = await resources.hearings.get_court(court_id=detail.hearing.court_id)
    return JoinView(claims, detail, participant, person, court)


def join_context(request: Request, resources: AppResources, view: JoinView) -> dict[str, Any]:
    hearing = view.detail.hearing
    return {
        "court": view.court,
        "hearing": hearing,
        "case": view.detail.case,
        "participant": view.participant,
        "ends_at": hearing.scheduled_start + timedelta(minutes=hearing.expected_minutes),
        "expires_at": view.claims.expires_at,
        "day_label": long_date(
            translator(request), hearing.scheduled_start.astimezone(court_tz(resources)).date()
        ),
    }


@router.get("/j/{token}")
async def join_landing(token: str, request: Request, resources: Resources) -> HTMLResponse:
    """What a party sees on opening the link from the SMS or email: the hearing, then the steps
    (identity, conduct declaration, device check) that lead to the room."""
    view = await join_view(token, request, resources)
    if isinstance(view, str):
        return await join_refused(request, view)
    person = view.person
    context = join_context(request, resources, view)
    context.update(
        {
            "verified": view.participant.state not in NEEDS_VERIFICATION,
            "phone_hint": mask_phone(person.phone) if person.phone else "",
            "email_hint": mask_email(person.email) if person.email else "",
            "may_publish": view.claims.grants.may_publish,
            "strings": client_strings(request, "join"),
        }
    )
    return await page(request, "join.html", context)


@router.get("/j/{token}/room")
async def join_room(token: str, request: Request, resources: Resources) -> Response:
    """The hearing room for a party: the lobby, then the hearing. The script reads the token
    from this address (never from the page, never into a query string)."""
    view = await join_view(token, request, resources)
    if isinstance(view, str):
        return await join_refused(request, view)
    if view.participant.state in NEEDS_VERIFICATION:
        # Identity first: back to the start of the join flow.
        return redirect(f"/j/{token}")
    hearing = view.detail.hearing
    context = join_context(request, resources, view)
    context.update(
        {
            "room_config": {
                "mode": "participant",
                "hearing_id": str(hearing.id),
                "participant_id": str(view.participant.id),
                "websocket_path": f"/ws/hearings/{hearing.id}",
                "ice_servers": ice_servers(resources),
                "hearing_state": hearing.state.value,
                "may_publish": view.claims.grants.may_publish,
                "controls": room_controls(),
            },
            "strings": client_strings(request, "room"),
        }
    )
    return await page(request, "room.html", context)


# Judges and clerks enter the room as themselves, from their session.
ROOM_STAFF_ROLES = frozenset({StaffRole.JUDGE, StaffRole.CLERK})


@router.get("/hearings/{hearing_id}/room")
async def staff_room(
    hearing_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> HTMLResponse:
    """The hearing room for the signed-in judge or clerk. The script asks for a room token with
    the session (``POST /api/hearings/{id}/room-token``, CSRF header) and joins with it."""
    detail = await resources.hearings.get_hearing(actor=staff.actor, hearing_id=hearing_id)
    if staff.session.user.role not in ROOM_STAFF_ROLES:
        raise PermissionDeniedError("only judges and clerks join a hearing room from the bench")
    hearing = detail.hearing
    over = hearing.state in FINAL_HEARING_STATES
    return await page(
        request,
        "room.html",
        {
            "hearing": hearing,
            "case": detail.case,
            "participant": None,
            "hearing_over": over,
            "ends_at": hearing.scheduled_start + timedelta(minutes=hearing.expected_minutes),
            "room_config": {
                "mode": "staff",
                "hearing_id": str(hearing.id),
                "participant_id": None,
                "websocket_path": f"/ws/hearings/{hearing.id}",
                "ice_servers": ice_servers(resources),
                "hearing_state": hearing.state.value,
                "may_publish": True,
                "room_token_path": f"/api/hearings/{hearing.id}/room-token",
                "hearing_page": f"/hearings/{hearing.id}",
                "controls": room_controls(),
            },
            "strings": client_strings(request, "room"),
        },
    )
