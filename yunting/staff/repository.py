"""SQL for staff accounts and sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from yunting.hearing.model import StaffRole
from yunting.staff.model import StaffUser
from yunting.staff.tables import staff_sessions, staff_users


def _user(row: Row[Any]) -> StaffUser:
    return StaffUser(
        id=row.id,
        court_id=row.court_id,
        username=row.username,
        display_name=row.display_name,
        role=StaffRole(row.role),
        active=row.active,
        person_id=row.person_id,
    )


async def insert_user(
    conn: AsyncConnection, user: StaffUser, *, password_hash: str, at: datetime
) -> None:
    await conn.execute(
        insert(staff_users).values(
            id=user.id,
            court_id=user.court_id,
            username=user.username,
            display_name=user.display_name,
            role=user.role.value,
            password_hash=password_hash,
            person_id=user.person_id,
            active=user.active,
            created_at=at,
        )
    )


async def get_user_with_hash(conn: AsyncConnection, username: str) -> tuple[StaffUser, str] | None:
    row = (
        await conn.execute(select(staff_users).where(staff_users.c.username == username))
    ).first()
    return (_user(row), row.password_hash) if row else None


async def get_user(conn: AsyncConnection, user_id: UUID) -> StaffUser | None:
    row = (await conn.execute(select(staff_users).where(staff_users.c.id == user_id))).first()
    return _user(row) if row else None


async def get_users(conn: AsyncConnection, user_ids: list[UUID]) -> list[StaffUser]:
    if not user_ids:
        return []
    query = select(staff_users).where(staff_users.c.id.in_(user_ids))
    return [_user(row) for row in (await conn.execute(query)).all()]


async def set_password_hash(conn: AsyncConnection, user_id: UUID, password_hash: str) -> None:
    await conn.execute(
        update(staff_users).where(staff_users.c.id == user_id).values(password_hash=password_hash)
    )


async def insert_session(
    conn: AsyncConnection,
    *,
    token_hash: str,
    user_id: UUID,
    csrf_token: str,
    created_at: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        insert(staff_sessions).values(
            token_hash=token_hash,
            user_id=user_id,
            csrf_token=csrf_token,
            created_at=created_at,
            expires_at=expires_at,
        )
    )


async def get_session(conn: AsyncConnection, token_hash: str) -> Row[Any] | None:
    query = select(staff_sessions).where(staff_sessions.c.token_hash == token_hash)
    return (await conn.execute(query)).first()


async def revoke_session(conn: AsyncConnection, token_hash: str, *, at: datetime) -> None:
    await conn.execute(
        update(staff_sessions)
        .where(staff_sessions.c.token_hash == token_hash, staff_sessions.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )


async def set_person(conn: AsyncConnection, user_id: UUID, person_id: UUID) -> None:
    await conn.execute(
        update(staff_users).where(staff_users.c.id == user_id).values(person_id=person_id)
    )
