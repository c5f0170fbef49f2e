"""The recipient's page of electronic service (``/s/<token>``, the link in the SMS or email).

The link names one attempt and is unguessable (``service_delivery.links``); it is not enough to
see the document. The recipient first proves who they are, with a one-time code sent to their
*other* channel (a link that came by SMS sends the code to their email, and the other way round)
or with the last four characters of their ID number. A signed pass cookie, scoped to the link's
path and bound to the attempt and the recipient, then keeps the document open for 30 minutes.

With the pass the recipient opens the document in the browser or downloads it (each fetch is
recorded as CONTENT_ACCESSED, *before* a byte is sent), acknowledges receipt (ACKNOWLEDGED, once)
or reports a problem (REJECTED with a reason code, cf. the German eEB's Störungsmeldung). The
rule set decides from those events whether and when the recipient is deemed served.

Every form carries a double-submit CSRF token (a SameSite=Strict cookie scoped to the link).
The page cannot embed the PDF: every response carries ``X-Frame-Options: DENY`` (middleware) and
our CSP has ``object-src 'none'``, so "view" opens the PDF inline in a new tab and "download"
sends it as an attachment.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.datastructures import FormData

from yunting.hearing.tokens import derive_key
from yunting.identity.errors import CodeRejectedError, RateLimitedError
from yunting.identity.otp import OtpPurpose
from yunting.infra.ledger.canonical import canonical_json
from yunting.infra.storage import StorageError, sha256_of_file
from yunting.service_delivery import repository as repo
from yunting.service_delivery.addresses import masked
from yunting.service_delivery.errors import IdentityCheckError, LinkInvalidError
from yunting.service_delivery.links import (
    IdentityMethod,
    RecipientPass,
    issue_pass,
    read_pass,
)
from yunting.service_delivery.model import EvidenceKind
from yunting.service_delivery.ports import Channel
from yunting.service_delivery.rules import RejectionReason
from yunting.service_delivery.service import RecipientAccess, ServiceDeliveryService
from yunting.web.deps import Resources, client_address
from yunting.web.resources import AppResources
from yunting.web.routes.pages import (
    N_,
    Translate,
    done,
    double_submit_token,
    long_date,
    page,
    redirect,
    secure_cookies,
    translator,
)

logger = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False, tags=["service"])

PASS_COOKIE = "yt_service_pass"  # noqa: S105 - a cookie's name, not a secret
CSRF_COOKIE = "yt_service_csrf"
PASS_LIFETIME = timedelta(minutes=30)
PROBLEM_TEXT_LIMIT = 2000
PROBLEM_REASONS: tuple[str, ...] = tuple(r.value for r in RejectionReason)
USER_AGENT_LIMIT = 512
# The last four characters of a PRC resident ID number: digits, the last one may be the check
# character X. People type full-width characters with a Chinese IME.
_ID_DIGITS = re.compile(r"^[0-9]{3}[0-9X]$")
_FULL_WIDTH = str.maketrans("０１２３４５６７８９Ｘｘ", "0123456789XX")
# A byte range that starts at the first byte: a fresh open of the document, not a reader
# fetching the next piece of a file it already has (PDF viewers do both).
_FROM_START = re.compile(r"^\s*bytes\s*=\s*0\s*-")
# Characters no file name may hold on Windows, macOS or Linux, and none a header may.
_UNSAFE_IN_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]')


def _pass_key(resources: AppResources) -> bytes:
    return derive_key(resources.settings.secret_key.get_secret_value(), "service-recipient-pass")


def _root(token: str) -> str:
    return f"/s/{token}"


def _service(resources: AppResources) -> ServiceDeliveryService:
    if resources.delivery is None:
        # No electronic service in this process: no link can be valid here.
        raise LinkInvalidError("electronic service is not running")
    return resources.delivery.service


def _tz(resources: AppResources) -> ZoneInfo:
    return ZoneInfo(resources.settings.court_timezone)


# Where the one-time code goes ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodeRoute:
    """The channel and address a one-time code is sent to for this link."""

    channel: Channel
    address: str
    same_channel: bool

    @property
    def method(self) -> IdentityMethod:
        return IdentityMethod.OTP_SMS if self.channel is Channel.SMS else IdentityMethod.OTP_EMAIL

    def subject(self, access: RecipientAccess) -> str:
        # The recipient and the channel the code goes to. Per recipient, so all their links
        # share one budget of codes and tries per destination (and a retry's new link does not
        # reset it). Not the recipient alone: a code delivered to their mailbox for the SMS link
        # would then also open the email link, and whoever reads the mailbox would need nothing
        # else — the second channel would prove nothing.
        return f"{access.recipient.id}:{self.channel.value}"


def code_route(access: RecipientAccess) -> CodeRoute:
    """The recipient's other channel if the court has an address for it, else the link's own."""
    link = Channel(access.attempt.channel)
    other = Channel.EMAIL if link is Channel.SMS else Channel.SMS
    address = access.recipient.email if other is Channel.EMAIL else access.recipient.phone
    if address:
        return CodeRoute(other, address, same_channel=False)
    # Weaker: no second channel on file, so the code goes where the link went. It then only
    # proves the reader holds that phone or mailbox *now* (a forwarded link, one left in a
    # browser's history or a proxy log, opens nothing), not a second factor. The method recorded
    # with every access (otp_sms on an SMS link) shows the court which case this was.
    return CodeRoute(link, access.attempt.address, same_channel=True)


def _code_text(access: RecipientAccess, channel: Channel) -> str:
    court = access.court.name.replace("{", "{{").replace("}", "}}")
    if channel is Channel.SMS:
        return f"【{court}】您查阅电子送达文书的验证码为 {{code}}，10分钟内有效。请勿告诉他人。"
    return (
        f"{court}：您查阅电子送达文书的验证码为 {{code}}，10分钟内有效。请勿告诉他人。\n\n"
        "Your code to open the document the court served on you is {code}. It is valid for "
        "10 minutes. Do not give it to anyone.\n"
    )


# The pass --------------------------------------------------------------------------------------


def _pass_of(
    request: Request, resources: AppResources, access: RecipientAccess
) -> RecipientPass | None:
    """The request's pass if it is ours, unexpired, and for this very link and recipient."""
    found = read_pass(
        _pass_key(resources), request.cookies.get(PASS_COOKIE, ""), now=resources.clock.now()
    )
    if (
        found is None
        or found.attempt_id != access.attempt.id
        or found.recipient_id != access.recipient.id
    ):
        return None
    return found


