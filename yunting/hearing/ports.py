"""What the hearing area needs from the outside world."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection


class EvidenceLog(Protocol):
    """Append-only evidence ledger, written inside the caller's transaction.

    Acts with legal weight (hearing state changes) are entered in the same transaction as the
    change itself, so neither can exist without the other.
    """

    async def append(
        self,
        conn: AsyncConnection,
        *,
        kind: str,
        subject_id: str,
        case_id: UUID | None,
        event: Mapping[str, Any],
        at: datetime,
    ) -> int:
        """Append one entry and return its index in the log."""
        ...
