"""The hearing's record for court staff: the playback page, its JSON, the verification of every
segment against the ledger, and the stored files (with range requests, so players can seek)."""

from __future__ import annotations

import hmac
import logging
from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel, StringConstraints
from starlette.datastructures import FormData

from yunting.hearing.errors import NotFoundError, PermissionDeniedError
from yunting.hearing.model import Actor, Participant, Permission
from yunting.hearing.service import HearingDetail
from yunting.hearing.tokens import derive_key
from yunting.identity.errors import CodeRejectedError, RateLimitedError
from yunting.identity.otp import OtpPurpose
from yunting.infra.logging import mask_email, mask_phone
from yunting.infra.storage import StorageError
from yunting.recording import repository as repo
from yunting.recording.access import RecordPass, issue_pass, read_pass, refusal
from yunting.recording.playback import (
    RecordView,
    build_timeline,
    position,
    record_view,
    verify_record,
)
from yunting.service_delivery.ports import Channel
from yunting.web.deps import Resources, Staff
from yunting.web.resources import AppResources
from yunting.web.routes.pages import (
    N_,
    JoinView,
    PageStaff,
    Translate,
    checked_form,
    client_strings,
    done,
    double_submit_token,
    field,
    join_context,
    join_refused,
    join_view,
    page,
    redirect,
    secure_cookies,
    translator,
)
from yunting.web.schemas import ERRORS, Strict

logger = logging.getLogger(__name__)
router = APIRouter(tags=["recording"], responses=ERRORS)

# Media types of what the record stores.
MEDIA_TYPES = {".webm": "video/webm", ".json": "application/json"}


async def _view(resources: AppResources, actor: Actor, hearing_id: UUID) -> RecordView:
    # The hearing service checks the actor may see this hearing (its court, staff roles).
    await resources.hearings.get_hearing(actor=actor, hearing_id=hearing_id)
    return await record_view(db=resources.db, hearing_id=hearing_id)


def _status(resources: AppResources, hearing_id: UUID) -> dict[str, Any] | None:
    if resources.recording is None:
        return None
    return resources.recording.status(hearing_id).model_dump(mode="json", exclude={"v", "type"})


def _view_json(
    resources: AppResources, view: RecordView, *, root: str | None = None
) -> dict[str, Any]:
    """The record as JSON. ``root`` is where a party's pages serve it (``/j/<token>/recording``);
    staff read it from the API and the files under the hearing's own address."""
    base = (root or f"/hearings/{view.hearing_id}/recording") + "/files/"
    composite = view.composite
    return {
        "hearing_id": str(view.hearing_id),
        "api": {
            "record": f"{root}/data" if root else f"/api/hearings/{view.hearing_id}/recording",
            "verification": (
                f"{root}/verification"
                if root
                else f"/api/hearings/{view.hearing_id}/recording/verification"
            ),
        },
        "live": _status(resources, view.hearing_id),
        "started_at": view.started_at.isoformat() if view.started_at else None,
        "ended_at": view.ended_at.isoformat() if view.ended_at else None,
        "segment_count": view.segment_count,
        "sealed": view.manifest is not None,
        "manifest": (
            {
                "sealed_at": view.manifest.sealed_at.isoformat(),
                "sha256": view.manifest.sha256,
                "ledger_index": view.manifest.ledger_index,
                "url": base + view.manifest.storage_key,
            }
            if view.manifest is not None
            else None
        ),
        "composite": (
            {
                "status": composite.status,
                "progress": composite.progress / 1000,
                "error": composite.error,
                "duration_ms": composite.duration_ms,
                "url": base + composite.storage_key if composite.storage_key else None,
            }
            if composite is not None
            else None
        ),
        "tracks": [
            {
                "participant_id": str(t.track.participant_id),
                "display_name": t.track.display_name,
                "role": t.track.role,
                "kind": t.track.kind,
                "codec": t.track.codec,
                "duration_ms": t.duration_ms,
                "segments": [
                    {
                        "id": str(s.id),
                        "seq": s.seq,
                        "started_at": s.started_at.isoformat(),
                        "ended_at": s.ended_at.isoformat(),
                        "duration_ms": s.duration_ms,
                        "frames": s.frames,
                        "size": s.size,
                        "sha256": s.sha256,
                        "ledger_index": s.ledger_index,
                        "width": s.width,
                        "height": s.height,
                        "close_reason": s.close_reason,
                        "url": base + s.storage_key,
                    }
                    for s in t.segments
                ],
            }
            for t in view.tracks
        ],
        "interruptions": [
            {
                "kind": i.kind,
                "start": i.start.isoformat(),
                "end": i.end.isoformat() if i.end else None,
                "reason": i.reason,
            }
            for i in view.interruptions
        ],
    }


