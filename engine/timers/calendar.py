"""Business calendars and due-time arithmetic.

Every due time is computed in the workflow's IANA zone and stored in UTC:

- ``months`` then ``days`` move the *local date* and keep the local wall-clock time, so a
  daylight-saving change never shifts a deadline by an hour (pitfall 3: deadlines are
  intended in local time). Month arithmetic clamps to the month's end (Jan 31 + 1 month is
  Feb 28 or 29).
- ``business_days`` steps over local dates counting only open days (workdays minus public
  holidays from the ``holidays`` package minus ``extra_holidays``), again keeping the
  wall-clock time; a business-day due time therefore always falls on an open day, and if
  elapsed ``seconds`` in the same duration push it onto a closed day it moves to the next
  open day at the same wall-clock time.
- ``seconds`` (hours, minutes, seconds) is elapsed time, added in UTC last.

A local wall-clock time that does not exist (the spring-forward gap) or exists twice (the
fall-back overlap) is resolved with ``fold=0``, as PEP 495 defines it: in the overlap this is
the first (earlier) instant, and in a gap it applies the offset in force *before* the change,
which lands just as far after the gap as the time was into it (02:30 in London on the
spring-forward Sunday becomes 03:30 BST). Both rules are deterministic, never move a due
time earlier, and never need a second attempt. Because a gap moves the wall-clock time,
"N then M business days" equals "N+M business days" only when the intermediate due time
did not fall into a gap; with Monday-to-Friday workdays this never happens in the zones we
know, as their clocks change at weekends.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from engine.definitions.model import CalendarDef, Definition, Duration

__all__ = [
    "BusinessCalendar",
    "calendar_for",
    "check_calendar",
    "clear_cache",
    "public_holidays",
]

# A calendar whose open days run out for this long is broken (e.g. every day an extra
# holiday); failing beats looping forever.
_MAX_CLOSED_YEARS = 10
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in_month(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[month - 1]


def _weekday(ordinal: int) -> int:
    # date.fromordinal(1) (0001-01-01) is a Monday, weekday 0.
    return (ordinal + 6) % 7


@lru_cache(maxsize=1024)
def public_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    """The public holidays of ``year`` (observed days included), cached per year.

    Building a ``holidays`` object is slow (tens of milliseconds for some countries), so
    each (country, subdivision, year) is built once per process. The neighbouring years are
    populated too because an observed day can move across New Year.
    """
    table = holidays.country_holidays(country, subdiv=subdivision, years=(year - 1, year, year + 1))
    return frozenset(d for d in table if d.year == year)


def check_calendar(timezone_name: str, calendar: CalendarDef) -> list[str]:
    """Problems with a zone and calendar, as messages (empty when usable)."""
    problems: list[str] = []
    try:
        ZoneInfo(timezone_name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a directory
        problems.append(f"unknown time zone {timezone_name!r}")
    if not calendar.workdays:
        problems.append("a calendar needs at least one workday")
    if calendar.country is not None:
        # Ask the package itself, so its aliases ("UK", "England") are accepted exactly
        # when the calendar can use them; constructing without years populates nothing.
        try:
            holidays.country_holidays(calendar.country, subdiv=calendar.subdivision)
        except (NotImplementedError, KeyError, ValueError):
            if calendar.country not in holidays.list_supported_countries():
                problems.append(f"unknown country {calendar.country!r} for public holidays")
            else:
                problems.append(
                    f"unknown subdivision {calendar.subdivision!r} of {calendar.country!r}"
                )
    elif calendar.subdivision is not None:
        problems.append("a subdivision needs a country")
    return problems


class BusinessCalendar:
    """Due-time arithmetic for one workflow's zone and calendar.

    Per-year tables of open days are built lazily and kept, so ``add`` is a zone conversion,
    a few integer operations and a binary search once warm.
    """

    __slots__ = ("_calendar", "_closed", "_open", "_workdays", "_zone", "timezone")

    def __init__(self, timezone: str, calendar: CalendarDef) -> None:
        problems = check_calendar(timezone, calendar)
        if problems:
            raise ValueError("; ".join(problems))
        self.timezone = timezone
        self._zone = ZoneInfo(timezone)
        self._calendar = calendar
        self._workdays = frozenset(calendar.workdays)
        # year -> ordinals of closed non-weekend days; year -> sorted ordinals of open days
        self._closed: dict[int, frozenset[int]] = {}
        self._open: dict[int, list[int]] = {}

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.timezone!r}, {self._calendar!r})"

    @property
    def calendar(self) -> CalendarDef:
        return self._calendar

    # -- open and closed days -------------------------------------------------------------

    def _closed_ordinals(self, year: int) -> frozenset[int]:
        closed = self._closed.get(year)
        if closed is None:
            cal = self._calendar
            days: set[date] = {d for d in cal.extra_holidays if d.year == year}
            if cal.country is not None:
                days |= public_holidays(cal.country, cal.subdivision, year)
            closed = frozenset(d.toordinal() for d in days)
            self._closed[year] = closed
        return closed

    def _open_ordinals(self, year: int) -> list[int]:
        days = self._open.get(year)
        if days is None:
            closed = self._closed_ordinals(year)
            workdays = self._workdays
            days = [
                o
                for o in range(date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal() + 1)
                if _weekday(o) in workdays and o not in closed
            ]
            self._open[year] = days
        return days

    def is_open(self, d: date) -> bool:
        """Is ``d`` a workday that is neither a public nor an extra holiday?"""
        o = d.toordinal()
        return _weekday(o) in self._workdays and o not in self._closed_ordinals(d.year)

    def next_open_day(self, d: date) -> date:
        """``d`` itself when it is open, otherwise the first open day after it."""
        return date.fromordinal(self._first_open_from(d.toordinal(), d.year, inclusive=True))

    def _first_open_from(self, ordinal: int, year: int, *, inclusive: bool) -> int:
        search = bisect_left if inclusive else bisect_right
        days = self._open_ordinals(year)
        i = search(days, ordinal)
        if i < len(days):
            return days[i]
        return self._step_open(year + 1, 0, 1)

    def _step_open(self, year: int, index: int, n: int) -> int:
        """The n-th (1-based) open day counting from position ``index`` of ``year``."""
        empty_years = 0
        while True:
            days = self._open_ordinals(year)
            remaining = len(days) - index
            if n <= remaining:
                return days[index + n - 1]
            n -= remaining
            empty_years = empty_years + 1 if not days else 0
            if empty_years >= _MAX_CLOSED_YEARS:
                raise ValueError(f"calendar has no open day for {_MAX_CLOSED_YEARS} years")
            year += 1
            index = 0

    def add_business_days(self, d: date, n: int) -> date:
        """The n-th open day after ``d`` (``d`` itself is not counted)."""
        if n < 0:
            raise ValueError("business days must not be negative")
        if n == 0:
            return d
        days = self._open_ordinals(d.year)
        return date.fromordinal(self._step_open(d.year, bisect_right(days, d.toordinal()), n))

    # -- due times ----------------------------------------------------------------------

    def add(self, start: datetime, duration: Duration) -> datetime:
        """``start`` plus ``duration``: aware in, aware UTC out (see the module docstring)."""
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("start must be an aware datetime")
        if min(duration.months, duration.days, duration.seconds, duration.business_days) < 0:
            raise ValueError(f"duration must not be negative: {duration}")
        months, days, bdays = duration.months, duration.days, duration.business_days
        if months or days or bdays:
            local = start.astimezone(self._zone)
            d = local.date()
            if months:
                d = _add_months(d, months)
            if days:
                d = date.fromordinal(d.toordinal() + days)
            if bdays:
                d = self.add_business_days(d, bdays)
            wall = time(local.hour, local.minute, local.second, local.microsecond)
            result = datetime.combine(d, wall, self._zone).astimezone(UTC)
        else:
            result = start.astimezone(UTC)
        if duration.seconds:
            result += timedelta(seconds=duration.seconds)
            if bdays:
                result = self._roll_to_open(result)
        return result

    def _roll_to_open(self, at: datetime) -> datetime:
        local = at.astimezone(self._zone)
        d = local.date()
        if self.is_open(d):
            return at
        wall = time(local.hour, local.minute, local.second, local.microsecond)
        return datetime.combine(self.next_open_day(d), wall, self._zone).astimezone(UTC)

    def local(self, at: datetime) -> datetime:
        """``at`` in the workflow's zone (for messages and diagnostics)."""
        return at.astimezone(self._zone)


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, _days_in_month(year, month)))


_calendars: dict[tuple[str, int, str], BusinessCalendar] = {}


def calendar_for(definition: Definition) -> BusinessCalendar:
    """The shared calendar of a definition version (one per workflow, version, content)."""
    key = (definition.workflow, definition.version, definition.content_hash)
    cal = _calendars.get(key)
    if cal is None:
        cal = _calendars[key] = BusinessCalendar(definition.timezone, definition.calendar)
    return cal


def clear_cache() -> None:
    """Forget cached calendars and holiday tables (tests, long-running reloads)."""
    _calendars.clear()
    public_holidays.cache_clear()
