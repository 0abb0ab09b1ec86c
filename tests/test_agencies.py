"""Agencies: tokens shown once and stored hashed; Standard Webhooks signing secrets."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from engine.agencies import add_agency, agency_by_name, authenticate, hash_token, list_agencies
from engine.clock import utcnow
from engine.errors import Conflict, InvalidInput, NotFound
from engine.store.db import make_engine, session_factory
from engine.store.tables import Agency

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        yield s
    engine.dispose()


def test_token_is_stored_only_as_a_hash(session: Session) -> None:
    created = add_agency(session, name="Police Prevent Team", now=NOW)
    session.commit()
    stored = session.scalar(select(Agency.token_hash).where(Agency.id == created.agency.id))
    assert stored == hash_token(created.token)
    assert created.token not in repr(session.scalars(select(Agency)).all())
    assert len(created.token) >= 40
    assert created.webhook_secret is None


def test_authenticate(session: Session) -> None:
    one = add_agency(session, name="One", now=NOW)
    two = add_agency(session, name="Two", now=NOW)
    session.commit()
    assert one.token != two.token
    found = authenticate(session, one.token)
    assert found is not None and found.id == one.agency.id
    assert authenticate(session, two.token).id == two.agency.id  # type: ignore[union-attr]
    assert authenticate(session, one.token + "x") is None
    assert authenticate(session, "") is None


def test_webhook_secret_follows_standard_webhooks(session: Session) -> None:
    created = add_agency(
        session,
        name="Clinic",
        webhook="https://clinic.example/hooks",
        email="a@clinic.example",
        now=NOW,
    )
    secret = created.webhook_secret
    assert secret is not None and secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    hook = Webhook(secret)
    sent = utcnow()
    body = '{"case_id":1}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(sent.timestamp())),
        "webhook-signature": hook.sign("msg_1", sent, body),
    }
    # The receiver's own library accepts what the engine would sign with this secret.
    assert hook.verify(body, headers) == {"case_id": 1}
    assert created.agency.webhook_url == "https://clinic.example/hooks"
    assert created.agency.email == "a@clinic.example"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "  "},
        {"name": "x" * 201},
        {"name": "A", "webhook": "ftp://example.org/"},
        {"name": "A", "webhook": "not a url"},
        {"name": "A", "email": "nobody"},
        # A header injection: stored, it would only fail when the mail is sent.
        {"name": "A", "email": "a@b.c\nBcc:evil@x.y"},
        {"name": "A", "email": "a@b.c\r\nBcc: evil@x.y"},
        {"name": "A", "email": "a@."},
        {"name": "A", "email": "a@b."},
    ],
)
def test_bad_agency_input(session: Session, kwargs: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        add_agency(session, now=NOW, **kwargs)


def test_names_are_unique_and_found(session: Session) -> None:
    add_agency(session, name="Council", now=NOW)
    with pytest.raises(Conflict, match="already exists"):
        add_agency(session, name="Council", now=NOW)
    assert agency_by_name(session, "Council").name == "Council"
    with pytest.raises(NotFound):
        agency_by_name(session, "Nobody")
    assert [a.name for a in list_agencies(session)] == ["Council"]


def test_an_email_address_is_stored_as_the_validator_normalises_it(session: Session) -> None:
    created = add_agency(session, name="Clinic", email="Team@Clinic.EXAMPLE", now=NOW)
    assert created.agency.email == "Team@clinic.example"
