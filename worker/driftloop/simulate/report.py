"""The report folder of a run (or of `driftloop report`): one PNG timeline per model,
report.md, and report.html with the images embedded."""

from __future__ import annotations

import re
from pathlib import Path

from driftloop.simulate import html, markdown, plots
from driftloop.simulate.outcomes import RunRecord

_IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)/\\]+\.png)\)")


def _remove_previous(folder: Path) -> None:
    """Delete the timelines an earlier report.md in this folder linked to (and nothing else),
    so a re-run does not leave another run's images beside the new report."""
    old = folder / "report.md"
    if old.is_file():
        for name in _IMAGE_LINK.findall(old.read_text(errors="replace")):
            (folder / name).unlink(missing_ok=True)


def write_report(run: RunRecord, folder: Path, progress: plots.Progress | None = None) -> Path:
    """Writes the folder's files; returns the path of report.md."""
    folder.mkdir(parents=True, exist_ok=True)
    _remove_previous(folder)
    images: dict[str, Path] = {}
    for i, model in enumerate(run.models):
        images[model] = plots.plot_model(run, model, folder / f"{model}.png")
        if progress:
            progress("report", i + 1, len(run.models))
    path = markdown.write(run, images, folder / "report.md")
    title = f"driftloop {run.command} report" + (f" — run {run.run_id}" if run.run_id else "")
    html.write(path, title)
    return path
