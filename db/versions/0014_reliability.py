"""Reliability: leases that survive a server restart, id ranges of log partitions, action-run counters.

Revision ID: 0014_reliability
Revises: 0012_evidence
"""

from __future__ import annotations

from driftloop.migrations import apply_sql

revision = "0014_reliability"
down_revision = "0012_evidence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql("0014_reliability.up.sql")


def downgrade() -> None:
    apply_sql("0014_reliability.down.sql")
