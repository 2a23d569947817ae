"""report(): one self-contained, escaped HTML file (or Markdown + PNGs); the CLI command."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import html
import re
from pathlib import Path

import orjson
import pandas as pd
import pytest
from _frames import make_frame, synthetic_frame

from veo_notebook import cli, read_parquet, report, reporting, schema
from veo_notebook.reporting import SECTIONS, Context, Section, Text

ROOT = Path(__file__).resolve().parents[1]
# what a reader must never meet in the report's visible text
PLACEHOLDERS = re.compile(r"\bNaN\b|<NA>|\bNone\b|\bnan\b|nan%|\bNaT\b|\bNA\b|—–—|–—|—–")


def visible_text(page: str) -> str:
    """The report's text as a browser shows it (tags, style and embedded images removed)."""
    page = re.sub(r"<style.*?</style>|<head.*?</head>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


EVIL_PROMPT = "<script>alert('prompt')</script> a cat"
EVIL_MESSAGE = "<img src=x onerror=alert(1)> see http://evil.example/x.png | pipe"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    df = synthetic_frame(4000, seed=9, recent_share=0.2)
    evil = make_frame(
        status=["failed"] * 3,
        error_code=[400] * 3,
        error_message=[EVIL_MESSAGE] * 3,
        prompt=[EVIL_PROMPT] * 3,
        model=["<b>model</b>"] * 3,
        create_s=[100.0] * 3,
        complete_s=[130.0] * 3,
    )
    return schema.enforce(pd.concat([df, evil], ignore_index=True))


@pytest.fixture(scope="module")
def html_text(frame, tmp_path_factory) -> str:
    path = report(frame, tmp_path_factory.mktemp("r") / "sub" / "report.html", title="Batch <1>")
    assert path.exists() and path.suffix == ".html"
    return path.read_text(encoding="utf-8")


def test_html_is_self_contained(html_text):
    assert html_text.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html_text, re.I)
    assert "<link" not in html_text.lower() and "@import" not in html_text
    imgs = re.findall(r'<img [^>]*src="([^"]+)"', html_text)
    assert len(imgs) == 7 and all(src.startswith("data:image/png;base64,") for src in imgs)


def test_html_escapes_user_and_api_text(html_text):
    assert "<script" not in html_text.lower()
    assert "&lt;script&gt;alert('prompt')&lt;/script&gt; a cat" in html_text
    assert "<img src=x" not in html_text and "&lt;img src=x onerror=alert(1)&gt;" in html_text
    assert "<b>model</b>" not in html_text and "&lt;b&gt;model&lt;/b&gt;" in html_text
    assert "Batch &lt;1&gt;" in html_text
    assert "http://evil.example/x.png" in html_text  # kept as text, never as a link


def test_html_has_the_sections_and_numbers(frame, html_text):
    for heading in (
        "Headline",
        "Overview",
        "Latency (time to success)",
        "Failure rates",
        "Why tasks fail",
        "Stuck tasks",
        "Money",
        "At risk (videos about to expire)",
        "Definitions",
    ):
        assert f"<h2>{heading}</h2>" in html_text
    assert html_text.index("<h2>Headline</h2>") < html_text.index("<h2>Overview</h2>")
    assert "KM p50 s" in html_text and "Wilson" in html_text and "Kaplan–Meier" in html_text
    assert f"<td>{len(frame):,}</td>" in html_text  # the overview's total
    assert "queueing included" in html_text  # what latency is, said
    assert "content_policy" in html_text and "Your prompt was flagged" in html_text


def test_markdown_variant_writes_pngs_beside_it(frame, tmp_path):
    path = report(frame, tmp_path / "report.md")
    text = path.read_text(encoding="utf-8")
    figs = sorted((tmp_path / "report_figures").glob("*.png"))
    assert len(figs) == 7
    assert all(f.read_bytes().startswith(b"\x89PNG") for f in figs)
    for f in figs:
        assert f"](report_figures/{f.name})" in text
    assert "<script" not in text.lower() and "&lt;script&gt;" in text
    assert "\\| pipe" in text  # a pipe in a message does not break the table
    assert "## Definitions" in text and "| model |" in text
    assert "## Headline" in text and not PLACEHOLDERS.search(text.replace("&lt;", "<"))


