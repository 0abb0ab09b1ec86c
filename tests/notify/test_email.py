"""Email a person can read and a real mail server accepts: STARTTLS or implicit TLS with
a login against aiosmtpd, a throw-away certificate trusted through REFERRAL_SMTP_CA_FILE,
sentences in plain text and HTML, no field value and no internal name."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from email.message import Message as EmailMessage
from pathlib import Path

import pytest
from conftest import free_port
from sqlalchemy import Engine
from support_servers import Certificate, MailSink, WebhookReceiver
from test_notices import T0, WORKFLOW, Site, make_site

LOGIN = ("referral", "s3cret")
# aiosmtpd cannot tell that implicit TLS is TLS, so it warns about AUTH without it.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def cert(tmp_path: Path) -> Certificate:
    return Certificate.make(tmp_path)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


def _site(db_engine: Engine, receiver: WebhookReceiver, mail: MailSink, tmp: Path,
          **options: object) -> Site:
    return make_site(db_engine, receiver, mail, tmp, WORKFLOW.read_text("utf-8"),
                     public_url="https://referrals.example/", **options)


def _police_mail(site: Site) -> EmailMessage:
    case = site.open(T0)
    site.fire(case, "accept", "coordinator", T0 + timedelta(minutes=5),
              data={"police_intelligence": "Known to the force"})
    site.worker.run_once(T0 + timedelta(minutes=5))
    site.worker.deliverer.close()
    [mail] = [m for m in site.mail.wait_for(lambda ms: bool(ms), timeout=10)
              if m["To"] == "police@example.org"]
    return mail


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_mail_goes_over_tls_with_a_login_and_reads_as_sentences(
    db_engine: Engine, receiver: WebhookReceiver, cert: Certificate, tmp_path: Path, tls: str,
) -> None:
    with MailSink(free_port(), tls=tls, cert=cert, login=LOGIN) as sink:
        site = _site(db_engine, receiver, sink, tmp_path, smtp_tls=tls,
                     smtp_user=LOGIN[0], smtp_password=LOGIN[1], smtp_ca_file=str(cert.cert))
        mail = _police_mail(site)
        assert sink.logins == [LOGIN[0]]
    assert mail["Subject"] == "New referral to screen (case 1)"
    plain, page = MailSink.part(mail, "plain"), MailSink.part(mail, "html")
    assert plain.startswith("Case 1: A referral has been accepted and waits for police "
                            "screening.\n")
    assert "Open the case: https://referrals.example/cases/1" in plain
    assert '<a href="https://referrals.example/cases/1">' in page
    for part in (plain, page, mail["Subject"]):
        # No field value, not even one the police may read, and no internal name.
        assert "Worrying remarks" not in part and "Known to the force" not in part
        assert "community_panel" not in part


def test_an_untrusted_certificate_is_not_sent_to_but_retried(
    db_engine: Engine, receiver: WebhookReceiver, cert: Certificate, tmp_path: Path,
) -> None:
    with MailSink(free_port(), tls="starttls", cert=cert) as sink:
        site = _site(db_engine, receiver, sink, tmp_path, smtp_tls="starttls")
        case = site.open(T0)
        site.fire(case, "accept", "coordinator", T0 + timedelta(minutes=5))
        result = site.worker.run_once(T0 + timedelta(minutes=5))
        site.worker.deliverer.close()
        assert sink.messages == []
    # The police's mail: tried again later, never sent in the clear; the webhooks went.
    assert len(result.delivery.retried) == 1 and len(result.delivery.delivered) == 2


def test_a_server_that_requires_starttls_refuses_a_plain_sender(
    db_engine: Engine, receiver: WebhookReceiver, cert: Certificate, tmp_path: Path,
) -> None:
    with MailSink(free_port(), tls="starttls", cert=cert) as sink:
        site = _site(db_engine, receiver, sink, tmp_path)
        case = site.open(T0)
        site.fire(case, "accept", "coordinator", T0 + timedelta(minutes=5))
        result = site.worker.run_once(T0 + timedelta(minutes=5))
        site.worker.deliverer.close()
        assert sink.messages == []
    # 530 'issue STARTTLS first' is permanent: dead-lettered at once and the coordinator
    # alerted (by webhook; its own mail dies the same way, and is not alerted about again).
    assert result.delivery.dead and result.delivery.alerts
    assert not result.delivery.retried


def test_a_reminder_mail_says_how_long_the_case_waited_and_where(
    db_engine: Engine, receiver: WebhookReceiver, tmp_path: Path,
) -> None:
    with MailSink(free_port()) as sink:
        site = _site(db_engine, receiver, sink, tmp_path)
        case = site.open(T0)
        site.fire(case, "accept", "coordinator", T0 + timedelta(minutes=5))
        # screening_nudge: 3 business days after Monday 14 December is Thursday 17th.
        site.worker.run_once(T0 + timedelta(days=3, minutes=5))
        site.worker.deliverer.close()
        [mail] = [m for m in sink.messages if m["Subject"].startswith("Reminder")]
    assert mail["Subject"] == f"Reminder: case {case} is waiting for you"
    assert MailSink.part(mail, "plain").startswith(
        f"Case {case} has waited 3 business days in screening; please act on it")
