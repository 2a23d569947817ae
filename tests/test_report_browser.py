"""The report in a real browser (Chromium + Playwright): what a reader sees, screenshotted.

The report of ``data/sample_tasks.parquet`` and of an empty frame are opened from disk
in Chromium; the visible text (``innerText``) must hold none of the placeholders a
reader must never meet, every figure must load and fit the page's width, and full-page
screenshots go to ``test-artifacts/report.png``, ``report_headline.png`` (the copy in
``docs/`` is the README's) and ``report_empty.png`` (look at them).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _lab import CHROMIUM, CHROMIUM_ARGS
from test_report import PLACEHOLDERS

from veo_notebook import read_parquet, report, schema

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
VIEWPORT = {"width": 1280, "height": 1000}


@pytest.fixture
def browser(tmp_path: Path):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing (scripts/test.sh installs Debian's chromium)")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
            device_scale_factor=1,
        )
        try:
            yield ctx.pages[0] if ctx.pages else ctx.new_page()
        finally:
            ctx.close()


def _open(page, path: Path) -> str:
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page.inner_text("body")


def test_report_of_the_sample_reads_cleanly(browser, tmp_path: Path):
    df = read_parquet(ROOT / "data" / "sample_tasks.parquet")
    path = report(df, tmp_path / "report.html", title="Sample: 3,000 tasks")
    text = _open(browser, path)
    assert sorted(set(PLACEHOLDERS.findall(text))) == []
    assert text.index("Headline") < text.index("Overview")
    assert "No task is stuck." in text
    imgs = browser.locator("img")
    assert imgs.count() == 7
    body_width = browser.evaluate("document.querySelector('body').clientWidth")
    for i in range(imgs.count()):
        img = imgs.nth(i)
        assert img.evaluate("e => e.complete && e.naturalWidth > 0")
        natural = img.evaluate("e => e.naturalWidth")
        shown = img.evaluate("e => e.getBoundingClientRect().width")
        assert shown >= 0.9 * (body_width - 40), "figures fill the page's width"
        assert natural >= 1.3 * shown, "figures are sharp on HiDPI screens"
    ARTIFACTS.mkdir(exist_ok=True)
    browser.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    # the headline alone (README's docs/report_headline.png is a copy of it)
    browser.locator("table.facts").first.screenshot(path=str(ARTIFACTS / "report_headline.png"))


def test_report_of_an_empty_frame_says_so(browser, tmp_path: Path):
    path = report(schema.empty_frame(), tmp_path / "empty.html", title="Empty")
    text = _open(browser, path)
    assert "No tasks in this frame." in text
    assert sorted(set(PLACEHOLDERS.findall(text))) == []
    assert browser.locator("img").count() == 0 and browser.locator("table").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    browser.screenshot(path=str(ARTIFACTS / "report_empty.png"), full_page=True)
