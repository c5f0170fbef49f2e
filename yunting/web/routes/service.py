"""Electronic service for court staff: documents of a case, service orders, the delivery
dashboard, resend / fallback / postal, CSV export and the proof-of-service certificate.

The API (``/api/...``) and the pages share one set of service calls; the pages post forms with
the session's CSRF token, the API takes ``X-CSRF-Token`` with the session cookie or a bearer
token. Work is queued only after the service committed it (the database is the source of
truth; the queue is a hint the sweeper repeats).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload

from yunting.hearing.errors import HearingError
from yunting.hearing.model import Actor, PartySide, Permission, staff_may
from yunting.infra.ledger.service import Ledger
from yunting.service_delivery import dashboard
from yunting.service_delivery.addresses import masked
from yunting.service_delivery.certificate import (
    certificate_filename,
    find_cjk_font,
    render_certificate,
)
from yunting.service_delivery.dashboard import Filter, RecipientStatus
from yunting.service_delivery.deadlines import AppealKind
from yunting.service_delivery.documents import DocumentKind
from yunting.service_delivery.errors import ServiceDeliveryError, ServiceNotFoundError
from yunting.service_delivery.model import ConsentTier
from yunting.service_delivery.ports import Channel
from yunting.service_delivery.proof import certificate_data, certificate_number
from yunting.service_delivery.replies import replies_to_review
from yunting.service_delivery.repository import DocumentRow, EventRow
from yunting.service_delivery.service import (
    OrderView,
    RecipientSpec,
    ServiceDeliveryService,
)
from yunting.web.deps import Resources, Staff
from yunting.web.errors import status_for
from yunting.web.resources import AppResources
from yunting.web.routes.pages import (
    N_,
    PageStaff,
    Translate,
    checked_form,
    court_tz,
    done,
    error_message,
    field,
    page,
    translator,
)
from yunting.web.schemas import ERRORS

logger = logging.getLogger(__name__)

router = APIRouter(tags=["electronic service"], responses=ERRORS)
page_router = APIRouter(include_in_schema=False)

DEFAULT_LEGAL_BASIS = "《中华人民共和国民事诉讼法》第九十条"
MAX_BASIS = 500
MAX_CONSENT_SOURCE = 500
MAX_REASON = 1000
_CHUNK = 1 << 20


def _delivery(resources: AppResources) -> ServiceDeliveryService:
    if resources.delivery is None:
        raise RuntimeError("electronic service is not configured in this process")
    return resources.delivery.service


async def _queue(resources: AppResources, attempt_ids: list[UUID]) -> None:
    """Hand committed attempts to the queue. A failure here loses nothing: the attempts are in
    the database as created and the sweeper queues them again."""
    if resources.delivery is None or not attempt_ids:
        return
    try:
        await resources.delivery.queue.put(attempt_ids)
    except Exception:
        logger.exception("queueing %d attempts failed; the sweeper will", len(attempt_ids))


# Schemas --------------------------------------------------------------------------------------


class DocumentOut(BaseModel):
    id: UUID
    case_id: UUID
    kind: str
    title: str
    filename: str
    media_type: str
    size: int
    sha256: str = Field(description="SHA-256 of the file as stored, lowercase hex")
    ledger_index: int = Field(description="The document's entry in the evidence ledger")
    uploaded_at: str

    @classmethod
    def of(cls, d: DocumentRow) -> DocumentOut:
        return cls(
            id=d.id,
            case_id=d.case_id,
            kind=d.kind,
            title=d.title,
            filename=d.filename,
            media_type=d.media_type,
            size=d.size,
            sha256=d.sha256,
            ledger_index=d.ledger_index,
            uploaded_at=d.uploaded_at.isoformat(),
        )


class RecipientIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: Literal["plaintiff", "defendant", "third_party", "counsel"]
    channels: list[Channel] = Field(min_length=1, max_length=2)
    consent_tier: ConsentTier = Field(
        description="tier1: the recipient provided or confirmed this address (served when the "
        "message reaches it); tier2: an address the court found (served on acknowledgement, "
        "reply or litigation act)"
    )
    consent_source: str = Field(
        min_length=1,
        max_length=MAX_CONSENT_SOURCE,
        description="Where the consent and address come from, e.g. 送达地址确认书 of a date",
    )
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    id_last4: str | None = Field(default=None, pattern=r"^[0-9Xx]{4}$")
    person_id: UUID | None = None
    abroad: bool = Field(default=False, description="No domicile in China (30-day appeal period)")


class OrderIn(BaseModel):
    case_id: UUID
    document_id: UUID
    legal_basis: str = Field(default=DEFAULT_LEGAL_BASIS, min_length=1, max_length=MAX_BASIS)
    deadline_kind: Literal["appeal_judgment", "appeal_ruling", "none"] = "appeal_judgment"
    recipients: list[RecipientIn] = Field(min_length=1, max_length=200)


class OrderCreated(BaseModel):
    order_id: UUID
    attempt_ids: list[UUID]


class ChannelOut(BaseModel):
    channel: Channel
    address: str = Field(description="Masked")
    status: str
    try_no: int
    at: str
    error: str
    in_flight: bool


class RecipientOut(BaseModel):
    id: UUID
    name: str
    role: str
    consent_tier: str
    state: str = Field(description="pending, awaiting_ack, failed or served")
    overdue: bool
    postal_requested: bool
    served_at: str | None
    rule_id: str | None
    ruleset_version: str | None
    decision_reason: str | None
    presumption: bool
    deadline_on: str | None
    channels: list[ChannelOut]
    certificate_no: str


class OrderOut(BaseModel):
    id: UUID
    case_id: UUID
    case_number: str
    document: DocumentOut
    legal_basis: str
    deadline_kind: str
    created_at: str
    recipients: list[RecipientOut]


class EventOut(BaseModel):
    id: int
    kind: str
    at: str
    recipient_id: UUID | None
    attempt_id: UUID | None
    channel: str | None
    receipt_status: str | None
    detail: str
    summary: str
    raw: str = Field(description="The event's record verbatim (raw SMTP reply, raw DLR, ...)")
    sha256: str
    ledger_index: int


class OrderDetail(OrderOut):
    events: list[EventOut]


class OutcomeDayOut(BaseModel):
    day: str
    served: int
    delivered: int
    failed: int


class DashboardOut(BaseModel):
    counts: dict[str, int]
    orders: list[OrderOut]
    outcomes: list[OutcomeDayOut]


class ResendIn(BaseModel):
    channel: Channel
    fallback: bool = Field(
        default=False, description="True: a fallback to this channel (FALLBACK_INITIATED)"
    )


class PostalIn(BaseModel):
    reason: str = Field(min_length=1, max_length=MAX_REASON)


class ConfirmReplyIn(BaseModel):
    note: str = Field(default="", max_length=MAX_REASON)


class AttemptQueued(BaseModel):
    attempt_id: UUID


# Shared views -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecipientView:
    row: Any  # repository.RecipientRow
    status: RecipientStatus
    certificate_no: str


@dataclass(frozen=True, slots=True)
class OrderPanel:
    view: OrderView
    recipients: list[RecipientView]


def _overdue_after(resources: AppResources) -> timedelta:
    return timedelta(hours=resources.settings.service_overdue_h)


async def _court_code(resources: AppResources, actor: Actor) -> str:
    if actor.court_id is None:
        return "X"
    court = await resources.hearings.get_court(court_id=actor.court_id)
    return court.code if court is not None else "X"


def _panel(resources: AppResources, view: OrderView, court_code: str) -> OrderPanel:
    now = resources.clock.now()
    return OrderPanel(
        view=view,
        recipients=[
            RecipientView(
                row=r,
                status=dashboard.recipient_status(
                    r,
                    view.attempts.get(r.id, []),
                    now=now,
                    ordered_at=view.order.created_at,
                    overdue_after=_overdue_after(resources),
                ),
                certificate_no=certificate_number(r, court_code=court_code),
            )
            for r in view.recipients
        ],
    )


def _order_out(panel: OrderPanel) -> OrderOut:
    view = panel.view
    return OrderOut(
        id=view.order.id,
        case_id=view.case.id,
        case_number=view.case.number,
        document=DocumentOut.of(view.document),
        legal_basis=view.order.legal_basis,
        deadline_kind=view.order.deadline_kind,
        created_at=view.order.created_at.isoformat(),
        recipients=[
            RecipientOut(
                id=r.row.id,
                name=r.row.name,
                role=r.row.role,
                consent_tier=r.row.consent_tier,
                state=r.status.state.value,
                overdue=r.status.overdue,
                postal_requested=r.status.postal,
                served_at=r.row.served_at.isoformat() if r.row.served_at else None,
                rule_id=r.row.rule_id,
                ruleset_version=r.row.ruleset_version,
                decision_reason=r.row.decision_reason,
                presumption=r.row.presumption,
                deadline_on=r.row.deadline_on,
                certificate_no=r.certificate_no,
                channels=[
                    ChannelOut(
                        channel=c.channel,
                        address=c.address,
                        status=c.status.value,
                        try_no=c.try_no,
                        at=c.at.isoformat(),
                        error=c.error,
                        in_flight=c.in_flight,
                    )
                    for c in r.status.channels
                ],
            )
            for r in panel.recipients
        ],
    )


def _event_out(e: EventRow) -> EventOut:
    return EventOut(
        id=e.id,
        kind=e.kind,
        at=e.at.isoformat(),
        recipient_id=e.recipient_id,
        attempt_id=e.attempt_id,
        channel=e.channel,
        receipt_status=e.receipt_status,
        detail=e.detail,
        summary=e.summary,
        raw=e.raw,
        sha256=e.sha256,
        ledger_index=e.ledger_index,
    )


@dataclass(frozen=True, slots=True)
class Dashboard:
    panels: list[OrderPanel]
    counts: dict[str, int]
    outcomes: list[dashboard.OutcomeDay]
    wanted: Filter


async def _dashboard(
    resources: AppResources, actor: Actor, wanted: Filter, case_id: UUID | None = None
) -> Dashboard:
    views = await _delivery(resources).list_orders(actor=actor, case_id=case_id)
    code = await _court_code(resources, actor)
    panels = [_panel(resources, v, code) for v in views]
    statuses = [r.status for p in panels for r in p.recipients]
    tz = court_tz(resources)
    outcomes = dashboard.outcomes_by_day(
        [r.row for p in panels for r in p.recipients],
        [a for v in views for attempts in v.attempts.values() for a in attempts],
        tz=tz,
        today=resources.clock.now().astimezone(tz).date(),
    )
    shown = [
        OrderPanel(p.view, [r for r in p.recipients if r.status.matches(wanted)]) for p in panels
    ]
    return Dashboard(
        panels=[p for p in shown if p.recipients],
        counts=dashboard.counts(statuses),
        outcomes=outcomes,
        wanted=wanted,
    )


def _csv_response(resources: AppResources, board: Dashboard) -> Response:
    rows = [
        dashboard.CsvRow(
            case_number=p.view.case.number,
            document=p.view.document.title,
            document_sha256=p.view.document.sha256,
            ordered_at=p.view.order.created_at,
            recipient=r.row,
            status=r.status,
        )
        for p in board.panels
        for r in p.recipients
    ]
    text = dashboard.to_csv(rows, tz=court_tz(resources))
    day = resources.clock.now().astimezone(court_tz(resources)).date().isoformat()
    # The BOM lets spreadsheet programs read the Chinese names as UTF-8.
    return Response(
        "\ufeff" + text,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="service-{board.wanted.value}-{day}.csv"'
        },
    )


async def _certificate(request: Request, actor: Actor, recipient_id: UUID) -> Response:
    resources: AppResources = request.app.state.resources
    ledger: Ledger = request.app.state.ledger
    inputs = await _delivery(resources).proof_inputs(actor=actor, recipient_id=recipient_id)
    # The head must cover every event listed: sign one now (a no-op if the log did not grow).
    head = await ledger.sign_tree_head()
    data = certificate_data(
        court_name=inputs.court.name,
        court_code=inputs.court.code,
        case_number=inputs.case.number,
        case_title=inputs.case.title,
        document_title=inputs.document.title,
        document_sha256=inputs.document.sha256,
        document_size=inputs.document.size,
        order=inputs.order,
        recipient=inputs.recipient,
        events=inputs.events,
        tree_head=head,
        public_base_url=resources.settings.public_base_url,
        generated_at=resources.clock.now(),
        timezone=court_tz(resources),
    )
    configured = resources.settings.certificate_font_path
    font = Path(configured) if configured else find_cjk_font()
    pdf = await asyncio.to_thread(render_certificate, data, font_path=font)
    name = certificate_filename(data)
    logger.info("certificate %s rendered (%d bytes)", data.certificate_no, len(pdf))
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": name.content_disposition(),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


async def _spool(resources: AppResources, upload: StarletteUpload) -> Path:
    """The upload in a file of its own under the data directory (the store moves it in)."""
    spool_dir = resources.settings.data_dir / "tmp"
    spool_dir.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=spool_dir, suffix=".upload", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        with handle:
            while chunk := await upload.read(_CHUNK):
                await asyncio.to_thread(handle.write, chunk)
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    return path


async def _upload(
    resources: AppResources,
    actor: Actor,
    case_id: UUID,
    upload: StarletteUpload,
    *,
    title: str,
    kind: DocumentKind,
) -> DocumentRow:
    source = await _spool(resources, upload)
    try:
        return await _delivery(resources).upload_document(
            actor=actor,
            case_id=case_id,
            kind=kind,
            title=title or (upload.filename or ""),
            filename=Path(upload.filename or "document.pdf").name,
            source=source,
        )
    finally:
        await asyncio.to_thread(source.unlink, missing_ok=True)


async def _create_order(resources: AppResources, actor: Actor, body: OrderIn) -> OrderCreated:
    order_id, attempt_ids = await _delivery(resources).create_order(
        actor=actor,
        case_id=body.case_id,
        document_id=body.document_id,
        legal_basis=body.legal_basis,
        deadline_kind=body.deadline_kind,
        recipients=[
            RecipientSpec(
                name=r.name,
                role=r.role,
                channels=tuple(r.channels),
                consent_tier=r.consent_tier,
                consent_source=r.consent_source.strip(),
                phone=r.phone,
                email=r.email,
                id_last4=r.id_last4.upper() if r.id_last4 else None,
                person_id=r.person_id,
                abroad=r.abroad,
            )
            for r in body.recipients
        ],
    )
    await _queue(resources, attempt_ids)
    return OrderCreated(order_id=order_id, attempt_ids=attempt_ids)


# API ----------------------------------------------------------------------------------------------


@router.post(
    "/api/cases/{case_id}/documents",
    status_code=201,
    summary="Upload a court document of a case",
    description=(
        "Multipart form: `file`, `title`, `kind` (judgment, ruling, notice, other). A judgment "
        "or ruling must be a PDF, checked by its content (header and trailer), not its name. "
        "The size limit is `YUNTING_MAX_UPLOAD_BYTES` (413 above it). The file is stored with "
        "its SHA-256 and entered in the evidence ledger. Clerks only."
    ),
)
async def upload_document(
    case_id: UUID,
    staff: Staff,
    resources: Resources,
    file: Annotated[UploadFile, File(description="The document")],
    title: Annotated[str, Form(max_length=300)] = "",
    kind: Annotated[DocumentKind, Form()] = DocumentKind.JUDGMENT,
) -> DocumentOut:
    document = await _upload(resources, staff.actor, case_id, file, title=title, kind=kind)
    return DocumentOut.of(document)


@router.get("/api/cases/{case_id}/documents", summary="The documents of a case")
async def list_documents(case_id: UUID, staff: Staff, resources: Resources) -> list[DocumentOut]:
    found = await _delivery(resources).list_documents(actor=staff.actor, case_id=case_id)
    return [DocumentOut.of(d) for d in found]


@router.post(
    "/api/service/orders",
    status_code=201,
    summary="Serve a document on recipients (送达)",
    description=(
        "Creates the order, one attempt per recipient and channel, and their evidence "
        "(SERVICE_ORDERED, CONSENT_RECORDED, SUBMISSION_ACCEPTED) in one transaction, then "
        "queues the attempts. Addresses are checked first: one invalid phone number or email "
        "refuses the whole order (422, `field` names it) and nothing is stored. Clerks only."
    ),
)
async def create_order(body: OrderIn, staff: Staff, resources: Resources) -> OrderCreated:
    return await _create_order(resources, staff.actor, body)


@router.get(
    "/api/service/dashboard",
    summary="The delivery dashboard",
    description=(
        "Every service order of your court with each recipient's state (pending, "
        "awaiting_ack, failed, served) and overdue flag, the counts per filter, and delivery "
        "outcomes per day for the last 14 days. `filter` keeps the recipients it matches."
    ),
)
async def dashboard_json(
    staff: Staff,
    resources: Resources,
    filter: Annotated[Filter, Query()] = Filter.ALL,
    case_id: UUID | None = None,
) -> DashboardOut:
    board = await _dashboard(resources, staff.actor, filter, case_id)
    return DashboardOut(
        counts=board.counts,
        orders=[_order_out(p) for p in board.panels],
        outcomes=[
            OutcomeDayOut(
                day=o.day.isoformat(), served=o.served, delivered=o.delivered, failed=o.failed
            )
            for o in board.outcomes
        ],
    )


@router.get(
    "/api/service/dashboard.csv",
    summary="The delivery dashboard as CSV",
    description="One row per recipient (UTF-8 with BOM; addresses masked), for spreadsheets.",
    response_class=Response,
)
async def dashboard_csv(
    staff: Staff,
    resources: Resources,
    filter: Annotated[Filter, Query()] = Filter.ALL,
) -> Response:
    return _csv_response(resources, await _dashboard(resources, staff.actor, filter))


@router.get("/api/service/orders/{order_id}", summary="One service order with its evidence")
async def get_order(order_id: UUID, staff: Staff, resources: Resources) -> OrderDetail:
    service = _delivery(resources)
    view = await service.get_order(actor=staff.actor, order_id=order_id)
    events = await service.events(actor=staff.actor, order_id=order_id)
    panel = _panel(resources, view, await _court_code(resources, staff.actor))
    return OrderDetail(**_order_out(panel).model_dump(), events=[_event_out(e) for e in events])


@router.post(
    "/api/service/recipients/{recipient_id}/resend",
    status_code=201,
    summary="Resend, or fall back to the other channel",
    description=(
        "A new attempt on `channel` (409 while one on that channel is in flight). With "
        "`fallback`, it is recorded as FALLBACK_INITIATED. Clerks only."
    ),
)
async def resend(
    recipient_id: UUID, body: ResendIn, staff: Staff, resources: Resources
) -> AttemptQueued:
    attempt_id = await _delivery(resources).resend(
        actor=staff.actor, recipient_id=recipient_id, channel=body.channel, fallback=body.fallback
    )
    await _queue(resources, [attempt_id])
    return AttemptQueued(attempt_id=attempt_id)


@router.post(
    "/api/service/recipients/{recipient_id}/postal",
    status_code=204,
    summary="Mark a recipient for postal service (邮寄送达)",
    description="Recorded as FALLBACK_INITIATED with the reason; 409 if already marked.",
    response_class=Response,
)
async def postal(
    recipient_id: UUID, body: PostalIn, staff: Staff, resources: Resources
) -> Response:
    await _delivery(resources).request_postal(
        actor=staff.actor, recipient_id=recipient_id, reason=body.reason.strip()
    )
    return Response(status_code=204)


@router.post(
    "/api/service/recipients/{recipient_id}/replies/{reply_id}/confirm",
    status_code=204,
    summary="Confirm that a recipient's reply acknowledges receipt",
    description=(
        "A reply the recipient sent back (an SMS from their handset: a REPLY_RECEIVED event whose "
        "`detail` is `reply:<reply_id>`) is evidence, but does not serve by itself. A clerk who "
        "reads it as confirming receipt records ACKNOWLEDGED at the time of the reply "
        "(在线诉讼规则 第三十一条第二款第（一）项), naming the reply, its hash, the clerk and "
        "`note`; the recipient is decided again. A part of a concatenated SMS confirms the "
        "whole message (the parts that arrived, joined; at the time of the last one; known by "
        "the part stored first). 404 for a reply not from this recipient, 409 if already "
        "confirmed. Clerks only."
    ),
    response_class=Response,
)
async def confirm_reply(
    recipient_id: UUID, reply_id: int, body: ConfirmReplyIn, staff: Staff, resources: Resources
) -> Response:
    await _delivery(resources).confirm_reply(
        actor=staff.actor, recipient_id=recipient_id, reply_id=reply_id, note=body.note.strip()
    )
    return Response(status_code=204)


@router.get(
    "/api/service/recipients/{recipient_id}/certificate.pdf",
    summary="The proof-of-service certificate (电子送达凭证)",
    description=(
        "A PDF: the case, the document's hash, the addresses (masked), the event timeline with "
        "each event's hash and ledger index, the rule applied and its basis, the signed tree "
        "head and a QR code to the verify page. Rendered from the evidence on each request."
    ),
    response_class=Response,
)
async def certificate(recipient_id: UUID, request: Request, staff: Staff) -> Response:
    return await _certificate(request, staff.actor, recipient_id)


# Pages ------------------------------------------------------------------------------------------


def _may_serve(staff: Any) -> bool:
    return staff_may(staff.session.user.role, Permission.SERVICE_ORDER)


def _board_context(board: Dashboard) -> dict[str, Any]:
    peak = max([o.served + o.delivered + o.failed for o in board.outcomes] + [1])
    return {
        "board": board,
        "filters": list(Filter),
        "chart_peak": peak,
    }


@page_router.get("/service")
async def dashboard_page(
    request: Request,
    resources: Resources,
    staff: PageStaff,
    filter: Annotated[Filter, Query()] = Filter.ALL,
) -> HTMLResponse:
    board = await _dashboard(resources, staff.actor, filter)
    return await page(
        request,
        "service_dashboard.html",
        {**_board_context(board), "may_serve": _may_serve(staff)},
    )


@page_router.get("/service/live")
async def dashboard_live(
    request: Request,
    resources: Resources,
    staff: PageStaff,
    filter: Annotated[Filter, Query()] = Filter.ALL,
) -> HTMLResponse:
    """The dashboard's body alone: the page's script swaps it in (live updates, no reload)."""
    board = await _dashboard(resources, staff.actor, filter)
    return await page(request, "service_dashboard_body.html", _board_context(board))


@page_router.get("/service/export.csv")
async def dashboard_export(
    resources: Resources,
    staff: PageStaff,
    filter: Annotated[Filter, Query()] = Filter.ALL,
) -> Response:
    return _csv_response(resources, await _dashboard(resources, staff.actor, filter))


async def _order_context(resources: AppResources, staff: Any, order_id: UUID) -> dict[str, Any]:
    service = _delivery(resources)
    view = await service.get_order(actor=staff.actor, order_id=order_id)
    events = await service.events(actor=staff.actor, order_id=order_id)
    panel = _panel(resources, view, await _court_code(resources, staff.actor))
    names = {r.id: r.name for r in view.recipients}
    messages = await service.reply_messages(actor=staff.actor, order_id=order_id)
    # REPLY_RECEIVED event id → its message's reply id, for the messages no clerk has
    # confirmed yet; the form to confirm one is on the event of its first part.
    to_review = replies_to_review(events, messages)
    confirm_on: dict[int, int] = {}
    for event_id, reply_id in to_review.items():
        if reply_id not in confirm_on.values():
            confirm_on[event_id] = reply_id
    return {
        "panel": panel,
        "events": events,
        "replies_to_review": to_review,
        "confirm_on": confirm_on,
        "messages": messages,
        "reviewing": {e.recipient_id for e in events if e.id in to_review},
        "recipient_names": names,
        "may_serve": _may_serve(staff),
        "channels": list(Channel),
    }


@page_router.get("/service/orders/{order_id}")
async def order_page(
    order_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> HTMLResponse:
    return await page(
        request, "service_order.html", await _order_context(resources, staff, order_id)
    )


@page_router.get("/service/orders/{order_id}/live")
async def order_live(
    order_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> HTMLResponse:
    return await page(
        request, "service_order_body.html", await _order_context(resources, staff, order_id)
    )


async def _recipient_form(
    request: Request,
    resources: AppResources,
    staff: Any,
    recipient_id: UUID,
    act: Callable[[FormData, Translate], Awaitable[None]],
    flash: str,
) -> Response:
    """A clerk's form about one recipient on the order page: ``act(form, t)`` once the form's
    CSRF token holds; back to the order page, with ``flash`` or with what went wrong."""
    form = await checked_form(request, staff)
    order_id = await _delivery(resources).order_of_recipient(
        actor=staff.actor, recipient_id=recipient_id
    )
    try:
        await act(form, translator(request))
    except (ServiceDeliveryError, HearingError, _FormError) as e:
        return await _order_failure(request, resources, staff, order_id, e)
    return done(f"/service/orders/{order_id}", resources, flash)


@page_router.post("/service/recipients/{recipient_id}/resend")
async def resend_form(
    recipient_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> Response:
    async def act(form: FormData, t: Translate) -> None:
        channel_text = field(form, "channel")
        if channel_text not in {c.value for c in Channel}:
            raise _FormError(t("srv.error_channel"))
        attempt_id = await _delivery(resources).resend(
            actor=staff.actor,
            recipient_id=recipient_id,
            channel=Channel(channel_text),
            fallback=field(form, "fallback") == "1",
        )
        await _queue(resources, [attempt_id])

    return await _recipient_form(
        request, resources, staff, recipient_id, act, N_("flash.srv_resent")
    )


@page_router.post("/service/recipients/{recipient_id}/postal")
async def postal_form(
    recipient_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> Response:
    async def act(form: FormData, t: Translate) -> None:
        reason = field(form, "reason").strip()
        if not reason or len(reason) > MAX_REASON:
            raise _FormError(t("srv.error_reason", limit=MAX_REASON))
        await _delivery(resources).request_postal(
            actor=staff.actor, recipient_id=recipient_id, reason=reason
        )

    return await _recipient_form(
        request, resources, staff, recipient_id, act, N_("flash.srv_postal")
    )


@page_router.post("/service/recipients/{recipient_id}/replies/{reply_id}/confirm")
async def confirm_reply_form(
    recipient_id: UUID, reply_id: int, request: Request, resources: Resources, staff: PageStaff
) -> Response:
    async def act(form: FormData, t: Translate) -> None:
        note = field(form, "note").strip()
        if len(note) > MAX_REASON:
            raise _FormError(t("srv.error_reason", limit=MAX_REASON))
        await _delivery(resources).confirm_reply(
            actor=staff.actor, recipient_id=recipient_id, reply_id=reply_id, note=note
        )

    return await _recipient_form(
        request, resources, staff, recipient_id, act, N_("flash.srv_reply_confirmed")
    )


@page_router.get("/service/recipients/{recipient_id}/certificate.pdf")
async def certificate_page(recipient_id: UUID, request: Request, staff: PageStaff) -> Response:
    return await _certificate(request, staff.actor, recipient_id)


class _FormError(Exception):
    """A form field the clerk must correct (its message is already translated)."""


async def _order_failure(
    request: Request, resources: AppResources, staff: Any, order_id: UUID, exc: Exception
) -> HTMLResponse:
    t = translator(request)
    context = await _order_context(resources, staff, order_id)
    if isinstance(exc, _FormError):
        context.update(error=str(exc), status=422)
    else:
        context.update(_service_failure(t, exc))
    return await page(request, "service_order.html", context, status=context["status"])


def _service_failure(t: Any, exc: Exception) -> dict[str, Any]:
    status, code = status_for(exc)
    message = error_message(t, exc) if isinstance(exc, HearingError) else t(f"srv.error_{code}")
    return {"error": message, "error_detail": str(exc), "status": status}


# The new-order form -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """A person the case knows, offered as a recipient."""

    key: str
    person_id: UUID
    name: str
    role: str
    phone: str | None
    email: str | None
    id_last4: str | None
    represents: str  # for counsel: the party's name


async def _candidates(resources: AppResources, actor: Actor, case_id: UUID) -> list[Candidate]:
    hearings = resources.hearings
    found: list[Candidate] = []
    sides = list(PartySide)
    parties = sorted(
        await hearings.list_parties(actor=actor, case_id=case_id),
        key=lambda p: sides.index(p.side),
    )
    for party in parties:
        person = await hearings.get_person(actor=actor, person_id=party.person_id)
        found.append(
            Candidate(
                key=f"r{len(found)}",
                person_id=person.id,
                name=person.name,
                role=party.side.value,
                phone=person.phone,
                email=person.email,
                id_last4=person.id_number_last4,
                represents="",
            )
        )
        if party.counsel_person_id:
            counsel = await hearings.get_person(actor=actor, person_id=party.counsel_person_id)
            found.append(
                Candidate(
                    key=f"r{len(found)}",
                    person_id=counsel.id,
                    name=counsel.name,
                    role="counsel",
                    phone=counsel.phone,
                    email=counsel.email,
                    id_last4=counsel.id_number_last4,
                    represents=person.name,
                )
            )
    return found


async def _new_order_context(
    resources: AppResources, staff: Any, case_id: UUID, values: dict[str, Any] | None = None
) -> dict[str, Any]:
    actor = staff.actor
    case = await resources.hearings.get_case(actor=actor, case_id=case_id)
    documents = await _delivery(resources).list_documents(actor=actor, case_id=case_id)
    candidates = await _candidates(resources, actor, case_id)
    defaults: dict[str, Any] = {
        "document_id": str(documents[-1].id) if documents else "",
        "legal_basis": DEFAULT_LEGAL_BASIS,
        "deadline_kind": AppealKind.JUDGMENT.value,
    }
    for c in candidates:
        defaults[f"{c.key}_on"] = c.role != "counsel"
        defaults[f"{c.key}_sms"] = bool(c.phone)
        defaults[f"{c.key}_email"] = bool(c.email)
        defaults[f"{c.key}_tier"] = ConsentTier.TIER1.value
        defaults[f"{c.key}_consent"] = ""
    defaults.update(values or {})
    return {
        "case": case,
        "documents": documents,
        "candidates": candidates,
        "values": defaults,
        "tiers": list(ConsentTier),
        "deadline_kinds": [k.value for k in AppealKind] + ["none"],
        "document_kinds": list(DocumentKind),
        "may_serve": _may_serve(staff),
        "masked": masked,
    }


@page_router.get("/cases/{case_id}/service/new")
async def new_order_page(
    case_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> HTMLResponse:
    return await page(
        request, "service_new.html", await _new_order_context(resources, staff, case_id)
    )


@page_router.post("/cases/{case_id}/documents")
async def upload_form(
    case_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> Response:
    form = await checked_form(request, staff)
    t = translator(request)
    upload = form.get("file")
    kind_text = field(form, "kind") or DocumentKind.JUDGMENT.value
    try:
        if not isinstance(upload, StarletteUpload) or not upload.filename:
            raise _FormError(t("srv.error_no_file"))
        if kind_text not in {k.value for k in DocumentKind}:
            raise _FormError(t("srv.error_kind"))
        await _upload(
            resources,
            staff.actor,
            case_id,
            upload,
            title=field(form, "title").strip()[:300],
            kind=DocumentKind(kind_text),
        )
    except (ServiceDeliveryError, HearingError, _FormError) as e:
        context = await _new_order_context(resources, staff, case_id)
        if isinstance(e, _FormError):
            context.update(upload_error=str(e), status=422)
        else:
            outcome = _service_failure(t, e)
            context.update(upload_error=outcome["error"], status=outcome["status"])
        return await page(request, "service_new.html", context, status=context["status"])
    return done(f"/cases/{case_id}/service/new", resources, N_("flash.srv_uploaded"))


def _order_from_form(
    t: Any, form: FormData, case_id: UUID, candidates: list[Candidate]
) -> tuple[OrderIn | None, dict[str, Any], str]:
    """The posted order (or None and the message), and the values to show the form again."""
    values: dict[str, Any] = {
        "document_id": field(form, "document_id"),
        "legal_basis": field(form, "legal_basis").strip(),
        "deadline_kind": field(form, "deadline_kind"),
    }
    recipients: list[dict[str, Any]] = []
    for c in candidates:
        on = field(form, f"{c.key}_on") == "1"
        sms = field(form, f"{c.key}_sms") == "1"
        email = field(form, f"{c.key}_email") == "1"
        tier = field(form, f"{c.key}_tier")
        consent = field(form, f"{c.key}_consent").strip()
        values.update(
            {
                f"{c.key}_on": on,
                f"{c.key}_sms": sms,
                f"{c.key}_email": email,
                f"{c.key}_tier": tier,
                f"{c.key}_consent": consent,
            }
        )
        if not on:
            continue
        channels = [ch for ch, wanted in ((Channel.SMS, sms), (Channel.EMAIL, email)) if wanted]
        if not channels:
            return None, values, t("srv.error_no_channel", name=c.name)
        if not consent:
            return None, values, t("srv.error_no_consent", name=c.name)
        recipients.append(
            {
                "name": c.name,
                "role": c.role,
                "channels": channels,
                "consent_tier": tier,
                "consent_source": consent,
                "phone": c.phone if Channel.SMS in channels else None,
                "email": c.email if Channel.EMAIL in channels else None,
                "id_last4": c.id_last4,
                "person_id": c.person_id,
            }
        )
    if not values["document_id"]:
        return None, values, t("srv.error_no_document")
    if not recipients:
        return None, values, t("srv.error_no_recipient")
    try:
        body = OrderIn.model_validate(
            {
                "case_id": case_id,
                "document_id": values["document_id"],
                "legal_basis": values["legal_basis"],
                "deadline_kind": values["deadline_kind"],
                "recipients": recipients,
            }
        )
    except ValueError:
        return None, values, t("srv.error_form")
    return body, values, ""


@page_router.post("/cases/{case_id}/service")
async def create_order_form(
    case_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> Response:
    form = await checked_form(request, staff)
    t = translator(request)
    candidates = await _candidates(resources, staff.actor, case_id)
    body, values, message = _order_from_form(t, form, case_id, candidates)
    status = 422
    detail = ""
    if body is not None:
        try:
            created = await _create_order(resources, staff.actor, body)
        except (ServiceDeliveryError, HearingError) as e:
            outcome = _service_failure(t, e)
            message, status, detail = outcome["error"], outcome["status"], str(e)
        else:
            return done(f"/service/orders/{created.order_id}", resources, N_("flash.srv_ordered"))
    context = await _new_order_context(resources, staff, case_id, values)
    context.update(error=message, error_detail=detail)
    return await page(request, "service_new.html", context, status=status)


@page_router.get("/cases/{case_id}/documents/{document_id}")
async def document_page(
    case_id: UUID, document_id: UUID, resources: Resources, staff: PageStaff
) -> FileResponse:
    """A document of the case, shown in the browser (staff)."""
    service = _delivery(resources)
    for document in await service.list_documents(actor=staff.actor, case_id=case_id):
        if document.id == document_id:
            response = FileResponse(
                await service.document_path(document),
                media_type=document.media_type,
                filename=document.filename,
                content_disposition_type="inline",
            )
            response.headers["X-Content-Type-Options"] = "nosniff"
            return response
    raise ServiceNotFoundError("no such document in this case")