def _with_pass(
    response: Response,
    resources: AppResources,
    access: RecipientAccess,
    token: str,
    method: IdentityMethod,
) -> Response:
    now = resources.clock.now()
    value = issue_pass(
        _pass_key(resources),
        RecipientPass(
            attempt_id=access.attempt.id,
            recipient_id=access.recipient.id,
            method=method,
            expires_at=now + PASS_LIFETIME,
        ),
    )
    response.set_cookie(
        PASS_COOKIE,
        value,
        max_age=int(PASS_LIFETIME.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=secure_cookies(resources),
        path=_root(token),
    )
    return response


# Rendering -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventLine:
    """One thing the recipient did (or the rules decided), as their page lists it."""

    at: datetime
    kind: str  # the event kind, lower case (a CSS hook and a test hook)
    text: str


def _event_lines(t: Translate, events: list[repo.EventRow]) -> list[EventLine]:
    lines = []
    for event in events:
        kind = EvidenceKind(event.kind)
        if kind is EvidenceKind.CONTENT_ACCESSED:
            try:
                downloaded = bool(json.loads(event.raw).get("download"))
            except (ValueError, AttributeError):
                downloaded = False
            key = "srv_recipient.event.downloaded" if downloaded else "srv_recipient.event.viewed"
            text = t(key)
        elif kind is EvidenceKind.ACKNOWLEDGED:
            text = t("srv_recipient.event.acknowledged")
        elif kind is EvidenceKind.REJECTED:
            reason = event.detail if event.detail in PROBLEM_REASONS else "other"
            text = t("srv_recipient.event.reported", reason=t(f"srv_recipient.reason.{reason}"))
        elif kind is EvidenceKind.DEEMED_SERVED:
            text = t("srv_recipient.event.served")
        else:
            continue
        lines.append(EventLine(event.at, kind.value.lower(), text))
    return lines


def _when(t: Translate, moment: datetime, tz: ZoneInfo) -> str:
    """A moment in words, on the court's clock: 2026年11月24日 星期二 09:30（北京时间）."""
    local = moment.astimezone(tz)
    return t("srv_recipient.when", day=long_date(t, local.date()), time=f"{local:%H:%M}")


def _wait_minutes(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds() / 60))


