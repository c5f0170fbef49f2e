"""The ledger as the hearing area's ``EvidenceLog`` port.

For a state change the evidence *is* the event, so the content hash is the SHA-256 of the
event's canonical JSON: anyone holding the event (e.g. from an exported bundle) can recompute it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from yunting.infra.ledger.canonical import canonical_json
from yunting.infra.ledger.service import append


class LedgerEvidence:
    """Implements ``yunting.hearing.ports.EvidenceLog`` inside the caller's transaction."""

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
        digest = hashlib.sha256(canonical_json(dict(event))).hexdigest()
        return await append(
            conn,
            kind=kind,
            subject_id=subject_id,
            content_sha256=digest,
            event=event,
            at=at,
            case_id=case_id,
        )
