"""``to_jsonable``: the API's JSON form for any view, and for lists and dicts of them."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.cases.queue import QueueItem, QueuePage
from engine.views_json import to_jsonable

SINCE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _page(offset: int, total: int) -> QueuePage:
    item = QueueItem(kind="state", case_id=7, workflow="w", workflow_version=1,
                     state="review", role="coordinator", since=SINCE)
    return QueuePage(items=(item,), total=total, limit=1, offset=offset)


def test_a_view_is_written_as_the_api_writes_it() -> None:
    assert to_jsonable(_page(0, 2)) == {
        "items": [{"kind": "state", "case_id": 7, "workflow": "w", "workflow_version": 1,
                   "state": "review", "role": "coordinator", "since": "2026-03-02T09:00:00Z",
                   "timer": None, "step": None, "escalation_id": None}],
        "total": 2,
        "limit": 1,
        "offset": 0,
        "next_offset": 1,
    }


def test_views_inside_lists_and_dicts_keep_their_derived_fields() -> None:
    # A bare list's items would otherwise be serialised by inference, without next_offset.
    written = to_jsonable({"pages": [_page(0, 2), _page(1, 2)], "at": (SINCE,)})
    assert [page["next_offset"] for page in written["pages"]] == [1, None]
    assert written["at"] == ["2026-03-02T09:00:00Z"]
