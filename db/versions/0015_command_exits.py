"""Command exits recorded as soon as the child exits, so a re-claim finishes the run instead of running it again.

Revision ID: 0015_command_exits
Revises: 0014_reliability
"""

from __future__ import annotations

from driftloop.migrations import apply_sql

revision = "0015_command_exits"
down_revision = "0014_reliability"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql("0015_command_exits.up.sql")


def downgrade() -> None:
    apply_sql("0015_command_exits.down.sql")
