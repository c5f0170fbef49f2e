"""Recipient links (bound to one attempt, unforgeable) and address normalisation."""

from __future__ import annotations

import uuid

import pytest
from email_validator import validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yunting.service_delivery import addresses
from yunting.service_delivery.addresses import masked, normalize_email, normalize_phone
from yunting.service_delivery.errors import InvalidAddressError
from yunting.service_delivery.links import TOKEN_LENGTH, make_token, read_token
from yunting.service_delivery.ports import Channel

KEY = b"k" * 32


def test_a_link_names_its_attempt_and_nothing_else() -> None:
    attempt = uuid.uuid4()
    token = make_token(KEY, attempt)
    assert len(token) == TOKEN_LENGTH
    assert read_token(KEY, token) == attempt
    assert read_token(b"x" * 32, token) is None
    other = make_token(KEY, uuid.uuid4())
    # Another attempt's id under this MAC, and this id under another's MAC.
    assert read_token(KEY, other[:22] + token[22:]) is None
    assert read_token(KEY, token[:22] + other[22:]) is None


@pytest.mark.parametrize("token", ["", "a" * 45, "a" * 22 + "." + "ü" * 22, "." * 45, "x" * 46])
def test_garbage_is_no_link(token: str) -> None:
    assert read_token(KEY, token) is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("+852 9123 4567", "+85291234567"),
    ],
)
def test_phone_numbers_become_e164(given: str, expected: str) -> None:
    assert normalize_phone(given) == expected


@pytest.mark.parametrize(
    "given", ["", "12345", "+86 123 4567 8901", "12800138000", "+8613800", "phone", "+0123456789"]
)
def test_bad_phone_numbers_are_refused(given: str) -> None:
    with pytest.raises(InvalidAddressError):
        normalize_phone(given)


def test_emails_are_checked_and_addresses_masked() -> None:
    assert normalize_email(" Zhang.Wei@Example.COM ") == "Zhang.Wei@example.com"
    for bad in ("", "no-at-sign", "a@", "@b.cn", "a b@c.cn"):
        with pytest.raises(InvalidAddressError):
            normalize_email(bad)
    assert masked(Channel.SMS, "+8613800138000") == "138****8000"
    assert masked("email", "zhang@example.com") == "z***@example.com"


_PLAIN_SHAPED = st.from_regex(addresses._PLAIN_EMAIL, fullmatch=True)
_ANY_TEXT = st.one_of(
    st.text(st.characters(max_codepoint=127), max_size=40),
    st.text(max_size=40),
    # Near misses: a plain address with one character changed, added or dropped.
    st.tuples(_PLAIN_SHAPED, st.integers(0, 80), st.characters()).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + 1 :]
    ),
    st.tuples(_PLAIN_SHAPED, st.sampled_from(sorted(addresses._SPECIAL_USE_TLDS))).map(
        lambda t: t[0].rpartition(".")[0] + "." + t[1].upper()
    ),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_PLAIN_SHAPED, _ANY_TEXT))
def test_the_fast_path_agrees_with_email_validator(text: str) -> None:
    # Whatever plain_email answers, email_validator answers the same; where it does not answer,
    # normalize_email asks email_validator.
    plain = addresses.plain_email(text)
    if plain is None:
        return
    checked = validate_email(text, check_deliverability=False)
    assert plain == (checked.normalized, checked.domain)
    assert checked.ascii_email == checked.normalized  # RCPT TO carries it as it is
    assert normalize_email(f" {text} ") == checked.normalized


@pytest.mark.parametrize(
    "given",
    [
        "party000001@example.com",
        "Zhang.Wei@Example.COM",
        "o'brien+court@sub.mail.example.org",
        "a@b.cn",
    ],
)
def test_plain_addresses_take_the_fast_path(given: str) -> None:
    assert addresses.plain_email(given) is not None


@pytest.mark.parametrize(
    "given",
    [
        "张伟@example.com",  # internationalized: email_validator decides
        "a@xn--fsqu00a.xn--fiqs8s",  # IDNA labels
        "a@host.localhost",
        "a@example.test",
        '"quoted"@example.com',
        "a@[127.0.0.1]",
        "x" * 65 + "@example.com",
    ],
)
def test_anything_else_goes_to_email_validator(given: str) -> None:
    assert addresses.plain_email(given) is None
