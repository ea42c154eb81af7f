"""The schema: frozen alembic migrations (DDL) plus a code layer re-applied after every upgrade.

Everything ships inside the package (`driftloop.db`, the project's top-level `db/` folder):

- ``db/versions/*.py`` are alembic revisions; each applies ``db/migrations/<rev>.up.sql`` (or
  ``.down.sql``): tables, columns, indexes, types and data moves, never edited once released.
- ``db/repeatable/*.sql`` define every function, trigger, view, grant and policy, each exactly
  once, idempotently (``CREATE OR REPLACE``). After every upgrade to head they are applied in
  file-name order in the migration's transaction, and whatever of that kind schema drift still
  holds but the files no longer define is dropped (an orphan), as Flyway's repeatable
  migrations work. Below head (``downgrade REV``) the code layer is removed: it targets head.
- ``db/schema.sql`` is generated from both (``make schema``): the whole head schema as one
  script, which ``driftloop db sql`` prints.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from psycopg import sql

from driftloop.database import connect, database_url
from driftloop.settings import threshold_overrides

DB_PACKAGE = "driftloop.db"
SCHEMA_HEADER = """\
-- driftloop schema at head, generated from db/migrations and db/repeatable (`make schema`).
-- Paste into the Supabase SQL editor (or run with psql) on a database with pgvector;
-- `driftloop db upgrade` continues from it later.
"""


def db_files() -> Traversable:
    return files(DB_PACKAGE)


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    # The package is installed as plain files (a wheel is unpacked), so this is a real folder.
    with as_file(db_files()) as folder:
        cfg.set_main_option("script_location", str(folder))
    cfg.attributes["database_url"] = url
    return cfg


def migration_sql(revision: str, direction: str) -> str:
    return db_files().joinpath("migrations", f"{revision}.{direction}.sql").read_text()


def apply_sql(filename: str) -> None:
    """Run one migration file inside the migration's transaction (called from db/versions)."""
    from alembic import op

    revision, direction, _ = filename.rsplit(".", 2)
    # The raw psycopg connection: no bind-parameter parsing of `:name` or `%` in the SQL.
    op.get_bind().connection.driver_connection.execute(migration_sql(revision, direction))  # type: ignore[union-attr]


def repeatable_files() -> list[tuple[str, str]]:
    """(name, SQL) of every repeatable file, in the order they are applied."""
    folder = db_files().joinpath("repeatable")
    entries: Iterator[Traversable] = folder.iterdir()
    return sorted((e.name, e.read_text()) for e in entries if e.name.endswith(".sql"))


def code_digest() -> str:
    digest = hashlib.sha256()
    for name, text in repeatable_files():
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()


# What the code layer is made of, as (kind, SQL returning the identity and whether it was
# (re)defined by the current transaction). A CREATE OR REPLACE writes a new catalog row, so
# its xmin is this transaction's id: an object whose row is older was not defined by the files.
# (The xid expression is spelled out in each query: SQL text is never built by formatting.)
CODE_OBJECTS = {
    "view": """
        SELECT c.oid::regclass::text, r.xmin::text::bigint
            = (pg_current_xact_id()::text::numeric % 4294967296)::bigint
        FROM pg_class c JOIN pg_rewrite r ON r.ev_class = c.oid AND r.rulename = '_RETURN'
        WHERE c.relnamespace = 'drift'::regnamespace AND c.relkind IN ('v', 'm')""",
    "trigger": """
        SELECT format('%I ON %s', t.tgname, t.tgrelid::regclass), t.xmin::text::bigint
            = (pg_current_xact_id()::text::numeric % 4294967296)::bigint
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = 'drift'::regnamespace AND NOT t.tgisinternal
          AND t.tgparentid = 0  -- a partition's clone goes with its parent's trigger""",
    "policy": """
        SELECT format('%I ON %s', p.polname, p.polrelid::regclass), p.xmin::text::bigint
            = (pg_current_xact_id()::text::numeric % 4294967296)::bigint
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
        WHERE c.relnamespace = 'drift'::regnamespace""",
    "function": """
        SELECT p.oid::regprocedure::text, p.xmin::text::bigint
            = (pg_current_xact_id()::text::numeric % 4294967296)::bigint
        FROM pg_proc p WHERE p.pronamespace = 'drift'::regnamespace""",
}


def _drop(conn: psycopg.Connection[Any], only_orphans: bool) -> list[str]:
    # Orphans go without CASCADE: views and triggers before the functions they use, and an
    # object of the user's that still depends on one stops the upgrade with Postgres' error
    # instead of vanishing. A downgrade removes the whole layer, dependents included.
    dropped = []
    for kind, query in CODE_OBJECTS.items():
        for identity, current in conn.execute(query).fetchall():
            if only_orphans and current:
                continue
            cascade = "" if only_orphans or kind in ("trigger", "policy") else " CASCADE"
            # `identity` is the catalog's own quoted text (regprocedure, regclass, %I).
            statement = sql.SQL("DROP {} IF EXISTS {}{}").format(
                sql.SQL(kind.upper()),
                sql.SQL(identity),
                sql.SQL(cascade),  # type: ignore[arg-type]
            )
            conn.execute(statement)
            dropped.append(f"{kind} {identity}")
    return dropped


