"""One exception root for the engine. Each error carries a stable ``code`` and data.

Edges (CLI, API, tasks) map codes to exit statuses and HTTP responses; the core never
knows about either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


class ReferralError(Exception):
    """Root of every error the engine raises on purpose."""

    code: str = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details


class ConfigError(ReferralError):
    code = "config_error"


class DatabaseNotMigrated(ReferralError):
    code = "database_not_migrated"


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake found in a workflow definition, located in its source."""

    path: str
    line: int
    col: int
    message: str
    hint: str | None = None
    severity: str = "error"

    def format(self) -> str:
        text = f"{self.path}:{self.line}:{self.col}: {self.severity}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class DefinitionError(ReferralError):
    """A workflow definition failed to load; ``problems`` lists every mistake found."""

    code = "invalid_definition"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = sorted(problems, key=lambda p: (p.path, p.line, p.col))
        super().__init__(
            "\n".join(p.format() for p in self.problems),
            problems=[asdict(p) for p in self.problems],
        )


class DeployConflict(ReferralError):
    """The same (workflow, version) is already deployed with different content."""

    code = "deploy_conflict"


class NotFound(ReferralError):
    """Unknown object, or one the caller may not see (never 'forbidden' for cases)."""

    code = "not_found"


class Unauthenticated(ReferralError):
    code = "unauthenticated"


class Forbidden(ReferralError):
    """The caller is known but does not hold the role it acts in."""

    code = "forbidden"


class VersionConflict(ReferralError):
    """Another write changed the case first; ``details['current_version']`` says to what."""

    code = "version_conflict"


class Conflict(ReferralError):
    """The request would duplicate something unique (an agency's name)."""

    code = "conflict"


class InvalidInput(ReferralError):
    """Event data or a request that does not fit the declared types."""

    code = "invalid_input"


class TransitionRejected(ReferralError):
    """The trigger may not fire now; details name case, trigger, state, role and allowed."""

    code = "transition_not_allowed"


class AckRejected(ReferralError):
    """An acknowledgement that is repeated or comes from an agency that was not notified."""

    code = "ack_not_allowed"