def _rate_limit_message(t: Translate, e: RateLimitedError, now: datetime) -> str:
    seconds = max(1, math.ceil((e.retry_at - now).total_seconds()))
    if e.reason == "too_soon":
        return t("verify.error_wait_seconds", seconds=seconds)
    return t("verify.error_wait_minutes", minutes=max(1, math.ceil(seconds / 60)))


async def _render(
    request: Request,
    resources: AppResources,
    access: RecipientAccess,
    token: str,
    *,
    recipient_pass: RecipientPass | None,
    status: int = 200,
    alert: str = "",
    sent_hint: str = "",
    problem_form: Mapping[str, str] | None = None,
    problem_errors: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The recipient's page: the identity step without a pass, the document with one."""
    t = translator(request)
    tz = _tz(resources)
    now = resources.clock.now()
    recipient = access.recipient
    csrf = double_submit_token(request, CSRF_COOKIE)
    context: dict[str, Any] = {
        "court": access.court,
        "case": access.case,
        "document": access.document,
        "root": _root(token),
        "csrf_token": csrf,
        "verified": recipient_pass is not None,
        "alert": alert,
    }
    if recipient_pass is None:
        route = code_route(access)
        check = recipient.id_check()
        until = check.locked_until
        context |= {
            "code_channel": route.channel.value,
            "code_hint": masked(route.channel, route.address),
            "same_channel": route.same_channel,
            "sent_hint": sent_hint,
            "id_closed": check.closed(),
            "id_locked_minutes": _wait_minutes(until, now) if until and check.locked(now) else 0,
        }
    else:
        events = await _service(resources).recipient_events(access=access)
        acknowledged = next((e for e in events if e.kind == EvidenceKind.ACKNOWLEDGED), None)
        deadline = date.fromisoformat(recipient.deadline_on) if recipient.deadline_on else None
        context |= {
            "recipient": recipient,
            "events": _event_lines(t, events),
            "acknowledged_on": _when(t, acknowledged.at, tz) if acknowledged else "",
            "served_on": _when(t, recipient.served_at, tz) if recipient.served_at else "",
            "presumption": recipient.presumption,
            "deadline_kind": access.order.deadline_kind,
            "deadline_on": long_date(t, deadline) if deadline else "",
            "pass_minutes": _wait_minutes(recipient_pass.expires_at, now),
            "reasons": PROBLEM_REASONS,
            "problem_form": dict(problem_form or {}),
            "problem_errors": dict(problem_errors or {}),
            "text_limit": PROBLEM_TEXT_LIMIT,
            "is_pdf": access.document.media_type == "application/pdf",
        }
    response = await page(request, "service_recipient.html", context, status=status)
    # Double-submit cookie: a cross-site form can neither read nor send it (Strict).
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(resources),
        path=_root(token),
    )
    return response


async def _invalid(request: Request) -> HTMLResponse:
    # Unknown, altered or withdrawn: one page for all, so the answer says nothing about which.
    return await page(request, "service_recipient_invalid.html", status=404)


async def _open(token: str, resources: AppResources) -> RecipientAccess | None:
    try:
        return await _service(resources).open_link(token=token)
    except LinkInvalidError:
        logger.info("recipient page: a link that is not ours")
        return None


