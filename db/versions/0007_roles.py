"""Roles: driftloop_ingest, driftloop_worker, driftloop_reader; who logged each row (inserted_by).

Revision ID: 0007_roles
Revises: 0005_layout
"""

from __future__ import annotations

from driftloop.migrations import apply_sql

revision = "0007_roles"
down_revision = "0005_layout"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql("0007_roles.up.sql")


def downgrade() -> None:
    apply_sql("0007_roles.down.sql")
