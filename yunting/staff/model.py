"""Staff accounts (judges, clerks, administrators) and their sign-in sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from yunting.hearing.model import Actor, ActorKind, StaffRole


@dataclass(frozen=True, slots=True)
class StaffUser:
    id: UUID
    court_id: UUID
    username: str
    display_name: str
    role: StaffRole
    active: bool
    person_id: UUID | None

    def actor(self) -> Actor:
        return Actor(kind=ActorKind.STAFF, id=self.id, court_id=self.court_id, staff_role=self.role)


@dataclass(frozen=True, slots=True)
class StaffSession:
    user: StaffUser
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class NewSession:
    """Returned once at sign-in: the cookie value is never stored, only its hash."""

    token: str
    csrf_token: str
    expires_at: datetime
    user: StaffUser
