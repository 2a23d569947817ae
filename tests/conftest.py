"""Session fixtures shared by every test module: a running simulator, the sentinel key.

``SENTINEL_KEY`` is the API key used everywhere in the suite: a test can assert that it
never shows up in logs, output, exception texts, reprs or files.
"""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from veo_notebook.simulator import Simulator

SENTINEL_KEY = "sk-SENTINEL-do-not-leak-7f3a9c"


@pytest.fixture(scope="session")
def sentinel_key() -> str:
    """The API key every test uses (and that must never leak)."""
    return SENTINEL_KEY


@pytest.fixture(scope="session")
def sim() -> Iterator[Simulator]:
    """A simulator for the whole session: SENTINEL_KEY, seed 0, 2,000 tasks, no latency, no faults.

    Shared: tests that change its faults or read its counters should use ``fresh_sim``
    (or call ``sim.reset_stats()`` and read only their own task ids).
    """
    with Simulator(SENTINEL_KEY, seed=0, n_tasks=2000, latency=0.0) as s:
        yield s


@pytest.fixture
def fresh_sim() -> Iterator[Callable[..., Simulator]]:
    """Factory: ``fresh_sim(rate_limit=5, faults={...})`` starts a simulator stopped after the test.

    The key defaults to SENTINEL_KEY and n_tasks to 500.
    """
    started: list[Simulator] = []

    def make(**kwargs: Any) -> Simulator:
        kwargs.setdefault("api_key", SENTINEL_KEY)
        kwargs.setdefault("n_tasks", 500)
        s = Simulator(**kwargs).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A local Spark session (``local[1]``, bound to loopback, no UI, session zone UTC),
    started by the first test that asks for it and stopped when the session ends."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("veo-notebook-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture(scope="session")
def s3() -> Iterator[dict[str, Any]]:
    """A real S3 API: moto's server on loopback (port 0), for the whole session.

    Yields ``{"endpoint": url, "creds": {"aws_access_key_id": ..., ...}}``.
    """
    pytest.importorskip("moto")
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    try:
        yield {"endpoint": endpoint, "creds": creds}
    finally:
        server.stop()


@pytest.fixture
def duckdb_answers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every way DuckDB has of returning a whole relation as pandas (and reading a
    Parquet source whole) raises; the list collects the row count of every answer the
    DuckDB engine fetched, for the test to bound."""
    import duckdb

    from veo_notebook import export
    from veo_notebook.engine import _duckdb

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a whole relation was pulled into pandas")

    rel_type = type(duckdb.connect().sql("SELECT 1"))
    for name in ("df", "fetchdf", "to_df", "fetch_df", "pl", "fetchnumpy"):
        if hasattr(rel_type, name):
            monkeypatch.setattr(rel_type, name, refuse)
    monkeypatch.setattr(export, "read_parquet", refuse)
    sizes: list[int] = []
    fetch = _duckdb.DuckDBEngine._fetch

    def counting(self: Any, sql: str) -> Any:
        table = fetch(self, sql)
        sizes.append(table.num_rows)
        return table

    monkeypatch.setattr(_duckdb.DuckDBEngine, "_fetch", counting)
    return sizes


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with ``KIE_API_KEY`` and ``KIE_BASE_URL`` unset (a developer's real
    key never leaks into a test); a test sets them with ``monkeypatch.setenv``."""
    monkeypatch.delenv("KIE_API_KEY", raising=False)
    monkeypatch.delenv("KIE_BASE_URL", raising=False)


# --- the sentinel never reaches a log record (whole session; tests/test_secrets.py) ----------
def exception_chain_text(exc: BaseException) -> str:
    """The messages of ``exc`` and of every exception chained to it (not the source lines
    of the frames, which are code, not data)."""
    parts: list[str] = []
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        parts += traceback.format_exception_only(type(link), link)
        link = link.__cause__ or link.__context__
    return "".join(parts)


class KeyWatch(logging.Handler):
    """Remembers every log record (message, arguments, traceback) showing a piece of the key."""

    def __init__(self, key: str = SENTINEL_KEY) -> None:
        super().__init__(logging.DEBUG)
        self.pieces = {key[i : i + 8] for i in range(len(key) - 7)} | {key[-6:]}
        self.hits: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a bad format string must not hide the arguments
            text = f"{record.msg!r} % {record.args!r}"
        if record.exc_info and record.exc_info[1] is not None:
            text += exception_chain_text(record.exc_info[1])
        if record.stack_info:
            text += record.stack_info
        if any(p in text for p in self.pieces):
            self.hits.append(f"{record.name}:{record.lineno}: {text[:300]}")


@pytest.fixture(scope="session", autouse=True)
def key_never_logged() -> Iterator[KeyWatch]:
    """Every record of every ``veo_notebook`` logger, at DEBUG, for the whole session:
    none may show the key (checked when the session ends)."""
    watch = KeyWatch()
    root, pkg = logging.getLogger(), logging.getLogger("veo_notebook")
    level = pkg.level
    root.addHandler(watch)
    pkg.setLevel(logging.DEBUG)
    yield watch
    pkg.setLevel(level)
    root.removeHandler(watch)
    assert not watch.hits, "the API key reached the logs:\n" + "\n".join(watch.hits[:5])
