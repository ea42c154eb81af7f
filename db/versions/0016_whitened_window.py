"""The whitened window test: the mean test in the sequential test's whitened features over a longer window.

Revision ID: 0016_whitened_window
Revises: 0015_command_exits
"""

from __future__ import annotations

from driftloop.migrations import apply_sql

revision = "0016_whitened_window"
down_revision = "0015_command_exits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql("0016_whitened_window.up.sql")


def downgrade() -> None:
    apply_sql("0016_whitened_window.down.sql")
