"""A lean core with extras: what ``pip install veo-notebook`` brings, and what a missing
extra says (one line naming the command that installs it).

A missing extra is made real in a subprocess that blocks the import
(``sys.modules['av'] = None``: ``import av`` then raises ImportError, as when PyAV is not
installed), running the real CLI or the library against a real simulator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
from conftest import SENTINEL_KEY
from packaging.requirements import Requirement

from veo_notebook import extras as _extras
from veo_notebook.errors import ConfigError, MissingExtraError, VeoError

ROOT = Path(__file__).resolve().parents[1]
#: What the core install must never bring (the issue's list), directly or through a dependency.
NOT_IN_CORE = {"av", "s3fs", "aiobotocore", "botocore", "starlette", "uvicorn", "scipy"}

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _name(req: str) -> str:
    return Requirement(req).name.lower().replace("_", "-")


def _extra_names(project: dict, extra: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """Every distribution an extra names, following ``veo-notebook[...]`` self-references."""
    out: set[str] = set()
    for req in project["optional-dependencies"][extra]:
        r = Requirement(req)
        if r.name == project["name"]:
            for inner in r.extras - seen:
                out |= _extra_names(project, inner, seen | {extra})
        else:
            out.add(_name(req))
    return out


# --- what is declared ------------------------------------------------------------------
def test_the_core_declares_none_of_the_optional_packages() -> None:
    core = {_name(r) for r in _project()["dependencies"]}
    assert core.isdisjoint(NOT_IN_CORE), core & NOT_IN_CORE
    assert {"pandas", "pyarrow", "requests", "matplotlib", "ipywidgets"} <= core


def test_each_extra_brings_the_modules_the_code_maps_to_it() -> None:
    project = _project()
    extras = project["optional-dependencies"]
    assert {"archive", "s3", "callbacks", "duckdb", "spark", "all"} <= set(extras)
    dist_of = {"av": "av", "fsspec": "fsspec", "s3fs": "s3fs", "starlette": "starlette"}
    dist_of |= {"uvicorn": "uvicorn", "duckdb": "duckdb", "pyspark": "pyspark"}
    for module, (extra, _) in _extras.MODULE_EXTRA.items():
        assert dist_of[module] in _extra_names(project, extra), (module, extra)
    every = set().union(*(_extra_names(project, x) for x in _extras.EXTRAS))
    assert _extra_names(project, "all") == every
    assert every <= _extra_names(project, "test")  # the tests run with everything


def test_what_the_core_resolves_to_holds_none_of_them() -> None:
    """The core's requirements, followed through the installed packages' own metadata
    (what pip would resolve), never reach PyAV, s3fs, botocore, Starlette or uvicorn."""
    todo = [Requirement(r) for r in _project()["dependencies"]]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = req.name.lower().replace("_", "-")
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        todo += [Requirement(r) for r in metadata.requires(req.name) or []]  # installed: tested
    assert seen.isdisjoint(NOT_IN_CORE), seen & NOT_IN_CORE
    assert "pandas" in seen and "numpy" in seen  # the walk went through the dependencies


# --- the message -----------------------------------------------------------------------
def test_a_missing_extra_is_one_line_naming_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(MissingExtraError) as info:
        _extras.require("av", "archiving videos")
    text = str(info.value)
    assert text == (
        "archiving videos needs PyAV, which is not installed: pip install 'veo-notebook[archive]'"
    )
    assert info.value.extra == "archive" and isinstance(info.value, ConfigError | ImportError)
    assert issubclass(MissingExtraError, VeoError)
    assert not _extras.available("archive") and _extras.available("callbacks")


# --- in a subprocess, the extra absent -------------------------------------------------
def _run(code: str, block: tuple[str, ...], **env: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter where ``block`` cannot be imported."""
    prelude = f"import sys\nfor _m in {block!r}:\n    sys.modules[_m] = None\n"
    full = {k: v for k, v in os.environ.items() if not k.startswith(("KIE_", "VEO_"))}
    full.update(MPLBACKEND="Agg", **env)
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full,
        timeout=180,
        check=False,
    )


def _cli(argv: list[str], block: tuple[str, ...], **env: str) -> subprocess.CompletedProcess[str]:
    code = f"from veo_notebook.cli import main\nraise SystemExit(main({argv!r}))\n"
    return _run(code, block, **env)


