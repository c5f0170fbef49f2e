"""Legal periods that start with service (期间), and the calendar they are counted on. No I/O.

《中华人民共和国民事诉讼法》(2023年修正) 第八十五条 [2021年修正: also 第八十五条; 2012/2017年修正:
第八十二条]: periods are counted in hours, days, months and years; the day on which a period
starts is not counted (期间开始的时和日，不计算在期间内; 解释 (2022年修正) 第一百二十五条: periods
counted in days run from the next day); if the last day of a period is a statutory rest day
(法定休假日; the 2012/2017 text said 节假日), the period ends on the first day after the rest day.
Only the last day moves: rest days inside the period are counted. That follows from the text and
is how the SPC has put it ("如果节假日在期间中间，则节假日不予扣除", an SPC document of
2014-12-12 on computing periods, seen only as a reprint: its title is not verified).
"法定休假日" covers weekends (the same SPC document lists 星期六、星期日 next to the festivals)
except weekend days the State Council turns into working days (调休上班日), and the festival
days of the State Council's yearly notice, including those it moves onto weekdays.

The periods that run from the service of a first-instance decision: 第一百七十一条 [2012/2017:
第一百六十四条]: an appeal within 15 days of service of a judgment, 10 days of a ruling;
第二百八十六条 [2021: 第二百七十六条; 2012/2017: 第二百六十九条]: 30 days for a party without a
domicile in the PRC. A party who missed a period for a legitimate reason (a platform outage, say)
may apply for an extension within 10 days of the obstacle's removal (第八十六条 [2012/2017:
第八十三条]); that is the court's decision, not a computation, and is not modelled here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final
from zoneinfo import ZoneInfo

# The courts' time zone: a service instant becomes a service date there (use ``service_date``).
COURT_TIME_ZONE: Final = "Asia/Shanghai"


@dataclass(frozen=True, slots=True)
class HolidayYear:
    """One year of the State Council General Office's holiday notice (部分节假日安排的通知)."""

    year: int
    source: str
    # (first day, last day, festival): every day in the range is a rest day (放假调休).
    rest: tuple[tuple[date, date, str], ...]
    # Weekend days that are working days (调休上班).
    working: tuple[date, ...]


# 国务院办公厅关于2025年部分节假日安排的通知, 国办发明电〔2024〕12号, 2024-11-12: the first
# year under the 2024 revision of 《全国年节及纪念日放假办法》, which added 除夕 and 5月2日.
# Checked against the notice's text as Xinhua published it; the weekdays noted are the notice's.
_CN_2025 = HolidayYear(
    year=2025,
    source="国务院办公厅关于2025年部分节假日安排的通知（国办发明电〔2024〕12号）",
    rest=(
        (date(2025, 1, 1), date(2025, 1, 1), "元旦"),  # Wed, no swap
        (date(2025, 1, 28), date(2025, 2, 4), "春节"),  # 除夕 (Tue) to 正月初七 (Tue), 8 days
        (date(2025, 4, 4), date(2025, 4, 6), "清明节"),  # Fri-Sun
        (date(2025, 5, 1), date(2025, 5, 5), "劳动节"),  # Thu-Mon
        (date(2025, 5, 31), date(2025, 6, 2), "端午节"),  # Sat-Mon
        (date(2025, 10, 1), date(2025, 10, 8), "国庆节、中秋节"),  # Wed-Wed, 8 days
    ),
    working=(
        date(2025, 1, 26),  # Sun, 春节
        date(2025, 2, 8),  # Sat, 春节
        date(2025, 4, 27),  # Sun, 劳动节
        date(2025, 9, 28),  # Sun, 国庆节
        date(2025, 10, 11),  # Sat, 国庆节
    ),
)

