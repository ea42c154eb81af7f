"""Every code block of README.md runs as written, against the test's database.

```python blocks run in order in one namespace (as a reader pastes them into one session);
```sh blocks run with bash -e, line by line, with the venv's `driftloop` on the PATH;
```sql blocks run with psycopg; ```toml blocks must load as a worker configuration.
A line containing NOT_RUN is skipped: the visible convention for `make test` itself and daemons;
a block whose first line contains it is skipped whole (server sessions, placeholder hosts).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
NOT_RUN = "[not run by the README test]"
BLOCK = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.M | re.S)
# The few lines that must not run: keep this small (each is marked in the README itself).
MAX_NOT_RUN = 8


def blocks() -> list[tuple[str, str]]:
    return [(lang, body) for lang, body in BLOCK.findall(README.read_text())]


def test_the_readme_has_blocks_of_each_kind_and_few_skipped_lines() -> None:
    kinds = {lang for lang, _ in blocks()}
    assert {"python", "sh", "sql", "toml"} <= kinds
    skipped = [line for _, body in blocks() for line in body.splitlines() if NOT_RUN in line]
    assert 0 < len(skipped) <= MAX_NOT_RUN, skipped


def test_every_readme_block_runs(db_url: str, conn: psycopg.Connection[Any], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)  # files the blocks write (schema.sql, report/) land here
    monkeypatch.setenv("DRIFTLOOP_WEBHOOK_SECRET", "a-secret")  # the toml block's secret_env, as a reader sets it
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for number, (lang, body) in enumerate(blocks()):
        where = f"README block {number} ({lang})"
        if NOT_RUN in body.splitlines()[0]:
            continue
        if lang == "python":
            exec(compile(body, where, "exec"), namespace)  # noqa: S102 - the README's own code
        elif lang == "sh":
            for line in body.splitlines():
                if not line.strip() or NOT_RUN in line:
                    continue
                done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", line], cwd=tmp_path, env=env,
                                      capture_output=True, text=True, timeout=300)  # fmt: skip
                assert done.returncode == 0, f"{where}: {line!r} exited {done.returncode}: {done.stderr}"
                assert "Traceback" not in done.stderr, f"{where}: {line!r}: {done.stderr}"
        elif lang == "sql":
            conn.execute(body)
        elif lang == "toml":
            from driftloop.worker.config import load_config

            path = tmp_path / f"block{number}.toml"
            path.write_text(body)
            load_config(str(path))
    # The library example logged its rows, and status() reported the model.
    assert namespace["ids"] and conn.execute("SELECT count(*) FROM drift.embeddings_log").fetchone() == (51,)
    assert (tmp_path / "schema.sql").stat().st_size > 10_000
    assert (tmp_path / "report" / "report.html").is_file()
