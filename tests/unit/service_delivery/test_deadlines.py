"""Periods from service (民事诉讼法 第八十五条) on the PRC holiday calendar of 2025 and 2026."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from yunting.service_delivery.deadlines import (
    CN_MAINLAND,
    COURT_TIME_ZONE,
    AppealKind,
    HolidayCalendar,
    appeal_deadline,
    compute_deadline,
    deadline,
    service_date,
)

J = AppealKind.JUDGMENT
R = AppealKind.RULING
SHANGHAI = ZoneInfo(COURT_TIME_ZONE)

# (served on, days, expected last day). Worked out by hand from the State Council notices:
# 2025 (国办发明电〔2024〕12号) and 2026 (notice of 2025-11-04).
PERIODS = [
    pytest.param(date(2025, 1, 20), 10, date(2025, 2, 5), id="spring-2025-ruling-ends-in-festival"),
    pytest.param(date(2025, 1, 13), 15, date(2025, 2, 5), id="spring-2025-ends-on-new-years-eve"),
    pytest.param(
        date(2025, 1, 22), 15, date(2025, 2, 6), id="spring-2025-festival-inside-is-counted"
    ),
    pytest.param(
        date(2025, 1, 24), 15, date(2025, 2, 8), id="spring-2025-ends-on-adjusted-working-saturday"
    ),
    pytest.param(
        date(2025, 1, 11), 15, date(2025, 1, 26), id="spring-2025-ends-on-adjusted-working-sunday"
    ),
    pytest.param(
        date(2025, 1, 25), 15, date(2025, 2, 10), id="spring-2025-ends-on-sunday-after-working-sat"
    ),
    pytest.param(date(2025, 3, 1), 15, date(2025, 3, 17), id="plain-sunday-extends-to-monday"),
    pytest.param(date(2025, 3, 5), 10, date(2025, 3, 17), id="plain-saturday-extends-to-monday"),
    pytest.param(date(2025, 3, 3), 10, date(2025, 3, 13), id="plain-weekday-no-extension"),
    pytest.param(date(2025, 3, 20), 15, date(2025, 4, 7), id="qingming-2025-fri-to-sun"),
    pytest.param(date(2025, 4, 12), 15, date(2025, 4, 27), id="labour-2025-working-sunday"),
    pytest.param(date(2025, 4, 20), 15, date(2025, 5, 6), id="labour-2025-ends-in-festival"),
    pytest.param(date(2025, 5, 22), 10, date(2025, 6, 3), id="dragon-boat-2025"),
    pytest.param(date(2025, 9, 13), 15, date(2025, 9, 28), id="golden-week-2025-working-sunday"),
    pytest.param(date(2025, 9, 22), 10, date(2025, 10, 9), id="golden-week-2025-ends-in-festival"),
    pytest.param(date(2025, 9, 23), 15, date(2025, 10, 9), id="golden-week-2025-ends-on-its-last"),
    pytest.param(
        date(2025, 9, 26), 15, date(2025, 10, 11), id="golden-week-2025-adjusted-working-saturday"
    ),
    pytest.param(
        date(2025, 12, 22), 10, date(2026, 1, 4), id="new-year-2026-ends-on-adjusted-working-sunday"
    ),
    pytest.param(date(2026, 2, 5), 10, date(2026, 2, 24), id="spring-2026-nine-days"),
    pytest.param(date(2026, 1, 30), 15, date(2026, 2, 14), id="spring-2026-working-sat-before"),
    pytest.param(date(2026, 2, 13), 15, date(2026, 2, 28), id="spring-2026-working-sat-after"),
    pytest.param(date(2026, 3, 20), 15, date(2026, 4, 7), id="qingming-2026-sat-to-mon"),
    pytest.param(date(2026, 4, 24), 15, date(2026, 5, 9), id="labour-2026-working-saturday"),
    pytest.param(date(2026, 9, 15), 10, date(2026, 9, 28), id="mid-autumn-2026"),
    pytest.param(date(2026, 9, 5), 15, date(2026, 9, 20), id="golden-week-2026-working-sunday"),
    pytest.param(date(2026, 9, 21), 15, date(2026, 10, 8), id="golden-week-2026-ends-in-festival"),
    pytest.param(date(2026, 9, 25), 15, date(2026, 10, 10), id="golden-week-2026-working-saturday"),
    pytest.param(date(2025, 9, 1), 30, date(2025, 10, 9), id="thirty-days-into-golden-week"),
]


@pytest.mark.parametrize(("served_on", "days", "last_day"), PERIODS)
def test_deadline(served_on: date, days: int, last_day: date) -> None:
    assert deadline(served_on=served_on, days=days, calendar=CN_MAINLAND) == last_day


@pytest.mark.parametrize(
    ("served_on", "kind", "domiciled", "days", "last_day", "article"),
    [
        pytest.param(date(2025, 1, 13), J, True, 15, date(2025, 2, 5), "第一百七十一条第一款"),
        pytest.param(date(2025, 1, 20), R, True, 10, date(2025, 2, 5), "第一百七十一条第二款"),
        pytest.param(date(2025, 9, 1), J, False, 30, date(2025, 10, 9), "第二百八十六条"),
        pytest.param(date(2025, 9, 1), R, False, 30, date(2025, 10, 9), "第二百八十六条"),
    ],
    ids=["judgment-15", "ruling-10", "judgment-no-domicile-30", "ruling-no-domicile-30"],
)
def test_appeal_deadline(
    served_on: date, kind: AppealKind, domiciled: bool, days: int, last_day: date, article: str
) -> None:
    result = appeal_deadline(
        served_on=served_on, kind=kind, calendar=CN_MAINLAND, domiciled_in_china=domiciled
    )
    assert result.days == days
    assert result.nominal_last_day == served_on + timedelta(days=days)
    assert result.last_day == last_day
    assert result.extended
    assert result.calendar_covered
    assert article in result.citation
    assert "第八十五条" in result.citation


def test_adjusted_working_day_is_not_an_extension() -> None:
    result = compute_deadline(served_on=date(2026, 2, 13), days=15, calendar=CN_MAINLAND)
    assert result.last_day == result.nominal_last_day == date(2026, 2, 28)  # a Saturday
    assert not result.extended


@pytest.mark.parametrize(
    ("served_at", "expected"),
    [
        pytest.param(datetime(2025, 1, 12, 15, 30, tzinfo=UTC), date(2025, 1, 12), id="23:30-cst"),
        pytest.param(datetime(2025, 1, 12, 16, 30, tzinfo=UTC), date(2025, 1, 13), id="00:30-cst"),
        pytest.param(
            datetime(2025, 1, 13, 0, 30, tzinfo=timezone(timedelta(hours=8))),
            date(2025, 1, 13),
            id="given-in-cst",
        ),
    ],
)
def test_service_date_is_the_courts_date(served_at: datetime, expected: date) -> None:
    assert service_date(served_at, SHANGHAI) == expected


def test_half_past_midnight_in_beijing_moves_the_appeal_into_the_festival() -> None:
    # 2025-01-12 16:30 UTC is 00:30 on the 13th in Beijing: the UTC date would end the period on
    # Monday 27 January; the court's date ends it on the 28th, 除夕, so it runs to 5 February.
    served_at = datetime(2025, 1, 12, 16, 30, tzinfo=UTC)
    by_utc = deadline(served_on=served_at.date(), days=15, calendar=CN_MAINLAND)
    by_court = deadline(served_on=service_date(served_at, SHANGHAI), days=15, calendar=CN_MAINLAND)
    assert by_utc == date(2025, 1, 27)
    assert by_court == date(2025, 2, 5)


def test_service_date_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        service_date(datetime(2025, 1, 12, 23, 30), SHANGHAI)  # noqa: DTZ001


def test_deadline_refuses_a_datetime_and_an_empty_period() -> None:
    with pytest.raises(TypeError, match="got a datetime"):
        deadline(served_on=datetime(2025, 1, 12, tzinfo=UTC), days=15, calendar=CN_MAINLAND)
    with pytest.raises(ValueError, match="at least one day"):
        deadline(served_on=date(2025, 1, 12), days=0, calendar=CN_MAINLAND)


# The calendar as the notices print it, retyped here independently of the module's data.
REST = {
    2025: ["01-01", "01-28", "02-04", "04-04", "05-05", "05-31", "06-02", "10-01", "10-08"],
    2026: ["01-01", "01-03", "02-15", "02-23", "04-06", "05-05", "06-19", "09-25", "10-07"],
}
WORKING = {
    2025: ["01-26", "02-08", "04-27", "09-28", "10-11", "02-05", "10-09"],
    2026: ["01-04", "02-14", "02-28", "05-09", "09-20", "10-10", "02-24", "10-08"],
}


@pytest.mark.parametrize(
    ("day", "rest"),
    [(date.fromisoformat(f"{y}-{md}"), True) for y, mds in REST.items() for md in mds]
    + [(date.fromisoformat(f"{y}-{md}"), False) for y, mds in WORKING.items() for md in mds],
    ids=str,
)
def test_calendar_days(day: date, rest: bool) -> None:
    assert CN_MAINLAND.covers(day)
    assert CN_MAINLAND.is_rest_day(day) is rest


def test_calendar_counts_every_festival_day() -> None:
    def rest_weekdays(year: int) -> int:
        days = (date(year, 1, 1) + timedelta(days=n) for n in range(365))
        return sum(1 for d in days if d.weekday() < 5 and CN_MAINLAND.is_rest_day(d))

    def working_weekend_days(year: int) -> int:
        days = (date(year, 1, 1) + timedelta(days=n) for n in range(365))
        return sum(1 for d in days if d.weekday() >= 5 and not CN_MAINLAND.is_rest_day(d))

    # Weekdays off = the statutory festival days on weekdays + the swapped ones. 2025: 元旦 1,
    # 春节 6 (Jan 28-31, Feb 3-4), 清明 1, 劳动 3 (May 1, 2, 5), 端午 1 (Jun 2), 国庆中秋 6
    # (Oct 1-3, 6-8) = 18, with 5 weekend days worked. 2026: 元旦 2, 春节 6, 清明 1 (Apr 6),
    # 劳动 3 (May 1, 4, 5), 端午 1 (Jun 19), 中秋 1 (Sep 25), 国庆 5 = 19, with 6 worked.
    assert (rest_weekdays(2025), working_weekend_days(2025)) == (18, 5)
    assert (rest_weekdays(2026), working_weekend_days(2026)) == (19, 6)


def test_outside_the_covered_years_only_weekends_rest_and_it_says_so() -> None:
    assert not CN_MAINLAND.covers(date(2027, 1, 1))
    assert not CN_MAINLAND.covers(date(2024, 12, 31))
    # 2027-01-01 is a Friday: surely 元旦, but no notice is in the calendar for 2027 yet.
    result = compute_deadline(served_on=date(2026, 12, 22), days=10, calendar=CN_MAINLAND)
    assert result.last_day == date(2027, 1, 1)
    assert not result.calendar_covered
    result = compute_deadline(served_on=date(2027, 1, 6), days=10, calendar=CN_MAINLAND)
    assert result.last_day == date(2027, 1, 18)  # Saturday 16th -> Monday 18th
    assert not result.calendar_covered


def test_a_covered_last_day_is_covered_even_if_service_was_before() -> None:
    result = compute_deadline(served_on=date(2024, 12, 20), days=15, calendar=CN_MAINLAND)
    assert result.last_day == date(2025, 1, 6)  # Saturday 4 January -> Monday 6
    assert result.calendar_covered


@pytest.mark.parametrize(
    ("rest", "working", "years", "message"),
    [
        ({date(2025, 1, 1)}, {date(2025, 1, 1)}, {2025}, "apart"),
        (set(), {date(2025, 1, 2)}, {2025}, "on weekends"),
        ({date(2024, 1, 1)}, set(), {2025}, "expected days in"),
    ],
    ids=["rest-and-working", "working-on-a-weekday", "outside-covered-years"],
)
def test_calendar_refuses_inconsistent_data(
    rest: set[date], working: set[date], years: set[int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        HolidayCalendar("bad", frozenset(rest), frozenset(working), frozenset(years))
