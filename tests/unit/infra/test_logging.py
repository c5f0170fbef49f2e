from __future__ import annotations

import json
import logging

from yunting.infra.logging import JsonFormatter, KeyValueFormatter, mask_email, mask_phone


def test_masks() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("12345") == "*****"
    assert mask_email("zhang.san@example.com") == "z***@example.com"
    assert mask_email("not-an-email") == "***"


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("yunting.x", logging.INFO, __file__, 1, "hearing %s", ("h1",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_only_known_structured_fields_are_printed() -> None:
    record = _record(hearing_id="h1", request_id="r1", phone="13812345678")
    line = KeyValueFormatter().format(record)
    assert "hearing h1" in line
    assert "hearing_id=h1" in line
    assert "request_id=r1" in line
    assert "13812345678" not in line
    data = json.loads(JsonFormatter().format(record))
    assert data["hearing_id"] == "h1"
    assert "phone" not in data
