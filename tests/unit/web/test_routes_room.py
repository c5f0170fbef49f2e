"""Which websocket scopes take the room fast path past the middleware and router."""

from __future__ import annotations

from typing import Any

import pytest

from yunting.web.routes.room import room_socket_hearing


def scope(kind: str, path: str) -> dict[str, Any]:
    return {"type": kind, "path": path}


@pytest.mark.parametrize(
    ("kind", "path", "expected"),
    [
        (
            "websocket",
            "/ws/hearings/0b7c6a3e-1f2d-4c5b-9a8e-7d6c5b4a3f21",
            "0b7c6a3e-1f2d-4c5b-9a8e-7d6c5b4a3f21",
        ),
        # Not a uuid: still the room endpoint, which closes it with 4404 no_such_hearing.
        ("websocket", "/ws/hearings/nope", "nope"),
        # Everything else goes through the router as before (and is refused there).
        ("websocket", "/ws/hearings/", None),
        ("websocket", "/ws/hearings/abc/extra", None),
        ("websocket", "/ws/other", None),
        ("http", "/ws/hearings/abc", None),
    ],
)
def test_only_room_sockets_take_the_fast_path(kind: str, path: str, expected: str | None) -> None:
    assert room_socket_hearing(scope(kind, path)) == expected
