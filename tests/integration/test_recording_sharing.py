"""A party opens the hearing's record where the court allows it: the judge shares it, the party
proves who they are with a one-time code from their join link, and sees the same record as the
court, read-only; witnesses never, nobody before the share or after it is withdrawn."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from tests.integration.media_support import PASSWORD, Node, media_node
from tests.integration.test_recording_playback import recorded_hearing
from yunting.hearing.model import Actor, Role
from yunting.infra.db import Database
from yunting.service_delivery.outbox import OutboxSender
from yunting.service_delivery.ports import MessagePurpose

pytestmark = pytest.mark.usefixtures("database")

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def node(database: Database, tmp_path: Path) -> AsyncIterator[Node]:
    async with media_node(
        database,
        tmp_path,
        recording_segment_s=1.0,
        recording_composite_width=320,
        recording_composite_height=180,
        recording_composite_fps=10,
    ) as served:
        yield served


async def add_by_link(node: Node, role: Role, name: str) -> tuple[UUID, str]:
    """A participant with a phone number, and their join link's token."""
    hearings = node.resources.hearings
    detail = await hearings.get_hearing(actor=Actor.system(), hearing_id=node.court.hearing_id)
    session = await node.resources.staff.sign_in(username="clerk", password=PASSWORD)
    actor = session.user.actor()
    person = await hearings.create_person(
        actor=actor, name=name, phone="13800138000", email=None, id_number_last4=None
    )
    participant = await hearings.add_participant(
        actor=actor,
        hearing_id=detail.hearing.id,
        person_id=person.id,
        role=role,
        display_name=name,
    )
    link = await hearings.issue_join_link(actor=actor, participant_id=participant.id)
    return participant.id, link.token


async def sign_in(node: Node, username: str) -> dict[str, str]:
    r = await node.http.post("/api/auth/sign-in", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['session_token']}"}


async def last_code(node: Node, participant_id: UUID) -> str:
    sender = node.resources.sender
    assert isinstance(sender, OutboxSender)
    for message in await sender.list_recent():
        if (
            message.reference == str(participant_id)
            and message.purpose is MessagePurpose.ONE_TIME_CODE
        ):
            found = re.search(r"\d{6}", message.body)
            assert found is not None, message.body
            return found.group()
    raise AssertionError("no code in the outbox")


async def record_link(node: Node, participant_id: UUID) -> str:
    """The path of the record link the court sent the participant."""
    sender = node.resources.sender
    assert isinstance(sender, OutboxSender)
    for message in await sender.list_recent():
        if message.reference == str(participant_id) and "/recording" in message.body:
            found = re.search(r"https?://[^/\s]+(/j/\S+/recording)", message.body)
            assert found is not None, message.body
            return found.group(1)
    raise AssertionError("no record link in the outbox")


