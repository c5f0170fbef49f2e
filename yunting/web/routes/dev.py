"""Development-only pages: the local outbox, where SMS and email land in the embedded default,
and a handset's reply to an SMS there (what an SMSC would hand the SMPP provider)."""

from __future__ import annotations

import hmac
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from yunting.infra.ledger.canonical import canonical_json
from yunting.service_delivery.ports import Channel, MessagePurpose, Reply
from yunting.web.deps import Resources
from yunting.web.render import render
from yunting.web.routes.pages import double_submit_token, secure_cookies, translator

router = APIRouter(tags=["development"])

OUTBOX_CSRF_COOKIE = "yt_outbox_csrf"
MAX_REPLY = 500  # characters: about seven concatenated UCS-2 parts


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
    return await _page(request, resources)


async def _page(
    request: Request, resources: Resources, *, error: str = "", status: int = 200
) -> HTMLResponse:
    messages = await resources.outbox.list_recent(limit=200)
    csrf = double_submit_token(request, OUTBOX_CSRF_COOKIE)
    response = render(
        request,
        "dev_outbox.html",
        {
            "messages": messages,
            "csrf_token": csrf,
            "may_reply": resources.delivery is not None,
            "max_reply": MAX_REPLY,
            "error": error,
        },
        status_code=status,
    )
    response.set_cookie(
        OUTBOX_CSRF_COOKIE,
        csrf,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(resources),
        path="/dev/outbox",
    )
    return response


@router.post("/dev/outbox/{message_id}/reply", include_in_schema=False)
async def outbox_reply(
    message_id: UUID,
    request: Request,
    resources: Resources,
    text: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """The handset of an SMS in the outbox writes back: handed to electronic service's reply
    sink exactly as the SMPP provider hands a mobile-originated deliver_sm, the outbox message
    and the text standing in for the PDU."""
    t = translator(request)
    cookie = request.cookies.get(OUTBOX_CSRF_COOKIE, "")
    if not (cookie and hmac.compare_digest(csrf_token.encode(), cookie.encode())):
        return await _page(request, resources, error=t("outbox.error_form"), status=403)
    message = await resources.outbox.get(message_id)
    if (
        message is None
        or message.channel is not Channel.SMS
        or message.purpose is not MessagePurpose.SERVICE
        or resources.delivery is None
    ):
        return await _page(request, resources, error=t("outbox.error_no_sms"), status=404)
    text = text.strip()
    if not text or len(text) > MAX_REPLY:
        return await _page(
            request, resources, error=t("outbox.error_reply", limit=MAX_REPLY), status=422
        )
    raw = canonical_json(
        {"outbox_reply_to": str(message.id), "from": message.recipient, "text": text}
    ).decode()
    await resources.delivery.service.ingest_reply(
        Reply(
            channel=Channel.SMS,
            sender=message.recipient,
            text=text,
            raw=raw,
            received_at=resources.clock.now(),
        )
    )
    return RedirectResponse(f"/dev/outbox#msg-{message.id}", status_code=303)
