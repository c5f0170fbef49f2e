"""One exception tree for the evidence ledger; ``web/routes/ledger.py`` maps it to HTTP."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every ledger error."""


class InvalidEntryError(LedgerError):
    """An entry that cannot be appended as given (bad kind, hash, time or event)."""


class EntryNotFoundError(LedgerError):
    """No entry at that index (or with that content hash)."""


class InvalidTreeSizeError(LedgerError):
    """A tree size or index outside the log as it is now."""


class SigningKeyError(LedgerError):
    """The tree-head signing key is missing, unreadable or malformed."""


class BundleError(LedgerError):
    """An evidence bundle that cannot be read at all (not a zip, no manifest)."""