async def _posted(
    token: str, request: Request, resources: AppResources
) -> tuple[RecipientAccess, FormData] | HTMLResponse:
    """The link and the posted form, once the form's CSRF token matches its cookie."""
    access = await _open(token, resources)
    if access is None:
        return await _invalid(request)
    form = await request.form()
    sent = form.get("csrf_token")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    # Bytes: compare_digest refuses str with non-ASCII characters (a forged field may have any).
    if not (
        isinstance(sent, str) and cookie and hmac.compare_digest(sent.encode(), cookie.encode())
    ):
        logger.warning("recipient page: a form without a valid csrf_token refused")
        t = translator(request)
        return await _render(
            request,
            resources,
            access,
            token,
            recipient_pass=_pass_of(request, resources, access),
            alert=t("srv_recipient.error_form_expired"),
            status=403,
        )
    return access, form


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _client(request: Request) -> dict[str, str]:
    return {
        "ip": client_address(request),
        "user_agent": request.headers.get("user-agent", "")[:USER_AGENT_LIMIT],
    }


# Routes ----------------------------------------------------------------------------------------


@router.get("/s/{token}")
async def recipient_page(token: str, request: Request, resources: Resources) -> HTMLResponse:
    """The recipient's page: the identity step, then the document and what to do with it."""
    access = await _open(token, resources)
    if access is None:
        return await _invalid(request)
    return await _render(
        request, resources, access, token, recipient_pass=_pass_of(request, resources, access)
    )


@router.post("/s/{token}/code")
async def recipient_code(token: str, request: Request, resources: Resources) -> HTMLResponse:
    """Send a one-time code to the recipient's other channel."""
    posted = await _posted(token, request, resources)
    if isinstance(posted, HTMLResponse):
        return posted
    access, _ = posted
    t = translator(request)
    route = code_route(access)
    try:
        sent = await resources.identity.send_code(
            purpose=OtpPurpose.SERVICE_ACCESS,
            subject=route.subject(access),
            channel=route.channel,
            destination=route.address,
            sender=resources.sender,
            text=_code_text(access, route.channel),
        )
    except RateLimitedError as e:
        return await _render(
            request,
            resources,
            access,
            token,
            recipient_pass=None,
            alert=_rate_limit_message(t, e, resources.clock.now()),
            status=429,
        )
    return await _render(
        request, resources, access, token, recipient_pass=None, sent_hint=sent.destination_hint
    )


@router.post("/s/{token}/verify")
async def recipient_verify(token: str, request: Request, resources: Resources) -> Response:
    """Check the one-time code; right: the pass, and back to the page."""
    posted = await _posted(token, request, resources)
    if isinstance(posted, HTMLResponse):
        return posted
    access, form = posted
    t = translator(request)
    code = _text(form, "code").strip()[:32]
    if not code:
        alert = t("verify.error_empty")
        return await _render(
            request, resources, access, token, recipient_pass=None, alert=alert, status=422
        )
    route = code_route(access)
    try:
        await resources.identity.verify_code(
            purpose=OtpPurpose.SERVICE_ACCESS, subject=route.subject(access), code=code
        )
    except CodeRejectedError as e:
        alert = (
            t("verify.error_wrong", left=e.attempts_left)
            if e.reason == "wrong"
            else t(f"verify.error_{e.reason}")
        )
        return await _render(
            request, resources, access, token, recipient_pass=None, alert=alert, status=422
        )
    logger.info(
        "recipient verified by a one-time code",
        extra={"attempt_id": str(access.attempt.id), "method": route.method.value},
    )
    return _with_pass(redirect(_root(token)), resources, access, token, route.method)


