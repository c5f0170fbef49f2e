from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from yunting.identity.otp import (
    CODE_TTL,
    MAX_ATTEMPTS,
    MAX_CODES_PER_HOUR,
    RESEND_AFTER,
    CodeRecord,
    OtpPurpose,
    Verdict,
    generate_code,
    hash_code,
    issue_refusal,
    judge,
    normalise,
)

KEY = b"k" * 32
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
P = OtpPurpose.JOIN_HEARING


def record(code: str, **changes: object) -> CodeRecord:
    base: dict[str, object] = {
        "code_hash": hash_code(KEY, purpose=P, subject="s1", code=code),
        "expires_at": NOW + CODE_TTL,
        "attempts": 0,
        "consumed_at": None,
    }
    base.update(changes)
    return CodeRecord(**base)  # type: ignore[arg-type]


def test_codes_are_six_digits_and_vary() -> None:
    codes = {generate_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 190


def test_right_code_in_any_typing() -> None:
    r = record("012345")
    for typed in ("012345", " 012 345 ", "012-345", "０１２３４５"):
        assert judge(r, key=KEY, purpose=P, subject="s1", code=typed, now=NOW) is Verdict.OK


@pytest.mark.parametrize("typed", ["012346", "", "12345", "0123456", "abcdef", "٠١٢٣٤٥"])
def test_wrong_codes(typed: str) -> None:
    assert judge(record("012345"), key=KEY, purpose=P, subject="s1", code=typed, now=NOW) is (
        Verdict.WRONG
    )


def test_code_is_bound_to_subject_purpose_and_key() -> None:
    r = record("012345")
    assert judge(r, key=KEY, purpose=P, subject="s2", code="012345", now=NOW) is Verdict.WRONG
    assert (
        judge(r, key=KEY, purpose=OtpPurpose.SERVICE_ACCESS, subject="s1", code="012345", now=NOW)
        is Verdict.WRONG
    )
    assert judge(r, key=b"x" * 32, purpose=P, subject="s1", code="012345", now=NOW) is (
        Verdict.WRONG
    )


def test_expired_used_locked() -> None:
    assert (
        judge(record("012345"), key=KEY, purpose=P, subject="s1", code="012345", now=NOW + CODE_TTL)
        is Verdict.EXPIRED
    )
    used = record("012345", consumed_at=NOW)
    assert judge(used, key=KEY, purpose=P, subject="s1", code="012345", now=NOW) is Verdict.USED
    locked = record("012345", attempts=MAX_ATTEMPTS)
    # Even the right code is refused once the attempts are spent: no brute force to the end.
    assert judge(locked, key=KEY, purpose=P, subject="s1", code="012345", now=NOW) is Verdict.LOCKED


def test_issue_rate_limits() -> None:
    assert issue_refusal(recent_issue_times=[], now=NOW) is None
    too_soon = issue_refusal(recent_issue_times=[NOW - timedelta(seconds=10)], now=NOW)
    assert too_soon == ("too_soon", NOW - timedelta(seconds=10) + RESEND_AFTER)
    spaced = [NOW - timedelta(minutes=10 * i + 2) for i in range(MAX_CODES_PER_HOUR)]
    refusal = issue_refusal(recent_issue_times=spaced, now=NOW)
    assert refusal is not None
    assert refusal[0] == "too_many"
    assert refusal[1] == min(spaced) + timedelta(hours=1)
    old = [NOW - timedelta(hours=2)] * 10
    assert issue_refusal(recent_issue_times=old, now=NOW) is None


def test_normalise() -> None:
    assert normalise(" １２３ ４５６ ") == "123456"
