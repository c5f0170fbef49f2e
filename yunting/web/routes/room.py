"""The hearing room: its websocket (docs/signaling.md), staff room tokens, the attendance log."""

from __future__ import annotations

import logging
from uuid import UUID

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send

from yunting.signaling.errors import CloseCode
from yunting.signaling.host import RoomHost
from yunting.web.deps import Resources, Staff
from yunting.web.resources import AppResources
from yunting.web.schemas import ERRORS, AttendanceOut, RoomTokenOut

logger = logging.getLogger(__name__)

router = APIRouter(tags=["hearing room"])


@router.post(
    "/api/hearings/{hearing_id}/room-token",
    summary="A join token for the hearing room, for the signed-in judge or clerk",
    description=(
        "Judges and clerks enter the room as themselves: this finds (or adds) their participant "
        "in the hearing and signs a join token for it, to send in `hello` on "
        "`/ws/hearings/{hearing_id}`. Other staff roles get 403; a closed hearing 409."
    ),
    responses=ERRORS,
)
async def room_token(hearing_id: UUID, staff: Staff, resources: Resources) -> RoomTokenOut:
    user = staff.session.user
    room_pass = await resources.hearings.staff_room_pass(
        actor=staff.actor, hearing_id=hearing_id, person_id=user.person_id, name=user.display_name
    )
    if user.person_id is None:
        await resources.staff.link_person(user_id=user.id, person_id=room_pass.person_id)
    return RoomTokenOut(
        token=room_pass.token,
        participant_id=room_pass.participant_id,
        role=room_pass.role,
        expires_at=room_pass.expires_at,
        websocket_path=f"/ws/hearings/{hearing_id}",
    )


@router.get(
    "/api/hearings/{hearing_id}/attendance",
    summary="The hearing's attendance log",
    description=(
        "Every join attempt, admission, denial, disconnect (with its reason: network_loss, "
        "closed_by_user, removed, token_expired, ...) and rejoin, oldest first."
    ),
    responses=ERRORS,
)
async def attendance(hearing_id: UUID, staff: Staff, resources: Resources) -> list[AttendanceOut]:
    records = await resources.hearings.attendance(actor=staff.actor, hearing_id=hearing_id)
    return [
        AttendanceOut(
            at=r.at,
            participant_id=r.participant_id,
            display_name=r.display_name,
            event=r.event,
            reason=r.reason,
        )
        for r in records
    ]


class _Sink:
    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket

    async def send_text(self, data: str) -> None:
        await self._ws.send_text(data)

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code, reason)


async def hearing_room(websocket: WebSocket) -> None:
    """One participant's signaling connection (protocol: docs/signaling.md).

    A plain Starlette endpoint (``WEBSOCKET_ROUTE``), not a FastAPI route: it takes no
    dependencies, and FastAPI's per-request dependency machinery would stay alive, holding
    memory, for as long as each hearing lasts.
    """
    hearing_id = str(websocket.path_params["hearing_id"])
    resources: AppResources = websocket.app.state.resources
    host: RoomHost = resources.rooms
    await websocket.accept()
    try:
        hid = UUID(hearing_id)
    except ValueError:
        await websocket.close(CloseCode.NOT_FOUND, "no_such_hearing")
        return
    try:
        conn_id = await host.open(hid, _Sink(websocket))
    except Exception:
        logger.exception("could not open the hearing room", extra={"hearing_id": hearing_id})
        await websocket.close(CloseCode.INTERNAL_ERROR, "unavailable")
        return
    code: int | None = None
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                code = message.get("code")
                break
            text = message.get("text")
            data: str | bytes = text if text is not None else (message.get("bytes") or b"")
            await host.receive(conn_id, data)
    except (WebSocketDisconnect, RuntimeError) as e:
        # RuntimeError: the socket was closed by us while reading.
        code = getattr(e, "code", None)
    finally:
        await host.closed(conn_id, code)


WEBSOCKET_PREFIX = "/ws/hearings/"
WEBSOCKET_ROUTE = WebSocketRoute(WEBSOCKET_PREFIX + "{hearing_id}", hearing_room)


def room_socket_hearing(scope: Scope) -> str | None:
    """The hearing id when ``scope`` is a websocket for a hearing room, else None."""
    if scope["type"] != "websocket":
        return None
    path: str = scope["path"]
    if not path.startswith(WEBSOCKET_PREFIX):
        return None
    rest = path[len(WEBSOCKET_PREFIX) :]
    return rest if rest and "/" not in rest else None


async def serve_room_socket(hearing_id: str, scope: Scope, receive: Receive, send: Send) -> None:
    """``hearing_room`` called straight from the application, past the middleware and the
    router. A room socket lives as long as the hearing, and every layer it is called through
    keeps a suspended frame per connection for all that time; none of them does anything for
    a websocket (the HTTP middlewares pass websockets through, the router only matches this
    path). See ``YuntingApp.__call__``."""
    scope["path_params"] = {"hearing_id": hearing_id}
    await hearing_room(WebSocket(scope, receive, send))
