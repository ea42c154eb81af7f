"""Incidents: drift.incidents, drift_events.incident_id, action_runs.recovery.

Revision ID: 0009_incidents
Revises: 0008_metrics
"""

from __future__ import annotations

from driftloop.migrations import apply_sql

revision = "0009_incidents"
down_revision = "0008_metrics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_sql("0009_incidents.up.sql")


def downgrade() -> None:
    apply_sql("0009_incidents.down.sql")
