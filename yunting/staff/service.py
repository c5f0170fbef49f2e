"""Staff sign-in and accounts."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import uuid
from datetime import timedelta
from uuid import UUID

from argon2 import PasswordHasher
from sqlalchemy.exc import IntegrityError

from yunting.hearing.model import StaffRole
from yunting.infra.clock import Clock, as_utc
from yunting.infra.db import Database
from yunting.infra.errors import InvalidInputError
from yunting.staff import repository as repo
from yunting.staff.errors import (
    AuthenticationError,
    SessionInvalidError,
    TooManyAttemptsError,
    UsernameTakenError,
)
from yunting.staff.model import NewSession, StaffSession, StaffUser
from yunting.staff.passwords import dummy_hash, hash_password, verify_password
from yunting.staff.throttle import LoginThrottle, MemoryLoginThrottle

logger = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class StaffService:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        session_ttl: timedelta,
        hasher: PasswordHasher,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self._db = db
        self._throttle = throttle or MemoryLoginThrottle(clock=clock)
        self._clock = clock
        self._ttl = session_ttl
        self._hasher = hasher
        self._dummy_hash = dummy_hash(hasher)

    async def create_user(
        self,
        *,
        court_id: UUID,
        username: str,
        display_name: str,
        role: StaffRole,
        password: str,
        person_id: UUID | None = None,
    ) -> StaffUser:
        """Create a staff account. Usernames are lower-case ASCII, 3-64 characters."""
        username = username.strip().lower()
        if not USERNAME_RE.match(username):
            raise InvalidInputError(
                f"username {username!r} must be 3-64 of a-z, 0-9, '.', '_' or '-'"
            )
        user = StaffUser(
            id=uuid.uuid4(),
            court_id=court_id,
            username=username,
            display_name=display_name.strip() or username,
            role=role,
            active=True,
            person_id=person_id,
        )
        password_hash = self._hash(password)
        try:
            async with self._db.transaction() as conn:
                if await repo.get_user_with_hash(conn, username) is not None:
                    raise UsernameTakenError(f"username {username} is taken")
                await repo.insert_user(
                    conn, user, password_hash=password_hash, at=self._clock.now()
                )
        except IntegrityError as e:  # lost a race with another create of the same name
            raise UsernameTakenError(f"username {username} is taken") from e
        logger.info("staff user %s created with role %s", user.id, role)
        return user

    async def link_person(self, *, user_id: UUID, person_id: UUID) -> None:
        """Record which person this account is, so it joins hearings as that participant."""
        async with self._db.transaction() as conn:
            await repo.set_person(conn, user_id, person_id)

    async def get_user_by_username(self, *, username: str) -> StaffUser | None:
        async with self._db.read() as conn:
            found = await repo.get_user_with_hash(conn, username.strip().lower())
        return found[0] if found else None

    def _hash(self, password: str) -> str:
        try:
            return hash_password(self._hasher, password)
        except ValueError as e:
            raise InvalidInputError(str(e)) from e

    async def display_names(self, *, court_id: UUID, user_ids: list[UUID]) -> dict[UUID, str]:
        """Names of staff users of ``court_id`` (for audit trails: who acted)."""
        async with self._db.read() as conn:
            users = await repo.get_users(conn, sorted(set(user_ids)))
        return {u.id: u.display_name for u in users if u.court_id == court_id}

    async def set_password(self, *, user_id: UUID, password: str) -> None:
        password_hash = self._hash(password)
        async with self._db.transaction() as conn:
            await repo.set_password_hash(conn, user_id, password_hash)

    async def sign_in(self, *, username: str, password: str, client: str = "") -> NewSession:
        """Check credentials and open a session. Failure never says which part was wrong.

        ``client`` is the caller's network address, for throttling repeated failures.
        """
        name = username.strip().lower()
        wait = await self._throttle.retry_after(username=name, client=client)
        if wait > 0:
            raise TooManyAttemptsError(
                "too many failed sign-ins; try again later", retry_after_s=wait
            )
        async with self._db.read() as conn:
            found = await repo.get_user_with_hash(conn, name)
        if found is None:
            verify_password(self._hasher, self._dummy_hash, password)
            await self._throttle.failed(username=name, client=client)
            raise AuthenticationError("wrong username or password")
        user, password_hash = found
        if not verify_password(self._hasher, password_hash, password) or not user.active:
            await self._throttle.failed(username=name, client=client)
            raise AuthenticationError("wrong username or password")
        await self._throttle.succeeded(username=name)
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        now = self._clock.now()
        expires_at = now + self._ttl
        async with self._db.transaction() as conn:
            await repo.insert_session(
                conn,
                token_hash=_hash_token(token),
                user_id=user.id,
                csrf_token=csrf,
                created_at=now,
                expires_at=expires_at,
            )
        logger.info("staff user %s signed in", user.id)
        return NewSession(token=token, csrf_token=csrf, expires_at=expires_at, user=user)

    async def resolve_session(self, *, token: str) -> StaffSession:
        if not token or len(token) > 200:
            raise SessionInvalidError("no session")
        async with self._db.read() as conn:
            row = await repo.get_session(conn, _hash_token(token))
            user = await repo.get_user(conn, row.user_id) if row else None
        if row is None or user is None:
            raise SessionInvalidError("no session")
        if row.revoked_at is not None or as_utc(row.expires_at) <= self._clock.now():
            raise SessionInvalidError("session has ended; sign in again")
        if not user.active:
            raise SessionInvalidError("account disabled")
        return StaffSession(user=user, csrf_token=row.csrf_token, expires_at=as_utc(row.expires_at))

    async def sign_out(self, *, token: str) -> None:
        async with self._db.transaction() as conn:
            await repo.revoke_session(conn, _hash_token(token), at=self._clock.now())
