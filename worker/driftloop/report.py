"""The console report of `driftloop check` (and the demo): the seed's pipeline summary."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

RULE = "=" * 64


def _num(value: Any, digits: int = 4) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def window_text(row: Mapping[str, Any]) -> str:
    """The data time of a report row: its current window, in UTC."""
    start, end = row.get("window_start"), row.get("window_end")
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return ""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    same_day = start.date() == end.date()
    return f" (current window {start:%Y-%m-%d %H:%M} → {end:{'%H:%M' if same_day else '%Y-%m-%d %H:%M'}} UTC)"


def _p(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.2g}"


def check_line(row: Mapping[str, Any]) -> str:
    """One check: metric, score vs threshold, p-value, samples, verdict."""
    verdict = "DRIFT" if row["drifted"] else "ok"
    return (
        f"  [{row['kind']:<9}] {row['metric']:<19} score {_num(row['score'])} vs threshold "
        f"{_num(row['threshold'])}  p={_p(row['p_value'])}  n={row['n_current']} (baseline "
        f"{row['n_baseline']})  {verdict}"
    )


def drift_reason(row: Mapping[str, Any]) -> str:
    """Why a metric drifted, in the words of the test that decided it."""
    metric = row["metric"]
    details = row.get("details") or {}
    effect = details.get("effect_size")
    effect_text = f", effect size {_num(effect, 2)}" if effect is not None else ""
    if metric == "accuracy":
        what = (
            f"accuracy {_num(row.get('value'), 3)} is {_num(row['score'], 3)} below baseline "
            f"{_num(row.get('baseline_value'), 3)} (limit {_num(row['threshold'], 3)})"
        )
    elif metric == "centroid_distance":
        # The calibrated mean-shift test decides (threshold is its decision line); the seed's
        # fixed distance is reported beside it.
        seed = details.get("seed_threshold")
        reached = "above" if details.get("seed_rule_drifted") else "below"
        what = (
            f"mean embedding shifted: centroid cosine distance {_num(row['score'], 3)} > {_num(row['threshold'], 3)} "
            f"({reached} the seed's fixed {_num(seed, 3)}){effect_text}"
        )
    elif metric == "mean_shift_evidence":
        # A CUSUM: its score is evidence accumulated since the run began, not a window value.
        what = (
            f"traffic keeps moving the mean: evidence {_num(row['score'], 3)} > {_num(row['threshold'], 3)} nats "
            f"over {row.get('n_current')} embeddings since {details.get('since')}"
        )
    elif metric == "whitened_mean_shift":
        # Judged on whitened_window (longer than the current window): say how much data.
        what = (
            f"traffic has moved the mean along quiet directions: whitened shift {_num(row['score'], 3)} > "
            f"{_num(row['threshold'], 3)} over {details.get('test_window_n')} embeddings since "
            f"{details.get('test_window_start')}"
        )
    elif metric == "novelty_rate":
        what = (
            f"novelty rate {_num(row['score'], 3)} > {_num(row['threshold'], 3)} "
            f"(expected {_num(details.get('expected_rate'), 3)}): "
            f"traffic far from every baseline example{effect_text}"
        )
    else:
        base = row.get("baseline_value")
        baseline = f", baseline {_num(base, 3)}" if base is not None else ""
        what = f"{metric.replace('_', ' ')} {_num(row['score'], 3)} > {_num(row['threshold'], 3)}{baseline}"
    return f"DRIFT DETECTED: {row['model']} {row['kind']}/{metric}: {what} (p={_p(row['p_value'])})"


def format_report(
    status: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]], title: str = "DRIFT CHECK"
) -> str:
    rows = list(status)
    raised = list(events)
    lines = [RULE, title, RULE, f"Checked at {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC (wall clock)"]
    if not rows:
        lines.append("No models logged yet.")
    current = None
    for row in rows:
        if row["model"] != current:
            current = row["model"]
            lines.append(f"Model: {current}{window_text(row)}")
        lines.append(check_line(row))
    drifted = [r for r in rows if r["drifted"]]
    lines.append("")
    lines.extend(drift_reason(r) for r in drifted)
    names = ", ".join(f"{r['model']}/{r['metric']}" for r in drifted)
    lines.append(f"Drifts detected: {len(drifted)}" + (f" ({names})" if names else ""))
    event_names = ", ".join(f"#{e['id']} {e['model']}/{e['metric']}" for e in raised)
    lines.append(f"Events raised: {len(raised)}" + (f" ({event_names})" if event_names else ""))
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_json(status: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]]) -> str:
    drifted = [dict(r) for r in status]
    return json.dumps(
        {
            "status": drifted,
            "drifts_detected": sum(1 for r in drifted if r["drifted"]),
            "events": [dict(e) for e in events],
        },
        default=_jsonable,
        indent=2,
    )