def apply_code_layer(conn: psycopg.Connection[Any]) -> list[str]:
    """Apply every repeatable file in the current transaction, then drop the orphans.

    Returns the orphans dropped (functions, views, triggers, policies of schema drift that
    no file defines any more, such as a function a release removed).
    """
    conn.execute("SELECT pg_current_xact_id()")  # the xid the orphan check compares with
    for _name, text in repeatable_files():
        conn.execute(text)
    dropped = _drop(conn, only_orphans=True)
    conn.execute(
        "INSERT INTO drift.code_layer (digest) VALUES (%s)"
        " ON CONFLICT (singleton) DO UPDATE SET digest = excluded.digest, applied_at = now()",
        (code_digest(),),
    )
    return dropped


def drop_code_layer(conn: psycopg.Connection[Any]) -> None:
    """Remove every function, trigger, view and policy of schema drift (before a downgrade)."""
    _drop(conn, only_orphans=False)
    if conn.execute("SELECT to_regclass('drift.code_layer')").fetchone() != (None,):
        conn.execute("DELETE FROM drift.code_layer")


def revisions_in_order() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def head_revision() -> str:
    return revisions_in_order()[-1]


def upgrade(url: str | None = None, revision: str = "head") -> None:
    url = url or database_url()
    command.upgrade(alembic_config(url), revision)
    sync_settings(url)


def downgrade(revision: str, url: str | None = None) -> None:
    url = url or database_url()
    command.downgrade(alembic_config(url), revision)
    if revision == "base":
        # Alembic keeps its (now empty) version table; at base nothing of ours may remain.
        with connect(url) as conn:
            conn.execute("DROP TABLE IF EXISTS drift.alembic_version")
            conn.execute("DROP SCHEMA IF EXISTS drift")


def _bookkeeping_value(url: str | None, table: str, column: str) -> str | None:
    """The one value of a bookkeeping table of schema drift (None when the table or row is missing)."""
    with connect(url) as conn:
        if conn.execute("SELECT to_regclass(%s)", (f"drift.{table}",)).fetchone() == (None,):
            return None
        query = sql.SQL("SELECT {} FROM drift.{}").format(sql.Identifier(column), sql.Identifier(table))
        row = conn.execute(query).fetchone()
        return row[0] if row else None


def current_revision(url: str | None = None) -> str | None:
    return _bookkeeping_value(url, "alembic_version", "version_num")


def current_digest(url: str | None = None) -> str | None:
    """The digest of the code layer the database runs (None before it has one)."""
    return _bookkeeping_value(url, "code_layer", "digest")


def sync_settings(url: str | None = None) -> list[str]:
    """Write the thresholds set in the environment into drift.settings; returns the keys written.

    Only variables that are set are written, so a value changed with SQL survives a
    later `db upgrade` run without the variable.
    """
    overrides = threshold_overrides()
    if not overrides:
        return []
    with connect(url) as conn:
        for item in overrides:
            conn.execute("UPDATE drift.settings SET value = %s WHERE key = %s", (repr(item.value), item.key))
    return [item.key for item in overrides]


def build_schema_script() -> str:
    """The whole head schema as one script: every migration's DDL, then the code layer."""
    revisions = revisions_in_order()
    parts = [SCHEMA_HEADER, "BEGIN;", "CREATE SCHEMA IF NOT EXISTS drift;"]
    for rev in revisions:
        parts.append(f"\n-- migration {rev}\n")
        parts.append(migration_sql(rev, "up"))
    for name, text in repeatable_files():
        parts.append(f"\n-- repeatable {name}\n")
        parts.append(text)
    parts.append(
        "\nCREATE TABLE IF NOT EXISTS drift.alembic_version ("
        "version_num varchar(32) NOT NULL CONSTRAINT alembic_version_pkc PRIMARY KEY);"
    )
    parts.append(
        sql.SQL("INSERT INTO drift.alembic_version (version_num) VALUES ({});")
        .format(sql.Literal(revisions[-1]))
        .as_string()
    )
    parts.append(
        sql.SQL("INSERT INTO drift.code_layer (digest) VALUES ({});").format(sql.Literal(code_digest())).as_string()
    )
    parts.append("COMMIT;\n")
    return "\n".join(parts)


def schema_script() -> str:
    """db/schema.sql as shipped (generated by `make schema`; a test keeps it current)."""
    return db_files().joinpath("schema.sql").read_text()


def ensure_schema(url: str | None = None) -> None:
    """Make sure the schema and its code layer are at head before a command uses them.

    The embedded database is driftloop's own, so it is upgraded on the spot; a database named
    by DATABASE_URL is the user's, so they are told to run the migration themselves.
    """
    from driftloop.database import settings_url
    from driftloop.errors import DriftloopError

    url = url or database_url()
    head = head_revision()
    current = current_revision(url)
    if current == head and current_digest(url) == code_digest():
        return
    if settings_url() is None:
        upgrade(url)
        return
    if current == head:
        raise DriftloopError("the database's functions are older than this driftloop: run `driftloop db upgrade`")
    raise DriftloopError(
        f"the database is at revision {current or 'none'}, driftloop needs {head}: run `driftloop db upgrade`"
    )
