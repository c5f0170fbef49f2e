"""The boundary between signaling and the media node (``media/``, built on aiortc).

The room decides who may publish and who receives whom (``MediaGrant``), relays ``media_start``,
SDP answers and ICE candidates from a participant to its one peer connection on the media node
(``MediaSignal``), and tears a peer down (``MediaRelease``). The media node makes every offer and
sends it through ``RoomHost.media_to_participant``.
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from yunting.hearing.model import HearingState
from yunting.signaling.messages import RecordingStatus
from yunting.signaling.outputs import MediaGrant, MediaSignalMessage


class MediaUnavailableError(Exception):
    """No media node serves this hearing; the participant is told, nothing else changes."""


class MediaPort(Protocol):
    async def signal(
        self,
        *,
        hearing_id: UUID,
        participant_id: UUID,
        message: MediaSignalMessage,
    ) -> None:
        """Hand a participant's ``media_start``, SDP answer or ICE candidate to its peer."""
        ...

    async def grant(self, *, hearing_id: UUID, grant: MediaGrant) -> None:
        """Replace the participant's media rights: enforce them from now on."""
        ...

    async def release(self, *, hearing_id: UUID, participant_id: UUID) -> None:
        """Close the participant's peer connection, if any."""
        ...


class NoMediaNode:
    """Signaling without media (until the media node is configured): grants are kept, so the
    staff page and tests can see what would be enforced; offers are refused with a reason."""

    def __init__(self) -> None:
        self.grants: dict[tuple[UUID, UUID], MediaGrant] = {}

    async def signal(
        self,
        *,
        hearing_id: UUID,
        participant_id: UUID,
        message: MediaSignalMessage,
    ) -> None:
        raise MediaUnavailableError("no media node serves this hearing")

    async def grant(self, *, hearing_id: UUID, grant: MediaGrant) -> None:
        self.grants[(hearing_id, grant.participant_id)] = grant

    async def release(self, *, hearing_id: UUID, participant_id: UUID) -> None:
        self.grants.pop((hearing_id, participant_id), None)


class RecordingPort(Protocol):
    """The boundary between signaling and the recorder (``recording/``), beside the room's
    owner. The room tells it every hearing state change before announcing it
    (``FollowRecording``); the recorder reports back through ``RoomHost.recording_changed`` and
    ``RoomHost.recording_failed``."""

    async def follow(
        self,
        *,
        hearing_id: UUID,
        state: HearingState,
        action: str,
        reason: str,
        actor_id: UUID | None,
    ) -> None:
        """Record (in session), stop (paused, suspended, open) or stop and seal (closed)."""
        ...

    async def release(self, *, hearing_id: UUID, reason: str) -> None:
        """The room left this node (idle, moved, shutting down): stop recording it here."""
        ...

    def status(self, hearing_id: UUID) -> RecordingStatus:
        """What the judge and clerk see now."""
        ...


class NoRecording:
    """Signaling without a recorder (no media node): the judge and clerk see ``off``."""

    async def follow(
        self,
        *,
        hearing_id: UUID,
        state: HearingState,
        action: str,
        reason: str,
        actor_id: UUID | None,
    ) -> None:
        return None

    async def release(self, *, hearing_id: UUID, reason: str) -> None:
        return None

    def status(self, hearing_id: UUID) -> RecordingStatus:
        return RecordingStatus(
            state="off",
            reason="no_media_node",
            since=None,
            segments=0,
            last_segment_at=None,
        )
