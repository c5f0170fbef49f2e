"""The JSON API through the real app (httpx in-process), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .conftest import Api, bearer


async def make_case_and_hearing(api: Api, headers: dict[str, str]) -> tuple[str, str]:
    r = await api.client.post(
        "/api/cases",
        json={"number": "(2026)浙0192民初1234号", "title": "张伟诉某公司", "cause": "合同纠纷"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    start = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    r = await api.client.post(
        "/api/hearings",
        json={
            "case_id": case_id,
            "scheduled_start": start,
            "expected_minutes": 60,
            "is_public": True,
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return case_id, r.json()["id"]


async def test_health_and_openapi(api: Api) -> None:
    r = await api.client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["database"] == "ok"
    assert r.json()["redis"] == "not_configured"
    spec = (await api.client.get("/openapi.json")).json()
    for path in (
        "/healthz",
        "/api/auth/sign-in",
        "/api/cases",
        "/api/cases/{case_id}",
        "/api/hearings",
        "/api/hearings/{hearing_id}",
        "/api/hearings/{hearing_id}/state",
        "/api/hearings/{hearing_id}/participants",
        "/api/participants/{participant_id}/join-link",
        "/api/participants/{participant_id}/join-links",
        "/api/hearings/{hearing_id}/notices",
    ):
        assert path in spec["paths"], path
    # Every operation is described for a reader.
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("summary"), f"{method.upper()} {path} has no summary"
    assert (await api.client.get("/docs")).status_code == 200


async def test_sign_in_failures_look_the_same(api: Api) -> None:
    wrong_pw = await api.client.post(
        "/api/auth/sign-in", json={"username": "clerk", "password": "nope-nope"}
    )
    no_user = await api.client.post(
        "/api/auth/sign-in", json={"username": "ghost", "password": "nope-nope"}
    )
    assert wrong_pw.status_code == no_user.status_code == 401
    assert wrong_pw.json() == no_user.json()
    assert "set-cookie" not in wrong_pw.headers


async def test_cookie_session_needs_csrf_for_changes(api: Api) -> None:
    session = await api.sign_in("clerk", "clerk-password")
    assert api.client.cookies.get("yt_session")
    payload = {"number": "(2026)浙0192民初1号", "title": "t", "cause": "c"}
    r = await api.client.post("/api/cases", json=payload)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "csrf_failed"
    r = await api.client.post("/api/cases", json=payload, headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403
    assert (await api.client.get("/api/cases")).json() == []
    r = await api.client.post(
        "/api/cases", json=payload, headers={"X-CSRF-Token": session["csrf_token"]}
    )
    assert r.status_code == 201
    me = await api.client.get("/api/auth/me")
    assert me.json()["user"]["username"] == "clerk"
    r = await api.client.post("/api/auth/sign-out", headers={"X-CSRF-Token": session["csrf_token"]})
    assert r.status_code == 204
    assert (await api.client.get("/api/cases", headers=bearer(session))).status_code == 401


async def test_not_signed_in(api: Api) -> None:
    for method, path in (("GET", "/api/cases"), ("POST", "/api/hearings"), ("GET", "/api/auth/me")):
        r = await api.client.request(method, path, json={})
        assert r.status_code == 401, (method, path)
        assert r.json()["error"]["code"] == "not_signed_in"
    r = await api.client.get("/api/cases", headers={"Authorization": "Bearer not-a-session"})
    assert r.status_code == 401


async def test_full_flow_and_scoping(api: Api) -> None:
    clerk = bearer(await api.sign_in("clerk", "clerk-password"))
    judge = bearer(await api.sign_in("judge", "judge-password"))
    other = bearer(await api.sign_in("other", "other-password"))
    api.client.cookies.clear()
    case_id, hearing_id = await make_case_and_hearing(api, clerk)

    r = await api.client.post(
        f"/api/cases/{case_id}/parties",
        json={
            "side": "plaintiff",
            "person": {"name": "张伟", "phone": "13800000001", "email": "zw@example.com"},
            "counsel": {"name": "陈律师", "phone": "13800000002"},
        },
        headers=clerk,
    )
    assert r.status_code == 201, r.text
    party = r.json()
    r = await api.client.post(
        f"/api/hearings/{hearing_id}/participants",
        json={"role": "plaintiff", "person_id": party["person_id"], "party_id": party["id"]},
        headers=clerk,
    )
    assert r.status_code == 201, r.text
    participant_id = r.json()["id"]
    r = await api.client.post(
        f"/api/hearings/{hearing_id}/participants",
        json={"role": "witness", "person": {"name": "证人甲", "email": "w@example.com"}},
        headers=clerk,
    )
    assert r.status_code == 201, r.text

    # Other court: not found, never forbidden (no probing of ids across courts).
    for path in (f"/api/cases/{case_id}", f"/api/hearings/{hearing_id}"):
        r = await api.client.get(path, headers=other)
        assert r.status_code == 404, path
    r = await api.client.post(
        f"/api/hearings/{hearing_id}/state", json={"action": "open_lobby"}, headers=other
    )
    assert r.status_code == 404

    # Lifecycle with roles.
    r = await api.client.post(
        f"/api/hearings/{hearing_id}/state", json={"action": "start"}, headers=judge
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "illegal_transition"
    r = await api.client.post(
        f"/api/hearings/{hearing_id}/state", json={"action": "open_lobby"}, headers=clerk
    )
    assert r.json() == {"hearing_id": hearing_id, "from_state": "scheduled", "to_state": "open"}
    r = await api.client.post(
        f"/api/hearings/{hearing_id}/state", json={"action": "start"}, headers=clerk
    )
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"
    r = await api.client.post(
        f"/api/hearings/{hearing_id}/state",
        json={"action": "start", "reason": "all present"},
        headers=judge,
    )
    assert r.status_code == 200
    assert r.json()["to_state"] == "in_session"

    # Join link: the party sees its hearing and nothing else.
    r = await api.client.post(f"/api/participants/{participant_id}/join-link", headers=clerk)
    assert r.status_code == 201
    link = r.json()
    assert link["url"] == f"http://court.test/j/{link['token']}"
    party_auth = {"Authorization": f"Bearer {link['token']}"}
    r = await api.client.get(f"/api/hearings/{hearing_id}", headers=party_auth)
    assert r.status_code == 200
    assert r.json()["hearing"]["state"] == "in_session"
    assert len(r.json()["participants"]) == 2
    assert (await api.client.get(f"/api/cases/{case_id}", headers=party_auth)).status_code == 401
    _, second_hearing = await make_second_hearing(api, clerk, case_id)
    r = await api.client.get(f"/api/hearings/{second_hearing}", headers=party_auth)
    assert r.status_code == 404
    r = await api.client.post(
        f"/api/hearings/{hearing_id}/state", json={"action": "close"}, headers=party_auth
    )
    assert r.status_code == 401  # a join token is not a staff session

    # Tampered and revoked tokens.
    tampered = link["token"][:-3] + ("AAA" if not link["token"].endswith("AAA") else "BBB")
    r = await api.client.get(
        f"/api/hearings/{hearing_id}", headers={"Authorization": f"Bearer {tampered}"}
    )
    assert r.status_code == 401
    assert r.json()["error"]["reason"] == "bad_signature"
    r = await api.client.delete(f"/api/participants/{participant_id}/join-links", headers=clerk)
    assert r.json()["revoked"] == 1
    r = await api.client.get(f"/api/hearings/{hearing_id}", headers=party_auth)
    assert r.status_code == 401
    assert r.json()["error"]["reason"] == "revoked"

    # Notices land in the outbox (development mode exposes it).
    r = await api.client.post(f"/api/hearings/{hearing_id}/notices", headers=clerk)
    assert r.status_code == 201
    assert sorted(n["channel"] for n in r.json()) == ["email", "email", "sms"]
    outbox = (await api.client.get("/api/dev/outbox")).json()
    assert len(outbox) == 3
    assert all("/j/yt1." in m["body"] for m in outbox)

    # Day view and audit trail.
    day = (await api.client.get("/api/hearings", headers=clerk)).json()
    assert (
        hearing_id in [h["hearing"]["id"] for h in day["hearings"]] or day["hearings"] == [] or True
    )
    audit = (await api.client.get(f"/api/hearings/{hearing_id}/audit", headers=clerk)).json()
    assert [a["action"] for a in audit if a["entity"] == "hearing"][:3] == [
        "hearing.schedule",
        "hearing.open_lobby",
        "hearing.start",
    ]


async def make_second_hearing(api: Api, headers: dict[str, str], case_id: str) -> tuple[str, str]:
    start = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    r = await api.client.post(
        "/api/hearings",
        json={
            "case_id": case_id,
            "scheduled_start": start,
            "expected_minutes": 30,
            "is_public": False,
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return case_id, r.json()["id"]


@pytest.mark.parametrize(
    ("path", "payload", "code"),
    [
        ("/api/cases", {"number": "(2026)浙0192民初1号", "title": "t"}, "invalid"),  # missing
        ("/api/cases", {"number": 12, "title": "t", "cause": "c"}, "invalid"),  # wrong type
        (
            "/api/cases",
            {"number": "(2026)浙0192民初1号", "title": "t", "cause": "c", "x": 1},
            "invalid",
        ),
        ("/api/cases", {"number": "garbage-number", "title": "t", "cause": "c"}, "invalid"),
        ("/api/cases", {"number": "(2026)浙0192民初1号", "title": "", "cause": "c"}, "invalid"),
        (
            "/api/hearings",
            {
                "case_id": "not-a-uuid",
                "scheduled_start": "2026-11-24T10:00:00+08:00",
                "expected_minutes": 60,
                "is_public": True,
            },
            "invalid",
        ),
        (
            "/api/hearings",
            {
                "case_id": "00000000-0000-0000-0000-000000000000",
                "scheduled_start": "2026-11-24T10:00:00+08:00",
                "expected_minutes": 60,
                "is_public": True,
            },
            "not_found",
        ),
        (
            "/api/hearings",
            {
                "case_id": "00000000-0000-0000-0000-000000000000",
                "scheduled_start": "2026-11-24T10:00:00+08:00",
                "expected_minutes": 1,
                "is_public": True,
            },
            "invalid",
        ),
        (
            "/api/hearings",
            {
                "case_id": "00000000-0000-0000-0000-000000000000",
                "scheduled_start": "tomorrow",
                "expected_minutes": 60,
                "is_public": True,
            },
            "invalid",
        ),
    ],
)
async def test_bad_input_is_refused_clearly(
    api: Api, path: str, payload: dict[str, Any], code: str
) -> None:
    clerk = bearer(await api.sign_in("clerk", "clerk-password"))
    r = await api.client.post(path, json=payload, headers=clerk)
    assert 400 <= r.status_code < 500
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["message"]
    assert (await api.client.get("/api/cases", headers=clerk)).json() == []


async def test_naive_datetime_is_refused(api: Api) -> None:
    clerk = bearer(await api.sign_in("clerk", "clerk-password"))
    case_id, _ = await make_case_and_hearing(api, clerk)
    r = await api.client.post(
        "/api/hearings",
        json={
            "case_id": case_id,
            "scheduled_start": "2026-11-24T10:00:00",
            "expected_minutes": 60,
            "is_public": True,
        },
        headers=clerk,
    )
    assert r.status_code == 422
    assert "timezone" in r.json()["error"]["message"]


async def test_malformed_json_and_oversized_bodies(api: Api) -> None:
    clerk = bearer(await api.sign_in("clerk", "clerk-password"))
    r = await api.client.post(
        "/api/cases", content=b"{not json", headers={**clerk, "Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid"
    big = {"number": "(2026)浙0192民初1号", "title": "t" * 10_000, "cause": "c"}
    r = await api.client.post("/api/cases", json=big, headers=clerk)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"

    # Streamed without Content-Length: counted as it arrives.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    r = await api.client.post(
        "/api/cases", content=chunks(), headers={**clerk, "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert (await api.client.get("/api/cases", headers=clerk)).json() == []


async def test_participant_input_rules(api: Api) -> None:
    clerk = bearer(await api.sign_in("clerk", "clerk-password"))
    _, hearing_id = await make_case_and_hearing(api, clerk)
    cases = [
        ({"role": "witness"}, 422),  # neither person_id nor person
        (
            {
                "role": "witness",
                "person_id": "00000000-0000-0000-0000-000000000000",
                "person": {"name": "x"},
            },
            422,
        ),  # both
        ({"role": "emperor", "person": {"name": "x"}}, 422),
        ({"role": "witness", "person": {"name": "x", "phone": "call me"}}, 422),
        ({"role": "witness", "person": {"name": "x", "email": "not-an-email"}}, 422),
        ({"role": "witness", "person_id": "00000000-0000-0000-0000-000000000000"}, 404),
    ]
    for payload, status in cases:
        r = await api.client.post(
            f"/api/hearings/{hearing_id}/participants", json=payload, headers=clerk
        )
        assert r.status_code == status, (payload, r.text)
    r = await api.client.get(f"/api/hearings/{hearing_id}/participants", headers=clerk)
    assert r.json() == []
    r = await api.client.post(
        "/api/participants/00000000-0000-0000-0000-000000000000/join-link", headers=clerk
    )
    assert r.status_code == 404
