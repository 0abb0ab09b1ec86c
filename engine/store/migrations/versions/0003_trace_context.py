"""Trace context beside timers and outbox rows.

A timer started by a request, and each notification it sends, keep the request's W3C
``traceparent`` (null when tracing is off), so the webhook sent days later links to the
trace of the request behind it.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("timers", "notifications"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("trace_parent", sa.String(64), nullable=True))


def downgrade() -> None:
    for table in ("timers", "notifications"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("trace_parent")
