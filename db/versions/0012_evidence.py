"""Evidence: a sequential (CUSUM) embedding test that accumulates evidence across windows.

Revision ID: 0012_evidence
Revises: 0011_partitions
"""

from __future__ import annotations

from driftloop.migrations import apply_sql

revision = "0012_evidence"
down_revision = "0011_partitions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql("0012_evidence.up.sql")


def downgrade() -> None:
    apply_sql("0012_evidence.down.sql")
