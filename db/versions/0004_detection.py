"""Detection: calibrated embedding tests, novelty rate, arcsine rate tests, per-evaluation level.

Revision ID: 0004_detection
Revises: 0003_simulation
"""

from __future__ import annotations

from driftloop.migrations import apply_sql

revision = "0004_detection"
down_revision = "0003_simulation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql("0004_detection.up.sql")


def downgrade() -> None:
    apply_sql("0004_detection.down.sql")
