"""Drift engine: logs, rollups, baselines, drift views, evaluate() and events.

Revision ID: 0001_engine
Revises:
"""

from __future__ import annotations

from driftloop.migrations import apply_sql

revision = "0001_engine"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql("0001_engine.up.sql")


def downgrade() -> None:
    apply_sql("0001_engine.down.sql")
