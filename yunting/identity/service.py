"""Sending and checking one-time codes through the outgoing-message port."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update

from yunting.hearing.tokens import derive_key
from yunting.identity.errors import CodeRejectedError, RateLimitedError
from yunting.identity.otp import (
    CODE_TTL,
    MAX_ATTEMPTS,
    RESEND_AFTER,
    CodeRecord,
    OtpPurpose,
    Verdict,
    generate_code,
    hash_code,
    issue_refusal,
    judge,
)
from yunting.identity.tables import one_time_codes
from yunting.infra.clock import Clock, as_utc
from yunting.infra.db import Database
from yunting.infra.logging import mask_email, mask_phone
from yunting.service_delivery.ports import (
    Channel,
    MessagePurpose,
    MessageSender,
    OutgoingMessage,
)

logger = logging.getLogger(__name__)

_MESSAGES = {
    Verdict.WRONG: "the code is not right",
    Verdict.EXPIRED: "the code has expired; ask for a new one",
    Verdict.USED: "the code was already used; ask for a new one",
    Verdict.LOCKED: "too many wrong tries; ask for a new code",
}


@dataclass(frozen=True, slots=True)
class SentCode:
    channel: Channel
    destination_hint: str
    expires_at: datetime
    resend_after: datetime


class IdentityService:
    def __init__(self, *, db: Database, clock: Clock, secret_key: str) -> None:
        self._db = db
        self._clock = clock
        self._key = derive_key(secret_key, "one-time-code")

    async def send_code(
        self,
        *,
        purpose: OtpPurpose,
        subject: str,
        channel: Channel,
        destination: str,
        sender: MessageSender,
        text: str,
    ) -> SentCode:
        """Issue a code for ``subject`` and send it. ``text`` has a ``{code}`` placeholder.

        The code row is committed before the message leaves, so a code can never be in
        someone's hands without the server knowing it.
        """
        now = self._clock.now()
        code = generate_code()
        hint = mask_phone(destination) if channel is Channel.SMS else mask_email(destination)
        async with self._db.transaction() as conn:
            rows = await conn.execute(
                select(one_time_codes.c.created_at).where(
                    one_time_codes.c.purpose == purpose.value,
                    one_time_codes.c.subject == subject,
                )
            )
            refusal = issue_refusal(
                recent_issue_times=[as_utc(r.created_at) for r in rows], now=now
            )
            if refusal is not None:
                reason, retry_at = refusal
                raise RateLimitedError(
                    "a code was sent a moment ago; wait before asking again"
                    if reason == "too_soon"
                    else "too many codes asked for; try again later",
                    reason=reason,
                    retry_at=retry_at,
                )
            await conn.execute(
                insert(one_time_codes).values(
                    id=uuid.uuid4(),
                    purpose=purpose.value,
                    subject=subject,
                    channel=channel.value,
                    destination_hint=hint,
                    code_hash=hash_code(self._key, purpose=purpose, subject=subject, code=code),
                    created_at=now,
                    expires_at=now + CODE_TTL,
                    attempts=0,
                )
            )
        await sender.send(
            OutgoingMessage(
                channel=channel,
                recipient=destination,
                subject="验证码 Verification code" if channel is Channel.EMAIL else "",
                body=text.format(code=code),
                purpose=MessagePurpose.ONE_TIME_CODE,
                reference=subject,
            )
        )
        logger.info("one-time code sent by %s", channel, extra={"reference": subject})
        return SentCode(
            channel=channel,
            destination_hint=hint,
            expires_at=now + CODE_TTL,
            resend_after=now + RESEND_AFTER,
        )

    async def verify_code(self, *, purpose: OtpPurpose, subject: str, code: str) -> None:
        """Check ``code`` against the newest code issued for ``subject``; consume it if right.

        Raises ``CodeRejectedError`` (reason: wrong, expired, used, locked, none). A wrong try is
        counted in the database before the error is raised.
        """
        now = self._clock.now()
        async with self._db.transaction() as conn:
            row = (
                await conn.execute(
                    select(one_time_codes)
                    .where(
                        one_time_codes.c.purpose == purpose.value,
                        one_time_codes.c.subject == subject,
                    )
                    .order_by(one_time_codes.c.created_at.desc())
                    .limit(1)
                    .with_for_update()
                )
            ).first()
            verdict: Verdict | None = None
            attempts_after = 0
            if row is not None:
                record = CodeRecord(
                    code_hash=row.code_hash,
                    expires_at=as_utc(row.expires_at),
                    attempts=row.attempts,
                    consumed_at=row.consumed_at,
                )
                verdict = judge(
                    record, key=self._key, purpose=purpose, subject=subject, code=code, now=now
                )
                if verdict is Verdict.OK:
                    await conn.execute(
                        update(one_time_codes)
                        .where(one_time_codes.c.id == row.id)
                        .values(consumed_at=now)
                    )
                elif verdict is Verdict.WRONG:
                    attempts_after = row.attempts + 1
                    await conn.execute(
                        update(one_time_codes)
                        .where(one_time_codes.c.id == row.id)
                        .values(attempts=one_time_codes.c.attempts + 1)
                    )
        if verdict is None:
            raise CodeRejectedError("no code was sent yet", reason="none", attempts_left=0)
        if verdict is not Verdict.OK:
            left = max(0, MAX_ATTEMPTS - attempts_after) if verdict is Verdict.WRONG else 0
            # The try that spends the last attempt is reported as what it leads to: locked.
            final = Verdict.LOCKED if verdict is Verdict.WRONG and left == 0 else verdict
            raise CodeRejectedError(_MESSAGES[final], reason=final.value, attempts_left=left)
        logger.info("one-time code verified", extra={"reference": subject})