@router.get(
    "/api/hearings/{hearing_id}/recording",
    summary="The hearing's record: tracks, segments, interruptions, seal and composite",
    description=(
        "Court staff. `live` is the recorder's state now (null when this server records "
        "nothing); `composite.progress` runs from 0 to 1 while the playback rendering is made "
        "after the hearing closed. File URLs serve the stored bytes with range requests."
    ),
)
async def recording_json(hearing_id: UUID, staff: Staff, resources: Resources) -> dict[str, Any]:
    return _view_json(resources, await _view(resources, staff.actor, hearing_id))


@router.get(
    "/api/hearings/{hearing_id}/recording/verification",
    summary="Check every segment and the manifest against the evidence ledger",
    description=(
        "For each segment: the stored bytes hash to the recorded SHA-256, the ledger entry at "
        "its index names this segment with that hash, and the entry is included in the log's "
        "current signed tree head. `problem` names the first failed step: `missing`, "
        "`hash_mismatch`, `not_in_ledger`, `ledger_mismatch` or `not_in_tree`."
    ),
)
async def recording_verification(
    hearing_id: UUID, request: Request, staff: Staff, resources: Resources
) -> dict[str, Any]:
    await resources.hearings.get_hearing(actor=staff.actor, hearing_id=hearing_id)
    return await _verification(request, resources, hearing_id)


async def _verification(
    request: Request, resources: AppResources, hearing_id: UUID
) -> dict[str, Any]:
    result = await verify_record(
        db=resources.db,
        store=resources.store,
        ledger=request.app.state.ledger,
        hearing_id=hearing_id,
    )
    return result.to_json()


class SharingChange(Strict):
    shared: bool
    reason: Annotated[str, StringConstraints(max_length=500)] = ""
    # Send the parties and their counsel a link to the record (the hearing must be closed).
    notify: bool = False


class Sharing(BaseModel):
    shared: bool
    messages_sent: int = 0


async def _share(
    resources: AppResources, actor: Actor, hearing_id: UUID, change: SharingChange
) -> Sharing:
    hearing = await resources.hearings.set_recording_shared(
        actor=actor, hearing_id=hearing_id, shared=change.shared, reason=change.reason
    )
    sent = []
    if change.shared and change.notify:
        sent = await resources.hearings.send_record_links(
            actor=actor, hearing_id=hearing_id, sender=resources.sender
        )
    return Sharing(shared=hearing.recording_shared, messages_sent=len(sent))


@router.put(
    "/api/hearings/{hearing_id}/recording/sharing",
    summary="Let the hearing's parties open its record, or stop letting them",
    description=(
        "The presiding judge (recording control). Once shared and the hearing is closed, the "
        "parties and their counsel (not witnesses, interpreters or observers) open the record "
        "from their join link at `/j/<token>/recording` after a one-time code; `notify` sends "
        "each of them a fresh link by SMS and email (409 unless the hearing is closed). "
        "Withdrawing the share takes effect on their next request. Both are in the hearing's "
        "audit trail."
    ),
)
async def set_sharing(
    hearing_id: UUID, body: SharingChange, staff: Staff, resources: Resources
) -> Sharing:
    return await _share(resources, staff.actor, hearing_id, body)


