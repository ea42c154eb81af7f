"""Partitions: interaction_log and embeddings_log partitioned by day (or week), rows and ids kept.

Revision ID: 0011_partitions
Revises: 0010_ingest_safety
"""

from __future__ import annotations

from driftloop.migrations import apply_sql

revision = "0011_partitions"
down_revision = "0010_ingest_safety"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql("0011_partitions.up.sql")


def downgrade() -> None:
    apply_sql("0011_partitions.down.sql")
