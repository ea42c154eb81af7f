"""Worker: event claims, action runs, prompt versions.

Revision ID: 0002_worker
Revises: 0001_engine
"""

from __future__ import annotations

from driftloop.migrations import apply_sql

revision = "0002_worker"
down_revision = "0001_engine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql("0002_worker.up.sql")


def downgrade() -> None:
    apply_sql("0002_worker.down.sql")
