"""Development-only pages: the local outbox, where SMS and email land in the embedded default."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from yunting.web.deps import Resources
from yunting.web.render import render

router = APIRouter(tags=["development"])


class OutboxItem(BaseModel):
    id: str
    channel: str
    recipient: str
    subject: str
    body: str
    purpose: str
    created_at: str


@router.get(
    "/api/dev/outbox",
    summary="Messages in the local outbox (development mode only)",
    description="Newest first. Only mounted when YUNTING_MODE=development.",
)
async def outbox_json(resources: Resources, limit: int = 100) -> list[OutboxItem]:
    messages = await resources.outbox.list_recent(limit=max(1, min(limit, 500)))
    return [
        OutboxItem(
            id=str(m.id),
            channel=m.channel.value,
            recipient=m.recipient,
            subject=m.subject,
            body=m.body,
            purpose=m.purpose.value,
            created_at=m.created_at.isoformat(),
        )
        for m in messages
    ]


@router.get("/dev/outbox", response_class=HTMLResponse, include_in_schema=False)
async def outbox_page(request: Request, resources: Resources) -> HTMLResponse:
    messages = await resources.outbox.list_recent(limit=200)
    return render(request, "dev_outbox.html", {"messages": messages})
