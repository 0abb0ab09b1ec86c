"""subjects: the person behind a case, blocking keys, case links and link decisions

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 01:00:00

Adds tables only, so an existing database upgrades in place without touching its cases.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import engine.store.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC = engine.store.tables.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "subjects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pool", sa.String(length=64), nullable=False),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("birth_month", sa.Integer(), nullable=True),
        sa.Column("birth_day", sa.Integer(), nullable=True),
        sa.Column("locality", sa.String(length=200), nullable=True),
        sa.Column("identifiers", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
        sa.Column("recorded_at", UTC(), nullable=False),
        sa.Column("updated_at", UTC(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "subject_names",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("given", sa.String(length=200), nullable=False),
        sa.Column("family", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_subject_names_subject", "subject_names", ["subject_id"])
    op.create_table(
        "subject_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("birth_year", sa.Integer(), nullable=False),
        sa.Column("born", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_subject_keys_block", "subject_keys", ["key", "birth_year", "born", "subject_id"]
    )
    op.create_index("ix_subject_keys_subject", "subject_keys", ["subject_id"])
    op.create_table(
        "case_subjects",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"]),
        sa.PrimaryKeyConstraint("case_id"),
    )
    op.create_index("ix_case_subjects_subject", "case_subjects", ["subject_id"])
    op.create_table(
        "subject_decisions",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("other_case_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("decided_at", UTC(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["other_case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"]),
        sa.PrimaryKeyConstraint("case_id", "other_case_id"),
    )
    op.create_index(
        "ix_subject_decisions_other", "subject_decisions", ["other_case_id", "decision"]
    )


def downgrade() -> None:
    op.drop_table("subject_decisions")
    op.drop_table("case_subjects")
    op.drop_table("subject_keys")
    op.drop_table("subject_names")
    op.drop_table("subjects")
