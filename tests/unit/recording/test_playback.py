"""The playback page's timeline: the hearing's own events, who joined and left, and the
recording's events, in order, placed on the record's time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from yunting.recording.playback import build_timeline
from yunting.recording.repository import EventRow

T0 = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_timeline_merges_orders_and_places_events() -> None:
    hearing = uuid.uuid4()
    items = build_timeline(
        start=at(0),
        end=at(100),
        hearing_events=[
            (at(-600), "hearing.schedule", "", ""),  # not a moment of the hearing itself
            (at(0), "hearing.start", "", ""),
            (at(40), "hearing.pause", "recess", ""),
            (at(60), "hearing.resume", "", ""),
            (at(100), "hearing.close", "adjourned", ""),
            (at(1), "participant.issue_link", "", ""),  # not a hearing event
        ],
        attendance=[
            (at(-5), "join_attempt", "", "张伟"),  # the lobby's business
            (at(10), "admitted", "", "张伟"),
            (at(50), "disconnected", "network_loss", "张伟"),
            (at(55), "resumed", "", "张伟"),
        ],
        recording_events=[
            EventRow(1, hearing, at(0.2), "started", None, "start", None),
            EventRow(2, hearing, at(40.1), "stopped", None, "pause: recess", None),
        ],
    )
    assert [(i.source, i.event) for i in items] == [
        ("hearing", "hearing.start"),
        ("recording", "started"),
        ("attendance", "admitted"),
        ("hearing", "hearing.pause"),
        ("recording", "stopped"),
        ("attendance", "disconnected"),
        ("attendance", "resumed"),
        ("hearing", "hearing.resume"),
        ("hearing", "hearing.close"),
    ]
    pause = items[3]
    assert (pause.offset_s, pause.percent, pause.reason) == (40.0, 40.0, "recess")
    assert items[5].who == "张伟"
    assert items[-1].percent == 100.0


def test_events_outside_the_record_are_pinned_to_its_ends() -> None:
    (early,) = build_timeline(
        start=at(10),
        end=at(20),
        hearing_events=[(at(0), "hearing.start", "", "")],
        attendance=[],
        recording_events=[],
    )
    assert (early.offset_s, early.percent) == (-10.0, 0.0)
