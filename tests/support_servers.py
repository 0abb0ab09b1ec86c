"""Real servers for delivery tests: a webhook receiver, an SMTP server, a Celery worker.

Everything listens on 127.0.0.1 on a free port and is stopped by the fixture that started it.
Waiting is always on a condition with a deadline, never a bare sleep.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message as EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook, WebhookVerificationError

from engine import clock
from engine.agencies import add_agency
from engine.cases import service
from engine.machine.deploy import deploy
from engine.store.tables import CaseEvent, Escalation, Notification, Timer

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout``."""
    deadline = clock.monotonic() + timeout
    wake = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if clock.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        wake.wait(interval)


@dataclass(frozen=True)
class Received:
    path: str
    webhook_id: str
    timestamp: str
    payload: dict[str, Any]
    verified: bool
    answered: int
    user_agent: str = ""

    @property
    def data(self) -> dict[str, Any]:
        """The body's ``data`` (the body is ``{"type", "timestamp", "data"}``)."""
        return dict(self.payload.get("data") or {})


@dataclass
class Endpoint:
    secret: str
    # Status codes to answer with before answering 200; "gone" answers 410 for good.
    fail_with: list[int] = field(default_factory=list)
    gone: bool = False
    retry_after: str | None = None
    delay: float = 0.0


