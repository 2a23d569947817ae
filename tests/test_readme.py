"""The README opens with the two commands, and the CLI reference names every sub-command.

That every README and docs block runs as written is ``tests/test_docs_blocks.py``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from veo_notebook import cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CLI_PAGE = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
README_MAX_LINES = 150


def _subcommands() -> list[str]:
    parser = cli.build_parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(subs[0].choices)


def test_cli_section_names_every_subcommand() -> None:
    names = _subcommands()
    assert "demo" in names and "fetch" in names
    missing = [n for n in names if f"`veo-notebook {n}" not in CLI_PAGE]
    assert not missing, f"docs/cli.md lacks: {missing}"


def test_readme_starts_with_the_two_commands() -> None:
    first = README.index("```bash")
    block = README[first : README.index("```", first + 7)]
    assert "veo-notebook demo" in block and "scripts/test.sh" in block
    assert first < README.index("## ")


def test_readme_is_short_and_links_the_site() -> None:
    assert len(README.splitlines()) <= README_MAX_LINES
    assert "python -m sphinx -b html docs docs/_build/html" in README


def test_readme_names_one_store() -> None:
    stores = set(re.findall(r"--store ([\w./-]+)|store=\"([^\"]+)\"", README))
    names = {a or b for a, b in stores}
    assert len(names) == 1, f"the README names several stores: {sorted(names)}"
