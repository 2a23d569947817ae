"""The documentation site builds warning-free, and every public name has a page.

``sphinx-build -W`` turns every warning (a broken cross-reference, a docstring that is
not valid reStructuredText, a page outside every toctree) into a failure.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import veo_notebook

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(out / ".doctrees"),
            str(ROOT / "docs"),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return out


def test_every_public_name_has_a_reference_page(site: Path) -> None:
    names = [n for n in veo_notebook.__all__ if not n.startswith("_")]
    missing = [
        n for n in names if not (site / "api" / "generated" / f"veo_notebook.{n}.html").is_file()
    ]
    assert not missing, f"no reference page for {missing}"


def test_every_notebook_is_a_page(site: Path) -> None:
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks
    missing = [n for n in notebooks if not (site / "notebooks" / f"{n}.html").is_file()]
    assert not missing, f"notebooks without a page: {missing}"


def test_every_docs_page_is_built(site: Path) -> None:
    pages = sorted(p.stem for p in (ROOT / "docs").glob("*.md"))
    assert "index" in pages
    missing = [p for p in pages if not (site / f"{p}.html").is_file()]
    assert not missing, f"pages not built: {missing}"
