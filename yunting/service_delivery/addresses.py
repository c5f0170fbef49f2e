"""Phone numbers and email addresses as the channels need them, checked before anything is
stored: a service order with an address no message can reach is refused at once."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

from yunting.infra.logging import mask_email, mask_phone
from yunting.service_delivery.errors import InvalidAddressError
from yunting.service_delivery.ports import Channel

_SEPARATORS = re.compile(r"[\s\-().]")
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
# ITU-T E.164: a country code and at most 15 digits in all.
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


def normalize_phone(text: str) -> str:
    """A mobile number in E.164 (``+8613800138000``). Mainland numbers may be given without
    the country code (``138 0013 8000``, ``+86 138-0013-8000``, ``0086…``)."""
    compact = _SEPARATORS.sub("", text.strip())
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if _CN_MOBILE.match(compact):
        return "+86" + compact
    if compact.startswith("+86") and not _CN_MOBILE.match(compact[3:]):
        raise InvalidAddressError(
            f"expected a mainland mobile number after +86, got {len(compact) - 3} digits",
            field="phone",
        )
    if not _E164.match(compact):
        raise InvalidAddressError(
            "expected a mobile number such as 13800138000 or +85291234567", field="phone"
        )
    return compact


# The address most people have: a dot-atom local part and a domain of ASCII letters, digits
# and hyphens under an alphabetic top-level domain. email_validator accepts every one of these
# as it is, the domain lowercased (a property test holds ``plain_email`` to that); anything else
# goes to email_validator itself, which costs ten times as much (IDNA, Unicode, quoting).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_PLAIN_EMAIL = re.compile(
    rf"({_ATEXT}+(?:\.{_ATEXT}+)*)@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63})"
)
# email_validator refuses these top-level domains (special use, RFC 6761/6762/7686).
_SPECIAL_USE_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def plain_email(text: str) -> tuple[str, str] | None:
    """``(address, domain)`` normalized as email_validator would, for a plain ASCII address;
    ``None`` for anything else (not necessarily invalid: ask email_validator)."""
    found = _PLAIN_EMAIL.fullmatch(text)
    if found is None or len(text) > 254:
        return None
    local, domain = found.group(1), found.group(2).lower()
    if (
        len(local) > 64
        or len(domain) > 253
        or "--" in domain  # "xn--" labels are IDNA: email_validator decodes and checks them
        or domain.rpartition(".")[2] in _SPECIAL_USE_TLDS
    ):
        return None
    return f"{local}@{domain}", domain


def normalize_email(text: str) -> str:
    text = text.strip()
    plain = plain_email(text)
    if plain is not None:
        return plain[0]
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as e:
        raise InvalidAddressError(f"not an email address: {e}", field="email") from e


def normalize_address(channel: Channel, text: str) -> str:
    return normalize_phone(text) if channel is Channel.SMS else normalize_email(text)


def masked(channel: Channel | str, address: str) -> str:
    """What a page or a certificate shows of an address."""
    if Channel(channel) is Channel.SMS:
        national = address[3:] if address.startswith("+86") else address
        return mask_phone(national)
    return mask_email(address)
