"""The raw shape of a ``notify:`` entry (on a transition or a state)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictStr


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _one_or_many_notices(value: Any) -> Any:
    """``notify: {to: ..., ...}`` means a list of one notice."""
    if value is None:
        return []
    return [value] if isinstance(value, dict) else value


class NoticeSpec(BaseModel):
    """A notice to roles: a short subject and one sentence, no field values."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    to: Annotated[list[StrictStr], BeforeValidator(_one_or_many)]
    subject: StrictStr
    text: StrictStr


Notices = Annotated[list[NoticeSpec], BeforeValidator(_one_or_many_notices)]

__all__ = ["NoticeSpec", "Notices"]
