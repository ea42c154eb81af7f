"""Ingest safety: idempotency keys per model in their own table, SDK batch keys, bad patterns disabled.

Revision ID: 0010_ingest_safety
Revises: 0007_roles
"""

from __future__ import annotations

from driftloop.migrations import apply_sql

revision = "0010_ingest_safety"
down_revision = "0007_roles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql("0010_ingest_safety.up.sql")


def downgrade() -> None:
    apply_sql("0010_ingest_safety.down.sql")