# 国务院办公厅关于2026年部分节假日安排的通知, 2025-11-04 (Xinhua). The document number
# 国办发明电〔2025〕7号 is taken from a single reprint and not verified; the dates are checked
# against the notice's text as several outlets reprinted it from Xinhua.
_CN_2026 = HolidayYear(
    year=2026,
    source="国务院办公厅关于2026年部分节假日安排的通知（2025年11月4日）",
    rest=(
        (date(2026, 1, 1), date(2026, 1, 3), "元旦"),  # Thu-Sat
        (
            date(2026, 2, 15),
            date(2026, 2, 23),
            "春节",
        ),  # 腊月二十八 (Sun) to 正月初七 (Mon), 9 days
        (date(2026, 4, 4), date(2026, 4, 6), "清明节"),  # Sat-Mon
        (date(2026, 5, 1), date(2026, 5, 5), "劳动节"),  # Fri-Tue
        (date(2026, 6, 19), date(2026, 6, 21), "端午节"),  # Fri-Sun
        (date(2026, 9, 25), date(2026, 9, 27), "中秋节"),  # Fri-Sun
        (date(2026, 10, 1), date(2026, 10, 7), "国庆节"),  # Thu-Wed, 7 days
    ),
    working=(
        date(2026, 1, 4),  # Sun, 元旦
        date(2026, 2, 14),  # Sat, 春节
        date(2026, 2, 28),  # Sat, 春节
        date(2026, 5, 9),  # Sat, 劳动节
        date(2026, 9, 20),  # Sun, 国庆节
        date(2026, 10, 10),  # Sat, 国庆节
    ),
)


@dataclass(frozen=True, slots=True)
class HolidayCalendar:
    """Rest days (法定休假日) for counting periods: the notice's festival days, and weekends that
    are not working days. Outside ``covered_years`` only weekends are rest days, and ``covers``
    says so: a deadline there must be checked by a person once the year's notice is out."""

    name: str
    rest_days: frozenset[date]
    working_days: frozenset[date]
    covered_years: frozenset[int]

    def __post_init__(self) -> None:
        overlap = self.rest_days & self.working_days
        if overlap:
            raise ValueError(f"expected rest and working days apart, got both for {min(overlap)}")
        for day in self.rest_days | self.working_days:
            if day.year not in self.covered_years:
                raise ValueError(f"expected days in {sorted(self.covered_years)}, got {day}")
        for day in self.working_days:
            if day.weekday() < 5:
                raise ValueError(f"expected adjusted working days on weekends, got {day}")

    @classmethod
    def from_years(cls, name: str, years: Iterable[HolidayYear]) -> HolidayCalendar:
        rest: set[date] = set()
        working: set[date] = set()
        covered: set[int] = set()
        for year in years:
            if year.year in covered:
                raise ValueError(f"expected each year once, got {year.year} twice")
            covered.add(year.year)
            for first, last, festival in year.rest:
                if first > last or first.year != year.year or last.year != year.year:
                    raise ValueError(f"expected a range within {year.year}, got {festival}")
                rest.update(first + timedelta(days=n) for n in range((last - first).days + 1))
            working.update(year.working)
        return cls(name, frozenset(rest), frozenset(working), frozenset(covered))

    def covers(self, day: date) -> bool:
        """Whether the State Council's notice for ``day``'s year is in this calendar."""
        return day.year in self.covered_years

    def is_rest_day(self, day: date) -> bool:
        if day in self.working_days:
            return False
        return day in self.rest_days or day.weekday() >= 5

    def first_working_day_from(self, day: date) -> date:
        """``day`` if it is a working day, else the first working day after it."""
        while self.is_rest_day(day):
            day += timedelta(days=1)
        return day


CN_MAINLAND: Final = HolidayCalendar.from_years("cn-mainland", (_CN_2025, _CN_2026))


class AppealKind(StrEnum):
    """Which appeal period a served document starts (values as in ``service_orders``)."""

    JUDGMENT = "appeal_judgment"
    RULING = "appeal_ruling"