class WebhookReceiver:
    """A threaded HTTP server that verifies Standard Webhooks signatures per endpoint path."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.received: list[Received] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            # The default backlog of 5 refuses connections under a worker pool's burst.
            request_queue_size = 128

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def register(self, path: str, secret: str) -> Endpoint:
        endpoint = Endpoint(secret)
        with self.changed:
            self.endpoints[path] = endpoint
        return endpoint

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("content-length", "0"))
        body = request.rfile.read(length)
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self.changed:
            endpoint = self.endpoints.get(request.path)
            status, extra = 404, {}
            if endpoint is not None:
                if endpoint.gone:
                    status = 410
                elif endpoint.fail_with:
                    status = endpoint.fail_with.pop(0)
                    if endpoint.retry_after:
                        extra["Retry-After"] = endpoint.retry_after
                else:
                    status = 200
            delay = endpoint.delay if endpoint else 0.0
        verified = False
        payload: dict[str, Any] = {}
        if endpoint is not None:
            try:
                payload = Webhook(endpoint.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                status = 401
        if delay:
            threading.Event().wait(delay)  # a slow receiver, not test synchronisation
        request.send_response(status)
        for key, value in extra.items():
            request.send_header(key, value)
        request.send_header("content-length", "0")
        request.end_headers()
        with self.changed:
            self.received.append(
                Received(
                    path=request.path,
                    webhook_id=headers.get("webhook-id", ""),
                    timestamp=headers.get("webhook-timestamp", ""),
                    payload=payload,
                    verified=verified,
                    answered=status,
                    user_agent=headers.get("user-agent", ""),
                )
            )
            self.changed.notify_all()

    def delivered(self, path: str | None = None) -> list[Received]:
        """Requests answered 2xx (each a delivery), optionally for one endpoint."""
        with self.changed:
            return [
                r for r in self.received
                if 200 <= r.answered < 300 and (path is None or r.path == path)
            ]

    def all(self, path: str | None = None) -> list[Received]:
        with self.changed:
            return [r for r in self.received if path is None or r.path == path]

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float = 30.0
    ) -> list[Received]:
        deadline = clock.monotonic() + timeout
        with self.changed:
            while not predicate(list(self.received)):
                left = deadline - clock.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"webhook receiver: condition not met in {timeout}s; got "
                        f"{[(r.path, r.answered, r.payload.get('type')) for r in self.received]}"
                    )
                self.changed.wait(left)
            return list(self.received)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class Certificate:
    """A throw-away self-signed certificate for 127.0.0.1 (the client trusts it as CA)."""

    cert: Path
    key: Path

    @classmethod
    def make(cls, folder: Path) -> Certificate:
        cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True,
        )
        return cls(cert, key)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


class MailSink:
    """An aiosmtpd server keeping every message it receives.

    ``tls="starttls"`` refuses mail before STARTTLS, ``"implicit"`` speaks TLS from the
    first byte; with ``login`` it refuses mail before AUTH with that user and password.
    """

    def __init__(self, port: int, *, tls: str = "none", cert: Certificate | None = None,
                 login: tuple[str, str] | None = None) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list[EmailMessage] = []
        self.logins: list[str] = []
        self.changed = threading.Condition()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = message_from_bytes(envelope.original_content or envelope.content)
                with sink.changed:
                    sink.messages.append(message)
                    sink.changed.notify_all()
                return "250 Message accepted for delivery"

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                         data: Any) -> AuthResult:
            ok = login is not None and (data.login.decode(), data.password.decode()) == login
            if ok:
                sink.logins.append(data.login.decode())
            return AuthResult(success=ok)

        options: dict[str, Any] = {}
        if tls == "starttls":
            assert cert is not None
            options.update(tls_context=cert.server_context(), require_starttls=True)
        elif tls == "implicit":
            assert cert is not None
            options.update(ssl_context=cert.server_context())
        if login is not None:
            options.update(authenticator=authenticate, auth_required=True,
                           # aiosmtpd knows of STARTTLS only; implicit TLS is TLS anyway.
                           auth_require_tls=tls == "starttls")
        self.port = port
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port, **options)

    def wait_for(
        self, predicate: Callable[[list[EmailMessage]], bool], timeout: float = 30.0
    ) -> list[EmailMessage]:
        deadline = clock.monotonic() + timeout
        with self.changed:
            while not predicate(list(self.messages)):
                left = deadline - clock.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"SMTP sink: condition not met in {timeout}s; got "
                        f"{[m['Subject'] for m in self.messages]}"
                    )
                self.changed.wait(left)
            return list(self.messages)

    @staticmethod
    def part(message: EmailMessage, subtype: str) -> str:
        """The decoded text of the message's ``text/<subtype>`` part."""
        for item in message.walk():
            if item.get_content_type() == f"text/{subtype}":
                body = item.get_payload(decode=True)
                assert isinstance(body, bytes)
                return body.decode().replace("\r\n", "\n")
        raise AssertionError(f"no text/{subtype} part in {message['Subject']!r}")

    @staticmethod
    def reference(message: EmailMessage) -> dict[str, str]:
        """The 'Reference:' lines at the end of the plain text part."""
        text = MailSink.part(message, "plain").split("Reference:\n", 1)[1]
        pairs = (line.strip().split(": ", 1) for line in text.splitlines() if line.strip())
        return {key: value for key, value in pairs}

    def __enter__(self) -> MailSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class CeleryWorker:
    """``celery -A workers worker -B`` as a subprocess in a process group of its own."""

    def __init__(
        self,
        env: Mapping[str, str],
        workdir: Path,
        *,
        beat: bool = True,
        concurrency: int = 2,
        name: str = "worker",
    ) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.workdir = workdir
        self.beat = beat
        self.concurrency = concurrency
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}-{self.starts}.log"

    def start(self, *, wait: bool = True, timeout: float = 60.0) -> None:
        self.starts += 1
        args = [
            sys.executable, "-m", "celery", "-A", "workers", "worker",
            "--loglevel", "INFO", "--pool", "prefork", "--concurrency", str(self.concurrency),
            "--hostname", f"{self.name}{self.starts}@%h", "--without-gossip",
            "--without-mingle", "--without-heartbeat",
        ]
        if self.beat:
            args += ["-B", "--schedule", str(self.workdir / f"{self.name}-beat")]
        print(f"celery worker {self.name} log: {self.log_path}")  # shown if the test fails
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        if wait:
            wait_until(
                self._ready, timeout=timeout, message=f"celery worker ready ({self.log_path})"
            )

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"celery worker exited: {self.log_path.read_text()[-3000:]}")
        return b" ready." in self.log_path.read_bytes()

    def kill(self) -> None:
        """SIGKILL the worker and its pool children (and beat), as a crash would."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            # Warm shutdown through the main process, which stops its pool and beat itself;
            # signalling the whole group would interrupt the children mid-cleanup.
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything left of the group
        self.proc = None

    def logs(self) -> str:
        return "\n".join(
            (self.workdir / f"{self.name}-{n}.log").read_text(errors="replace")[-4000:]
            for n in range(1, self.starts + 1)
        )


class RedisServer:
    """A private ``redis-server`` on a free port that a test may stop and start again."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.exceptions.ConnectionError:
                return False

        wait_until(up, timeout=20, message=f"redis-server on {self.port}")
        client.close()

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait(timeout=20)
        self.proc = None


def worker_env(
    *, database_url: str, broker_url: str, **settings: object
) -> dict[str, str]:
    env = {"REFERRAL_DATABASE_URL": database_url, "REFERRAL_BROKER_URL": broker_url}
    env.update({f"REFERRAL_{k.upper()}": str(v) for k, v in settings.items()})
    return env


@dataclass
class Servers:
    receiver: WebhookReceiver
    mail: MailSink


def servers(port: int) -> Iterator[Servers]:
    with WebhookReceiver() as receiver, MailSink(port) as mail:
        yield Servers(receiver, mail)


# --- A deployed workflow with a screening ladder, agencies per role, and explicit clocks ---

