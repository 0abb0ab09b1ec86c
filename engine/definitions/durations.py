"""Durations in the contract's forms: ``5 business days``, ``21 days``, ``P6M``, ``PT48H``.

Calendar parts (months, days) keep wall-clock time across DST in the workflow's zone;
seconds are elapsed time; business days count the calendar's open days. The calendar
(``engine/calendar.py``) does the arithmetic; this module only reads the text.
"""

from __future__ import annotations

import re

from engine.definitions.model import Duration

# [0-9], not \d: \d also matches other scripts' digits (U+0967 "1" would read as one day).
_WORDS = re.compile(
    r"^\s*(?P<sign>[-+]?)(?P<n>[0-9]+)\s+(?P<unit>business\s+days?|seconds?|minutes?|hours?"
    r"|days?|weeks?|months?|years?)\s*$",
    re.IGNORECASE,
)
_ISO = re.compile(
    r"^(?P<sign>[-+]?)P(?:(?P<y>[0-9]+)Y)?(?:(?P<mo>[0-9]+)M)?(?:(?P<w>[0-9]+)W)?"
    r"(?:(?P<d>[0-9]+)D)?"
    r"(?:T(?=[0-9])(?:(?P<h>[0-9]+)H)?(?:(?P<mi>[0-9]+)M)?(?:(?P<s>[0-9]+)S)?)?$"
)
_SECONDS = {"second": 1, "minute": 60, "hour": 3600}
_EXAMPLES = "'5 business days', '21 days', '48 hours', '6 months', 'P5D' or 'PT48H'"
# Far beyond any real deadline; keeps datetime arithmetic from overflowing later.
_MAX_DAYS = 366 * 100
# Any number this long is far past _MAX_DAYS whatever its unit.
_LONG_NUMBER = re.compile(r"[0-9]{13}")


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def parse_duration(text: str) -> Duration:
    """Read a duration; ``ValueError`` (with a message for the coordinator) if malformed."""
    if not isinstance(text, str):
        raise ValueError(f"expected a duration such as {_EXAMPLES}")
    if _LONG_NUMBER.search(text):
        # Caught before int(): Python refuses to convert more than 4,300 digits at all.
        raise ValueError(f"duration {_short(text)} is too long (at most 100 years)")
    words = _WORDS.match(text)
    if words:
        duration = _from_words(int(words["n"]), words["unit"].lower(), text)
        negative = words["sign"] == "-"
    else:
        iso = _ISO.match(text.strip().upper())
        if not iso or not any(v for k, v in iso.groupdict().items() if k != "sign"):
            raise ValueError(f"not a duration: {_short(text)} (expected e.g. {_EXAMPLES})")
        duration = _from_iso(iso, text)
        negative = iso["sign"] == "-"
    total_days = duration.months * 31 + duration.days + duration.business_days * 2
    total_days += duration.seconds // 86400
    if negative or (duration.months, duration.days, duration.seconds,
                    duration.business_days) == (0, 0, 0, 0):
        raise ValueError(f"a duration must be positive, got {_short(text)}")
    if total_days > _MAX_DAYS:
        raise ValueError(f"duration {_short(text)} is too long (at most 100 years)")
    return duration


def _from_words(n: int, unit: str, text: str) -> Duration:
    unit = re.sub(r"\s+", " ", unit).removesuffix("s")
    if unit == "business day":
        return Duration(business_days=n, text=text)
    if unit == "day":
        return Duration(days=n, text=text)
    if unit == "week":
        return Duration(days=7 * n, text=text)
    if unit == "month":
        return Duration(months=n, text=text)
    if unit == "year":
        return Duration(months=12 * n, text=text)
    return Duration(seconds=_SECONDS[unit] * n, text=text)


def _from_iso(match: re.Match[str], text: str) -> Duration:
    def part(name: str) -> int:
        return int(match[name] or 0)

    return Duration(
        months=12 * part("y") + part("mo"),
        days=7 * part("w") + part("d"),
        seconds=3600 * part("h") + 60 * part("mi") + part("s"),
        text=text,
    )
