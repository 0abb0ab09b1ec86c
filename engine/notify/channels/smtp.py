"""The email channel: a plain text message over SMTP."""

from __future__ import annotations

import json
import smtplib
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from engine.notify.channels import Message, SendResult


def render_subject(message: Message) -> str:
    p = message.payload
    what = p.get("type", message.kind).replace("_", " ")
    case = f" on case {p['case_id']}" if p.get("case_id") is not None else ""
    timer = f" ({p['timer']}, step {p.get('step', 0)})" if p.get("timer") else ""
    return f"[referral] {what}{case}{timer}"


def render_body(message: Message) -> str:
    p = message.payload
    lines = [f"{key}: {value}" for key, value in p.items() if not isinstance(value, dict | list)]
    if p.get("roles"):
        lines.append("roles: " + ", ".join(str(r) for r in p["roles"]))
    if p.get("escalation_id") is not None:
        lines.append("")
        lines.append(f"Acknowledge with: referral ack {p['escalation_id']} --agency AGENCY")
    lines.append("")
    lines.append("Payload (JSON):")
    lines.append(json.dumps(p, sort_keys=True, indent=2, default=str))
    return "\n".join(lines) + "\n"


class EmailChannel:
    name = "email"

    def __init__(self, host: str, port: int, sender: str, *, timeout: float = 15.0) -> None:
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout

    def build(self, message: Message, *, now: datetime) -> EmailMessage:
        if not message.email:
            raise ValueError(f"agency {message.agency_name} has no email address")
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.email
        mail["Subject"] = render_subject(message)
        mail["Date"] = format_datetime(now)
        # Stable across retries, so mail clients and receivers can de-duplicate.
        mail["Message-ID"] = f"<{message.message_id}@referral-engine>"
        mail["X-Referral-Message-Id"] = message.message_id
        mail.set_content(render_body(message))
        return mail

    def send(self, message: Message, *, now: datetime) -> SendResult:
        try:
            mail = self.build(message, now=now)
        except ValueError as exc:
            return SendResult("failed", error=str(exc))
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            permanent = all(code >= 500 for code in codes)
            return SendResult(
                "failed" if permanent else "retry",
                status_code=codes[0] if codes else None,
                error=f"SMTP refused recipient: {exc.recipients}",
            )
        except smtplib.SMTPResponseException as exc:
            return SendResult(
                "failed" if exc.smtp_code >= 500 else "retry",
                status_code=exc.smtp_code,
                error=f"SMTP {exc.smtp_code}: {exc.smtp_error!r}",
            )
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            return SendResult("retry", error=f"SMTP: {type(exc).__name__}: {exc}")
        return SendResult("delivered", status_code=250)
