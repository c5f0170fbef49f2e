"""Runs hearing rooms on this node: the adapter around the sans-I/O ``Room``.

Each room lives on exactly one node, its owner (``leases.py``), and is driven by one task that
takes events from an inbox one at a time, so the room has a single writer without locks. The task
carries out the room's outputs in order: it records commands through ``HearingService`` and
reports them back (``Room.on_committed``) before anyone is told, writes the attendance log, drives
the media port, and delivers frames.

A websocket accepted by a node that does not own the room is *relayed*: its frames go to the owner
over the bus (topic ``node:<owner>``) and the owner's frames come back on ``node:<this node>``.
Connection ids start with the id of the node holding the socket, so the owner knows where each
frame goes. Pub/sub may lose messages while Redis is down; when the bus reconnects, owners resync
every client (hearing state, roster or lobby position, media grants).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import os
import re
import secrets
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from yunting.hearing.errors import HearingError, InvalidTokenError, NotFoundError
from yunting.hearing.model import (
    FINAL_HEARING_STATES,
    Actor,
    ActorKind,
    HearingState,
    ParticipantState,
    Role,
)
from yunting.hearing.service import HearingService
from yunting.infra.clock import Clock
from yunting.infra.settings import Settings
from yunting.signaling.bus import Bus, BusUnavailableError
from yunting.signaling.errors import CloseCode, ErrorCode
from yunting.signaling.leases import RoomLeases
from yunting.signaling.messages import Bye, Error, RecordingStatus, SdpOffer, encode
from yunting.signaling.outputs import (
    AttendanceReason,
    ChangeHearingState,
    ChangeParticipantState,
    Close,
    FollowRecording,
    MediaGrant,
    MediaRelease,
    MediaSignal,
    Output,
    RecordAttendance,
    Send,
    SetLocked,
    VerifyToken,
)
from yunting.signaling.ports import MediaPort, MediaUnavailableError, NoRecording, RecordingPort
from yunting.signaling.room import Room, RoomConfig

logger = logging.getLogger(__name__)

# Frames queued for one socket before it counts as too slow to keep (it is then closed).
OUTBOX_LIMIT = 512
TICK_S = 1.0


class Sink(Protocol):
    """One accepted websocket, as the host writes to it."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


def room_config(settings: Settings) -> RoomConfig:
    return RoomConfig(
        reconnect_grace=timedelta(seconds=settings.signaling_reconnect_grace_s),
        judge_drop_grace=timedelta(seconds=settings.signaling_judge_drop_grace_s),
        hello_timeout=timedelta(seconds=settings.signaling_hello_timeout_s),
        heartbeat_interval=timedelta(seconds=settings.signaling_heartbeat_interval_s),
        heartbeat_timeout=timedelta(seconds=settings.signaling_heartbeat_timeout_s),
        max_message_bytes=settings.signaling_max_message_bytes,
        rate_per_s=settings.signaling_rate_per_s,
        rate_burst=settings.signaling_rate_burst,
    )


def default_node_id() -> str:
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:40] or "node"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


def close_reason(code: int | None) -> AttendanceReason:
    """How a socket that the room did not close ended, for the attendance log."""
    if code in (1000, 1001):  # normal closure, going away (page closed)
        return AttendanceReason.CLOSED_BY_USER
    return AttendanceReason.NETWORK_LOSS


@dataclass(eq=False, slots=True)
class _Local:
    """A websocket accepted by this node."""

    conn_id: str
    hearing_id: UUID
    sink: Sink
    owner: str
    # Text frames to send, or (code, reason) to close with; nothing follows a close. A writer
    # task exists only while there is something to write: idle sockets cost no task.
    pending: deque[str | tuple[int, str]] = field(default_factory=deque)
    writer: asyncio.Task[None] | None = None
    closed: bool = False


Event = Callable[[datetime], list[Output]]


