"""The only place that reads the wall clock.

Everything else takes ``now`` as an argument so that simulation and tests run on a
virtual clock.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def monotonic() -> float:
    """Seconds on a monotonic clock, for measuring durations and deadlines of waits."""
    return time.monotonic()
