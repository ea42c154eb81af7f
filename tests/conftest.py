"""Every test runs against a real PostgreSQL with pgvector.

DATABASE_URL when set (a server where we may create databases), else the embedded server
under a throwaway DRIFTLOOP_HOME. The schema is migrated once into a template database;
each test gets its own copy (`CREATE DATABASE ... TEMPLATE`), as procrastinate does.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from driftloop.database import with_dbname

TEMPLATE = f"driftloop_template_{os.getpid()}"


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A maintenance URL of the server the tests use."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    home = Path(tempfile.mkdtemp(prefix="dl-"))
    os.environ["DRIFTLOOP_HOME"] = str(home)
    from driftloop import database

    database.embedded_server.cache_clear()
    url = database.database_url()
    os.environ["DATABASE_URL"] = url  # subprocesses (worker, CLI) use the same server
    yield url
    os.environ.pop("DATABASE_URL", None)
    database.stop_embedded()


@pytest.fixture(scope="session")
def template_url(server_url: str) -> Iterator[str]:
    from driftloop import migrations

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
        conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    url = with_dbname(server_url, TEMPLATE)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    migrations.upgrade(url)
    yield url
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')


def _fresh_database(server_url: str, template: str | None) -> str:
    name = f"dl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        if template:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        else:
            conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(server_url: str, template_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated database of its own for one test; DATABASE_URL points at it."""
    name = _fresh_database(server_url, TEMPLATE)
    url = with_dbname(server_url, name)
    monkeypatch.setenv("DATABASE_URL", url)
    yield url
    _drop_database(server_url, name)


@pytest.fixture
def empty_db_url(server_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh database with nothing in it (migration tests)."""
    name = _fresh_database(server_url, None)
    url = with_dbname(server_url, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    monkeypatch.setenv("DATABASE_URL", url)
    yield url
    _drop_database(server_url, name)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test's database, pgvector registered."""
    from driftloop.database import connect

    with connect(db_url, autocommit=True) as c:
        yield c


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """In CI (CI=true) a skipped test is a hole: report it as a failure."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which is not allowed: {report.longrepr}"
