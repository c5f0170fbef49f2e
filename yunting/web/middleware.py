"""ASGI middleware: request ids, request body limits, security headers, access log.

Pure ASGI (not BaseHTTPMiddleware) so streaming bodies are counted as they arrive and a
websocket is never wrapped.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yunting.infra.logging import request_id_var

logger = logging.getLogger("yunting.web.access")


async def _send_json_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """Request id (taken from X-Request-ID if sane, else new), security headers, access log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = (
            incoming
            if incoming and len(incoming) <= 64 and incoming.isascii()
            else secrets.token_hex(8)
        )
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder = [0]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-request-id", request_id.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            # The path only, never the query string or a token-bearing path segment in full.
            path: str = scope.get("path", "")
            if path.startswith(("/j/", "/s/")):
                path = path[:3] + "…"
            logger.info(
                "%s %s -> %s",
                scope.get("method"),
                path,
                status_holder[0],
                extra={"duration_ms": round((time.perf_counter() - started) * 1000, 1)},
            )
            request_id_var.reset(token)


class BodyLimitMiddleware:
    """Refuse request bodies over a limit with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await _send_json_error(send, 400, "bad_request", "invalid Content-Length")
                return
            if too_big:
                await _send_json_error(
                    send, 413, "too_large", f"request body over the limit of {limit} bytes"
                )
                return
        received = 0
        response_started = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Answer now and tell the app the client went away, so no handler sees a
                    # truncated body and nothing is half-processed.
                    if not response_started:
                        refused = True
                        await _send_json_error(
                            send, 413, "too_large", f"request body over the limit of {limit} bytes"
                        )
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return  # we already answered 413
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except Exception:
            if not refused:
                raise
