"""Layout: the code layer moves to db/repeatable/; the report row type; the code-layer digest.

Revision ID: 0005_layout
Revises: 0004_detection
"""

from __future__ import annotations

from driftloop.migrations import apply_sql

revision = "0005_layout"
down_revision = "0004_detection"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql("0005_layout.up.sql")


def downgrade() -> None:
    apply_sql("0005_layout.down.sql")
