"""Every shell and Python block in the README and the docs pages runs as written.

Per page, the blocks run in order in one temporary folder (``data/`` and the venv linked
in, a ``task_ids.txt`` of simulator ids), with ``KIE_BASE_URL`` / ``KIE_API_KEY``
pointing at the test simulator and ``veo-notebook`` on PATH — so a block written for a
real account runs unchanged here. A block fails on a non-zero exit, and on a placeholder
(``NaN``, ``<NA>``, ``None``, ``NaT``) in what it prints: a reader must never see one.

Not run: the README's first block (the two commands: install, and this very suite),
``docs/design.md`` (module contracts, not a recipe), and blocks in any other language
(```text, ```toml, ```sql ...).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from veo_notebook.simulator import Simulator

ROOT = Path(__file__).resolve().parents[1]
NOT_RUN = {"design.md"}
BLOCK = re.compile(r"^```(python|bash)\n(.*?)^```", flags=re.S | re.M)
PLACEHOLDER = re.compile(r"(?<![\w.\-])(NaN|nan|<NA>|None|NaT)(?![\w\-(])")
BLOCK_TIMEOUT_S = 300


def _pages() -> list[Path]:
    docs = sorted(p for p in (ROOT / "docs").glob("*.md") if p.name not in NOT_RUN)
    return [ROOT / "README.md", *docs]


def _blocks(page: Path) -> list[tuple[str, str]]:
    blocks = BLOCK.findall(page.read_text(encoding="utf-8"))
    return blocks[1:] if page.name == "README.md" else blocks


def placeholders(text: str) -> list[str]:
    """The lines of ``text`` that show a placeholder instead of a value."""
    return [line for line in text.splitlines() if PLACEHOLDER.search(line)]


def test_the_placeholder_rule() -> None:
    assert placeholders("model  <NA>  3\nx NaN\nNone\nrate nan") == [
        "model  <NA>  3",
        "x NaN",
        "None",
        "rate nan",
    ]
    assert not placeholders("Nanami NoneSuch finance n/a unread nan-free None(x)")


def _env(sim: Simulator, key: str, folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIE_", "VEO_"))}
    bin_dir = str(Path(sys.executable).parent)
    env.update(
        KIE_BASE_URL=sim.base_url,
        KIE_API_KEY=key,
        MPLBACKEND="Agg",
        VEO_STORE=str(folder / "default-store.sqlite"),
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep),
    )
    return env


def _run(lang: str, code: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    if lang == "python":
        cmd = [sys.executable, "-c", code]
    else:  # a job started with & is stopped when its block ends
        cmd = [
            "bash",
            "-euo",
            "pipefail",
            "-c",
            "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + code,
        ]
    return subprocess.run(
        cmd,
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_every_block_runs_and_prints_no_placeholder(
    page: Path, sim: Simulator, sentinel_key: str, tmp_path: Path
) -> None:
    blocks = _blocks(page)
    if not blocks:
        pytest.skip(f"{page.name} has no shell or Python block")
    (tmp_path / "data").symlink_to(ROOT / "data", target_is_directory=True)
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    (tmp_path / "task_ids.txt").write_text("\n".join(sim.task_ids()[:300]) + "\n")
    env = _env(sim, sentinel_key, tmp_path)
    for i, (lang, code) in enumerate(blocks, 1):
        proc = _run(lang, code, tmp_path, env)
        out = proc.stdout + proc.stderr
        where = f"{page.name}, block {i} ({lang}):\n{code}"
        assert proc.returncode == 0, f"{where}\nexit {proc.returncode}\n{out[-3000:]}"
        assert sentinel_key not in out, f"{where}\nprinted the API key"
        assert not placeholders(proc.stdout), f"{where}\nprinted {placeholders(proc.stdout)[:5]}"
