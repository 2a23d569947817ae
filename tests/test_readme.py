"""The README's Python examples run as written, and its CLI section names every sub-command.

The examples run in a subprocess in a temporary folder (with ``data/`` beside them),
with ``KIE_BASE_URL`` / ``KIE_API_KEY`` pointing at the test simulator: the "real key"
example reads exactly those variables, so it runs unchanged against kie.ai.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from veo_notebook import cli
from veo_notebook.simulator import Simulator

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```python\n(.*?)^```", README, flags=re.S | re.M)


def _section(block: str) -> str:
    head = README[: README.index(block)]
    titles = re.findall(r"^## (.+)$", head, flags=re.M)
    return titles[-1] if titles else "top"


def test_the_readme_has_python_examples() -> None:
    sections = {_section(b) for b in BLOCKS}
    assert {"With a real key", "Try it without a server"} <= sections


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{i}-{_section(b)}" for i, b in enumerate(BLOCKS)])
def test_python_example_runs(block: str, sim: Simulator, sentinel_key: str, tmp_path: Path) -> None:
    (tmp_path / "data").symlink_to(ROOT / "data", target_is_directory=True)
    (tmp_path / "task_ids.txt").write_text("\n".join(sim.task_ids()[:300]) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIE_")}
    env.update(KIE_BASE_URL=sim.base_url, KIE_API_KEY=sentinel_key, MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, "-c", block],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sentinel_key not in proc.stdout + proc.stderr
    if "report.html" in block:  # the real-key example wrote what it says
        assert (tmp_path / "report.html").is_file() and (tmp_path / "tasks.parquet").is_file()
        assert (tmp_path / "veo_store.sqlite").is_file()
        assert "success" in proc.stdout


def _subcommands() -> list[str]:
    parser = cli.build_parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(subs[0].choices)


def test_cli_section_names_every_subcommand() -> None:
    cli_section = README[README.index("## CLI") :]
    names = _subcommands()
    assert "demo" in names and "fetch" in names
    missing = [n for n in names if f"`veo-notebook {n}" not in cli_section]
    assert not missing, f"README's CLI section lacks: {missing}"


def test_readme_starts_with_the_two_commands() -> None:
    first = README.index("```bash")
    block = README[first : README.index("```", first + 7)]
    assert "veo-notebook demo" in block and "scripts/test.sh" in block
    assert first < README.index("## ")