@router.post("/s/{token}/id")
async def recipient_id_digits(token: str, request: Request, resources: Resources) -> Response:
    """Check the last four characters of the ID number. The answers never tell a wrong number
    from no number on file (the service counts and locks both alike)."""
    posted = await _posted(token, request, resources)
    if isinstance(posted, HTMLResponse):
        return posted
    access, form = posted
    t = translator(request)
    digits = _text(form, "id_last4").translate(_FULL_WIDTH).strip().upper()
    if not _ID_DIGITS.match(digits):
        # Not an answer at all (empty, too short, letters): said so, and not counted as a try.
        alert = t("srv_recipient.id_error_format")
        return await _render(
            request, resources, access, token, recipient_pass=None, alert=alert, status=422
        )
    service = _service(resources)
    try:
        await service.check_id_digits(access=access, digits=digits)
    except IdentityCheckError as e:
        if e.reason in ("locked", "closed"):
            # Shown with the recipient as now stored: the page says until when, or that this
            # way is closed (its form gone), before anyone tries again.
            fresh = await _open(token, resources)
            current = fresh or access
            if e.reason == "closed":
                alert = t("srv_recipient.id_error_closed")
                status = 403
            else:
                until = current.recipient.locked_until or resources.clock.now()
                minutes = _wait_minutes(until, resources.clock.now())
                alert = t("srv_recipient.id_error_locked", minutes=minutes)
                status = 429
            return await _render(
                request, resources, current, token, recipient_pass=None, alert=alert, status=status
            )
        alert = t("srv_recipient.id_error_wrong", left=e.attempts_left)
        return await _render(
            request, resources, access, token, recipient_pass=None, alert=alert, status=422
        )
    logger.info(
        "recipient verified by ID digits",
        extra={"attempt_id": str(access.attempt.id), "method": IdentityMethod.ID_DIGITS.value},
    )
    return _with_pass(redirect(_root(token)), resources, access, token, IdentityMethod.ID_DIGITS)


@router.get("/s/{token}/document")
async def recipient_document(token: str, request: Request, resources: Resources) -> Response:
    """The document, inline (view in the browser) or as an attachment (``?download=1``).

    Every fetch that is not a reader's mid-file range request is recorded as CONTENT_ACCESSED
    first: the event is committed before a byte leaves, so the court never served content it
    has no record of (a transfer that fails afterwards is on record as an access; the recipient
    can report the document unreadable)."""
    access = await _open(token, resources)
    if access is None:
        return await _invalid(request)
    recipient_pass = _pass_of(request, resources, access)
    if recipient_pass is None:
        return redirect(_root(token))
    service = _service(resources)
    document = access.document
    download = request.query_params.get("download") == "1"
    byte_range = request.headers.get("range")
    # With If-Range the server may answer with the whole file (the file changed, or the
    # validator is not ours): count that as an open too. Counting one too many is harmless,
    # one too few is content served without a record.
    fresh_open = (
        byte_range is None or bool(_FROM_START.match(byte_range)) or "if-range" in request.headers
    )
    t = translator(request)
    try:
        path = await service.document_path(document)
        # The page names the document's SHA-256 and the event says this is what was served:
        # check the stored bytes still are that document before saying so.
        intact = not fresh_open or await asyncio.to_thread(sha256_of_file, path) == document.sha256
        if not intact:
            logger.error("recipient page: document %s altered in storage", document.id)
    except (StorageError, OSError):
        logger.exception("recipient page: document %s cannot be read", document.id)
        intact = False
    if not intact:
        return await _render(
            request,
            resources,
            access,
            token,
            recipient_pass=recipient_pass,
            alert=t("srv_recipient.error_document"),
            status=503,
        )
    if fresh_open:
        raw = canonical_json(
            {
                "method": recipient_pass.method.value,
                "download": download,
                "document": document.sha256,
                "range": byte_range,
                **_client(request),
            }
        ).decode()
        await service.record_recipient_event(
            access=access,
            kind=EvidenceKind.CONTENT_ACCESSED,
            raw=raw,
            detail="download" if download else "view",
            summary=recipient_pass.method.value,
        )
    is_pdf = document.media_type == "application/pdf"
    disposition = "inline" if is_pdf and not download else "attachment"
    return FileResponse(
        path,
        media_type=document.media_type if is_pdf else "application/octet-stream",
        headers={
            "Content-Disposition": content_disposition(disposition, document),
            # A court document with personal data: kept by no shared cache, nor the browser's.
            "Cache-Control": "private, no-store",
        },
    )


