"""Migrations and the code layer: upgrade from empty, downgrade to every revision and back, the
`db sql` script, upgrading a database migrated by the last release, orphans, one definition per
function.

The schema is compared through the system catalogs (every relation, column, constraint,
index, trigger, function body, view definition and comment of schema `drift`), so two
databases "have the same schema" only when a user could not tell them apart.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from driftloop import migrations

# One row per schema object, described by name (never by oid), so two databases compare.
CATALOG_QUERIES = {
    "relations": """
        SELECT c.relname, c.relkind::text, c.relpersistence::text
        FROM pg_class c WHERE c.relnamespace = 'drift'::regnamespace""",
    "columns": """
        -- the column's position among live columns: a dropped and re-added column gets a new attnum
        SELECT c.relname, row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum), a.attname,
               format_type(a.atttypid, a.atttypmod), a.attnotnull,
               a.attidentity::text, a.attgenerated::text, pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'drift'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped""",
    "constraints": """
        SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint c WHERE c.connamespace = 'drift'::regnamespace""",
    "indexes": """
        SELECT pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relnamespace = 'drift'::regnamespace""",
    "triggers": """
        SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled::text
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = 'drift'::regnamespace AND NOT t.tgisinternal""",
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid)
        FROM pg_proc p WHERE p.pronamespace = 'drift'::regnamespace""",
    "views": """
        SELECT c.relname, pg_get_viewdef(c.oid)
        FROM pg_class c WHERE c.relnamespace = 'drift'::regnamespace AND c.relkind IN ('v', 'm')""",
    "types": """
        SELECT t.typname, t.typtype::text FROM pg_type t WHERE t.typnamespace = 'drift'::regnamespace""",
    "comments": """
        SELECT pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description
        FROM pg_description d
        WHERE (d.classoid = 'pg_class'::regclass
               AND d.objoid IN (SELECT oid FROM pg_class WHERE relnamespace = 'drift'::regnamespace))
           OR (d.classoid = 'pg_proc'::regclass
               AND d.objoid IN (SELECT oid FROM pg_proc WHERE pronamespace = 'drift'::regnamespace))
           OR (d.classoid = 'pg_namespace'::regclass AND d.objoid = 'drift'::regnamespace)""",
    "data": """
        SELECT 'settings', key, value FROM drift.settings
        UNION ALL SELECT 'refusal_patterns', pattern, enabled::text FROM drift.refusal_patterns
        UNION ALL SELECT 'alembic_version', version_num, NULL FROM drift.alembic_version""",
}


def catalog_dump(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every object of schema drift as sorted rows of text, per catalog."""
    with psycopg.connect(url) as conn:
        return {name: sorted(conn.execute(query).fetchall(), key=repr) for name, query in CATALOG_QUERIES.items()}


def drift_objects(url: str) -> list[tuple[str, str]]:
    """What of schema drift exists: the schema itself, relations, functions, types."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            """
            SELECT 'schema', nspname::text FROM pg_namespace WHERE nspname = 'drift'
            UNION ALL SELECT 'relation', c.relname::text FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'drift'
            UNION ALL SELECT 'function', p.proname::text FROM pg_proc p
                JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'drift'
            UNION ALL SELECT 'type', t.typname::text FROM pg_type t
                JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'drift'
            """
        ).fetchall()


def head_revision() -> str:
    return migrations.head_revision()


@pytest.fixture
def other_empty_db_url(server_url: str) -> Iterator[str]:
    """A second empty database with pgvector, to compare two ways of creating the schema."""
    name = f"dl_test_sql_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    url = make_conninfo("", **params)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    yield url
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def no_threshold_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thresholds from the environment would make `upgrade` differ from the plain script."""
    for name in ("EMBEDDING_DRIFT_THRESHOLD", "REFUSAL_RATE_THRESHOLD", "TOXICITY_RATE_THRESHOLD",
                 "ACCURACY_DROP_THRESHOLD"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def test_upgrade_from_empty_then_downgrade_to_base_then_upgrade_again(empty_db_url: str) -> None:
    assert drift_objects(empty_db_url) == []
    assert migrations.current_revision(empty_db_url) is None

    migrations.upgrade(empty_db_url)
    assert migrations.current_revision(empty_db_url) == head_revision()
    assert migrations.current_digest(empty_db_url) == migrations.code_digest()
    first = catalog_dump(empty_db_url)
    tables = {row[0] for row in first["relations"]}
    assert {"interaction_log", "embeddings_log", "drift_events", "model_versions", "settings",
            "baselines", "drift_status"} <= tables  # fmt: skip

    # Data, and what the engine creates at run time (a per-model index for the baseline sample).
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO drift.embeddings_log (model, created_at, embedding)"
            " SELECT 'm', timestamptz '2026-01-01 00:00+00' + i * interval '30 seconds',"
            " ARRAY[random(), random(), random()]::real[]::vector FROM generate_series(1, 200) i"
        )
        conn.execute("SELECT drift.set_baseline('m', '2026-01-01 00:00+00', '2026-01-01 01:00+00')")
        conn.execute("SELECT drift.evaluate('2026-01-01 02:00+00')")
        created = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'drift'::regnamespace AND relkind = 'i'"
        ).fetchone()
    assert created is not None and created[0] > sum(1 for r in first["relations"] if r[1] == "i")

    migrations.downgrade("base", empty_db_url)
    assert drift_objects(empty_db_url) == []
    assert migrations.current_revision(empty_db_url) is None
    with psycopg.connect(empty_db_url) as conn:
        # pgvector stays installed: other schemas may use it.
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'").fetchone() == (1,)

    migrations.upgrade(empty_db_url)
    assert migrations.current_revision(empty_db_url) == head_revision()
    assert catalog_dump(empty_db_url) == first


