"""The email channel: a readable message (plain text and HTML) over SMTP, with STARTTLS
or implicit TLS and login when the relay asks for them."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Literal

from engine.notify.acklink import make_token
from engine.notify.channels import Message, SendResult
from engine.notify.render import render

Tls = Literal["none", "starttls", "implicit"]


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    tls: Tls = "none"
    user: str | None = None
    password: str | None = None
    ca_file: str | None = None
    timeout: float = 15.0
    # Base URL of the case pages, for the link in each mail.
    public_url: str | None = None
    # Signs acknowledge links (engine.notify.acklink); None: mail has no such link.
    link_secret: str | None = None


class EmailChannel:
    name = "email"

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def build(self, message: Message, *, now: datetime) -> EmailMessage:
        if not message.email:
            raise ValueError(f"agency {message.agency_name} has no email address")
        words = render(message.kind, message.payload, base_url=self.config.public_url,
                       ack_url=self._ack_url(message, now))
        mail = EmailMessage()
        mail["From"] = self.config.sender
        mail["To"] = message.email
        mail["Subject"] = words.subject
        mail["Date"] = format_datetime(now)
        # Stable across retries, so mail clients and receivers can de-duplicate.
        mail["Message-ID"] = f"<{message.message_id}@referral-engine>"
        mail["X-Referral-Message-Id"] = message.message_id
        mail.set_content(words.text())
        mail.add_alternative(words.html(), subtype="html")
        return mail

    def _ack_url(self, message: Message, now: datetime) -> str | None:
        c, escalation = self.config, message.payload.get("escalation_id")
        if not (c.link_secret and c.public_url and isinstance(escalation, int)):
            return None
        token = make_token(c.link_secret, escalation, message.agency_id, now=now)
        return f"{c.public_url.rstrip('/')}/ack/{token}"

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        context = ssl.create_default_context(cafile=c.ca_file)
        smtp: smtplib.SMTP
        if c.tls == "implicit":
            smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout, context=context)
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
        try:
            if c.tls == "starttls":
                smtp.starttls(context=context)
            if c.user:
                smtp.login(c.user, c.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: Message, *, now: datetime) -> SendResult:
        try:
            mail = self.build(message, now=now)
        except ValueError as exc:
            return SendResult("failed", error=str(exc))
        try:
            with self._connect() as smtp:
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            permanent = all(code >= 500 for code in codes)
            return SendResult(
                "failed" if permanent else "retry",
                status_code=codes[0] if codes else None,
                error=f"SMTP refused recipient: {exc.recipients}",
            )
        except smtplib.SMTPAuthenticationError as exc:
            # A wrong password is the operator's to fix; retrying until the dead letter
            # keeps the notification instead of dropping it on the first refusal.
            return SendResult("retry", status_code=exc.smtp_code,
                              error=f"SMTP login refused: {exc.smtp_code}")
        except smtplib.SMTPResponseException as exc:
            return SendResult(
                "failed" if exc.smtp_code >= 500 else "retry",
                status_code=exc.smtp_code,
                error=f"SMTP {exc.smtp_code}: {exc.smtp_error!r}",
            )
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            # ssl.SSLError (a certificate not trusted) is an OSError: retried, then dead.
            return SendResult("retry", error=f"SMTP: {type(exc).__name__}: {exc}")
        return SendResult("delivered", status_code=250)
