"""docs/signaling.md stays true: its examples are valid messages, and its tables name every code.

Each ```json block must be one message that the JSON Schema accepts as a client or a server
message; together they show every message type in both directions. The error-code and close-code
tables must list exactly the codes of ``yunting/signaling/errors.py``.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pytest

from yunting.signaling.errors import CloseCode, ErrorCode
from yunting.signaling.messages import CLIENT_TYPES, SERVER_MESSAGES

DOCS = Path(__file__).parents[3] / "docs"
DOC_PATH = DOCS / "signaling.md"
SCHEMA_PATH = DOCS / "signaling.schema.json"

JSON_BLOCK = re.compile(r"^```json\n(.*?)^```$", re.DOTALL | re.MULTILINE)
SERVER_TYPES = frozenset(get_args(m.model_fields["type"].annotation)[0] for m in SERVER_MESSAGES)


def doc_text() -> str:
    return DOC_PATH.read_text(encoding="utf-8")


def examples() -> list[str]:
    return JSON_BLOCK.findall(doc_text())


@cache
def validator(direction: str) -> jsonschema.protocols.Validator:
    """Validates one message against ``#/$defs/ClientMessage`` or ``#/$defs/ServerMessage``."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    root = {**schema, "anyOf": [{"$ref": f"#/$defs/{direction}"}]}
    cls = jsonschema.validators.validator_for(root)
    cls.check_schema(root)
    return cls(root, format_checker=cls.FORMAT_CHECKER)


def directions(message: Any) -> set[str]:
    """Which of ClientMessage and ServerMessage accept ``message``."""
    return {d for d in ("ClientMessage", "ServerMessage") if validator(d).is_valid(message)}


def section(heading: str) -> str:
    """The text under ``## heading`` up to the next second-level heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", doc_text(), re.DOTALL | re.M)
    assert match is not None, f"docs/signaling.md has no section {heading!r}"
    return match.group(1)


def first_column(table_text: str) -> set[str]:
    return {
        line.split("|")[1].strip().strip("`")
        for line in table_text.splitlines()
        if line.startswith("| ") and not line.startswith("| code ")
    }


def test_the_doc_has_examples() -> None:
    assert len(examples()) >= len(CLIENT_TYPES) + len(SERVER_TYPES) - 3  # media: both ways


@pytest.mark.parametrize("block", examples(), ids=lambda b: json.loads(b).get("type", "?"))
def test_each_example_is_a_valid_message(block: str) -> None:
    message = json.loads(block)
    if not directions(message):
        # Show what is wrong with it as the client or server message of its type.
        kind = "ServerMessage" if message.get("type") in SERVER_TYPES else "ClientMessage"
        validator(kind).validate(message)
        pytest.fail(f"valid as neither client nor server message: {block}")


def test_every_message_type_has_an_example_in_each_direction() -> None:
    client: set[str] = set()
    server: set[str] = set()
    for block in examples():
        message = json.loads(block)
        accepted = directions(message)
        if "ClientMessage" in accepted:
            client.add(message["type"])
        if "ServerMessage" in accepted:
            server.add(message["type"])
    assert sorted(CLIENT_TYPES - client) == []
    assert sorted(SERVER_TYPES - server) == []


def test_the_error_code_table_lists_exactly_the_error_codes() -> None:
    assert first_column(section("Error codes")) == {code.value for code in ErrorCode}


def test_the_close_code_table_lists_exactly_the_close_codes() -> None:
    assert first_column(section("Close codes")) == {str(code.value) for code in CloseCode}