class _RoomTask:
    """One owned room and the task that drives it."""

    def __init__(self, host: RoomHost, room: Room, court_id: UUID, now: datetime) -> None:
        self.host = host
        self.room = room
        self.hearing_id = room.hearing_id
        self.court_id = court_id
        self.roles: dict[UUID, Role] = {}
        self.inbox: asyncio.Queue[Event | None] = asyncio.Queue()
        self.last_busy = now
        self.task = asyncio.create_task(self._run(), name=f"room-{room.hearing_id}")

    def post(self, event: Event) -> None:
        self.inbox.put_nowait(event)

    async def stop(self) -> None:
        self.inbox.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def _run(self) -> None:
        while True:
            event = await self.inbox.get()
            if event is None:
                return
            try:
                now = self.host.clock.now()
                outputs = event(now)
                await self.host.carry_out(self, outputs)
                if self.room.connection_ids() or self.room.pending_commands():
                    self.last_busy = now
            except Exception:
                # One bad event must not stop the room for everyone else.
                logger.exception("room event failed", extra={"hearing_id": str(self.hearing_id)})

    def actor(self, participant_id: UUID | None) -> Actor:
        if participant_id is None:
            return Actor.system()
        return Actor(
            kind=ActorKind.PARTICIPANT,
            id=participant_id,
            court_id=self.court_id,
            hearing_id=self.hearing_id,
            role=self.roles.get(participant_id),
        )