@router.post("/s/{token}/acknowledge")
async def recipient_acknowledge(token: str, request: Request, resources: Resources) -> Response:
    """The "I have received it" button: ACKNOWLEDGED, once per recipient (again: the same
    page, nothing new recorded)."""
    posted = await _posted(token, request, resources)
    if isinstance(posted, HTMLResponse):
        return posted
    access, _ = posted
    t = translator(request)
    recipient_pass = _pass_of(request, resources, access)
    if recipient_pass is None:
        alert = t("srv_recipient.error_pass")
        return await _render(
            request, resources, access, token, recipient_pass=None, alert=alert, status=403
        )
    locale_statement = t("srv_recipient.ack_statement")
    raw = canonical_json(
        {
            "method": recipient_pass.method.value,
            "document": access.document.sha256,
            "statement": locale_statement,
            **_client(request),
        }
    ).decode()
    recipient, recorded = await _service(resources).acknowledge_once(
        access=access, raw=raw, summary=recipient_pass.method.value
    )
    if recorded:
        logger.info(
            "recipient acknowledged",
            extra={"attempt_id": str(access.attempt.id), "served": recipient.served_at is not None},
        )
    # Again: nothing new is recorded and the page is the same (it shows the first time).
    return done(_root(token), resources, N_("srv_recipient.ack_done"))


@router.post("/s/{token}/problem")
async def recipient_problem(token: str, request: Request, resources: Resources) -> Response:
    """The "report a problem" form: a reason code and the recipient's words, kept verbatim
    (REJECTED)."""
    posted = await _posted(token, request, resources)
    if isinstance(posted, HTMLResponse):
        return posted
    access, form = posted
    t = translator(request)
    recipient_pass = _pass_of(request, resources, access)
    if recipient_pass is None:
        alert = t("srv_recipient.error_pass")
        return await _render(
            request, resources, access, token, recipient_pass=None, alert=alert, status=403
        )
    reason = _text(form, "reason")
    text = _text(form, "text")
    errors: dict[str, str] = {}
    if reason not in PROBLEM_REASONS:
        errors["reason"] = t("srv_recipient.problem_error_reason")
    if len(text) > PROBLEM_TEXT_LIMIT:
        errors["text"] = t("srv_recipient.problem_error_long", limit=PROBLEM_TEXT_LIMIT)
    elif "\x00" in text:
        # Kept verbatim or not at all: PostgreSQL text cannot hold NUL, and we do not alter it.
        errors["text"] = t("srv_recipient.problem_error_chars")
    elif reason == RejectionReason.OTHER.value and not text.strip():
        errors["text"] = t("srv_recipient.problem_error_empty")
    if errors:
        return await _render(
            request,
            resources,
            access,
            token,
            recipient_pass=recipient_pass,
            alert=t("srv_recipient.problem_error"),
            problem_form={"reason": reason, "text": text},
            problem_errors=errors,
            status=422,
        )
    await _service(resources).record_recipient_event(
        access=access,
        kind=EvidenceKind.REJECTED,
        detail=reason,
        raw=text,
        summary=f"{reason} · {recipient_pass.method.value}",
    )
    logger.info(
        "recipient reported a problem",
        extra={"attempt_id": str(access.attempt.id), "reason": reason},
    )
    return done(
        _root(token),
        resources,
        N_("srv_recipient.problem_done"),
        reason=t(f"srv_recipient.reason.{reason}"),
    )


# The file name ---------------------------------------------------------------------------------


def _file_name(title: str) -> str:
    name = unicodedata.normalize("NFC", title)
    name = _UNSAFE_IN_NAME.sub("_", name).strip(" .")
    return name[:120] or "document"


def content_disposition(disposition: str, document: repo.DocumentRow) -> str:
    """RFC 6266 with an RFC 8187 (ex 5987) UTF-8 name (the document's title, often Chinese)
    and a plain ASCII name for clients that read only ``filename``."""
    if document.media_type == "application/pdf":
        suffix = ".pdf"
    else:
        _, dot, given = document.filename.rpartition(".")
        ok = dot and given.isascii() and given.isalnum() and len(given) <= 8
        suffix = f".{given.lower()}" if ok else ""
    fallback = f"document-{document.sha256[:12]}{suffix}"
    name = quote(_file_name(document.title) + suffix, safe="")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{name}"
