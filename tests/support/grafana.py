"""Reading the Grafana dashboards and Prometheus rules as Grafana and Prometheus would.

- `queries()` lists every query of the dashboards: panel targets (rows included),
  annotations and template variables, with the data source type each one goes to.
- `expand_sql()` expands Grafana's SQL macros the way Grafana's PostgreSQL data source does
  (template variables first, as the frontend interpolates them, then the backend macros):
  `$__timeFilter(col)` -> `col BETWEEN '<from>' AND '<to>'`, `$__timeGroup(col, 5m)` ->
  `floor(extract(epoch from col)/300)*300`, `$__timeGroupAlias` adds ` AS "time"`,
  `$__timeFrom()` / `$__timeTo()`, `$__interval`, `$__interval_ms`.
- `expand_promql()` replaces `$__rate_interval`, `$__interval`, `$__range` and variables.
- `referenced_names()` finds the driftloop metrics and the `drift.` relations/functions a
  query names, so a test can check each exists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "grafana" / "dashboards"
PROVISIONING = ROOT / "grafana" / "provisioning"
RULES = ROOT / "prometheus" / "rules.yml"

POSTGRES = "grafana-postgresql-datasource"
PROMETHEUS = "prometheus"


@dataclass(frozen=True)
class Query:
    dashboard: str
    where: str  # panel title, "annotation NAME" or "variable NAME"
    datasource: str  # POSTGRES or PROMETHEUS
    text: str
    format: str = "time_series"


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # collapsed rows hold their panels


def _source(ref: Any, variables: dict[str, str]) -> str:
    """The plugin type a datasource reference resolves to (a `${var}` datasource variable too)."""
    if isinstance(ref, dict) and ref.get("type"):
        return str(ref["type"])
    if isinstance(ref, str) and ref.strip("${}") in variables:
        return variables[ref.strip("${}")]
    raise AssertionError(f"datasource reference {ref!r} has no type")


def queries() -> list[Query]:
    out = []
    for name, board in dashboards().items():
        variables = {v["name"]: v["query"] for v in board["templating"]["list"] if v["type"] == "datasource"}
        for panel in _panels(board["panels"]):
            for target in panel.get("targets", []):
                source = _source(target.get("datasource") or panel.get("datasource"), variables)
                text = target.get("rawSql") if source == POSTGRES else target.get("expr")
                out.append(Query(name, panel["title"], source, text, target.get("format", "time_series")))
        for anno in board["annotations"]["list"]:
            if anno.get("builtIn"):
                continue
            source = _source(anno["datasource"], variables)
            text = anno["target"]["rawSql"] if source == POSTGRES else anno["expr"]
            out.append(Query(name, f"annotation {anno['name']}", source, text, "table"))
        for var in board["templating"]["list"]:
            if var["type"] == "query":
                out.append(
                    Query(name, f"variable {var['name']}", _source(var["datasource"], variables), var["query"], "table")
                )
    return out


def rule_expressions() -> dict[str, str]:
    """alert (or record) name -> PromQL expression, from prometheus/rules.yml."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule.get("alert") or rule["record"]: rule["expr"] for group in groups for rule in group["rules"]}


# ------------------------------------------------------------------ macro expansion

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def interval_seconds(text: str) -> float:
    """Grafana's interval syntax: 30s, 5m, 1h, 1d (quotes allowed)."""
    match = re.fullmatch(r"'?(\d+(?:\.\d+)?)(ms|s|m|h|d|w)'?", text.strip())
    if not match:
        raise ValueError(f"not an interval: {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def _variables(text: str, values: dict[str, str]) -> str:
    # Longest names first, so $__interval_ms is not read as $__interval + "_ms".
    for name in sorted(values, key=len, reverse=True):
        value = values[name]
        text = text.replace(f"${{{name}}}", value).replace(f"[[{name}]]", value)
        text = re.sub(rf"\${re.escape(name)}(?![A-Za-z0-9_])", lambda _m, v=value: v, text)
    return text


def _macro_calls(text: str, name: str) -> Iterator[tuple[int, int, list[str]]]:
    """(start, end, args) of each `$__name(...)` call, parentheses balanced."""
    for match in re.finditer(rf"\$__{name}\(", text):
        depth, i = 1, match.end()
        while depth:
            if i >= len(text):
                raise ValueError(f"unbalanced $__{name}( in {text!r}")
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        inner = text[match.end() : i - 1]
        args, depth, current = [], 0, ""
        for ch in inner:
            if ch == "," and depth == 0:
                args.append(current.strip())
                current = ""
                continue
            depth += {"(": 1, ")": -1}.get(ch, 0)
            current += ch
        if current.strip():
            args.append(current.strip())
        yield match.start(), i, args


def _replace_macro(text: str, name: str, render: Any) -> str:
    while True:
        calls = list(_macro_calls(text, name))
        if not calls:
            return text
        start, end, args = calls[0]
        text = text[:start] + render(args) + text[end:]


def expand_sql(text: str, start: datetime, end: datetime, interval: str, variables: dict[str, str]) -> str:
    """A PostgreSQL panel query as Grafana sends it to the database."""
    iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731 - Grafana's format, UTC
    seconds = interval_seconds(interval)
    text = _variables(text, {**variables, "__interval": interval, "__interval_ms": str(int(seconds * 1000))})

    def group(args: list[str]) -> str:
        if len(args) < 2:
            raise ValueError(f"$__timeGroup needs a column and an interval: {args}")
        s = interval_seconds(args[1])
        return f"floor(extract(epoch from {args[0]})/{s:g})*{s:g}"

    text = _replace_macro(text, "timeGroupAlias", lambda a: group(a) + ' AS "time"')
    text = _replace_macro(text, "timeGroup", group)
    text = _replace_macro(text, "timeFilter", lambda a: f"{a[0]} BETWEEN '{iso(start)}' AND '{iso(end)}'")
    text = _replace_macro(text, "timeFrom", lambda _a: f"'{iso(start)}'")
    text = _replace_macro(text, "timeTo", lambda _a: f"'{iso(end)}'")
    if "$__" in text:
        raise ValueError(f"a macro the expander does not know: {text}")
    return text


def expand_promql(text: str, rate_interval: str, interval: str, range_: str, variables: dict[str, str]) -> str:
    text = _variables(text, {**variables, "__rate_interval": rate_interval, "__interval": interval, "__range": range_})
    if "$" in text:
        raise ValueError(f"a variable the expander does not know: {text}")
    return text


# ------------------------------------------------------------------ names a query uses

# Series Prometheus itself adds to every target.
PROMETHEUS_BUILTINS = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS"}
_PROM_FUNCTIONS = {
    "sum", "max", "min", "avg", "count", "by", "without", "rate", "increase", "irate", "histogram_quantile",
    "time", "absent", "bool", "and", "or", "unless", "on", "ignoring", "topk", "bottomk", "delta",
    "clamp_min", "clamp_max", "le", "offset", "vector", "scalar", "deriv", "changes", "resets",
    "max_over_time", "min_over_time", "avg_over_time", "last_over_time", "label_replace",
}  # fmt: skip


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (identifiers outside {...} and quotes)."""
    bare = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    bare = re.sub(r'"[^"]*"', "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # range selectors
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)  # label lists
    names = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", bare))
    return {n for n in names if n not in _PROM_FUNCTIONS and not re.fullmatch(r"\d.*", n)}


def sql_objects(text: str) -> set[str]:
    """`drift.NAME` relations and functions a SQL query names."""
    return set(re.findall(r"\bdrift\.([a-z_][a-z0-9_]*)", text))