def test_downgrade_to_each_revision_and_upgrade_again_restores_the_same_schema(empty_db_url: str) -> None:
    """Below head only the DDL of that revision remains (no functions, views or triggers); back at
    head everything, function bodies, comments and triggers included, is as before."""
    migrations.upgrade(empty_db_url)
    at_head = catalog_dump(empty_db_url)
    revisions = migrations.revisions_in_order()
    for below in reversed(["base", *revisions[:-1]]):
        migrations.downgrade(below, empty_db_url)
        assert migrations.current_revision(empty_db_url) == (None if below == "base" else below)
        if below != "base":
            with psycopg.connect(empty_db_url) as conn:
                code = conn.execute(
                    "SELECT (SELECT count(*) FROM pg_proc WHERE pronamespace = 'drift'::regnamespace)"
                    " + (SELECT count(*) FROM pg_class WHERE relnamespace = 'drift'::regnamespace AND relkind = 'v')"
                ).fetchone()
            assert code == (0,), f"code layer left at {below}"
        migrations.upgrade(empty_db_url)
        assert catalog_dump(empty_db_url) == at_head, f"head after a downgrade to {below} differs"
        migrations.downgrade(below, empty_db_url)
    assert drift_objects(empty_db_url) == []


def test_upgrade_twice_is_a_no_op(empty_db_url: str) -> None:
    migrations.upgrade(empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        # A setting changed with SQL and logged data must both survive a second upgrade.
        conn.execute("UPDATE drift.settings SET value = '0.3' WHERE key = 'refusal_rate_threshold'")
        conn.execute("INSERT INTO drift.interaction_log (model, response) VALUES ('m', 'hello')")
    before = catalog_dump(empty_db_url)

    migrations.upgrade(empty_db_url)

    assert catalog_dump(empty_db_url) == before
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("SELECT value FROM drift.settings WHERE key = 'refusal_rate_threshold'").fetchone() == (
            "0.3",
        )
        assert conn.execute("SELECT count(*) FROM drift.interaction_log").fetchone() == (1,)


def test_shipped_schema_script_is_generated_from_the_current_files() -> None:
    assert migrations.schema_script() == migrations.build_schema_script(), "db/schema.sql is stale: run `make schema`"


def test_sql_script_yields_the_same_schema_as_upgrade(empty_db_url: str, other_empty_db_url: str) -> None:
    migrations.upgrade(empty_db_url)

    script = migrations.schema_script()
    with psycopg.connect(other_empty_db_url, autocommit=True) as conn:
        conn.execute(script)  # one multi-statement script, as Supabase's SQL editor runs it

    upgraded, scripted = catalog_dump(empty_db_url), catalog_dump(other_empty_db_url)
    for catalog in CATALOG_QUERIES:
        assert scripted[catalog] == upgraded[catalog], catalog
    # The script records the head revision and code layer: `db upgrade` afterwards changes nothing.
    assert migrations.current_revision(other_empty_db_url) == head_revision()
    assert migrations.current_digest(other_empty_db_url) == migrations.code_digest()
    migrations.upgrade(other_empty_db_url)
    assert catalog_dump(other_empty_db_url) == scripted


RELEASED_0004 = Path(__file__).parent / "data" / "schema_0004.sql"
# Rows of every kind the 0004 release could hold, compared before and after the upgrade.
DATA_QUERIES = {
    "interactions": "SELECT id, model, response, is_refusal, toxicity, correct FROM drift.interaction_log",
    "embeddings": "SELECT id, model, embedding::text FROM drift.embeddings_log",
    "rollups": "SELECT model, bucket, interactions, refusals, quality_ok FROM drift.interaction_rollup",
    "embedding_rollups": "SELECT model, bucket, n, vec_sum::text FROM drift.embedding_rollup",
    "baselines": "SELECT model, kind, starts, ends, n, vec_sum::text FROM drift.baselines",
    "calibration": "SELECT model, units, trace1, sample_n FROM drift.embedding_calibration",
    "events": "SELECT id, model, kind, metric, status, attempts FROM drift.drift_events",
    "runs": "SELECT event_id, action, outcome FROM drift.action_runs",
    "prompts": "SELECT model, version, prompt, active FROM drift.prompt_versions",
    "settings": "SELECT key, value FROM drift.settings",
}


def table_rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(url) as conn:
        return {name: sorted(conn.execute(q).fetchall(), key=repr) for name, q in DATA_QUERIES.items()}


def test_a_database_of_the_0004_release_upgrades_without_losing_data(
    empty_db_url: str, other_empty_db_url: str
) -> None:
    """A database built and filled by the last release (its `db sql` script, kept in tests/data)."""
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(RELEASED_0004.read_text())
        assert conn.execute("SELECT version_num FROM drift.alembic_version").fetchone() == ("0004_detection",)
        conn.execute(
            "INSERT INTO drift.interaction_log (model, created_at, response, toxicity, correct)"
            " SELECT 'm', timestamptz '2026-01-01 00:00+00' + i * interval '20 seconds',"
            "  CASE WHEN i % 10 = 0 THEN 'I cannot help with that' ELSE 'sure' END, (i % 7) / 10.0, i % 3 > 0"
            " FROM generate_series(1, 400) i"
        )
        conn.execute(
            "INSERT INTO drift.embeddings_log (model, created_at, embedding)"
            " SELECT 'm', timestamptz '2026-01-01 00:00+00' + i * interval '20 seconds',"
            " ARRAY[sin(i), cos(i), 1]::real[]::vector FROM generate_series(1, 400) i"
        )
        conn.execute("UPDATE drift.settings SET value = '0.2' WHERE key = 'refusal_rate_threshold'")
        conn.execute("SELECT drift.set_baseline('m', '2026-01-01 00:00+00', '2026-01-01 01:00+00')")
        conn.execute("SELECT drift.evaluate('2026-01-01 03:00+00')")
        conn.execute(
            "INSERT INTO drift.drift_events (model, kind, metric, status)"
            " VALUES ('m', 'behavior', 'toxicity_rate', 'failed')"
        )
        conn.execute("SELECT drift.activate_prompt('m', 'Be kind.')")
        conn.execute(
            "INSERT INTO drift.action_runs (event_id, action, action_type, attempt, worker, outcome)"
            " SELECT max(id), 'reindex', 'reindex', 1, 'w', 'succeeded' FROM drift.drift_events"
        )
    before = table_rows(empty_db_url)
    assert all(before[name] for name in ("interactions", "embeddings", "baselines", "calibration", "events"))

    migrations.upgrade(empty_db_url)

    assert migrations.current_revision(empty_db_url) == head_revision()
    after = table_rows(empty_db_url)
    # Later migrations add settings keys; every key the release had keeps its value.
    assert set(before.pop("settings")) <= set(after.pop("settings"))
    assert after == before
    migrations.upgrade(other_empty_db_url)
    upgraded, fresh = catalog_dump(empty_db_url), catalog_dump(other_empty_db_url)
    for catalog in CATALOG_QUERIES:
        if catalog == "data":
            continue  # the old database's own settings differ, on purpose
        # The engine's per-model HNSW index of the baseline sample exists only where data is.
        rows = [r for r in upgraded[catalog] if catalog == "functions" or "baseline_samples_hnsw_" not in repr(r)]
        # Time partitions of the logs follow the data's days (and today's date).
        rows, expected = ([r for r in x if not re.search(r"_log_p\d{8}", repr(r))] for x in (rows, fresh[catalog]))
        assert rows == expected, catalog
    with psycopg.connect(empty_db_url) as conn:
        # The dead functions of 0004 are gone, and the upgraded engine still works on the old data.
        assert (
            conn.execute(
                "SELECT proname FROM pg_proc WHERE pronamespace = 'drift'::regnamespace"
                " AND proname IN ('mean_shift_test', 'proportion_increase_p', 'chi2_sf')"
            ).fetchall()
            == []
        )
        report = conn.execute(
            "SELECT metric, n_current, n_baseline FROM drift.drift_report('2026-01-01 02:00+00') WHERE model = 'm'"
            " ORDER BY metric"
        ).fetchall()
    assert ("refusal_rate", 180, 179) in report  # the first row is 20 s after the baseline starts


def test_upgrade_drops_what_the_files_no_longer_define(db_url: str) -> None:
    """A function, view or trigger a later release removed (an orphan) does not linger."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION drift.removed_helper() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        conn.execute("CREATE VIEW drift.removed_view AS SELECT 1 AS one")
        conn.execute(
            "CREATE TRIGGER removed_trigger BEFORE UPDATE ON drift.models"
            " FOR EACH ROW EXECUTE FUNCTION drift.interaction_log_stamp_label()"
        )
    migrations.upgrade(db_url)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT to_regprocedure('drift.removed_helper()')").fetchone() == (None,)
        assert conn.execute("SELECT to_regclass('drift.removed_view')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'removed_trigger'").fetchone() == (0,)
        # ... while everything the files define is still there.
        assert conn.execute("SELECT to_regclass('drift.drift_status')").fetchone() == ("drift.drift_status",)


def test_a_database_running_older_functions_must_be_upgraded(db_url: str) -> None:
    from driftloop.errors import DriftloopError

    migrations.ensure_schema(db_url)  # current: nothing to do
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE drift.code_layer SET digest = 'older'")
    # DATABASE_URL is set (a user's database): driftloop says what to run instead of changing it.
    with pytest.raises(DriftloopError, match="run `driftloop db upgrade`"):
        migrations.ensure_schema(db_url)
    migrations.upgrade(db_url)
    migrations.ensure_schema(db_url)


DB_DIR = Path(migrations.__file__).resolve().parents[2] / "db"
FUNCTION = re.compile(r"^CREATE (?:OR REPLACE )?FUNCTION (drift\.\w+)\s*\(", re.MULTILINE)


def test_each_function_is_defined_once_and_only_in_the_code_layer() -> None:
    definitions: dict[str, list[str]] = {}
    for path in sorted(DB_DIR.glob("*/*.sql")):
        for name in FUNCTION.findall(path.read_text()):
            definitions.setdefault(name, []).append(str(path.relative_to(DB_DIR)))
    assert len(definitions) > 50  # the scan really reads the SQL
    twice = {name: where for name, where in definitions.items() if len(where) > 1}
    assert twice == {}
    in_migrations = {name: where for name, where in definitions.items() if not where[0].startswith("repeatable/")}
    assert in_migrations == {}


def test_every_table_view_function_and_column_has_a_comment(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        missing = conn.execute(
            """
            SELECT 'relation ' || c.relname FROM pg_class c
            WHERE c.relnamespace = 'drift'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
              AND c.relname <> 'alembic_version'   -- alembic's own bookkeeping table
              AND NOT c.relispartition
              AND obj_description(c.oid, 'pg_class') IS NULL
            UNION ALL
            SELECT 'column ' || c.relname || '.' || a.attname FROM pg_class c
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.relnamespace = 'drift'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
              AND c.relname <> 'alembic_version'
              AND NOT c.relispartition  -- a log partition is described by its parent
              AND col_description(c.oid, a.attnum) IS NULL
            UNION ALL
            SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p
            WHERE p.pronamespace = 'drift'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL
            UNION ALL
            SELECT 'schema drift' WHERE obj_description('drift'::regnamespace, 'pg_namespace') IS NULL
            ORDER BY 1
            """
        ).fetchall()
        counted = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'drift'::regnamespace AND relkind IN ('r', 'v')"
        ).fetchone()
    assert counted is not None and counted[0] >= 10  # the query really looks at the schema
    assert [m[0] for m in missing] == []