def test_report_of_an_empty_frame_says_so_and_draws_nothing(tmp_path):
    path = report(schema.empty_frame(), tmp_path / "empty.html")  # warnings are errors here
    text = path.read_text(encoding="utf-8")
    assert "No tasks in this frame." in text
    assert "<img" not in text and "<table" not in text
    assert not PLACEHOLDERS.search(visible_text(text))
    md = report(schema.empty_frame(), tmp_path / "empty.md").read_text(encoding="utf-8")
    assert "No tasks in this frame." in md and "|" not in md
    assert not (tmp_path / "empty_figures").exists()


def test_report_of_the_sample_has_no_placeholder(tmp_path):
    df = read_parquet(ROOT / "data" / "sample_tasks.parquet")
    text = visible_text(report(df, tmp_path / "sample.html").read_text(encoding="utf-8"))
    found = sorted(set(PLACEHOLDERS.findall(text)))
    assert not found, found
    assert "unread" in text and "upgrade task" in text  # the two reasons, said
    assert "Unread 336 tasks whose record could not be read" in " ".join(text.split())
    assert "≥ " in text  # an open interval bound reads as such
    assert "n/a (too few)" in text or "not reached" in text


def test_headline_leads_with_the_answer(tmp_path):
    df = read_parquet(ROOT / "data" / "sample_tasks.parquet")
    text = report(df, tmp_path / "r.html", figures=False).read_text(encoding="utf-8")
    head = " ".join(visible_text(text[: text.index("<h2>Overview</h2>")]).split())
    for label in (
        "Tasks 3,000",
        "Success rate",
        "Latency p50",
        "p90",
        "Top failure content_policy",
    ):
        assert label in head
    assert "last 7 days" in head and "vs the 7 days before" in head
    assert "intervals overlap" in head or "CHANGED" in head
    assert "131 still generating, 0 stuck" in head


def test_change_is_flagged_when_the_intervals_part(tmp_path):
    # two weeks: the second far slower and failing more often than the first
    n = 400
    first = make_frame(
        status=["success"] * (n - 10) + ["failed"] * 10,
        create_s=[i * 1500.0 for i in range(n)],
        complete_s=[i * 1500.0 + 60 for i in range(n)],
    )
    second = make_frame(
        status=["success"] * (n - 120) + ["failed"] * 120,
        create_s=[7 * 86400 + i * 1500.0 for i in range(n)],
        complete_s=[7 * 86400 + i * 1500.0 + 300 for i in range(n)],
    )
    df = schema.enforce(pd.concat([first, second], ignore_index=True))
    text = report(df, tmp_path / "c.html", figures=False).read_text(encoding="utf-8")
    head = " ".join(visible_text(text[: text.index("<h2>Overview</h2>")]).split())
    assert "CHANGED, lower: the intervals" in head and "CHANGED, slower: the intervals" in head


@pytest.mark.parametrize(
    "statuses",
    [
        pytest.param(["generating"] * 5, id="only-generating"),
        pytest.param(["success"] * 3, id="tiny"),
        pytest.param([None] * 4, id="all-unread"),
    ],
)
def test_small_and_odd_frames_read_cleanly(statuses, tmp_path):
    df = make_frame(
        status=statuses,
        create_s=[10.0 * i for i in range(len(statuses))],
        complete_s=[10.0 * i + 50 if s == "success" else None for i, s in enumerate(statuses)],
    )
    if statuses[0] is None:
        df["fetch_error"] = pd.array(
            ["422 record is null."] * len(df), dtype=df["fetch_error"].dtype
        )
    text = visible_text(report(df, tmp_path / "odd.html").read_text(encoding="utf-8"))
    found = sorted(set(PLACEHOLDERS.findall(text)))
    assert not found, found
    if statuses[0] is None:
        assert "no task record could be read" in text