class RoomHost:
    """This node's share of the hearing rooms. Built once per app, started in the lifespan."""

    def __init__(
        self,
        *,
        node_id: str,
        hearings: HearingService,
        clock: Clock,
        config: RoomConfig,
        bus: Bus,
        leases: RoomLeases,
        media: MediaPort,
        lease_ttl_s: float,
        recording: RecordingPort | None = None,
    ) -> None:
        if "/" in node_id or not node_id:
            raise ValueError(f"node id must be non-empty without '/', got {node_id!r}")
        self.node_id = node_id
        self.hearings = hearings
        self.clock = clock
        self.config = config
        self.media = media
        self.recording: RecordingPort = recording if recording is not None else NoRecording()
        self._bus = bus
        self._leases = leases
        self._lease_ttl = timedelta(seconds=lease_ttl_s)
        self._ids = itertools.count(1)
        self._locals: dict[str, _Local] = {}
        self._rooms: dict[UUID, _RoomTask] = {}
        self._creating: dict[UUID, asyncio.Lock] = {}
        self._owner_missing_since: dict[UUID, datetime] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # Lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._bus.subscribe(f"node:{self.node_id}", self._on_bus)
        self._bus.on_reconnect(self._on_bus_reconnect)
        self._tasks = [
            asyncio.create_task(self._ticker(), name="rooms-tick"),
            asyncio.create_task(self._lease_keeper(), name="rooms-leases"),
        ]
        logger.info("room host %s started", self.node_id)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for local in list(self._locals.values()):
            # The node goes away: clients reconnect, to another node if there is one.
            self._push(local, (CloseCode.SERVICE_RESTART, "node_stopping"))
        for local in list(self._locals.values()):
            if local.writer is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(local.writer, timeout=1)
        for hearing_id, room in list(self._rooms.items()):
            await room.stop()
            await self._release_recording(hearing_id, "node_stopping")
            with contextlib.suppress(BusUnavailableError):
                await self._leases.release(hearing_id)
        self._rooms.clear()
        with contextlib.suppress(Exception):
            await self._bus.unsubscribe(f"node:{self.node_id}")

    # Sockets of this node -----------------------------------------------------------------------

    async def open(self, hearing_id: UUID, sink: Sink) -> str:
        """A websocket for ``hearing_id`` was accepted here; returns its connection id."""
        conn_id = f"{self.node_id}/{next(self._ids)}"
        local = _Local(conn_id=conn_id, hearing_id=hearing_id, sink=sink, owner=self.node_id)
        self._locals[conn_id] = local
        try:
            hearing = await self.hearings.room_hearing(hearing_id=hearing_id)
        except NotFoundError:
            self._refuse(local, CloseCode.NOT_FOUND, "no_such_hearing")
            return conn_id
        if hearing.state in FINAL_HEARING_STATES:
            self._refuse(local, CloseCode.HEARING_OVER, "hearing_over")
            return conn_id
        try:
            owner = await self._leases.claim(hearing_id)
        except BusUnavailableError:
            self._refuse(local, CloseCode.TRY_AGAIN_LATER, "unavailable")
            return conn_id
        local.owner = owner
        if owner == self.node_id:
            room = await self._room(hearing_id)
            room.post(lambda now: room.room.open(conn_id, now))
        else:
            await self._to_owner(local, {"k": "open"})
        return conn_id

    async def receive(self, conn_id: str, data: str | bytes) -> None:
        local = self._locals.get(conn_id)
        if local is None or local.closed:
            return
        if local.owner == self.node_id:
            room = self._rooms.get(local.hearing_id)
            if room is not None:
                room.post(lambda now: room.room.receive(conn_id, data, now))
            return
        if isinstance(data, bytes):
            await self._to_owner(local, {"k": "recv", "b": base64.b64encode(data).decode()})
        else:
            await self._to_owner(local, {"k": "recv", "d": data})

    async def closed(self, conn_id: str, code: int | None) -> None:
        """The socket ended (client closed, network, or our own close completing)."""
        local = self._locals.pop(conn_id, None)
        if local is None:
            return
        local.closed = True
        if local.writer is not None and not local.writer.done():
            local.writer.cancel()
        reason = close_reason(code)
        if local.owner == self.node_id:
            room = self._rooms.get(local.hearing_id)
            if room is not None:
                room.post(lambda now: room.room.disconnect(conn_id, now, reason))
        else:
            with contextlib.suppress(BusUnavailableError):
                await self._to_owner(local, {"k": "gone", "r": reason.value}, quiet=True)

    # Calls from the rest of the process -------------------------------------------------------

    async def hearing_changed(
        self, *, hearing_id: UUID, action: str, reason: str, by: UUID | None
    ) -> None:
        """The staff page or the API changed the hearing (already recorded): tell the room."""
        try:
            owner = await self._leases.owner(hearing_id)
        except BusUnavailableError:
            logger.warning("hearing %s changed while Redis is down; rooms resync later", hearing_id)
            return
        if owner is None:
            # No live room: the next one is built from the database. A hearing closed with
            # nobody connected still has its record sealed (here: no node records it now).
            await self._follow_without_room(hearing_id, action, reason, by)
            return
        message = {"k": "ext", "h": str(hearing_id), "a": action, "r": reason}
        message["by"] = str(by) if by is not None else ""
        if owner == self.node_id:
            await self._external(message)
        else:
            with contextlib.suppress(BusUnavailableError):
                await self._publish(owner, message)

    async def access_revoked(self, *, hearing_id: UUID, participant_id: UUID) -> None:
        """The participant's join links were revoked: disconnect it wherever it is."""
        message = {"k": "revoked", "h": str(hearing_id), "p": str(participant_id)}
        try:
            owner = await self._leases.owner(hearing_id)
        except BusUnavailableError:
            logger.warning("links revoked while Redis is down; the room is not told")
            return
        if owner == self.node_id:
            self._revoked(message)
        elif owner is not None:
            with contextlib.suppress(BusUnavailableError):
                await self._publish(owner, message)

    def _revoked(self, message: dict[str, Any]) -> None:
        room = self._rooms.get(UUID(message["h"]))
        if room is not None:
            pid = UUID(message["p"])
            core = room.room
            room.post(lambda now: core.revoke_access(pid, now))

    async def media_to_participant(
        self,
        *,
        hearing_id: UUID,
        participant_id: UUID,
        message: SdpOffer,
    ) -> None:
        """The media node's offer for a participant (it runs beside the room's owner)."""
        room = self._rooms.get(hearing_id)
        if room is not None:
            room.post(lambda now: room.room.on_media(participant_id, message))

    async def media_failed(self, *, hearing_id: UUID, participant_id: UUID, detail: str) -> None:
        """The media node gave up on a participant's peer connection; the participant is told
        (``media_failed``) and may start again."""
        room = self._rooms.get(hearing_id)
        if room is not None:
            room.post(
                lambda now: room.room.notify_error(participant_id, ErrorCode.MEDIA_FAILED, detail)
            )

    async def recording_changed(self, *, hearing_id: UUID, status: RecordingStatus) -> None:
        """The recorder's status changed or a segment was committed: judge and clerk see it."""
        room = self._rooms.get(hearing_id)
        if room is not None:
            core = room.room
            room.post(lambda now: core.recording_status(status))

    async def recording_failed(self, *, hearing_id: UUID, detail: str) -> None:
        """The recorder stopped on an error: the room alerts judge and clerk and pauses."""
        room = self._rooms.get(hearing_id)
        if room is not None:
            core = room.room
            room.post(lambda now: core.recording_failed(detail, now))

    async def _follow_without_room(
        self, hearing_id: UUID, action: str, reason: str, by: UUID | None
    ) -> None:
        try:
            hearing = await self.hearings.room_hearing(hearing_id=hearing_id)
            if hearing.state in FINAL_HEARING_STATES:
                await self.recording.follow(
                    hearing_id=hearing_id,
                    state=hearing.state,
                    action=action,
                    reason=reason,
                    actor_id=by,
                )
        except Exception:
            logger.exception("the record of hearing %s was not sealed", hearing_id)

    async def _release_recording(self, hearing_id: UUID, reason: str) -> None:
        try:
            await self.recording.release(hearing_id=hearing_id, reason=reason)
        except Exception:
            logger.exception("the recording of hearing %s did not stop cleanly", hearing_id)

    def stats(self) -> dict[str, int]:
        return {"rooms": len(self._rooms), "sockets": len(self._locals)}

    def owned_room(self, hearing_id: UUID) -> Room | None:
        """The room, if this node owns it (for the staff page and tests)."""
        task = self._rooms.get(hearing_id)
        return task.room if task is not None else None

    # Rooms this node owns -------------------------------------------------------------------------

    async def _room(self, hearing_id: UUID) -> _RoomTask:
        existing = self._rooms.get(hearing_id)
        if existing is not None:
            return existing
        lock = self._creating.setdefault(hearing_id, asyncio.Lock())
        async with lock:
            existing = self._rooms.get(hearing_id)
            if existing is not None:
                return existing
            hearing = await self.hearings.room_hearing(hearing_id=hearing_id)
            participants = await self.hearings.list_participants(
                actor=Actor.system(), hearing_id=hearing_id
            )
            presiding = next(
                (
                    p.id
                    for p in participants
                    if p.role is Role.JUDGE and p.state is ParticipantState.IN_HEARING
                ),
                None,
            )
            now = self.clock.now()
            room = Room(
                hearing_id=hearing_id,
                hearing_state=hearing.state,
                locked=hearing.locked,
                presiding_judge_id=presiding,
                settings=self.config,
                restored_at=now,
            )
            task = _RoomTask(self, room, hearing.court_id, now)
            self._rooms[hearing_id] = task
            self._creating.pop(hearing_id, None)
            status = self.recording.status(hearing_id)
            task.post(lambda now: room.recording_status(status))
            if hearing.state is HearingState.IN_SESSION:
                # A hearing in session whose room is (re)built here: a restart, a takeover or
                # people coming back to an idle room. Its recording goes on (a gap after a
                # crash is recorded by the recorder).
                resume = FollowRecording(
                    state=hearing.state, action="restore", reason="room_restored", actor=None
                )
                task.post(lambda now: [resume])
            logger.info("room %s opened on %s (%s)", hearing_id, self.node_id, hearing.state)
            return task

    async def carry_out(self, room: _RoomTask, outputs: list[Output]) -> None:
        """Perform the room's outputs in order; results of commands are fed back at once.

        Frames are the hot path: a message the room shares between recipients is encoded once,
        and frames for sockets on other nodes go out as one bus message per node and event
        (in order), not one Redis round trip per frame.
        """
        queue = deque(outputs)
        encoded: dict[int, tuple[object, str]] = {}  # keeps the message alive: ids stay unique
        remote: dict[str, list[dict[str, Any]]] = {}
        try:
            while queue:
                output = queue.popleft()
                if isinstance(output, Send):
                    known = encoded.get(id(output.message))
                    if known is None:
                        known = (output.message, encode(output.message))
                        encoded[id(output.message)] = known
                    self._route(output.conn_id, known[1], remote)
                    continue
                if isinstance(output, Close):
                    self._route(output.conn_id, (output.code, output.reason), remote)
                    continue
                if remote:
                    # Anything else may take a while (database): send what is ready first.
                    await self._flush(remote)
                more = await self._perform(room, output)
                if more:
                    queue.extendleft(reversed(more))
        finally:
            await self._flush(remote)

    def _route(
        self,
        conn_id: str,
        item: str | tuple[int, str],
        remote: dict[str, list[dict[str, Any]]],
    ) -> None:
        node = conn_id.split("/", 1)[0]
        if node == self.node_id:
            local = self._locals.get(conn_id)
            if local is not None:
                self._push(local, item)
            return
        remote.setdefault(node, []).append(_frame_message(conn_id, item))

    async def _flush(self, remote: dict[str, list[dict[str, Any]]]) -> None:
        for node, items in remote.items():
            try:
                await self._publish(node, {"k": "batch", "items": items})
            except BusUnavailableError:
                # The clients resync (or time out and reconnect) once Redis is back.
                logger.debug("%d frames for %s lost: bus down", len(items), node)
        remote.clear()

    async def _perform(self, room: _RoomTask, output: Output) -> list[Output]:
        core = room.room
        hearings = self.hearings
        if isinstance(output, Send | Close):  # carry_out routes frames itself
            raise TypeError("frames are routed by carry_out")
        if isinstance(output, RecordAttendance):
            try:
                await hearings.record_attendance(
                    hearing_id=room.hearing_id,
                    participant_id=output.participant_id,
                    event=output.event.value,
                    reason=output.reason.value,
                    at=output.at,
                )
            except Exception:
                logger.exception(
                    "attendance not recorded: %s %s",
                    output.event,
                    output.reason,
                    extra={"hearing_id": str(room.hearing_id)},
                )
            return []
        if isinstance(output, VerifyToken):
            return await self._verify(room, output)
        if isinstance(output, ChangeHearingState | ChangeParticipantState | SetLocked):
            ok, error = await self._commit(room, output)
            return core.on_committed(output.command_id, self.clock.now(), ok=ok, error=error)
        if isinstance(output, FollowRecording):
            try:
                await self.recording.follow(
                    hearing_id=room.hearing_id,
                    state=output.state,
                    action=output.action,
                    reason=output.reason,
                    actor_id=output.actor,
                )
            except Exception as e:
                logger.exception("recording did not follow the hearing to %s", output.state)
                return core.recording_failed(
                    f"the recorder could not start or stop: {e}", self.clock.now()
                )
            return []
        if isinstance(output, MediaSignal):
            try:
                await self.media.signal(
                    hearing_id=room.hearing_id,
                    participant_id=output.participant_id,
                    message=output.message,
                )
            except MediaUnavailableError as e:
                return core.notify_error(output.participant_id, ErrorCode.MEDIA_UNAVAILABLE, str(e))
            return []
        if isinstance(output, MediaGrant):
            await self.media.grant(hearing_id=room.hearing_id, grant=output)
            return []
        if isinstance(output, MediaRelease):
            await self.media.release(
                hearing_id=room.hearing_id, participant_id=output.participant_id
            )
            return []
        raise TypeError(f"unknown room output {output!r}")  # pragma: no cover

    async def _verify(self, room: _RoomTask, output: VerifyToken) -> list[Output]:
        core = room.room
        try:
            claims = await self.hearings.verify_join_token(token=output.token)
        except InvalidTokenError as e:
            return core.reject(
                output.conn_id, e.reason, self.clock.now(), participant_id=e.participant_id
            )
        except Exception:
            logger.exception("join token check failed", extra={"hearing_id": str(room.hearing_id)})
            return self._abort(core, output.conn_id)
        state = ParticipantState.INVITED
        name = ""
        if claims.hearing_id == room.hearing_id:
            try:
                participant = await self.hearings.room_participant(
                    participant_id=claims.participant_id
                )
            except Exception:
                logger.exception("participant not loaded")
                return self._abort(core, output.conn_id)
            state, name = participant.state, participant.display_name
            room.roles[claims.participant_id] = claims.role
        return core.connect(output.conn_id, claims, state, self.clock.now(), display_name=name)

    def _abort(self, core: Room, conn_id: str) -> list[Output]:
        """The database failed us mid-join: forget the socket and let the client retry."""
        now = self.clock.now()
        return [
            *core.disconnect(conn_id, now, AttendanceReason.NONE),
            Send(conn_id, Error(code=ErrorCode.UNAVAILABLE, message="try again", ref=None)),
            Send(conn_id, Bye(reason="unavailable")),
            Close(conn_id, CloseCode.INTERNAL_ERROR, "unavailable"),
        ]

    async def _commit(
        self, room: _RoomTask, command: ChangeHearingState | ChangeParticipantState | SetLocked
    ) -> tuple[bool, str]:
        hearings = self.hearings
        try:
            if isinstance(command, ChangeHearingState):
                await hearings.change_hearing_state(
                    actor=room.actor(command.actor),
                    hearing_id=room.hearing_id,
                    action=command.action,
                    reason=command.reason,
                )
            elif isinstance(command, ChangeParticipantState):
                await hearings.change_participant_state(
                    actor=room.actor(command.actor),
                    participant_id=command.participant_id,
                    to=command.to,
                    action=command.action,
                    reason=command.reason,
                    permission=command.permission,
                )
            else:
                await hearings.set_locked(
                    actor=room.actor(command.actor),
                    hearing_id=room.hearing_id,
                    locked=command.locked,
                )
        except HearingError as e:
            return False, str(e)
        except Exception as e:
            logger.exception("command %s not recorded", command.command_id)
            return False, f"the court record is unavailable ({type(e).__name__})"
        return True, ""

    # Delivery ---------------------------------------------------------------------------------

    async def _deliver(self, conn_id: str, item: str | tuple[int, str]) -> None:
        """One frame or close outside ``carry_out`` (lease loss, a moved room)."""
        remote: dict[str, list[dict[str, Any]]] = {}
        self._route(conn_id, item, remote)
        await self._flush(remote)

    def _push(self, local: _Local, item: str | tuple[int, str]) -> None:
        if local.closed:
            return
        if len(local.pending) >= OUTBOX_LIMIT:
            # A client that reads nothing must not make the room hold frames for it forever.
            logger.warning("socket %s too slow; closing it", local.conn_id)
            local.pending.clear()
            item = (CloseCode.TRY_AGAIN_LATER, "too_slow")
        local.pending.append(item)
        if not isinstance(item, str):
            local.closed = True  # nothing after the close
        if local.writer is None or local.writer.done():
            local.writer = asyncio.create_task(self._write(local))

    def _refuse(self, local: _Local, code: int, reason: str) -> None:
        self._push(local, encode(Bye(reason=reason)))
        self._push(local, (code, reason))

    async def _write(self, local: _Local) -> None:
        try:
            while local.pending:
                item = local.pending.popleft()
                if isinstance(item, str):
                    await local.sink.send_text(item)
                else:
                    await local.sink.close(*item)
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            # The socket is gone; the read side reports the close.
            local.pending.clear()
            return

    # The bus ------------------------------------------------------------------------------------

    async def _publish(self, node: str, message: dict[str, Any]) -> None:
        payload = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
        await self._bus.publish(f"node:{node}", payload.encode())

    async def _to_owner(
        self, local: _Local, message: dict[str, Any], *, quiet: bool = False
    ) -> None:
        message["h"] = str(local.hearing_id)
        message["c"] = local.conn_id
        try:
            await self._publish(local.owner, message)
        except BusUnavailableError:
            if quiet:
                raise
            error = Error(
                code=ErrorCode.UNAVAILABLE,
                message="the hearing room is unreachable for a moment; nothing was sent",
                ref=None,
            )
            self._push(local, encode(error))

    async def _on_bus(self, topic: str, payload: bytes) -> None:
        try:
            message = json.loads(payload)
            kind = message["k"]
        except (ValueError, KeyError, TypeError):
            logger.warning("unreadable bus message on %s", topic)
            return
        if kind == "batch":
            for item in message.get("items", ()):
                self._frame_arrived(item)
            return
        if kind in ("send", "close"):
            self._frame_arrived(message)
            return
        if kind == "ext":
            await self._external(message)
            return
        if kind == "revoked":
            self._revoked(message)
            return
        if kind == "resync":
            owned = self._rooms.get(UUID(message["h"]))
            if owned is not None:
                owned.post(_resync_event(owned.room))
            return
        hearing_id = UUID(message["h"])
        conn_id = str(message["c"])
        room = self._rooms.get(hearing_id)
        if room is None and kind == "open":
            try:
                owner = await self._leases.claim(hearing_id)
            except BusUnavailableError:
                owner = ""
            if owner == self.node_id:
                room = await self._room(hearing_id)
        if room is None:
            if kind != "gone":
                # Not ours (any more): the client reconnects and finds the owner.
                await self._deliver(conn_id, (CloseCode.SERVICE_RESTART, "room_moved"))
            return
        core = room.room
        if kind == "open":
            room.post(lambda now: core.open(conn_id, now))
        elif kind == "recv":
            data: str | bytes = (
                base64.b64decode(message["b"]) if "b" in message else str(message["d"])
            )
            room.post(lambda now: core.receive(conn_id, data, now))
        elif kind == "gone":
            reason = AttendanceReason(message.get("r", AttendanceReason.NETWORK_LOSS.value))
            room.post(lambda now: core.disconnect(conn_id, now, reason))

    def _frame_arrived(self, message: dict[str, Any]) -> None:
        local = self._locals.get(message.get("c", ""))
        if local is None:
            return
        if message.get("k") == "send":
            self._push(local, str(message["d"]))
        else:
            self._push(local, (int(message["code"]), str(message["r"])))

    async def _external(self, message: dict[str, Any]) -> None:
        hearing_id = UUID(message["h"])
        room = self._rooms.get(hearing_id)
        if room is None:
            return
        try:
            hearing = await self.hearings.room_hearing(hearing_id=hearing_id)
        except NotFoundError:
            return
        by = UUID(message["by"]) if message.get("by") else None
        state: HearingState = hearing.state
        room.post(
            lambda now: room.room.external_change(
                now,
                hearing_state=state,
                locked=hearing.locked,
                action=str(message.get("a", "")),
                reason=str(message.get("r", "")),
                by=by,
            )
        )

    async def _on_bus_reconnect(self) -> None:
        # Frames may have been lost while Redis was away: everyone gets a fresh picture. Nodes
        # reconnect independently, so an owner's resync can reach a relay that has not
        # re-subscribed yet: each relay asks the owners of its sockets' rooms once it is back.
        for room in list(self._rooms.values()):
            room.post(_resync_event(room.room))
        owners = {
            (local.hearing_id, local.owner)
            for local in self._locals.values()
            if local.owner != self.node_id and not local.closed
        }
        for hearing_id, owner in owners:
            with contextlib.suppress(BusUnavailableError):
                await self._publish(owner, {"k": "resync", "h": str(hearing_id)})

    # Timers ---------------------------------------------------------------------------------------

    async def _ticker(self) -> None:
        idle_after = (
            self.config.reconnect_grace + self.config.judge_drop_grace + timedelta(seconds=5)
        )
        while True:
            await asyncio.sleep(TICK_S)
            now = self.clock.now()
            for hearing_id, room in list(self._rooms.items()):
                if now - room.last_busy > idle_after and room.inbox.empty():
                    # Nobody here and nothing pending for a while: free the room.
                    del self._rooms[hearing_id]
                    await room.stop()
                    await self._release_recording(hearing_id, "room_idle")
                    with contextlib.suppress(BusUnavailableError):
                        await self._leases.release(hearing_id)
                    logger.info("room %s closed on %s (idle)", hearing_id, self.node_id)
                    continue
                room.post(room.room.tick)

    async def _lease_keeper(self) -> None:
        period = max(0.2, self._lease_ttl.total_seconds() / 3)
        while True:
            await asyncio.sleep(period)
            with contextlib.suppress(Exception):
                await self._keep_leases()

    async def _keep_leases(self) -> None:
        now = self.clock.now()
        for hearing_id, room in list(self._rooms.items()):
            try:
                owner = await self._leases.renew(hearing_id)
            except BusUnavailableError:
                continue  # keep serving; Redis will be back or the lease lapses elsewhere
            if owner != self.node_id:
                logger.warning("room %s lost to node %s; closing it here", hearing_id, owner)
                self._rooms.pop(hearing_id, None)
                for conn_id in room.room.connection_ids():
                    await self._deliver(conn_id, (CloseCode.SERVICE_RESTART, "room_moved"))
                await room.stop()
                await self._release_recording(hearing_id, "room_moved")
        # Relayed sockets: follow their room if the owner changed or is gone.
        relayed: dict[UUID, list[_Local]] = {}
        for local in self._locals.values():
            if local.owner != self.node_id and not local.closed:
                relayed.setdefault(local.hearing_id, []).append(local)
        for hearing_id, locals_ in relayed.items():
            try:
                current = await self._leases.owner(hearing_id)
            except BusUnavailableError:
                continue
            expected = locals_[0].owner
            if current == expected:
                self._owner_missing_since.pop(hearing_id, None)
                continue
            if current is None:
                since = self._owner_missing_since.setdefault(hearing_id, now)
                if now - since < self._lease_ttl:
                    continue  # the owner may just be re-taking it after a Redis restart
            self._owner_missing_since.pop(hearing_id, None)
            logger.warning(
                "room %s: owner %s gone; asking clients to reconnect", hearing_id, expected
            )
            for local in locals_:
                self._push(local, encode(Bye(reason="room_moved")))
                self._push(local, (CloseCode.SERVICE_RESTART, "room_moved"))


def _resync_event(core: Room) -> Event:
    def event(now: datetime) -> list[Output]:
        return core.resync()

    return event


def _frame_message(conn_id: str, item: str | tuple[int, str]) -> dict[str, Any]:
    if isinstance(item, str):
        return {"k": "send", "c": conn_id, "d": item}
    return {"k": "close", "c": conn_id, "code": item[0], "r": item[1]}