@router.get(
    "/hearings/{hearing_id}/recording/files/{key:path}",
    summary="A stored file of the hearing's record (segment, manifest or composite)",
    response_class=FileResponse,
)
async def recording_file(
    hearing_id: UUID, key: str, staff: Staff, resources: Resources
) -> FileResponse:
    await resources.hearings.get_hearing(actor=staff.actor, hearing_id=hearing_id)
    return await _record_file(resources, hearing_id, key)


async def _record_file(resources: AppResources, hearing_id: UUID, key: str) -> FileResponse:
    # Only files the record lists for this hearing: a key is never a path from the client.
    async with resources.db.read() as conn:
        segments = await repo.list_segments(conn, hearing_id)
        manifest = await repo.get_manifest(conn, hearing_id)
        composite = await repo.get_composite(conn, hearing_id)
    known = {s.storage_key for s in segments}
    if manifest is not None:
        known.add(manifest.storage_key)
    if composite is not None and composite.storage_key:
        known.add(composite.storage_key)
    if key not in known:
        raise NotFoundError("no such file in this hearing's record")
    try:
        path = await resources.store.local_path(key)
    except StorageError as e:
        raise NotFoundError(f"the stored file is missing: {key}") from e
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
        filename=key.rsplit("/", 1)[-1],
        content_disposition_type="inline",
    )


page_router = APIRouter(include_in_schema=False)


async def _render_record(
    request: Request,
    resources: AppResources,
    detail: HearingDetail,
    *,
    party: Participant | None = None,
    root: str | None = None,
    extra: dict[str, Any] | None = None,
) -> HTMLResponse:
    """The playback page: for staff (``party`` None) or for one party, read-only."""
    hearing_id = detail.hearing.id
    view = await record_view(db=resources.db, hearing_id=hearing_id)
    timeline = []
    if view.started_at is not None and view.ended_at is not None:
        # The caller is authorized already; read the trail on the system's behalf.
        system = Actor.system()
        audit = await resources.hearings.audit_trail(actor=system, hearing_id=hearing_id)
        attendance = await resources.hearings.attendance(actor=system, hearing_id=hearing_id)
        timeline = build_timeline(
            start=view.started_at,
            end=view.ended_at,
            hearing_events=[
                (row["at"], str(row["action"]), str(row["reason"] or ""), "")  # type: ignore[misc]
                for row in audit
            ],
            attendance=[(a.at, a.event, a.reason, a.display_name) for a in attendance],
            recording_events=view.events,
        )

    def percent(at: datetime) -> float:
        if view.started_at is None or view.ended_at is None:
            return 0.0
        return position(view.started_at, view.ended_at, at)

    return await page(
        request,
        "recording.html",
        {
            "hearing": detail.hearing,
            "case": detail.case,
            "view": view,
            "timeline": timeline,
            "percent": percent,
            "party": party,
            "data": _view_json(resources, view, root=root),
            "strings": client_strings(request, "recording"),
            **(extra or {}),
        },
    )