LADDER_WORKFLOW = """\
workflow: screening_ladder
version: 1
title: Screening deadline with a reminder and a two-step escalation ladder
timezone: Europe/London
calendar:
  country: GB
  subdivision: ENG
roles:
  referrer: {}
  police: {}
  police_supervisor: {}
  coordinator: {}
  chair: {}
  therapist: {}
fields:
  risk_level: {type: enum, values: [low, moderate, high]}
  screening_rationale: {type: text}
  therapy_notes: {type: text, visible_to: [therapist]}
  police_intel: {type: text, visible_to: [police, police_supervisor]}
states:
  referred: {initial: true}
  screening: {owner: police}
  review: {owner: chair}
  closed_no_concern: {final: true}
  closed_completed: {final: true}
transitions:
  - {trigger: accept, from: referred, to: screening, by: [coordinator, police]}
  - trigger: screen_out
    from: screening
    to: closed_no_concern
    by: [police]
    requires: [screening_rationale]
  - {trigger: refer_to_review, from: screening, to: review, by: [police]}
  - {trigger: log_contact, from: screening, to: screening, by: [police]}
  - {trigger: close, from: review, to: closed_completed, by: [chair], when: 'risk_level == "low"'}
timers:
  - name: screening_deadline
    in: screening
    after: 5 business days
    remind: [police]
    restart_on: [log_contact]
    escalate:
      - {after: 2 business days, notify: [police_supervisor]}
      - {after: 3 business days, notify: [coordinator, chair]}
  - name: review_due
    in: review
    after: 10 days
    fire: close
"""

# Tuesday 23 March 2027, 10:00 in London (GMT). Five business days later skips Good Friday
# (26th), the weekend, Easter Monday (29th), and crosses the change to BST (28th): the
# deadline is Thursday 1 April 10:00 BST, 09:00 UTC.
ENTER = datetime(2027, 3, 23, 10, 0, tzinfo=UTC)
REMIND_AT = datetime(2027, 4, 1, 9, 0, tzinfo=UTC)
STEP1_AT = datetime(2027, 4, 5, 9, 0, tzinfo=UTC)  # + 2 business days: Fri 2, Mon 5
STEP2_AT = datetime(2027, 4, 8, 9, 0, tzinfo=UTC)  # + 3 business days: Tue 6 .. Thu 8

ROLES = ("referrer", "police", "police_supervisor", "coordinator", "chair", "therapist")


@dataclass
class TimerWorld:
    """A database with the ladder workflow deployed and one agency per role."""

    factory: sessionmaker[Session]
    agencies: dict[str, int] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    def open_in_screening(
        self,
        *,
        at: datetime = ENTER,
        data: Mapping[str, Any] | None = None,
        roles: Iterable[str] = ROLES,
    ) -> int:
        """Open a case and accept it into screening at ``at``; returns its id."""
        assignments = {r: self.agencies[r] for r in roles}
        with self.factory() as s:
            view = service.open_case(
                s, workflow="screening_ladder", assignments=assignments, data=dict(data or {}),
                now=at - timedelta(minutes=5),
            )
            service.fire(s, view.id, "accept", role="coordinator", agency_id=None, now=at)
            s.commit()
            return int(view.id)

    def fire(self, case_id: int, trigger: str, role: str, *, at: datetime,
             data: Mapping[str, Any] | None = None) -> None:
        with self.factory() as s:
            service.fire(s, case_id, trigger, role=role, agency_id=self.agencies[role],
                         data=data, now=at)
            s.commit()

    def events(self, case_id: int, *kinds: str) -> list[CaseEvent]:
        with self.factory() as s:
            query = select(CaseEvent).where(CaseEvent.case_id == case_id)
            if kinds:
                query = query.where(CaseEvent.kind.in_(kinds))
            return list(s.scalars(query.order_by(CaseEvent.seq)))

    def timers(self, case_id: int) -> list[Timer]:
        with self.factory() as s:
            return list(s.scalars(
                select(Timer).where(Timer.case_id == case_id).order_by(Timer.id)
            ))

    def escalations(self, case_id: int | None = None) -> list[Escalation]:
        with self.factory() as s:
            query = select(Escalation).order_by(Escalation.id)
            if case_id is not None:
                query = query.where(Escalation.case_id == case_id)
            return list(s.scalars(query))

    def notifications(self, case_id: int | None = None) -> list[Notification]:
        with self.factory() as s:
            query = select(Notification).order_by(Notification.id)
            if case_id is not None:
                query = query.where(Notification.case_id == case_id)
            return list(s.scalars(query))


def make_timer_world(
    factory: sessionmaker[Session],
    *,
    webhook_for: Callable[[str], str | None] = lambda role: None,
    email_for: Callable[[str], str | None] = lambda role: None,
) -> TimerWorld:
    world = TimerWorld(factory)
    with factory() as s:
        deploy(s, LADDER_WORKFLOW, "screening_ladder.yaml", now=ENTER - timedelta(days=30))
        for role in ROLES:
            created = add_agency(s, name=f"{role} agency", webhook=webhook_for(role),
                                 email=email_for(role), now=ENTER - timedelta(days=30))
            world.agencies[role] = created.agency.id
            if created.webhook_secret:
                world.secrets[role] = created.webhook_secret
        s.commit()
    return world
