"""Documents to be served: checked by content (a judgment must be a PDF, whatever its name
says), size-limited, hashed, and kept through the storage port."""

from __future__ import annotations

import re
from enum import StrEnum

from yunting.service_delivery.errors import DocumentRejectedError


class DocumentKind(StrEnum):
    JUDGMENT = "judgment"  # 判决书
    RULING = "ruling"  # 裁定书
    NOTICE = "notice"  # 通知书 and other court notices
    OTHER = "other"


# Kinds that are only ever served as PDF (the court's signed original).
PDF_ONLY: frozenset[DocumentKind] = frozenset({DocumentKind.JUDGMENT, DocumentKind.RULING})
_PDF_VERSION = re.compile(rb"%PDF-(\d)\.(\d)")


def sniff_media_type(head: bytes) -> str:
    """The media type by content: PDF by its header (ISO 32000-1 §7.5.2 allows up to 1024 bytes
    of junk before ``%PDF-``), else ``application/octet-stream``."""
    if _PDF_VERSION.search(head[:1024]):
        return "application/pdf"
    return "application/octet-stream"


def check_document(*, kind: DocumentKind, head: bytes, tail: bytes, size: int, limit: int) -> str:
    """Validate an upload by what it is, not what it is called; returns its media type.

    Raises ``DocumentRejectedError`` with a stable ``reason``: empty, too_large, not_pdf,
    truncated (a PDF without its end-of-file marker: an interrupted upload or a broken file).
    """
    if size == 0:
        raise DocumentRejectedError("the file is empty", reason="empty")
    if size > limit:
        raise DocumentRejectedError(
            f"the file is {size} bytes; the limit is {limit}", reason="too_large"
        )
    media_type = sniff_media_type(head)
    if kind in PDF_ONLY and media_type != "application/pdf":
        raise DocumentRejectedError(
            f"a {kind} must be a PDF file (its content is not a PDF)", reason="not_pdf"
        )
    # §7.5.5: the last line of the file holds %%EOF; incremental updates keep one at the end.
    if media_type == "application/pdf" and b"%%EOF" not in tail[-1024:]:
        raise DocumentRejectedError("the PDF is incomplete (no %%EOF)", reason="truncated")
    return media_type