@page_router.get("/hearings/{hearing_id}/recording")
async def recording_page(
    hearing_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> HTMLResponse:
    detail = await resources.hearings.get_hearing(actor=staff.actor, hearing_id=hearing_id)
    hearing = detail.hearing
    may_share = staff.actor.may(
        Permission.RECORDING_CONTROL, court_id=hearing.court_id, hearing_id=hearing.id
    )
    return await _render_record(
        request,
        resources,
        detail,
        extra={"may_share": may_share, "csrf_token": staff.session.csrf_token},
    )


@page_router.post("/hearings/{hearing_id}/recording/sharing")
async def recording_sharing_form(
    hearing_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> Response:
    form = await checked_form(request, staff)
    change = SharingChange(
        shared=field(form, "shared") == "1",
        reason=field(form, "reason")[:500],
        notify=field(form, "notify") == "1",
    )
    result = await _share(resources, staff.actor, hearing_id, change)
    if not change.shared:
        key = N_("rec.share.flash_off")
    elif result.messages_sent:
        key = N_("rec.share.flash_sent")
    else:
        key = N_("rec.share.flash_on")
    return done(f"/hearings/{hearing_id}/recording", resources, key, count=result.messages_sent)


# A party's view: through their join link, after a one-time code ------------------------------

RECORD_COOKIE = "yt_record"
PARTY_CSRF_COOKIE = "yt_record_csrf"


def _pass_key(resources: AppResources) -> bytes:
    return derive_key(resources.settings.secret_key.get_secret_value(), "record-pass")


async def _party_view(
    token: str, request: Request, resources: AppResources
) -> JoinView | HTMLResponse:
    """The join link's party if the court lets them open the record, else the page saying why."""
    view = await join_view(token, request, resources, for_record=True)
    if isinstance(view, str):
        return await join_refused(request, view)
    refused = refusal(view.detail.hearing, view.participant)
    if refused is not None:
        logger.info("record refused to a participant: %s", refused)
        return await page(
            request,
            "recording_party.html",
            {**join_context(request, resources, view), "refusal": refused.value},
            status=403,
        )
    return view


def _has_pass(request: Request, resources: AppResources, view: JoinView) -> bool:
    found = read_pass(
        _pass_key(resources), request.cookies.get(RECORD_COOKIE, ""), now=resources.clock.now()
    )
    return (
        found is not None
        and found.participant_id == view.participant.id
        and found.hearing_id == view.detail.hearing.id
    )


async def _party_form(
    token: str, request: Request, resources: AppResources
) -> tuple[JoinView, FormData, Translate] | HTMLResponse:
    """A party's posted form, once the link, the share and the form's CSRF token check out."""
    view = await _party_view(token, request, resources)
    if isinstance(view, HTMLResponse):
        return view
    t = translator(request)
    form = await request.form()
    sent = form.get("csrf_token")
    cookie = request.cookies.get(PARTY_CSRF_COOKIE, "")
    if not (
        isinstance(sent, str) and cookie and hmac.compare_digest(sent.encode(), cookie.encode())
    ):
        return await _identity_page(
            request, resources, view, token, error=t("verify.error_link"), status=403
        )
    return view, form, t


async def _identity_page(
    request: Request,
    resources: AppResources,
    view: JoinView,
    token: str,
    *,
    sent_hint: str = "",
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    person = view.person
    csrf = double_submit_token(request, PARTY_CSRF_COOKIE)
    response = await page(
        request,
        "recording_party.html",
        {
            **join_context(request, resources, view),
            "refusal": None,
            "root": f"/j/{token}/recording",
            "csrf_token": csrf,
            "phone_hint": mask_phone(person.phone) if person.phone else "",
            "email_hint": mask_email(person.email) if person.email else "",
            "sent_hint": sent_hint,
            "error": error,
        },
        status=status,
    )
    # Double-submit cookie: a cross-site form can neither read nor send it (Strict).
    response.set_cookie(
        PARTY_CSRF_COOKIE,
        csrf,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(resources),
        path=f"/j/{token}/recording",
    )
    return response


@page_router.get("/j/{token}/recording")
async def party_record(token: str, request: Request, resources: Resources) -> HTMLResponse:
    """A party's playback page: the same record as the court's, read-only, once the court
    shared it and the party proved who they are."""
    view = await _party_view(token, request, resources)
    if isinstance(view, HTMLResponse):
        return view
    if not _has_pass(request, resources, view):
        return await _identity_page(request, resources, view, token)
    return await _render_record(
        request, resources, view.detail, party=view.participant, root=f"/j/{token}/recording"
    )


@page_router.post("/j/{token}/recording/code")
async def party_record_code(token: str, request: Request, resources: Resources) -> HTMLResponse:
    posted = await _party_form(token, request, resources)
    if isinstance(posted, HTMLResponse):
        return posted
    view, form, t = posted
    channel = Channel.EMAIL if field(form, "channel") == "email" else Channel.SMS
    destination = view.person.phone if channel is Channel.SMS else view.person.email
    if not destination:
        return await _identity_page(
            request, resources, view, token, error=t("verify.error_no_contact"), status=409
        )
    try:
        sent = await resources.identity.send_code(
            purpose=OtpPurpose.OPEN_RECORD,
            subject=str(view.participant.id),
            channel=channel,
            destination=destination,
            sender=resources.sender,
            text="【云庭】您查看庭审录像的验证码为 {code}，10分钟内有效。请勿告诉他人。",
        )
    except RateLimitedError as e:
        return await _identity_page(
            request, resources, view, token, error=_wait_message(t, e, resources), status=429
        )
    return await _identity_page(request, resources, view, token, sent_hint=sent.destination_hint)


def _wait_message(t: Translate, e: RateLimitedError, resources: AppResources) -> str:
    seconds = max(1, int((e.retry_at - resources.clock.now()).total_seconds()) + 1)
    if e.reason == "too_soon":
        return t("verify.error_wait_seconds", seconds=seconds)
    return t("verify.error_wait_minutes", minutes=max(1, round(seconds / 60)))


@page_router.post("/j/{token}/recording/verify")
async def party_record_verify(token: str, request: Request, resources: Resources) -> Response:
    posted = await _party_form(token, request, resources)
    if isinstance(posted, HTMLResponse):
        return posted
    view, form, t = posted
    code = field(form, "code")[:32]
    if not code:
        return await _identity_page(
            request, resources, view, token, error=t("verify.error_empty"), status=422
        )
    try:
        await resources.identity.verify_code(
            purpose=OtpPurpose.OPEN_RECORD, subject=str(view.participant.id), code=code
        )
    except CodeRejectedError as e:
        message = (
            t("verify.error_wrong", left=e.attempts_left)
            if e.reason == "wrong"
            else t(f"verify.error_{e.reason}")
        )
        return await _identity_page(request, resources, view, token, error=message, status=422)
    await resources.hearings.note_record_opened(participant_id=view.participant.id)
    now = resources.clock.now()
    lifetime = resources.settings.recording_party_pass_s
    value = issue_pass(
        _pass_key(resources),
        RecordPass(
            participant_id=view.participant.id,
            hearing_id=view.detail.hearing.id,
            expires_at=now + timedelta(seconds=lifetime),
        ),
    )
    response = redirect(f"/j/{token}/recording")
    response.set_cookie(
        RECORD_COOKIE,
        value,
        max_age=lifetime,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(resources),
        path=f"/j/{token}/recording",
    )
    return response


async def _party_with_pass(token: str, request: Request, resources: AppResources) -> JoinView:
    view = await _party_view(token, request, resources)
    if isinstance(view, HTMLResponse) or not _has_pass(request, resources, view):
        raise PermissionDeniedError("open the record from your link with a one-time code first")
    return view


@page_router.get("/j/{token}/recording/data")
async def party_record_json(token: str, request: Request, resources: Resources) -> dict[str, Any]:
    view = await _party_with_pass(token, request, resources)
    record = await record_view(db=resources.db, hearing_id=view.detail.hearing.id)
    return _view_json(resources, record, root=f"/j/{token}/recording")


@page_router.get("/j/{token}/recording/verification")
async def party_record_verification(
    token: str, request: Request, resources: Resources
) -> dict[str, Any]:
    view = await _party_with_pass(token, request, resources)
    return await _verification(request, resources, view.detail.hearing.id)


@page_router.get("/j/{token}/recording/files/{key:path}")
async def party_record_file(
    token: str, key: str, request: Request, resources: Resources
) -> FileResponse:
    view = await _party_with_pass(token, request, resources)
    return await _record_file(resources, view.detail.hearing.id, key)
