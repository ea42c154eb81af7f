"""Alembic environment: plain-SQL migrations, version table in the `drift` schema."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from driftloop.database import database_url, sqlalchemy_url

url = context.config.attributes.get("database_url") or database_url()
engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)

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