# 民事诉讼法 第一百七十一条 (15 days for a judgment, 10 for a ruling) and 第二百八十六条
# (30 days for a party without a domicile in the PRC, either kind).
APPEAL_DAYS: Final[Mapping[AppealKind, int]] = MappingProxyType(
    {AppealKind.JUDGMENT: 15, AppealKind.RULING: 10}
)
NO_DOMICILE_APPEAL_DAYS: Final = 30

_CPL = "《中华人民共和国民事诉讼法》"
_APPEAL_CITATIONS: Final[Mapping[AppealKind, str]] = MappingProxyType(
    {
        AppealKind.JUDGMENT: f"{_CPL}第一百七十一条第一款、第八十五条",
        AppealKind.RULING: f"{_CPL}第一百七十一条第二款、第八十五条",
    }
)
_NO_DOMICILE_CITATION: Final = f"{_CPL}第二百八十六条、第八十五条"


@dataclass(frozen=True, slots=True)
class Deadline:
    served_on: date
    days: int
    nominal_last_day: date  # served_on + days
    last_day: date  # moved past rest days at the end
    # Whether the calendar knows every day the result depends on (nominal to final last day);
    # False means weekends only were assumed there and a person has to check.
    calendar_covered: bool
    citation: str = ""

    @property
    def extended(self) -> bool:
        return self.last_day != self.nominal_last_day


def service_date(served_at: datetime, tz: ZoneInfo) -> date:
    """The date of service in the court's time zone (``COURT_TIME_ZONE``).

    民事诉讼法 第九十条第二款 makes the *date* the message reached the recipient's system the date
    of service, and periods count in days from the next day (第八十五条): 23:30 Beijing time
    (15:30 UTC) is still that day, 00:30 Beijing time the next, whatever the UTC date says.
    """
    if served_at.tzinfo is None or served_at.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware service time, got {served_at}")
    return served_at.astimezone(tz).date()


def compute_deadline(
    *, served_on: date, days: int, calendar: HolidayCalendar, citation: str = ""
) -> Deadline:
    """A period of ``days`` days running from service on ``served_on``, with its working.

    民事诉讼法 第八十五条: the day of service is not counted, so the nominal last day is
    ``served_on + days``; if that is a rest day (法定休假日: a festival day of the State Council's
    notice or a weekend that is not an adjusted working day), the period ends on the first working
    day after it. Rest days before the last day are counted, not skipped.
    """
    if isinstance(served_on, datetime):
        raise TypeError("expected the service date in the court's time zone, got a datetime")
    if days < 1:
        raise ValueError(f"expected a period of at least one day, got {days}")
    nominal = served_on + timedelta(days=days)
    last = calendar.first_working_day_from(nominal)
    covered = all(
        calendar.covers(nominal + timedelta(days=n)) for n in range((last - nominal).days + 1)
    )
    return Deadline(
        served_on=served_on,
        days=days,
        nominal_last_day=nominal,
        last_day=last,
        calendar_covered=covered,
        citation=citation,
    )


def deadline(*, served_on: date, days: int, calendar: HolidayCalendar) -> date:
    """The last day of a ``days``-day period served on ``served_on`` (民事诉讼法 第八十五条; see
    ``compute_deadline``)."""
    return compute_deadline(served_on=served_on, days=days, calendar=calendar).last_day


def appeal_deadline(
    *,
    served_on: date,
    kind: AppealKind,
    calendar: HolidayCalendar,
    domiciled_in_china: bool = True,
) -> Deadline:
    """The last day to appeal a first-instance judgment or ruling served on ``served_on``.

    民事诉讼法 第一百七十一条: 15 days for a judgment, 10 days for a ruling; 第二百八十六条:
    30 days, for either, when the party has no domicile in the PRC (``domiciled_in_china=False``).
    Counted per 第八十五条.
    """
    if domiciled_in_china:
        days, citation = APPEAL_DAYS[kind], _APPEAL_CITATIONS[kind]
    else:
        days, citation = NO_DOMICILE_APPEAL_DAYS, _NO_DOMICILE_CITATION
    return compute_deadline(served_on=served_on, days=days, calendar=calendar, citation=citation)
