"""Checks of the workflow's time zone and business calendar against real data.

Zones come from the IANA database (``zoneinfo``, with the ``tzdata`` package as fallback);
countries and subdivisions from the ``holidays`` package, which the calendar will use.
"""

from __future__ import annotations

import difflib
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

import holidays

from engine.definitions.schema import CalendarSpec
from engine.definitions.yamlsource import Document
from engine.errors import Problem


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


@cache
def _countries() -> dict[str, list[str]]:
    return {code: list(subdivs) for code, subdivs in holidays.list_supported_countries().items()}


def check_timezone(doc: Document, name: str) -> list[Problem]:
    try:
        ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, or ValueError for a malformed key
        near = difflib.get_close_matches(name, sorted(_zones()), n=1, cutoff=0.6)
        hint = f"did you mean '{near[0]}'?" if near else "use an IANA name like 'Europe/London'"
        return [doc.problem(("timezone",), f"unknown time zone {name!r}", hint)]
    return []


def check_calendar(doc: Document, spec: CalendarSpec) -> list[Problem]:
    problems: list[Problem] = []
    if spec.country is not None:
        countries = _countries()
        if not _accepted(spec.country, None):
            near = difflib.get_close_matches(spec.country.upper(), sorted(countries), n=1)
            hint = (f"did you mean '{near[0]}'?" if near else
                    "use an ISO 3166 country code such as 'GB', 'NL' or 'DE'")
            problems.append(doc.problem(("calendar", "country"),
                                        f"unknown country {spec.country!r} for public holidays",
                                        hint))
        elif spec.subdivision is not None and not _accepted(spec.country, spec.subdivision):
            known = countries.get(spec.country, [])
            near = difflib.get_close_matches(spec.subdivision.upper(), known, n=1)
            hint = (f"did you mean '{near[0]}'?" if near else
                    f"{spec.country} has subdivisions: {', '.join(known)}" if known else
                    f"{spec.country} has no subdivisions; remove `subdivision`")
            problems.append(doc.problem(
                ("calendar", "subdivision"),
                f"unknown subdivision {spec.subdivision!r} of {spec.country}", hint))
    elif spec.subdivision is not None:
        problems.append(doc.problem(("calendar", "subdivision"),
                                    "`subdivision` needs a `country`", key=True))
    if not spec.workdays:
        problems.append(doc.problem(("calendar", "workdays"),
                                    "`workdays` must name at least one day, or no business "
                                    "day would ever come"))
    seen: set[str] = set()
    for i, day in enumerate(spec.workdays):
        if day in seen:
            problems.append(doc.problem(("calendar", "workdays", i),
                                        f"'{day}' is listed twice in `workdays`"))
        seen.add(day)
    return problems


def _accepted(country: str, subdivision: str | None) -> bool:
    """Ask the package itself, as ``engine/calendar.py`` will: its aliases ("UK",
    "England") are accepted exactly when the calendar can use them. Constructing without
    years populates nothing, so this is cheap."""
    try:
        holidays.country_holidays(country, subdiv=subdivision)
    except Exception:  # NotImplementedError for unknown names; anything else is no better
        return False
    return True
