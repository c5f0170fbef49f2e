"""JSON Schema (draft 2020-12) of every signaling message, generated from ``messages.py``.

``docs/signaling.schema.json`` is this module's output; a unit test fails when it is stale.
Regenerate with ``python -m yunting.signaling.schema > docs/signaling.schema.json``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from yunting.signaling.messages import CLIENT_MESSAGES, PROTOCOL_VERSION, SERVER_MESSAGES

SCHEMA_ID = "https://yunting.invalid/schemas/signaling-v1.json"
_REF = "#/$defs/{model}"


def _union_schema(
    models: tuple[type[Any], ...], mode: JsonSchemaMode
) -> tuple[dict[str, Any], dict[str, Any]]:
    union = Annotated[Union[models], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007 - a runtime tuple
    schema = TypeAdapter(union).json_schema(mode=mode, ref_template=_REF)
    defs = schema.pop("$defs", {})
    return schema, defs


def signaling_schema() -> dict[str, Any]:
    """One schema: ``#/$defs/ClientMessage`` (what browsers send, as validated) and
    ``#/$defs/ServerMessage`` (what the server sends, as serialised)."""
    client, client_defs = _union_schema(CLIENT_MESSAGES, "validation")
    server, server_defs = _union_schema(SERVER_MESSAGES, "serialization")
    defs: dict[str, Any] = {}
    for name, definition in [*client_defs.items(), *server_defs.items()]:
        if name in defs and defs[name] != definition:
            # The media messages go both ways; their two renderings may only differ in which
            # defaulted fields are required. Keep the validation form: the looser of the two.
            continue
        defs[name] = definition
    defs["ClientMessage"] = {"description": "A message from a browser to the server.", **client}
    defs["ServerMessage"] = {"description": "A message from the server to a browser.", **server}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"Yunting signaling protocol, version {PROTOCOL_VERSION}",
        "description": (
            "JSON messages on the websocket /ws/hearings/{hearing_id}; see docs/signaling.md."
        ),
        # anyOf, not oneOf: the media messages are valid in both directions.
        "anyOf": [{"$ref": "#/$defs/ClientMessage"}, {"$ref": "#/$defs/ServerMessage"}],
        "$defs": dict(sorted(defs.items())),
    }


def render() -> str:
    """The schema file's exact text."""
    return json.dumps(signaling_schema(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
