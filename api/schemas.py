"""Request models, and the response models that are not engine views.

The engine's views (``engine.cases.views`` and the result dataclasses of deploy, the queue
and acknowledgement) are the response models themselves; only what has no view of its own
is modelled here, so the OpenAPI schema says exactly what is sent.

Integers that reach the database are bounded to PostgreSQL's ``integer`` range, and
identifiers to the definition language's forms, so out-of-range input is a 422 from
validation, not an error from deep inside the database.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

MAX_ID = 2_147_483_647


def _whole(value: Any) -> Any:
    """``1.0`` is the integer 1 to JSON Schema, so to the API too; ``1.5`` stays refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Strict: JSON's ``true`` is not the id 1.
Id = Annotated[int, Field(strict=True, ge=1, le=MAX_ID), BeforeValidator(_whole)]
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN)]
WorkflowName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- errors -------------------------------------------------------------------------


class ErrorBody(BaseModel):
    code: str = Field(description="Stable, machine-readable error code.")
    message: str
    details: dict[str, Any]


class ErrorOut(BaseModel):
    error: ErrorBody


def errors(
    *statuses: int, notes: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry documenting the error shape for ``statuses`` (and 500).

    ``notes`` adds what a status means on this one route to its general description.
    """
    described = {
        401: "Missing or invalid bearer token (`unauthenticated`).",
        403: "The caller may not do this (`forbidden`).",
        404: "Unknown, or not visible to the caller (`not_found`).",
        409: "Conflict (`version_conflict`, `deploy_conflict`, `ack_not_allowed`; "
        "`conflict` when a concurrent request wrote a conflicting value first).",
        413: "Request body over the size limit (`request_too_large`).",
        415: "Body of an unsupported media type (`unsupported_media_type`): JSON bodies "
        "need `Content-Type: application/json`.",
        422: "Invalid input (`invalid_input`, `invalid_definition`, "
        "`transition_not_allowed`).",
        500: "Unexpected server error (`internal`).",
    }
    notes = notes or {}
    return {
        status: {
            "model": ErrorOut,
            "description": " ".join(filter(None, (described[status], notes.get(status)))),
        }
        for status in (*statuses, 500)
    }


def _storable_text(value: dict[str, Any]) -> dict[str, Any]:
    """Refuse lone surrogates (JSON's ``"\\ud800"``): no UTF-8 store or hash can hold them.

    Walked without recursion: a body may nest as deep as the JSON parser allows.
    """
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(
                    "text must be valid Unicode (a lone surrogate such as \\ud800 is not)"
                ) from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


# Case data as sent: JSON values, keyed by field name; the engine checks names and types.
CaseData = Annotated[dict[str, Any], AfterValidator(_storable_text)]


# --- workflows ----------------------------------------------------------------------


class FieldOut(BaseModel):
    name: str
    type: str
    values: list[str]
    default: Any = None
    visible_to: list[str] | None


class StateOut(BaseModel):
    path: str
    kind: str
    parent: str | None
    initial: bool
    final: bool
    owner: str | None
    join: str | None


class TransitionOut(BaseModel):
    trigger: str
    sources: list[str]
    dest: str
    by: list[str]
    requires: list[str]
    needs: list[str]
    when: str | None


class LadderStepOut(BaseModel):
    after: str
    notify: list[str]


class TimerDefOut(BaseModel):
    name: str
    state: str
    after: str
    remind: list[str]
    fire: str | None
    escalate: list[LadderStepOut]
    restart_on: list[str]


class MilestoneDefOut(BaseModel):
    name: str
    on: list[str]
    on_enter: str | None


class WorkflowOut(BaseModel):
    workflow: str
    version: int
    title: str
    timezone: str
    content_hash: str
    roles: list[str]
    fields: list[FieldOut]
    states: list[StateOut]
    transitions: list[TransitionOut]
    timers: list[TimerDefOut]
    milestones: list[MilestoneDefOut]
    source: str


# --- agencies -----------------------------------------------------------------------


class AgencyIn(_In):
    name: str = Field(min_length=1, max_length=200)
    webhook: str | None = Field(default=None, max_length=2000)
    email: str | None = Field(default=None, max_length=320)


class AgencyCreatedOut(BaseModel):
    id: int
    name: str
    token: str = Field(description="The agency's API token. Shown once; store it now.")
    webhook_secret: str | None = Field(
        description="Standard Webhooks signing secret (`whsec_...`), shown once."
    )
    webhook: str | None
    email: str | None


# --- cases --------------------------------------------------------------------------


AgencyRef = Id | Annotated[str, Field(min_length=1, max_length=200)]


class CaseIn(_In):
    workflow: WorkflowName
    version: Id | None = Field(default=None, description="Default: the latest deployed.")
    assignments: dict[Name, AgencyRef] = Field(
        description="Role -> agency, by id or by name.",
        # The key rule as propertyNames: patternProperties alone would let other keys by.
        json_schema_extra={"propertyNames": {"pattern": NAME_PATTERN, "minLength": 1,
                                             "maxLength": 64}},
    )
    data: CaseData = Field(default_factory=dict)


class AssignIn(_In):
    agency: AgencyRef = Field(description="The agency, by id or by name.")


class EventIn(_In):
    trigger: Name
    role: Name
    data: CaseData | None = None
    expected_version: Id | None = Field(
        default=None, description="The case `version` last read; 409 if it has moved on."
    )


class ReadQuery(_In):
    role: Name | None = Field(
        default=None,
        description="Read in this one role, which the agency must hold on the case (403 "
        "otherwise). The admin token reads as `system` only: any other role is refused "
        "(422), since a preview would show it fields `visible_to` keeps from it.",
    )


# --- work ---------------------------------------------------------------------------


class QueueQuery(_In):
    """Unknown query parameters are refused, not silently ignored."""

    limit: int = Field(default=50, ge=1, le=500, description="Items per page.")
    offset: int = Field(default=0, ge=0, le=MAX_ID, description="Items to skip.")


# --- operations ---------------------------------------------------------------------


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    database: str
    broker: str
    worker: Literal["embedded", "celery"]
