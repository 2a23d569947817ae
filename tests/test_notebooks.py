"""The notebooks run top to bottom under nbval, against a simulator each starts itself.

Each notebook is executed in a real kernel (the venv's Python) by ``pytest --nbval-lax``
in a subprocess (so nbval's options apply to the notebooks only); a cell that raises
fails the test, and the cells marked ``# NBVAL_CHECK_OUTPUT`` must reproduce their
committed output (after ``notebooks/sanitize.cfg``). The committed notebooks also carry
no API key, no absolute path of this machine, and their outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_notebooks_are_there() -> None:
    names = [p.stem for p in NOTEBOOKS]
    assert names == [
        "01_quickstart",
        "02_latency",
        "03_failures",
        "04_live_status_viewer",
        "05_export_and_report",
        "06_cost_and_archive",
        "07_callbacks",
        "08_big_history",
        "09_families",
        "10_checks",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_with_outputs_and_nothing_private(path: Path, sentinel_key: str) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code), "execute the notebook before committing"
    assert sum(bool(c.get("outputs")) for c in code) >= len(code) // 2
    if path.stem[:2] in ("01", "02", "03"):  # the plots show where notebooks are browsed
        assert any("image/png" in o.get("data", {}) for c in code for o in c["outputs"])
    assert any("NBVAL_CHECK_OUTPUT" in "".join(c["source"]) for c in code)
    text = path.read_text(encoding="utf-8")
    for secret in (sentinel_key, "/work/", "sim-local-key\\n"):
        assert secret not in text
    for c in code:
        for o in c.get("outputs", []):
            assert o.get("output_type") != "error", f"a committed cell raised: {o.get('ename')}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_under_nbval(path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KIE_BASE_URL", "KIE_API_KEY")}
    env["MPLBACKEND"] = "Agg"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "--nbval-lax",
        "--nbval-current-env",
        "--nbval-sanitize-with",
        str(ROOT / "notebooks" / "sanitize.cfg"),
        str(path),
    ]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280, check=False
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