@pytest.fixture
def archived_store(fresh_sim, tmp_path: Path):
    """A store holding succeeded tasks of a running simulator (videos to archive)."""
    import veo_notebook as veo

    sim = fresh_sim(n_tasks=40)
    with veo.Client(SENTINEL_KEY, base_url=sim.base_url) as client:
        veo.fetch_records(
            sim.task_ids("success")[:5], client=client, store=tmp_path / "s.sqlite", progress=False
        )
    sim.media.reset_stats()
    return sim, tmp_path / "s.sqlite"


def test_the_archive_command_without_pyav_says_how_to_install_it(archived_store, tmp_path) -> None:
    sim, store = archived_store
    proc = _cli(["archive", "--store", str(store), "--dest", str(tmp_path / "v")], ("av",))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        "veo-notebook: error: archiving videos (each file is read to check it) needs PyAV, "
        "which is not installed: pip install 'veo-notebook[archive]'"
    )
    assert sim.media.stats()["requests"] == 0 and not (tmp_path / "v").exists()


def test_an_s3_destination_without_s3fs_names_the_s3_extra(archived_store) -> None:
    _sim, store = archived_store
    proc = _cli(["archive", "--store", str(store), "--dest", "s3://bucket/v"], ("s3fs",))
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "needs s3fs" in line and line.endswith("pip install 'veo-notebook[s3]'")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_the_callbacks_command_without_starlette_says_how_to_install_it() -> None:
    proc = _cli(["callbacks", "--port", "0", "--no-signature"], ("starlette", "uvicorn"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        "veo-notebook: error: the callback receiver needs Starlette, which is not installed: "
        "pip install 'veo-notebook[callbacks]'"
    )


def test_reading_and_auditing_callbacks_need_no_extra() -> None:
    proc = _run(
        """
        from veo_notebook import Store, callbacks, schema
        with Store(":memory:") as store:
            hooks = callbacks.read_callbacks(store)
        print(len(callbacks.callback_audit(schema.empty_frame(), hooks)))
        """,
        ("starlette", "uvicorn"),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"


def test_the_simulator_without_pyav_serves_the_api_with_media_off() -> None:
    proc = _run(
        """
        import json, logging, requests
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
        from veo_notebook import Client, fetch_records, simulator
        with simulator.Simulator(n_tasks=30) as sim, simulator.Simulator(n_tasks=5):
            with Client(sim.api_key, base_url=sim.base_url) as c:
                df = fetch_records(sim.task_ids("success")[:3], client=c, progress=False)
            url = df["video_url"].dropna().iloc[0]
            status = requests.get(url, timeout=10).status_code
        print(json.dumps({"rows": len(df), "media": status}))
        """,
        ("av",),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"rows": 3, "media": 503}
    said = [ln for ln in proc.stderr.splitlines() if "media off" in ln]
    assert len(said) == 1, proc.stderr  # two simulators, said once
    assert "pip install 'veo-notebook[archive]'" in said[0]


@pytest.mark.slow
def test_a_core_only_demo_runs_its_core_part_and_says_what_it_skipped(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = _cli(
        ["demo", "--out", str(out), "--n-tasks", "150", "--no-progress"],
        ("av", "starlette", "uvicorn"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    skipped = [ln for ln in proc.stdout.splitlines() if ln.startswith("skipped:")]
    assert skipped == [
        "skipped: archiving the videos and the callback receiver; to run them: "
        "pip install 'veo-notebook[archive,callbacks]'"
    ]
    assert "tasks by status" in proc.stdout and "WARNING" not in proc.stderr
    assert (out / "report.html").is_file() and (out / "tasks.parquet").is_file()
    assert not (out / "videos").exists() and not (out / "callbacks.sqlite").exists()


@pytest.mark.parametrize(
    ("url", "block", "extra"),
    [
        pytest.param("s3://bucket/t.parquet", ("s3fs",), "s3", id="s3-without-s3fs"),
        pytest.param("memory://t.parquet", ("fsspec",), "archive", id="url-without-fsspec"),
    ],
)
def test_writing_parquet_to_a_url_without_its_backend_names_the_extra(url, block, extra) -> None:
    proc = _run(
        f"""
        from veo_notebook import MissingExtraError, schema, to_parquet
        try:
            to_parquet(schema.empty_frame(), {url!r})
        except MissingExtraError as exc:
            print(exc)
        """,
        block,
    )
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert line.startswith(f"writing to {url!r} needs ") and line.endswith(
        f"pip install 'veo-notebook[{extra}]'"
    )
