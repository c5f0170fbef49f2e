"""Evidence ledger: an append-only Merkle log in the style of Certificate Transparency.

Other areas call ``append(conn, ...)`` inside their own transaction; the app builds one
``Ledger`` with ``build_ledger`` for signing tree heads, proofs, lookups and export.
See docs/ledger.md for the evidence model.
"""

from yunting.infra.ledger.errors import (
    EntryNotFoundError,
    InvalidEntryError,
    InvalidTreeSizeError,
    LedgerError,
    SigningKeyError,
)
from yunting.infra.ledger.model import Entry, NewEntry, SignedTreeHead
from yunting.infra.ledger.service import (
    Ledger,
    append,
    append_many,
    build_ledger,
    ensure_signing_key,
)

__all__ = [
    "Entry",
    "EntryNotFoundError",
    "InvalidEntryError",
    "InvalidTreeSizeError",
    "Ledger",
    "LedgerError",
    "NewEntry",
    "SignedTreeHead",
    "SigningKeyError",
    "append",
    "append_many",
    "build_ledger",
    "ensure_signing_key",
]
