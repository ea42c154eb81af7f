"""Alembic environment: plain-SQL migrations, version table in the `drift` schema.

An upgrade to head re-applies the code layer (db/repeatable/) in the same transaction; any
other target (a downgrade, or an upgrade that stops short of head) removes it first, because
the functions and views are written against the tables at head.
"""

from __future__ import annotations

import psycopg
from alembic import context
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from driftloop import migrations
from driftloop.database import CONNECT_TIMEOUT_S, configure_connection, database_url

url = context.config.attributes.get("database_url") or database_url()
head = ScriptDirectory.from_config(context.config).get_current_head()
destination = context.get_revision_argument()
to_head = destination in ("head", "heads", head)


def _connect() -> psycopg.Connection:
    # psycopg parses the URL (or key=value DSN) itself: unix-socket URLs of the embedded server
    # and Supabase's pooler URLs then work exactly as everywhere else in driftloop.
    conn = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S)  # an unreachable host fails fast
    configure_connection(conn)
    return conn


engine = create_engine("postgresql+psycopg://", creator=_connect, poolclass=pool.NullPool)

with engine.connect() as connection:
    connection.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS drift")
    connection.commit()
    context.configure(
        connection=connection,
        version_table="alembic_version",
        version_table_schema="drift",
        transactional_ddl=True,
    )
    raw = connection.connection.driver_connection
    with context.begin_transaction():
        if not to_head:
            migrations.drop_code_layer(raw)
        context.run_migrations()
        if to_head:
            migrations.apply_code_layer(raw)
engine.dispose()
