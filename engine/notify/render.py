"""Mail a person can read: a subject without internal names, and what happened in
sentences (plain text and HTML), with a link to the case.

Only what the outbox row carries is used; by default an email row carries no field value
(:func:`engine.notify.outbox.plan_rows`), so neither part can show one unless the
workflow opted in.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    sentences: list[str]
    link: str | None
    ack: str | None
    # Stable facts for people and filters, never field values.
    reference: dict[str, str]

    def text(self) -> str:
        lines = [*self.sentences, ""]
        if self.link:
            lines += [f"Open the case: {self.link}", ""]
        if self.ack:
            lines += [f"Acknowledge (once, within 7 days): {self.ack}", ""]
        lines += ["Reference:", *(f"  {k}: {v}" for k, v in self.reference.items())]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        parts = [f"<p>{html.escape(s)}</p>" for s in self.sentences]
        if self.link:
            url = html.escape(self.link, quote=True)
            parts.append(f'<p><a href="{url}">Open the case</a></p>')
        if self.ack:
            url = html.escape(self.ack, quote=True)
            parts.append(f'<p><a href="{url}">Acknowledge</a> (once, within 7 days)</p>')
        rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                       for k, v in self.reference.items())
        parts.append(f"<table>{rows}</table>")
        return "<!doctype html><html><body>" + "".join(parts) + "</body></html>\n"


def _place(path: Any) -> str:
    """``support.mentoring.sessions`` -> ``support (mentoring: sessions)``, in words."""
    parts = str(path or "").replace("_", " ").split(".")
    if len(parts) == 1:
        return parts[0]
    return f"{parts[0]} ({', '.join(parts[1:])})"


def render(
    kind: str, payload: Mapping[str, Any], *, base_url: str | None, ack_url: str | None = None
) -> Rendered:
    """The email for one outbox row of ``kind``."""
    case_id = payload.get("case_id")
    case = f"Case {case_id}" if case_id is not None else "A case"
    link = f"{base_url.rstrip('/')}/cases/{case_id}" if base_url and case_id else None
    subject, sentences = _words(kind, payload, case)
    fields = payload.get("fields") or {}
    sentences += [f"{name.replace('_', ' ')}: {value}" for name, value in fields.items()]
    reference = {"type": kind, "message id": str(payload.get("message_id", ""))}
    if case_id is not None:
        reference["case"] = str(case_id)
    for key in ("step", "due_at", "escalation_id"):
        if payload.get(key) is not None:
            reference[key.replace("_", " ")] = str(payload[key])
    return Rendered(subject, sentences, link, ack_url, reference)


def _words(kind: str, p: Mapping[str, Any], case: str) -> tuple[str, list[str]]:
    where = _place(p.get("timer_state") or (p.get("state") or [""])[0])
    if kind == "reminder":
        waited = f" {p['waited']}" if p.get("waited") else ""
        return (f"Reminder: {case.lower()} is waiting for you",
                [f"{case} has waited{waited} in {where}; please act on it, or acknowledge "
                 "this reminder."])
    if kind == "escalation":
        return (f"Escalation: {case.lower()} is overdue",
                [f"{case} is overdue in {where} and has been escalated to you (step "
                 f"{p.get('step')}). Please act on it, or acknowledge this escalation."])
    if kind == "dead_letter":
        return ("A notification could not be delivered",
                [f"A notification about {case.lower()} could not be delivered after "
                 f"{p.get('attempts')} attempts; the recipient was not told."])
    if kind == "test":
        return ("Test notification", [str(p.get("text") or "This is a test notification.")])
    subject = str(p.get("subject") or "Case update")
    sentence = str(p.get("text") or "")
    told = [f"{case}: {sentence}"]
    if kind == "closed" and p.get("outcome") is not None:
        told.append(f"Outcome: {str(p['outcome']).replace('_', ' ')}.")
    return f"{subject} ({case.lower()})", told
