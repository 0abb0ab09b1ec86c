"""Due-time arithmetic: worked examples, then properties over zones and calendars."""

from __future__ import annotations

import statistics
import time as perf
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.definitions.model import CalendarDef, Definition, Duration
from engine.timers.calendar import BusinessCalendar, calendar_for, check_calendar

LONDON = ZoneInfo("Europe/London")
ENG = CalendarDef(country="GB", subdivision="ENG")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def london(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


def bd(n: int) -> Duration:
    return Duration(business_days=n, text=f"{n} business days")


@pytest.fixture(scope="module")
def eng() -> BusinessCalendar:
    return BusinessCalendar("Europe/London", ENG)


# -- worked examples (England and Wales, Europe/London) ------------------------------------


def test_five_business_days_from_a_thursday_skip_the_weekend(eng: BusinessCalendar) -> None:
    start = london(2026, 3, 12, 9, 0)  # Thursday
    due = eng.add(start, bd(5))
    assert due == london(2026, 3, 19, 9, 0)  # the next Thursday, same time
    assert due.tzinfo is UTC


def test_christmas_boxing_day_and_an_extra_holiday_are_closed() -> None:
    plain = BusinessCalendar("Europe/London", ENG)
    extra = BusinessCalendar(
        "Europe/London",
        CalendarDef(
            country="GB", subdivision="ENG", extra_holidays=frozenset({date(2026, 12, 24)})
        ),
    )
    start = london(2026, 12, 22, 14, 30)  # Tuesday
    assert plain.add(start, bd(2)) == london(2026, 12, 24, 14, 30)
    # 23rd; 24th extra; 25th Christmas; 26th-27th weekend; 28th Boxing Day (observed); 29th
    assert extra.add(start, bd(2)) == london(2026, 12, 29, 14, 30)
    assert not extra.is_open(date(2026, 12, 24))
    assert plain.is_open(date(2026, 12, 24))
    for closed in (date(2026, 12, 25), date(2026, 12, 26), date(2026, 12, 28)):
        assert not plain.is_open(closed)


def test_easter_friday_and_monday_are_closed(eng: BusinessCalendar) -> None:
    start = london(2026, 4, 2, 10, 0)  # Thursday before Good Friday (3 April)
    assert eng.add(start, bd(1)) == london(2026, 4, 7, 10, 0)  # Easter Monday is the 6th
    assert eng.next_open_day(date(2026, 4, 3)) == date(2026, 4, 7)
    assert eng.next_open_day(date(2026, 4, 7)) == date(2026, 4, 7)


def test_a_start_on_a_closed_day_counts_from_the_next_open_day(eng: BusinessCalendar) -> None:
    assert eng.add(london(2026, 3, 14, 11, 0), bd(1)) == london(2026, 3, 16, 11, 0)  # Sat


def test_months_clamp_to_the_end_of_the_month(eng: BusinessCalendar) -> None:
    assert eng.add(london(2026, 1, 31, 9), Duration(months=1)) == london(2026, 2, 28, 9)
    assert eng.add(london(2028, 1, 31, 9), Duration(months=1)) == london(2028, 2, 29, 9)
    assert eng.add(london(2026, 8, 31, 9), Duration(months=6)) == london(2027, 2, 28, 9)
    assert eng.add(london(2026, 1, 31, 9), Duration(months=1, days=1)) == london(2026, 3, 1, 9)


def test_spring_forward_keeps_nine_o_clock_local(eng: BusinessCalendar) -> None:
    friday = london(2026, 3, 27, 9, 0)  # GMT; clocks go forward on Sunday 29 March
    assert friday == utc(2026, 3, 27, 9, 0)
    assert eng.add(friday, bd(1)) == utc(2026, 3, 30, 8, 0)  # Monday 09:00 BST
    assert eng.add(friday, Duration(days=3)) == utc(2026, 3, 30, 8, 0)
    assert eng.add(utc(2026, 1, 15, 9), Duration(months=6)) == utc(2026, 7, 15, 8)
    # Elapsed time is elapsed: 48 hours later the wall clock reads an hour later.
    assert eng.add(friday, Duration(seconds=72 * 3600)) == utc(2026, 3, 30, 9, 0)


def test_fall_back_keeps_nine_o_clock_local(eng: BusinessCalendar) -> None:
    friday = london(2026, 10, 23, 9, 0)  # BST; clocks go back on Sunday 25 October
    assert friday == utc(2026, 10, 23, 8, 0)
    assert eng.add(friday, bd(1)) == utc(2026, 10, 26, 9, 0)  # Monday 09:00 GMT
    assert eng.add(friday, Duration(days=7)) == utc(2026, 10, 30, 9, 0)


def test_times_in_the_gap_move_forward_and_ambiguous_times_take_the_first(
    eng: BusinessCalendar,
) -> None:
    # 01:30 does not exist on 29 March 2026: fold=0 reads it with GMT, i.e. 02:30 BST.
    due = eng.add(london(2026, 3, 28, 1, 30), Duration(days=1))
    assert due == utc(2026, 3, 29, 1, 30)
    assert eng.local(due).time() == time(2, 30)
    # 01:30 happens twice on 25 October 2026: the first (BST) one is chosen.
    due = eng.add(london(2026, 10, 24, 1, 30), Duration(days=1))
    assert due == utc(2026, 10, 25, 0, 30)
    # Starting from the second 01:30 (GMT), one day later is still 01:30 local.
    assert eng.add(utc(2026, 10, 25, 1, 30), Duration(days=1)) == utc(2026, 10, 26, 1, 30)


def test_business_days_plus_hours_landing_on_a_closed_day_move_on(
    eng: BusinessCalendar,
) -> None:
    # Thursday 20:00 + 1 business day = Friday 20:00, + 6 hours = Saturday 02:00 -> Monday.
    due = eng.add(london(2026, 3, 12, 20, 0), Duration(business_days=1, seconds=6 * 3600))
    assert due == london(2026, 3, 16, 2, 0)


def test_no_country_means_weekdays_only_and_custom_workdays() -> None:
    plain = BusinessCalendar("Europe/Berlin", CalendarDef())
    assert plain.is_open(date(2026, 12, 25))  # a Friday, no public holidays
    assert not plain.is_open(date(2026, 12, 26))
    sun_thu = BusinessCalendar("Asia/Dubai", CalendarDef(workdays=frozenset({6, 0, 1, 2, 3})))
    thursday = datetime(2026, 3, 12, 9, tzinfo=ZoneInfo("Asia/Dubai"))
    assert sun_thu.add(thursday, bd(1)) == datetime(2026, 3, 15, 9, tzinfo=ZoneInfo("Asia/Dubai"))


def test_large_counts_cross_years(eng: BusinessCalendar) -> None:
    start = london(2026, 1, 2, 9)
    assert eng.add(start, bd(600)) == eng.add(eng.add(start, bd(300)), bd(300))
    assert eng.add(start, bd(0)) == start


def test_bad_input_is_refused(eng: BusinessCalendar) -> None:
    with pytest.raises(ValueError, match="aware"):
        eng.add(datetime(2026, 1, 1, 9), bd(1))
    with pytest.raises(ValueError, match="negative"):
        eng.add(utc(2026, 1, 1, 9), Duration(days=-1))
    with pytest.raises(ValueError, match="no open day"):
        BusinessCalendar(
            "UTC",
            CalendarDef(
                workdays=frozenset({0}),
                extra_holidays=frozenset(
                    date.fromordinal(o)
                    for o in range(date(2026, 1, 1).toordinal(), date(2037, 1, 1).toordinal())
                ),
            ),
        ).add(utc(2026, 1, 1), bd(1))


def test_check_calendar_names_each_problem() -> None:
    assert check_calendar("Europe/London", ENG) == []
    assert check_calendar("Mars/Olympus", CalendarDef()) == ["unknown time zone 'Mars/Olympus'"]
    assert check_calendar("Europe", CalendarDef()) == ["unknown time zone 'Europe'"]
    assert check_calendar("UTC", CalendarDef(country="XX")) == [
        "unknown country 'XX' for public holidays"
    ]
    assert check_calendar("UTC", CalendarDef(country="GB", subdivision="XYZ")) == [
        "unknown subdivision 'XYZ' of 'GB'"
    ]
    assert check_calendar("UTC", CalendarDef(country="UK", subdivision="England")) == []
    assert check_calendar("UTC", CalendarDef(workdays=frozenset())) == [
        "a calendar needs at least one workday"
    ]
    with pytest.raises(ValueError, match="unknown time zone"):
        BusinessCalendar("Nowhere/Special", CalendarDef())


def _definition(content_hash: str, timezone: str = "Europe/London") -> Definition:
    return Definition(
        workflow="w",
        version=1,
        title="",
        timezone=timezone,
        calendar=ENG,
        roles=(),
        fields={},
        states={},
        transitions=(),
        timers=(),
        milestones={},
        content_hash=content_hash,
    )


def test_calendar_for_is_cached_per_definition_content() -> None:
    a = calendar_for(_definition("aaa"))
    assert calendar_for(_definition("aaa")) is a
    b = calendar_for(_definition("bbb", timezone="Europe/Berlin"))
    assert b is not a and b.timezone == "Europe/Berlin"


def test_add_is_fast_once_warm(eng: BusinessCalendar) -> None:
    start, five = london(2026, 3, 12, 9), bd(5)
    eng.add(start, five)
    samples = []
    for _ in range(20):
        t0 = perf.perf_counter()
        for _ in range(200):
            eng.add(start, five)
        samples.append((perf.perf_counter() - t0) / 200)
    # A few microseconds on a quiet machine; the bound only catches rebuilding tables.
    assert statistics.median(samples) < 200e-6


# -- properties ---------------------------------------------------------------------------

ZONES = ["Europe/London", "Europe/Berlin", "America/New_York", "Australia/Sydney"]
COUNTRIES: list[tuple[str | None, str | None]] = [
    ("GB", "ENG"),
    ("DE", None),
    ("NL", None),
    ("DK", None),
    (None, None),
]
MON_FRI = frozenset(range(5))


@cache
def _oracle_table(country: str, subdivision: str | None, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdivision, years=year)


def oracle_open(cal: CalendarDef, d: date) -> bool:
    """Open day, straight from the ``holidays`` package (independent of the engine)."""
    if d.weekday() not in cal.workdays or d in cal.extra_holidays:
        return False
    return cal.country is None or d not in _oracle_table(cal.country, cal.subdivision, d.year)


def oracle_add_business_days(cal: CalendarDef, d: date, n: int) -> date:
    while n:
        d += timedelta(days=1)
        if oracle_open(cal, d):
            n -= 1
    return d


@st.composite
def calendars(draw: st.DrawFn) -> tuple[str, CalendarDef]:
    zone = draw(st.sampled_from(ZONES))
    country, subdivision = draw(st.sampled_from(COUNTRIES))
    workdays = draw(
        st.one_of(
            st.just(MON_FRI),
            st.frozensets(st.integers(0, 6), min_size=1, max_size=7),
        )
    )
    extra = draw(st.frozensets(st.dates(date(2024, 1, 1), date(2031, 12, 31)), max_size=20))
    return zone, CalendarDef(country, subdivision, workdays, extra)


_built: dict[tuple[str, CalendarDef], BusinessCalendar] = {}


def business(zone: str, cal: CalendarDef) -> BusinessCalendar:
    key = (zone, cal)
    if key not in _built:
        _built[key] = BusinessCalendar(zone, cal)
    return _built[key]


starts = st.datetimes(datetime(2024, 1, 1), datetime(2029, 12, 31), timezones=st.just(UTC))
local_starts = st.datetimes(datetime(2024, 1, 1), datetime(2029, 12, 31))
durations = st.builds(
    Duration,
    months=st.integers(0, 24),
    days=st.integers(0, 400),
    seconds=st.integers(0, 10**7),
    business_days=st.integers(0, 300),
)
PROPS = settings(max_examples=150, deadline=None)


@PROPS
@given(calendars(), starts, st.integers(1, 300), st.integers(0, 50_000))
def test_business_deadline_is_the_oracle_open_day(
    zc: tuple[str, CalendarDef], start: datetime, n: int, seconds: int
) -> None:
    zone, cal = zc
    engine = business(zone, cal)
    local = start.astimezone(ZoneInfo(zone))
    due = engine.add(start, Duration(business_days=n)).astimezone(ZoneInfo(zone))
    assert due.date() == oracle_add_business_days(cal, local.date(), n)
    assert oracle_open(cal, due.date())
    with_hours = engine.add(start, Duration(business_days=n, seconds=seconds))
    assert oracle_open(cal, with_hours.astimezone(ZoneInfo(zone)).date())


@PROPS
@given(calendars(), starts, st.integers(0, 150), st.integers(0, 150))
def test_n_then_m_business_days_is_n_plus_m(
    zc: tuple[str, CalendarDef], start: datetime, n: int, m: int
) -> None:
    zone, cal = zc
    engine = business(zone, cal)
    first = engine.add(start, bd(n))
    # A wall-clock time pushed forward by a DST gap stays pushed (see engine/calendar.py).
    assume(engine.local(first).time() == engine.local(start).time())
    assert engine.add(first, bd(m)) == engine.add(start, bd(n + m))


def _exists(naive: datetime, zone: ZoneInfo) -> bool:
    aware = naive.replace(tzinfo=zone)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive


@PROPS
@given(
    st.sampled_from(ZONES),
    local_starts,
    st.integers(0, 36),
    st.integers(0, 800),
    st.integers(0, 60),
)
def test_calendar_parts_keep_the_local_wall_clock_across_dst(
    zone_name: str, naive: datetime, months: int, days: int, bdays: int
) -> None:
    zone = ZoneInfo(zone_name)
    assume(_exists(naive, zone))
    start = naive.replace(tzinfo=zone)
    engine = business(zone_name, CalendarDef())
    due = engine.add(start, Duration(months=months, days=days, business_days=bdays))
    local_due = engine.local(due)
    target = datetime.combine(local_due.date(), naive.time())
    if _exists(target, zone):
        assert local_due.replace(tzinfo=None) == target
    else:
        # Inside a spring-forward gap: moved forward by the gap, never backward.
        assert local_due.replace(tzinfo=None) > target
        assert due == target.replace(tzinfo=zone).astimezone(UTC)


@PROPS
@given(calendars(), starts, st.integers(0, 10**9))
def test_elapsed_seconds_are_utc_arithmetic(
    zc: tuple[str, CalendarDef], start: datetime, seconds: int
) -> None:
    due = business(*zc).add(start, Duration(seconds=seconds))
    assert due == start + timedelta(seconds=seconds)


@PROPS
@given(calendars(), starts, durations)
def test_result_is_aware_utc_and_never_before_start(
    zc: tuple[str, CalendarDef], start: datetime, duration: Duration
) -> None:
    other = start.astimezone(ZoneInfo(zc[0]))  # any aware zone is accepted on input
    due = business(*zc).add(other, duration)
    assert due.tzinfo is UTC
    assert due >= start
