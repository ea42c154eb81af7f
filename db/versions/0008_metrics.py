"""Metrics: the evaluation history behind the score time series and the last-evaluation metric.

Revision ID: 0008_metrics
Revises: 0011_partitions
"""

from __future__ import annotations

from driftloop.migrations import apply_sql

revision = "0008_metrics"
down_revision = "0011_partitions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql("0008_metrics.up.sql")


def downgrade() -> None:
    apply_sql("0008_metrics.down.sql")
