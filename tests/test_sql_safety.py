"""No SQL built by string formatting, no SECURITY DEFINER function without a pinned search_path.

Two checks that fail as soon as someone adds the pattern:
- the Python package is parsed (ast) and every f-string, `%` or `+` concatenation and
  `.format()` call that builds SQL text is reported: identifiers go through
  psycopg.sql.Identifier, values through parameters;
- the catalog of a migrated database is read: a SECURITY DEFINER function in schema drift
  runs with its owner's rights, so without `SET search_path` a caller could put a function
  or operator of their own first on the path and run it with those rights.
Each check is also run against a planted bad example, so it is shown to catch what it must.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import psycopg

import driftloop

PACKAGE = Path(driftloop.__file__).resolve().parent
SQL_TEXT = re.compile(
    r"(?is)\b(select\b.{0,400}?\bfrom\b|insert\s+into|update\s+\S+\s+set\b|delete\s+from|"
    r"create\s+(table|index|database|function|role|schema|trigger|view)\b|"
    r"drop\s+(table|index|database|function|role|schema|view)\b|alter\s+(table|role)\b|truncate\s+\S+|"
    r"grant\s+\S+.{0,200}?\bto\b|copy\s+\S+\s+(from|to)\b|listen\s+\w+;|notify\s+\w+)"
)
QUERY_CALLS = {"execute", "executemany", "copy", "stream", "SQL", "Composed"}


def _literal_text(node: ast.AST) -> str:
    """The constant text a formatting expression is built from."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_literal_text(v) for v in node.values)
    if isinstance(node, ast.BinOp):
        return _literal_text(node.left) + " " + _literal_text(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _literal_text(node.func.value)
    return ""


def _formatted(node: ast.AST) -> bool:
    """Whether `node` builds a string from other values (f-string, %, +, str.format)."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return isinstance(node.left, ast.Constant | ast.JoinedStr | ast.BinOp) and bool(_literal_text(node))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return isinstance(node.func.value, ast.Constant | ast.JoinedStr)
    return False


def formatted_sql(source: str, filename: str) -> list[str]:
    """Places in `source` where SQL text is built by string formatting."""
    found = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in QUERY_CALLS and node.args and _formatted(node.args[0]):
                found.append(f"{filename}:{node.lineno}: {name}() of a formatted string")
                continue
        if _formatted(node) and SQL_TEXT.search(_literal_text(node)):
            found.append(f"{filename}:{getattr(node, 'lineno', 0)}: SQL text built by formatting")
    return sorted(set(found))


def test_the_package_builds_no_sql_by_string_formatting() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += formatted_sql(path.read_text(), str(path.relative_to(PACKAGE)))
    assert found == []


def test_the_formatting_check_catches_each_pattern() -> None:
    planted = """
def bad(conn, model, table, n):
    conn.execute(f"SELECT * FROM drift.interaction_log WHERE model = '{model}'")
    conn.execute("DELETE FROM drift.baselines WHERE model = '%s'" % model)
    conn.execute("SELECT count(*) FROM " + table)
    conn.execute("UPDATE drift.settings SET value = '{}' WHERE key = 'min_samples'".format(n))
    text = f"DROP TABLE {table}"
    return text
def good(conn, model, table):
    from psycopg import sql
    conn.execute("SELECT * FROM drift.interaction_log WHERE model = %s", (model,))
    conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
    message = f"model {model} has no rows"
    return message
"""
    found = formatted_sql(planted, "planted.py")
    assert sorted({int(f.split(":")[1]) for f in found}) == [3, 4, 5, 6, 7], found


# -- the catalog ---------------------------------------------------------------------------

UNPINNED_DEFINERS = """
SELECT p.oid::regprocedure::text
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'drift' AND p.prosecdef
  AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) c WHERE c LIKE 'search\\_path=%%')
ORDER BY 1
"""


def test_no_security_definer_function_without_a_pinned_search_path(conn: psycopg.Connection[Any]) -> None:
    assert conn.execute(UNPINNED_DEFINERS).fetchall() == []

    # The check sees one when there is one (in a transaction rolled back afterwards).
    with conn.transaction(force_rollback=True):
        conn.execute("CREATE FUNCTION drift.planted_definer() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'")
        conn.execute(
            "CREATE FUNCTION drift.planted_pinned() RETURNS int LANGUAGE sql SECURITY DEFINER "
            "SET search_path = pg_catalog AS 'SELECT 1'"
        )
        assert conn.execute(UNPINNED_DEFINERS).fetchall() == [("drift.planted_definer()",)]
