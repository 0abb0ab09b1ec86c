"""delivery timings and operations: latency of each delivered notification, duration of
each attempt, and the audit of operators' delivery actions

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 01:30:00

Chained after 0001 while 0002 (subjects) is written on another branch; the merge re-chains
it after 0002. Both columns are nullable: rows written before have no timing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import engine.store.tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("latency_seconds", sa.Float(), nullable=True))
    with op.batch_alter_table("delivery_attempts") as batch:
        batch.add_column(sa.Column("duration_seconds", sa.Float(), nullable=True))
    op.create_table(
        "operation_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", engine.store.tables.UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_operation_events_at", "operation_events", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_operation_events_at", table_name="operation_events")
    op.drop_table("operation_events")
    with op.batch_alter_table("delivery_attempts") as batch:
        batch.drop_column("duration_seconds")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("latency_seconds")
