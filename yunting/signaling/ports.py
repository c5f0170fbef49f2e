"""The boundary between signaling and the media node (``media/``, built on aiortc).

The room decides who may publish and who receives whom (``MediaGrant``), relays ``media_start``,
SDP answers and ICE candidates from a participant to its one peer connection on the media node
(``MediaSignal``), and tears a peer down (``MediaRelease``). The media node makes every offer and
sends it through ``RoomHost.media_to_participant``.
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

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
