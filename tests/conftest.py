"""Session fixtures shared by every test module: a running simulator, the sentinel key.

``SENTINEL_KEY`` is the API key used everywhere in the suite: a test can assert that it
never shows up in logs, output, exception texts, reprs or files.
"""

from __future__ import annotations

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


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with ``KIE_API_KEY`` and ``KIE_BASE_URL`` unset (a developer's real
    key never leaks into a test); a test sets them with ``monkeypatch.setenv``."""
    monkeypatch.delenv("KIE_API_KEY", raising=False)
    monkeypatch.delenv("KIE_BASE_URL", raising=False)
