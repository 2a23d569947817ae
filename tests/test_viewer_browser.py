"""StatusViewer in a real browser: JupyterLab + Chromium + Playwright.

The notebook ``tests/browser/viewer_check.ipynb`` starts the simulator, creates a task
whose prompt carries ``<script>`` / ``<img onerror>`` payloads (through the simulator's
generate endpoint, then record-info), adds hand-written records (the same payloads in an
error message, a ``javascript:`` result URL) parsed by ``to_frame``, and shows the viewer.
The test runs every cell, changes a filter, pages, opens details and checks the DOM: the
payloads show as text, nothing ran (``window.__pwned`` stays undefined, no dialog), and
the ``javascript:`` URL is no link. A screenshot goes to ``test-artifacts/viewer.png``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from _lab import CHROMIUM, CHROMIUM_ARGS, Lab, running_lab

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent
# VEO_VIEWER_NOTEBOOK: another notebook of the same shape (for trying changes to the fixture)
NOTEBOOK = Path(os.environ.get("VEO_VIEWER_NOTEBOOK", HERE / "browser" / "viewer_check.ipynb"))
ARTIFACTS = HERE.parent / "test-artifacts"
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'
KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle';
}"""


@pytest.fixture
def lab(tmp_path: Path):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing (scripts/test.sh installs Debian's chromium)")
        pytest.skip(f"{CHROMIUM} is missing")
    root = tmp_path / "notebooks"
    root.mkdir()
    nb = json.loads(NOTEBOOK.read_text())
    for cell in nb["cells"]:  # a fresh, outputs-cleared copy
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    (root / NOTEBOOK.name).write_text(json.dumps(nb))
    with running_lab(root, tmp_path / "home") as running:
        running.delete_sessions()
        running.start_kernel(NOTEBOOK.name)  # warms up while Chromium starts
        yield running


def test_viewer_in_jupyterlab(lab: Lab, tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    dialogs: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 2400},
        )
        try:
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{lab.url}/lab/tree/{NOTEBOOK.name}?reset&token={lab.token}")
            page.wait_for_function(KERNEL_IDLE, timeout=60_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

            viewer = page.locator(".veo-viewer")
            expect(viewer).to_be_visible(timeout=60_000)
            header, label = page.locator(".veo-header"), page.locator(".veo-page-label")
            expect(header).to_contain_text("tasks")
            expect(label).to_contain_text(re.compile(r"page 1 of \d+"))
            total = int(re.search(r"([\d,]+) tasks", header.inner_text())[1].replace(",", ""))

            # a filter: failed only
            page.locator(".veo-filter-status select").select_option(["failed"])
            expect(header).not_to_contain_text(f"{total:,} match the filters")
            cells = page.locator(".veo-table tbody tr td:nth-child(2)")
            expect(cells.first).to_have_text("failed")
            assert set(cells.all_inner_texts()) == {"failed"}

            # pages
            page.locator(".veo-filter-status select").select_option([])
            expect(header).to_contain_text(f"{total:,} match the filters")
            first_page = page.locator(".veo-table tbody tr").first.get_attribute("data-task-id")
            page.locator("button.veo-next").click()
            expect(label).to_contain_text("page 2 of")
            second = page.locator(".veo-table tbody tr").first
            assert second.get_attribute("data-task-id") != first_page
            page.locator("button.veo-prev").click()
            expect(label).to_contain_text("page 1 of")

            # the hostile records, by free-text search
            search = page.locator(".veo-filter-text input")
            search.fill("hostile")
            search.press("Enter")
            expect(label).to_contain_text("(3 rows)")
            table = page.locator(".veo-table")
            expect(table).to_contain_text("hostile_error_message")

            select, detail = page.locator(".veo-select select"), page.locator(".veo-detail")
            select.select_option(label="hostile_error_message · failed")
            expect(detail.locator(".veo-error-message")).to_have_text(f"flagged {SCRIPT} {IMG}")
            select.select_option(label="hostile_result_url · success")
            expect(detail.locator(".veo-not-link")).to_have_text("javascript:alert(1)")
            expect(detail).to_contain_text("no playable video")
            select.select_option(index=1)  # the simulator task with the hostile prompt (newest)
            expect(detail.locator(".veo-params")).to_contain_text(f"hostile prompt {SCRIPT} {IMG}")

            # a successful task's detail shows an http(s) link and a <video>
            search.fill("")
            search.press("Enter")
            page.locator(".veo-filter-status select").select_option(["success"])
            expect(label).not_to_contain_text(f"({total:,} rows)")
            # the search showed 3 rows: wait until the task list is the success page (the
            # label and the list are separate widgets; under load they update apart)
            expect(select.locator("option")).not_to_have_count(4)
            expect(select.locator("option").nth(1)).to_contain_text("· success")
            select.select_option(index=1)
            video = detail.locator("video.veo-video")
            expect(video).to_have_attribute("src", re.compile(r"^https?://"))
            expect(detail.locator("ul.veo-links a").first).to_have_attribute(
                "href", re.compile(r"^https?://")
            )

            # live mode: the Refresh button re-polls in a kernel thread; the page follows
            page.locator("button.veo-refresh").click()
            expect(page.locator(".veo-message")).to_contain_text(
                re.compile(r"re-polled \d+ tasks|every task is terminal"), timeout=30_000
            )

            # nothing ran, nothing became a link
            assert page.evaluate("typeof window.__pwned") == "undefined"
            assert page.locator('a[href^="javascript" i]').count() == 0
            assert viewer.locator('[src^="javascript" i], [src^="data:" i]').count() == 0
            assert viewer.locator("script").count() == 0
            assert viewer.locator("img").count() == 0
            assert dialogs == []

            ARTIFACTS.mkdir(exist_ok=True)
            viewer.screenshot(path=str(ARTIFACTS / "viewer.png"))
        finally:
            ctx.close()
    assert not [e for e in errors if "veo" in e.lower()], errors
