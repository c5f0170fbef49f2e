"""The hearing's record for court staff: the playback page, its JSON, the verification of every
segment against the ledger, and the stored files (with range requests, so players can seek)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from yunting.hearing.errors import NotFoundError
from yunting.hearing.model import Actor
from yunting.infra.storage import StorageError
from yunting.recording import repository as repo
from yunting.recording.playback import (
    RecordView,
    build_timeline,
    position,
    record_view,
    verify_record,
)
from yunting.web.deps import Resources, Staff
from yunting.web.resources import AppResources
from yunting.web.routes.pages import PageStaff, client_strings, page
from yunting.web.schemas import ERRORS

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


def _view_json(resources: AppResources, view: RecordView) -> dict[str, Any]:
    base = f"/hearings/{view.hearing_id}/recording/files/"
    composite = view.composite
    return {
        "hearing_id": str(view.hearing_id),
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
    result = await verify_record(
        db=resources.db,
        store=resources.store,
        ledger=request.app.state.ledger,
        hearing_id=hearing_id,
    )
    return result.to_json()


@router.get(
    "/hearings/{hearing_id}/recording/files/{key:path}",
    summary="A stored file of the hearing's record (segment, manifest or composite)",
    response_class=FileResponse,
)
async def recording_file(
    hearing_id: UUID, key: str, staff: Staff, resources: Resources
) -> FileResponse:
    await resources.hearings.get_hearing(actor=staff.actor, hearing_id=hearing_id)
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


@page_router.get("/hearings/{hearing_id}/recording")
async def recording_page(
    hearing_id: UUID, request: Request, resources: Resources, staff: PageStaff
) -> HTMLResponse:
    actor = staff.actor
    detail = await resources.hearings.get_hearing(actor=actor, hearing_id=hearing_id)
    view = await record_view(db=resources.db, hearing_id=hearing_id)
    timeline = []
    if view.started_at is not None and view.ended_at is not None:
        audit = await resources.hearings.audit_trail(actor=actor, hearing_id=hearing_id)
        attendance = await resources.hearings.attendance(actor=actor, hearing_id=hearing_id)
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
            "data": _view_json(resources, view),
            "strings": client_strings(request, "recording"),
        },
    )
