"""A participant proves identity with a one-time code sent through the outbox."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from yunting.identity.otp import MAX_ATTEMPTS

from .conftest import Api, bearer


async def invite(api: Api) -> tuple[dict[str, str], dict[str, str], str]:
    """A hearing with one plaintiff; returns (clerk auth, participant auth, participant id)."""
    clerk = bearer(await api.sign_in("clerk", "clerk-password"))
    api.client.cookies.clear()
    r = await api.client.post(
        "/api/cases",
        json={"number": "(2026)浙0192民初55号", "title": "t", "cause": "c"},
        headers=clerk,
    )
    start = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    r = await api.client.post(
        "/api/hearings",
        json={
            "case_id": r.json()["id"],
            "scheduled_start": start,
            "expected_minutes": 60,
            "is_public": False,
        },
        headers=clerk,
    )
    hearing_id = r.json()["id"]
    r = await api.client.post(
        f"/api/hearings/{hearing_id}/participants",
        json={"role": "plaintiff", "person": {"name": "张伟", "phone": "13812345678"}},
        headers=clerk,
    )
    participant_id = r.json()["id"]
    r = await api.client.post(f"/api/participants/{participant_id}/join-link", headers=clerk)
    return clerk, {"Authorization": f"Bearer {r.json()['token']}"}, participant_id


async def latest_code(api: Api) -> str:
    messages: list[dict[str, Any]] = (await api.client.get("/api/dev/outbox")).json()
    codes = [m for m in messages if m["purpose"] == "one_time_code"]
    match = re.search(r"\b(\d{6})\b", codes[0]["body"])
    assert match, codes[0]["body"]
    return match.group(1)


async def participant_state(api: Api, clerk: dict[str, str], participant_id: str) -> str:
    r = await api.client.get("/api/cases", headers=clerk)
    hearings = await api.client.get(f"/api/cases/{r.json()[0]['id']}/hearings", headers=clerk)
    parts = await api.client.get(
        f"/api/hearings/{hearings.json()[0]['id']}/participants", headers=clerk
    )
    return str(next(p["state"] for p in parts.json() if p["id"] == participant_id))


async def test_code_by_sms_verifies_the_participant_once(api: Api) -> None:
    clerk, party, participant_id = await invite(api)
    r = await api.client.post("/api/join/code", json={"channel": "sms"}, headers=party)
    assert r.status_code == 201, r.text
    assert r.json()["destination_hint"] == "138****5678"
    outbox = (await api.client.get("/api/dev/outbox")).json()
    assert outbox[0]["recipient"] == "13812345678"
    code = await latest_code(api)

    r = await api.client.post("/api/join/verify", json={"code": code}, headers=party)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "verified"
    assert await participant_state(api, clerk, participant_id) == "verified"

    # Replaying the same code is refused, and says so.
    r = await api.client.post("/api/join/verify", json={"code": code}, headers=party)
    assert r.status_code == 422
    assert r.json()["error"]["reason"] == "used"


async def test_wrong_codes_count_and_lock(api: Api) -> None:
    clerk, party, participant_id = await invite(api)
    await api.client.post("/api/join/code", json={"channel": "sms"}, headers=party)
    code = await latest_code(api)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for left in range(MAX_ATTEMPTS - 1, 0, -1):
        r = await api.client.post("/api/join/verify", json={"code": wrong}, headers=party)
        assert r.status_code == 422
        assert r.json()["error"] == {**r.json()["error"], "reason": "wrong", "attempts_left": left}
    r = await api.client.post("/api/join/verify", json={"code": wrong}, headers=party)
    assert r.json()["error"]["reason"] == "locked"
    # Now even the right code is refused: no brute force to the last digit.
    r = await api.client.post("/api/join/verify", json={"code": code}, headers=party)
    assert r.json()["error"]["reason"] == "locked"
    assert await participant_state(api, clerk, participant_id) == "invited"


async def test_rate_limit_and_missing_contact(api: Api) -> None:
    _, party, _ = await invite(api)
    r = await api.client.post("/api/join/code", json={"channel": "sms"}, headers=party)
    assert r.status_code == 201
    r = await api.client.post("/api/join/code", json={"channel": "sms"}, headers=party)
    assert r.status_code == 429
    assert r.json()["error"]["reason"] == "too_soon"
    assert 1 <= int(r.headers["retry-after"]) <= 61
    r = await api.client.post("/api/join/code", json={"channel": "email"}, headers=party)
    assert r.status_code in (409, 429)


async def test_no_code_yet_and_bad_requests(api: Api) -> None:
    clerk, party, _ = await invite(api)
    r = await api.client.post("/api/join/verify", json={"code": "123456"}, headers=party)
    assert r.status_code == 422
    assert r.json()["error"]["reason"] == "none"
    r = await api.client.post("/api/join/code", json={"channel": "fax"}, headers=party)
    assert r.status_code == 422
    r = await api.client.post("/api/join/verify", json={"code": "1" * 100}, headers=party)
    assert r.status_code == 422
    # A staff session is not a participant.
    r = await api.client.post("/api/join/code", json={"channel": "sms"}, headers=clerk)
    assert r.status_code == 403
    r = await api.client.post("/api/join/code", json={"channel": "sms"})
    assert r.status_code == 401


@pytest.mark.parametrize("typed", ["{code}", " {code} ", "{code_fullwidth}"])
async def test_codes_typed_with_spaces_or_fullwidth_digits(api: Api, typed: str) -> None:
    _, party, _ = await invite(api)
    await api.client.post("/api/join/code", json={"channel": "sms"}, headers=party)
    code = await latest_code(api)
    fullwidth = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    text = typed.format(code=code, code_fullwidth=fullwidth)
    r = await api.client.post("/api/join/verify", json={"code": text}, headers=party)
    assert r.status_code == 200, r.text


# The device check --------------------------------------------------------------------------------


async def verified_party(api: Api) -> tuple[dict[str, str], dict[str, str], str, str]:
    """A plaintiff who has verified with a code: (clerk auth, party auth, participant, hearing)."""
    clerk, party, participant_id = await invite(api)
    await api.client.post("/api/join/code", json={"channel": "sms"}, headers=party)
    r = await api.client.post(
        "/api/join/verify", json={"code": await latest_code(api)}, headers=party
    )
    assert r.status_code == 200, r.text
    cases = (await api.client.get("/api/cases", headers=clerk)).json()
    hearings = await api.client.get(f"/api/cases/{cases[0]['id']}/hearings", headers=clerk)
    return clerk, party, participant_id, str(hearings.json()[0]["id"])


async def device_checks(api: Api, clerk: dict[str, str], hearing_id: str) -> list[tuple[str, str]]:
    r = await api.client.get(f"/api/hearings/{hearing_id}/attendance", headers=clerk)
    assert r.status_code == 200, r.text
    return [(e["participant_id"], e["reason"]) for e in r.json() if e["event"] == "device_check"]


async def test_device_check_is_recorded_in_the_attendance_log(api: Api) -> None:
    clerk, party, participant_id, hearing_id = await verified_party(api)
    body = {"camera": "ok", "microphone": "ok", "speaker": "ok"}
    r = await api.client.post("/api/join/device-check", json=body, headers=party)
    assert r.status_code == 201, r.text
    assert r.json()["result"] == "devices_ok"
    assert r.json()["participant_id"] == participant_id
    # The court sees it, under the participant, as the staff page and the API show the log.
    r = await api.client.get(f"/api/hearings/{hearing_id}/attendance", headers=clerk)
    entry = next(e for e in r.json() if e["event"] == "device_check")
    assert entry == {**entry, "participant_id": participant_id, "reason": "devices_ok"}
    assert entry["display_name"] == "张伟"


# (camera, microphone, speaker) -> what is recorded: refused permissions first, then missing
# devices, then other errors, then the speaker.
DEVICE_CASES = [
    (("ok", "ok", "not_tested"), "devices_ok"),
    (("denied", "ok", "ok"), "camera_denied"),
    (("ok", "denied", "ok"), "microphone_denied"),
    (("missing", "ok", "ok"), "camera_missing"),
    (("ok", "missing", "ok"), "microphone_missing"),
    (("error", "ok", "ok"), "device_error"),
    (("ok", "error", "failed"), "device_error"),
    (("ok", "ok", "failed"), "speaker_failed"),
    (("missing", "denied", "failed"), "microphone_denied"),
    (("denied", "denied", "failed"), "camera_denied"),
    (("error", "missing", "ok"), "microphone_missing"),
]


async def test_each_device_problem_is_recorded_as_the_first_problem(api: Api) -> None:
    clerk, party, participant_id, hearing_id = await verified_party(api)
    for (camera, microphone, speaker), expected in DEVICE_CASES:
        body = {"camera": camera, "microphone": microphone, "speaker": speaker}
        r = await api.client.post("/api/join/device-check", json=body, headers=party)
        assert r.status_code == 201, r.text
        assert r.json()["result"] == expected, body
    recorded = await device_checks(api, clerk, hearing_id)
    assert recorded == [(participant_id, expected) for _, expected in DEVICE_CASES]


@pytest.mark.parametrize(
    "body",
    [
        {"camera": "ok", "microphone": "ok"},
        {"camera": "blocked", "microphone": "ok", "speaker": "ok"},
        {"camera": "ok", "microphone": "ok", "speaker": "denied"},
        {"camera": "ok", "microphone": "ok", "speaker": "ok", "notes": "extra"},
        {"camera": True, "microphone": "ok", "speaker": "ok"},
        ["ok", "ok", "ok"],
    ],
)
async def test_a_malformed_device_check_is_refused_and_not_recorded(api: Api, body: object) -> None:
    clerk, party, _, hearing_id = await verified_party(api)
    r = await api.client.post("/api/join/device-check", json=body, headers=party)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid"
    assert await device_checks(api, clerk, hearing_id) == []


async def test_device_check_needs_a_participants_join_token(api: Api) -> None:
    clerk, party, _, hearing_id = await verified_party(api)
    body = {"camera": "ok", "microphone": "ok", "speaker": "ok"}
    # A staff session is not a participant; no token at all is not signed in.
    r = await api.client.post("/api/join/device-check", json=body, headers=clerk)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"
    r = await api.client.post("/api/join/device-check", json=body)
    assert r.status_code == 401
    # A damaged join token is refused as such.
    damaged = {"Authorization": party["Authorization"][:-4] + "AAAA"}
    r = await api.client.post("/api/join/device-check", json=body, headers=damaged)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_token"
    r = await api.client.post(
        "/api/join/device-check",
        content=b"not json",
        headers={**party, "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert await device_checks(api, clerk, hearing_id) == []


async def test_device_check_before_verifying_is_refused(api: Api) -> None:
    clerk, party, participant_id = await invite(api)
    body = {"camera": "ok", "microphone": "ok", "speaker": "ok"}
    r = await api.client.post("/api/join/device-check", json=body, headers=party)
    assert r.status_code == 409
    assert await participant_state(api, clerk, participant_id) == "invited"
    cases = (await api.client.get("/api/cases", headers=clerk)).json()
    hearings = await api.client.get(f"/api/cases/{cases[0]['id']}/hearings", headers=clerk)
    assert await device_checks(api, clerk, str(hearings.json()[0]["id"])) == []


async def test_judge_checks_devices_with_the_room_token(api: Api) -> None:
    # Judge and clerk signed in instead of verifying a code; their room token is enough.
    clerk, _, _, hearing_id = await verified_party(api)
    judge = bearer(await api.sign_in("judge", "judge-password"))
    api.client.cookies.clear()
    r = await api.client.post(f"/api/hearings/{hearing_id}/room-token", headers=judge)
    assert r.status_code == 200, r.text
    room = {"Authorization": f"Bearer {r.json()['token']}"}
    body = {"camera": "missing", "microphone": "ok", "speaker": "not_tested"}
    r = await api.client.post("/api/join/device-check", json=body, headers=room)
    assert r.status_code == 201, r.text
    recorded = await device_checks(api, clerk, hearing_id)
    assert recorded == [(r.json()["participant_id"], "camera_missing")]


# The conduct declaration ------------------------------------------------------------------------


async def declarations(api: Api, clerk: dict[str, str], hearing_id: str) -> list[tuple[str, str]]:
    r = await api.client.get(f"/api/hearings/{hearing_id}/attendance", headers=clerk)
    assert r.status_code == 200, r.text
    return [
        (e["participant_id"], e["reason"]) for e in r.json() if e["event"] == "conduct_declared"
    ]


async def test_the_declaration_is_recorded_with_the_version_of_its_text(api: Api) -> None:
    clerk, party, participant_id, hearing_id = await verified_party(api)
    body = {"accepted": True, "version": "conduct-1"}
    r = await api.client.post("/api/join/declaration", json=body, headers=party)
    assert r.status_code == 201, r.text
    assert r.json()["participant_id"] == participant_id
    assert r.json()["version"] == "conduct-1"
    assert await declarations(api, clerk, hearing_id) == [(participant_id, "conduct-1")]


@pytest.mark.parametrize(
    "body",
    [
        {"accepted": False, "version": "conduct-1"},  # not ticked is no declaration
        {"accepted": "yes", "version": "conduct-1"},
        {"version": "conduct-1"},
        {"accepted": True},
        {"accepted": True, "version": ""},
        {"accepted": True, "version": "<script>"},
        {"accepted": True, "version": "x" * 41},
        {"accepted": True, "version": "conduct-1", "extra": 1},
    ],
)
async def test_a_malformed_declaration_is_refused_and_not_recorded(api: Api, body: object) -> None:
    clerk, party, _, hearing_id = await verified_party(api)
    r = await api.client.post("/api/join/declaration", json=body, headers=party)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid"
    assert await declarations(api, clerk, hearing_id) == []


async def test_a_declaration_needs_a_verified_participant(api: Api) -> None:
    clerk, party, participant_id = await invite(api)
    body = {"accepted": True, "version": "conduct-1"}
    r = await api.client.post("/api/join/declaration", json=body, headers=party)
    assert r.status_code == 409
    r = await api.client.post("/api/join/declaration", json=body, headers=clerk)
    assert r.status_code == 403
    r = await api.client.post("/api/join/declaration", json=body)
    assert r.status_code == 401
    assert await participant_state(api, clerk, participant_id) == "invited"
    cases = (await api.client.get("/api/cases", headers=clerk)).json()
    hearings = await api.client.get(f"/api/cases/{cases[0]['id']}/hearings", headers=clerk)
    assert await declarations(api, clerk, str(hearings.json()[0]["id"])) == []