def test_a_section_is_one_function_and_one_line(frame, tmp_path, monkeypatch):
    def callbacks(ctx: Context) -> Section | None:
        return Section("Callbacks", [Text(f"{len(ctx.read)} tasks read.")])

    monkeypatch.setattr(reporting, "SECTIONS", [*SECTIONS, callbacks])
    text = report(frame, tmp_path / "s.html", figures=False).read_text(encoding="utf-8")
    assert "<h2>Callbacks</h2>" in text and "tasks read." in text


def test_cli_report_from_a_store(tmp_path):
    from veo_notebook.simulator import corpus
    from veo_notebook.store import Store

    db = tmp_path / "tasks.sqlite"
    with Store(db) as store:
        for raw in corpus.iter_raw_texts(300, seed=3):
            task_id = orjson.loads(raw)["data"]["taskId"]
            store.put(task_id, raw, fetched_at=1_700_000_000.0)
    out = tmp_path / "out" / "report.html"
    argv = ["report", "--store", str(db), "--out", str(out), "--title", "CLI", "--no-figures"]
    assert cli.main(argv) == 0
    text = out.read_text(encoding="utf-8")
    assert "300 tasks" in text and "<h2>Failure rates</h2>" in text and "<h1>CLI</h1>" in text
    assert "<img" not in text


def test_money_section_shows_credits_and_duplicate_waste(tmp_path):
    df = make_frame(
        model=["veo3_fast"] * 3,
        task_type=["generate"] * 3,
        resolution=["720p"] * 3,
        prompt=["a fox", "a fox", "a bear"],
        status=["success"] * 3,
        create_s=[0.0, 120.0, 300.0],
        complete_s=[100.0, 220.0, 400.0],
    )
    now = "2026-03-14 00:10"  # 13 days after: all three are deleted within 3 days
    path = report(df, tmp_path / "money.md", figures=False, now=now)
    text = path.read_text(encoding="utf-8")
    money = text[text.index("## Money") : text.index("## At risk")]
    assert "180 credits for 3 tasks" in money and "1 duplicate submissions" in money
    assert "| veo3_fast | 3 | 3 | 180 | 60.0 | 0 | 0 | 1 | 60 |" in money
    assert "| t1 | t0 |" in money
    at_risk = text[text.index("## At risk") : text.index("## Definitions")]
    assert "3 succeeded tasks' videos are deleted by kie.ai within 3 days" in at_risk
    assert "and 0 are already deleted" in at_risk
    later = report(df, tmp_path / "later.md", figures=False, now="2026-04-01")
    assert "and 3 are already deleted" in later.read_text(encoding="utf-8")


def test_the_callbacks_section_only_when_callbacks_are_given(frame, tmp_path):
    from veo_notebook.callbacks import read_callbacks

    done = frame[frame["complete_time"].notna()].iloc[0]
    tid = done["task_id"]
    log = tmp_path / "hooks.jsonl"
    when = (done["complete_time"] + pd.Timedelta(seconds=30)).isoformat()
    body = {
        "code": 200,
        "msg": "<b>ok</b>",
        "data": {"taskId": tid, "info": {"resultUrls": []}},
        "received_at": when,
    }
    orphan = {"code": 400, "msg": "x", "data": {"taskId": "<i>orphan</i>"}}
    log.write_bytes(orjson.dumps(body) + b"\n" + orjson.dumps(orphan) + b"\n")
    with_cb = report(frame, tmp_path / "cb.html", callbacks=read_callbacks(log))
    text = with_cb.read_text(encoding="utf-8")
    assert "<h2>Callbacks</h2>" in text and 'alt="callback_delay"' in text
    assert "no record" in text and "<i>orphan</i>" not in text and "&lt;i&gt;orphan" in text
    section = text.split("<h2>Callbacks</h2>")[1].split("<h2>")[0]
    assert "nan" not in section.lower(), section[max(0, section.lower().find("nan") - 300) :][:400]
    assert "&lt;NA&gt;" not in section and "None" not in section
    plain = report(frame, tmp_path / "plain.html", figures=False).read_text(encoding="utf-8")
    assert "<h2>Callbacks</h2>" not in plain
    md = report(frame, tmp_path / "cb.md", callbacks=read_callbacks(log), figures=False)
    assert "## Callbacks" in md.read_text(encoding="utf-8")


