"""Workflow definitions: deploy (admin), list, read one version, draw it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.auth import AdminDep, CallerDep
from api.deps import NowDep, SessionDep
from api.errors import UnsupportedMediaType
from api.schemas import (
    MAX_ID,
    FieldOut,
    LadderStepOut,
    MilestoneDefOut,
    StateOut,
    TimerDefOut,
    TransitionOut,
    WorkflowOut,
    errors,
)
from engine import (
    Definition,
    DeployResult,
    WorkflowSummary,
    compiled,
    deploy,
    list_workflows,
    to_mermaid,
)
from engine.errors import InvalidInput

router = APIRouter(tags=["workflows"])

YAML_TYPES = ("text/yaml", "application/yaml", "application/x-yaml", "text/x-yaml",
              "text/plain")


class WorkflowSourceIn(BaseModel):
    """The definition as JSON, for clients generated from this schema."""

    model_config = ConfigDict(extra="forbid", strict=True)

    source: str = Field(min_length=1, description="The workflow definition's YAML text.")


async def yaml_body(request: Request) -> str:
    """The request body as YAML text (UTF-8), or a JSON object carrying it as ``source``;
    other media types are refused."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json":
        try:
            return WorkflowSourceIn.model_validate_json(await request.body()).source
        except ValidationError as exc:
            raise InvalidInput("send {\"source\": \"<the YAML text>\"} as JSON",
                               errors=[e["msg"] for e in exc.errors()][:5]) from None
    if media and media not in YAML_TYPES:
        raise UnsupportedMediaType(
            f"send the workflow definition as YAML text (Content-Type: text/yaml), "
            f"not {media}",
            accepted=[*YAML_TYPES, "application/json"],
        )
    raw = await request.body()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("the definition is not valid UTF-8 text",
                           position=exc.start) from None


WorkflowPath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
VersionPath = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.post(
    "/workflows",
    status_code=201,
    responses={
        200: {"model": DeployResult, "description": "Identical content was already deployed."},
        **errors(401, 403, 409, 413, 415, 422),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {media: {"schema": {"type": "string", "minLength": 1}}
                        for media in (*YAML_TYPES[:2], "text/plain")}
            | {"application/json": {"schema": WorkflowSourceIn.model_json_schema()}},
        }
    },
    summary="Deploy a workflow definition (admin; the YAML text as the body)",
)
def post_workflow(
    text: Annotated[str, Depends(yaml_body)],
    caller: AdminDep,
    session: SessionDep,
    now: NowDep,
    response: Response,
) -> DeployResult:
    result = deploy(session, text, "<request>", now=now)
    session.commit()
    if not result.created:
        response.status_code = 200
    return result


@router.get(
    "/workflows",
    responses=errors(401),
    summary="Every deployed workflow version",
)
def get_workflows(caller: CallerDep, session: SessionDep) -> list[WorkflowSummary]:
    return list_workflows(session)


def _workflow_out(defn: Definition) -> WorkflowOut:
    # The definition model's sets go out sorted and its durations as written, so a
    # version reads back the same every time.
    return WorkflowOut(
        workflow=defn.workflow,
        version=defn.version,
        title=defn.title,
        timezone=defn.timezone,
        content_hash=defn.content_hash,
        roles=list(defn.roles),
        fields=[
            FieldOut(name=f.name, type=f.type, values=list(f.values), default=f.default,
                     visible_to=sorted(f.visible_to) if f.visible_to is not None else None)
            for f in defn.fields.values()
        ],
        states=[
            StateOut(path=s.path, kind=s.kind, parent=s.parent, initial=s.initial,
                     final=s.final, owner=s.owner, join=s.join)
            for s in defn.states.values()
        ],
        transitions=[
            TransitionOut(trigger=t.trigger, sources=list(t.sources), dest=t.dest,
                          by=sorted(t.by), requires=list(t.requires), needs=list(t.needs),
                          when=t.when)
            for t in defn.transitions
        ],
        timers=[
            TimerDefOut(name=t.name, state=t.state, after=str(t.after), remind=list(t.remind),
                        fire=t.fire,
                        escalate=[LadderStepOut(after=str(s.after), notify=list(s.notify))
                                  for s in t.escalate],
                        restart_on=sorted(t.restart_on))
            for t in defn.timers
        ],
        milestones=[
            MilestoneDefOut(name=m.name, on=sorted(m.on), on_enter=m.on_enter)
            for m in defn.milestones.values()
        ],
        source=defn.source,
    )


@router.get(
    "/workflows/{name}/versions/{version}",
    responses=errors(401, 404, 422),
    summary="One deployed version: its states, transitions, timers and source",
)
def get_workflow_version(
    name: WorkflowPath, version: VersionPath, caller: CallerDep, session: SessionDep
) -> WorkflowOut:
    return _workflow_out(compiled(session, name, version).definition)


@router.get(
    "/workflows/{name}/versions/{version}/diagram",
    # Not PlainTextResponse here: that would document the JSON errors as text/plain too.
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}},
              "description": "Mermaid `stateDiagram-v2` text."},
        **errors(401, 404, 422),
    },
    summary="The version drawn as a Mermaid state diagram",
)
def get_workflow_diagram(
    name: WorkflowPath, version: VersionPath, caller: CallerDep, session: SessionDep
) -> PlainTextResponse:
    return PlainTextResponse(to_mermaid(compiled(session, name, version).definition))
