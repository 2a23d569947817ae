"""Sphinx configuration: the veo-notebook documentation site (PyData convention).

MyST Markdown pages, the committed notebooks rendered by myst-nb without running them,
and an API reference generated from ``veo_notebook.__all__`` (the one list of public
names) through autosummary and the NumPy-style docstrings (napoleon).

Build: ``sphinx-build -W -b html docs docs/_build/html`` (the tests do, warning-free).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

import veo_notebook  # noqa: E402

project = "veo-notebook"
author = "the veo-notebook engineers"
copyright = "2026, the veo-notebook engineers"
release = veo_notebook.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "notebooks/out", "notebooks/.ipynb_checkpoints"]
suppress_warnings = ["myst.header"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the committed outputs are the pages: nothing is re-run
nb_output_stderr = "remove"

autosummary_generate = True
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": False}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

html_theme = "pydata_sphinx_theme"
html_title = "veo-notebook"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path: list[str] = []


def _copy_notebooks() -> None:
    """Mirror ``notebooks/`` into ``docs/notebooks/`` (a build copy, not committed)."""
    source, target = DOCS.parent / "notebooks", DOCS / "notebooks"
    if target.is_dir():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("out", ".ipynb_checkpoints"))


_copy_notebooks()


def _api_page() -> None:
    """Write ``api/index.rst`` from ``veo_notebook.__all__``: every public name a page."""
    names = [n for n in veo_notebook.__all__ if not n.startswith("_")]
    lines = [
        "API reference",
        "=============",
        "",
        "Every public name of ``veo_notebook`` (its ``__all__``), one page each.",
        "",
        ".. currentmodule:: veo_notebook",
        "",
        ".. autosummary::",
        "   :toctree: generated",
        "",
        *[f"   {name}" for name in names],
        "",
    ]
    target = DOCS / "api" / "index.rst"
    target.parent.mkdir(exist_ok=True)
    text = "\n".join(lines)
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


_api_page()  # before autosummary reads it (it generates its stubs at builder-inited)
