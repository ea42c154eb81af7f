"""Alembic environment: plain-SQL migrations, version table in the `drift` schema."""

from __future__ import annotations

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool

from driftloop.database import database_url

url = context.config.attributes.get("database_url") or database_url()
# psycopg parses the URL (or key=value DSN) itself: unix-socket URLs of the embedded server
# and Supabase's pooler URLs then work exactly as everywhere else in driftloop.
engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(url), poolclass=pool.NullPool)

with engine.connect() as connection:
    connection.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS drift")
    connection.commit()
    context.configure(
        connection=connection,
        version_table="alembic_version",
        version_table_schema="drift",
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