async def test_a_party_opens_the_shared_record_after_a_one_time_code(node: Node) -> None:
    counsel_id, counsel = await add_by_link(node, Role.COUNSEL, "李律师")
    witness_id, witness = await add_by_link(node, Role.WITNESS, "王证人")
    await recorded_hearing(node)
    hid = node.court.hearing_id
    base = str(node.http.base_url)
    root = f"/j/{counsel}/recording"

    async with httpx.AsyncClient(base_url=base, timeout=10) as party:
        # Not shared yet: the party is told so, and nothing of the record is served.
        r = await party.get(root)
        assert r.status_code == 403
        assert 'data-refusal="not_shared"' in r.text
        assert (await party.get(f"{root}/data")).status_code == 403

        # Only the presiding judge shares it (recording control); the clerk may not.
        clerk = await sign_in(node, "clerk")
        judge = await sign_in(node, "judge")
        body = {"shared": True, "reason": "当事人申请查阅", "notify": True}
        r = await node.http.put(f"/api/hearings/{hid}/recording/sharing", json=body, headers=clerk)
        assert r.status_code == 403
        r = await node.http.put(f"/api/hearings/{hid}/recording/sharing", json=body, headers=judge)
        assert r.status_code == 200, r.text
        # The counsel has a phone number; the seeded parties have no address to send to.
        assert r.json() == {"shared": True, "messages_sent": 1}
        # The link that was sent opens the record (the old join link does too, until it expires).
        sent_root = await record_link(node, counsel_id)
        assert sent_root != root
        assert (await party.get(sent_root)).status_code == 200
        with pytest.raises(AssertionError, match="no record link"):
            await record_link(node, witness_id)
        # The room behind a record link stays shut: the hearing is over.
        r = await party.get(sent_root.removesuffix("/recording"))
        assert r.status_code == 410
        r = await node.http.put(
            f"/api/hearings/{hid}/recording/sharing", json={"shared": "maybe"}, headers=judge
        )
        assert r.status_code == 422

        # A witness never sees the record, shared or not.
        r = await party.get(f"/j/{witness}/recording")
        assert r.status_code == 403
        assert 'data-refusal="role"' in r.text

        # Shared: the party proves who they are first. Nothing is served without the pass.
        r = await party.get(root)
        assert r.status_code == 200
        assert 'id="rec-code-request"' in r.text
        assert "138****8000" in r.text
        csrf_match = CSRF_FIELD.search(r.text)
        assert csrf_match is not None
        csrf = csrf_match.group(1)
        for path in ("/data", "/verification"):
            assert (await party.get(root + path)).status_code == 403

        # A form posted without the page's CSRF cookie (a cross-site post) sends nothing.
        async with httpx.AsyncClient(base_url=base, timeout=10) as stranger:
            r = await stranger.post(f"{root}/code", data={"channel": "sms", "csrf_token": csrf})
            assert r.status_code == 403
        # A forged token with characters outside ASCII is refused too (not a server error).
        r = await party.post(f"{root}/code", data={"channel": "sms", "csrf_token": "令牌"})
        assert r.status_code == 403
        r = await party.post(f"{root}/code", data={"channel": "sms", "csrf_token": csrf})
        assert r.status_code == 200, r.text
        assert 'id="rec-party-sent"' in r.text
        code = await last_code(node, counsel_id)
        # Asked again at once: refused with the wait, and no second code.
        r = await party.post(f"{root}/code", data={"channel": "sms", "csrf_token": csrf})
        assert r.status_code == 429
        assert await last_code(node, counsel_id) == code

        wrong = "000000" if code != "000000" else "111111"
        r = await party.post(f"{root}/verify", data={"code": wrong, "csrf_token": csrf})
        assert r.status_code == 422
        assert 'id="rec-party-error"' in r.text
        r = await party.post(f"{root}/verify", data={"code": "", "csrf_token": csrf})
        assert r.status_code == 422
        assert (await party.get(f"{root}/data")).status_code == 403

        r = await party.post(f"{root}/verify", data={"code": code, "csrf_token": csrf})
        assert r.status_code == 303
        assert r.headers["location"] == root

        # The record, read-only: the same tracks and segments as the court's, served under the
        # party's link; no sharing controls.
        r = await party.get(root)
        assert r.status_code == 200
        assert 'id="rec-party-notice"' in r.text
        assert 'id="rec-sharing"' not in r.text
        data = (await party.get(f"{root}/data")).json()
        staff_view = (await node.http.get(f"/api/hearings/{hid}/recording", headers=judge)).json()
        assert [t["segments"] for t in data["tracks"]] != []
        assert [[s["sha256"] for s in t["segments"]] for t in data["tracks"]] == [
            [s["sha256"] for s in t["segments"]] for t in staff_view["tracks"]
        ]
        segment = data["tracks"][0]["segments"][0]
        assert segment["url"].startswith(f"{root}/files/")
        r = await party.get(segment["url"])
        assert r.status_code == 200
        assert len(r.content) == segment["size"]
        r = await party.get(segment["url"], headers={"Range": "bytes=0-9"})
        assert r.status_code == 206
        assert len(r.content) == 10
        r = await party.get(f"{root}/files/recordings/../../yunting.sqlite3")
        assert r.status_code == 404
        verification = (await party.get(f"{root}/verification")).json()
        assert verification["ok"] is True
        # The party's pass opens nothing under the court's own addresses.
        r = await party.get(f"/api/hearings/{hid}/recording")
        assert r.status_code == 401

        # A used code does not open it again in another browser.
        async with httpx.AsyncClient(base_url=base, timeout=10) as replay:
            page = await replay.get(root)
            csrf2 = CSRF_FIELD.search(page.text)
            assert csrf2 is not None
            r = await replay.post(f"{root}/verify", data={"code": code, "csrf_token": csrf2[1]})
            assert r.status_code == 422
            assert (await replay.get(f"{root}/data")).status_code == 403
            # Nor does the counsel's pass under another participant's link.
            pass_value = party.cookies.get("yt_record")
            assert pass_value
            r = await replay.get(
                f"/j/{node.court.tokens['plaintiff']}/recording/data",
                headers={"Cookie": f"yt_record={pass_value}"},
            )
            assert r.status_code == 403

        # Who shared it and why, and that the counsel opened it, are in the audit trail.
        trail = await node.resources.hearings.audit_trail(actor=Actor.system(), hearing_id=hid)
        actions = [(row["action"], row["reason"]) for row in trail]
        assert ("recording.share", "当事人申请查阅") in actions
        opened = [row for row in trail if row["action"] == "recording.opened"]
        assert [row["actor_id"] for row in opened] == [counsel_id]

        # Withdrawn: the next request is refused, pass or not.
        r = await node.http.put(
            f"/api/hearings/{hid}/recording/sharing", json={"shared": False}, headers=judge
        )
        assert r.status_code == 200
        assert (await party.get(segment["url"])).status_code == 403
        r = await party.get(root)
        assert r.status_code == 403
        assert 'data-refusal="not_shared"' in r.text
