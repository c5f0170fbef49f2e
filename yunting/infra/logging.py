"""Logging configured in one place: structured fields, request ids, no personal data.

Call ``configure_logging`` once at start-up. Log calls pass ids in ``extra``; the formatter prints
the known structured fields (and only those, so a stray ``extra`` cannot leak a phone number).
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

request_id_var: ContextVar[str] = ContextVar("request_id", default="")

STRUCTURED_FIELDS = (
    "request_id",
    "hearing_id",
    "case_id",
    "participant_id",
    "user_id",
    "action",
    "purpose",
    "reference",
    "status",
    "path",
    "method",
    "duration_ms",
)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id_var.get()
        return True


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        fields = " ".join(
            f"{name}={getattr(record, name)}"
            for name in STRUCTURED_FIELDS
            if getattr(record, name, "") not in ("", None)
        )
        line = f"{ts}Z {record.levelname:<7} {record.name}: {record.getMessage()}"
        if fields:
            line += f"  [{fields}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in STRUCTURED_FIELDS:
            value = getattr(record, name, "")
            if value not in ("", None):
                data[name] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def configure_logging(*, level: str = "INFO", json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else KeyValueFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's access log would print full URLs, and join links carry tokens in the path.
    logging.getLogger("uvicorn.access").disabled = True
    # fontTools logs every glyph id it keeps at INFO when a PDF embeds a font subset.
    logging.getLogger("fontTools").setLevel(logging.WARNING)


def mask_phone(phone: str) -> str:
    """``13812345678`` -> ``138****5678``: enough for a clerk to recognise, not to dial."""
    digits = phone.strip()
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


def mask_email(email: str) -> str:
    """``zhang.san@example.com`` -> ``z***@example.com``."""
    local, sep, domain = email.partition("@")
    if not sep:
        return "***"
    return f"{local[:1]}***@{domain}"
