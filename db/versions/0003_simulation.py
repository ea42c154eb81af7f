"""Simulation runs, the drift they injected (ground truth), their timelines and actions.

Revision ID: 0003_simulation
Revises: 0002_worker
"""

from __future__ import annotations

from driftloop.migrations import apply_sql

revision = "0003_simulation"
down_revision = "0002_worker"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql("0003_simulation.up.sql")


def downgrade() -> None:
    apply_sql("0003_simulation.down.sql")