def test_in_words_names_a_length_in_its_largest_whole_unit():
    from veo_notebook.reporting._cells import in_words

    cases = {"30min": "30 minutes", "15min": "15 minutes", "3D": "3 days", "1h": "1 hour"}
    assert {k: in_words(k) for k in cases} == cases
    assert in_words(pd.Timedelta(minutes=90)) == "90 minutes"
    assert in_words("1.5s") == "1.5 seconds"


def test_the_prose_is_built_from_the_constants_it_names(html_text):
    from veo_notebook.analysis.duplicates import DEFAULT_WINDOW, REQUEST_COLUMNS
    from veo_notebook.analysis.latency import STUCK_AFTER
    from veo_notebook.reporting import AT_RISK_WITHIN, CHANGE_COVER
    from veo_notebook.reporting._cells import in_words
    from veo_notebook.schema import MEDIA_RETENTION

    text = " ".join(visible_text(html_text).split())
    assert f"generating for more than {in_words(STUCK_AFTER)}" in text
    assert f"less than {in_words(DEFAULT_WINDOW)} before" in text
    assert f"covers {CHANGE_COVER:g} times" in text
    assert ", ".join(c.replace("_", " ") for c in REQUEST_COLUMNS) in text
    assert f"deletes ({in_words(MEDIA_RETENTION)} after completion) within" in text
    assert f"within {in_words(AT_RISK_WITHIN)}" in text


def test_sub_second_callback_delays_read_as_such_and_long_differences_wrap(frame, tmp_path):
    from veo_notebook.callbacks import read_callbacks

    done = frame[frame["complete_time"].notna() & (frame["status"] == "success")].head(3)
    lines = []
    for (_, row), delay in zip(done.iterrows(), (0.06, 0.5, 1.0), strict=True):
        when = (row["complete_time"] + pd.Timedelta(seconds=delay)).isoformat()
        info = {"resultUrls": ["https://elsewhere.example/" + "x" * 120 + ".mp4"]}
        body = {"code": 200, "data": {"taskId": row["task_id"], "info": info}, "received_at": when}
        lines.append(orjson.dumps(body))
    log = tmp_path / "hooks.jsonl"
    log.write_bytes(b"\n".join(lines) + b"\n")
    text = report(frame, tmp_path / "cb.html", callbacks=read_callbacks(log), figures=False)
    section = text.read_text(encoding="utf-8").split("<h2>Callbacks</h2>")[1].split("<h2>")[0]
    for fact, value in (("p50", "0.50 s"), ("p90", "0.90 s"), ("max", "1.00 s")):
        assert f"<th>first delay {fact}</th><td>{value}</td>" in section, fact
    assert "<td>0.06 s</td>" in section and '<td class="wrap">video: ' in section


def test_a_model_the_price_table_omits_reads_unpriced_never_zero(frame, tmp_path):
    import veo_notebook as veo

    priced = veo.with_credits(frame, prices={"veo3_fast": 60})
    text = report(priced, tmp_path / "m.html", figures=False).read_text(encoding="utf-8")
    money = text.split("<h2>Money</h2>")[1].split("<h2>")[0]
    row = money.split("<td>veo3</td>")[1].split("</tr>")[0]
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert cells[2:4] == ["unpriced", "unpriced"], cells  # credits, credits / success
    assert int(cells[5].replace(",", "")) > 0  # counted
