"""archive_videos and delivery_check against the simulator's media host, over real sockets.

The simulator serves real MP4 files (made with PyAV); faults are scripted per task id on
its media host, whose counters show what was sent (bytes per task, Authorization headers).
S3 is moto's server mode on loopback, started here, read back with boto3.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests
from conftest import SENTINEL_KEY

import veo_notebook as veo
from veo_notebook.archive import DELIVERY_ISSUES, UNREADABLE, ArchiveTable
from veo_notebook.cli import main
from veo_notebook.frame import from_store
from veo_notebook.simulator import Simulator, media
from veo_notebook.store import Store

_used: set[str] = set()  # each test takes its own task ids (the simulator is shared)


def _pick(
    sim: Simulator,
    n: int,
    defects: frozenset[str] = frozenset(),
    kind: str = "",
    aspect: str | None = None,
    parent_kind: str = "",
) -> list[str]:
    """``n`` succeeded tasks no other test took, with exactly ``defects``. A plain pick (no
    defect, no kind) takes first clips: an extend's file is its stitched video, and which
    tasks have succeeded, so come first, depends on the hour."""
    kind = kind or ("" if defects else "generate")
    ok = set(sim.task_ids("success"))
    out = []
    for t in sim.tasks():
        fits = t.task_id in ok and t.task_id not in _used and (not kind or t.task_type == kind)
        fits = fits and (aspect is None or t.aspect_ratio == aspect)
        parent = sim.task(t.parent_id) if t.parent_id else None
        fits = fits and (
            not parent_kind or (parent is not None and parent.task_type == parent_kind)
        )
        if fits and media.defects(t) == set(defects):
            out.append(t.task_id)
            if len(out) == n:
                break
    assert len(out) == n, f"the corpus has too few tasks with {set(defects) or 'no defects'}"
    _used.update(out)
    return out


def _frame(sim: Simulator, ids: list[str]) -> pd.DataFrame:
    client = veo.Client(sim.api_key, base_url=sim.base_url)
    return veo.fetch_records(ids, client=client, progress=False)


def _sent(sim: Simulator, task_id: str) -> dict[str, int]:
    return sim.media.stats()["by_task"].get(task_id, {"requests": 0, "bytes": 0})


def _size(sim: Simulator, task_id: str) -> int:
    task = sim.task(task_id)
    assert task is not None
    return len(media.mp4_bytes(media.file_spec(sim.task, task, "v")))


# --- the happy path ----------------------------------------------------------------------
def test_archives_each_succeeded_task_hashed_probed_and_laid_out_by_day(sim, tmp_path) -> None:
    ids = _pick(sim, 6, kind="generate")  # extends: their stitched video, tested below
    failed = sim.task_ids("failed")[:2]
    df = _frame(sim, [*ids, *failed])
    out = veo.archive_videos(df, tmp_path / "videos", progress=False)
    assert out["task_id"].tolist() == ids  # succeeded tasks only, in the frame's order
    assert out["archive_error"].isna().all()
    assert str(out["archived_at"].dtype) == "datetime64[ns, UTC]"
    assert out["bytes"].dtype == "Int64" and out["media_has_audio"].dtype == "boolean"
    for row, (_, task) in zip(out.itertuples(), df.iloc[: len(ids)].iterrows(), strict=True):
        day = task["complete_time"].strftime("%Y-%m-%d")
        path = tmp_path / "videos" / day / f"{row.task_id}.mp4"
        assert row.path == str(path) and row.url == task["video_url"]
        data = path.read_bytes()
        assert row.bytes == len(data) and row.sha256 == hashlib.sha256(data).hexdigest()
        spec = media.file_spec(sim.task, sim.task(row.task_id), "v")
        assert (row.media_width, row.media_height) == (spec.width, spec.height)
        assert row.media_duration_s == pytest.approx(spec.duration_s, abs=0.2)
        assert row.media_codec == "h264" and row.media_has_audio == spec.audio
    assert not list((tmp_path / "videos").rglob("*.part"))


def test_an_extend_archives_its_stitched_video(sim, tmp_path) -> None:
    [task_id] = _pick(sim, 1, kind="extend")
    out = veo.archive_videos(_frame(sim, [task_id]), tmp_path, progress=False)
    assert "/full/" in out.loc[0, "url"]
    extends, task = 0, sim.task(task_id)  # an extend of an extend stitches both
    while task is not None:
        extends += task.task_type == "extend"
        task = sim.task(task.parent_id) if task.parent_id else None
    want = media.DEFAULT_DURATION_S + media.EXTEND_S * extends
    assert out.loc[0, "media_duration_s"] == pytest.approx(want, abs=0.2)


# --- faults ------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["reset", "truncated"])
def test_a_broken_transfer_resumes_with_range(sim, tmp_path, fault) -> None:
    [task_id] = _pick(sim, 1)
    sim.media.script(task_id, [fault])
    out = veo.archive_videos(_frame(sim, [task_id]), tmp_path, progress=False)
    size = _size(sim, task_id)
    assert out.loc[0, "archive_error"] is pd.NA and out.loc[0, "bytes"] == size
    sent = _sent(sim, task_id)
    assert sent["requests"] == 2
    # half, then the rest from where the client got to (a reset may drop a little in flight)
    assert size <= sent["bytes"] < size * 3 // 2 if fault == "reset" else sent["bytes"] == size
    data = Path(out.loc[0, "path"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == out.loc[0, "sha256"]


def test_a_slow_answer_times_out_and_is_retried(sim, tmp_path) -> None:
    [task_id] = _pick(sim, 1)
    sim.media.script(task_id, ["slow", "http503"])
    out = veo.archive_videos(_frame(sim, [task_id]), tmp_path, progress=False, timeout=0.5)
    assert out.loc[0, "archive_error"] is pd.NA
    assert _sent(sim, task_id)["requests"] == 3


def test_a_deleted_file_is_that_rows_error_not_the_batchs(sim, tmp_path) -> None:
    gone, fine = _pick(sim, 2)
    sim.media.script(gone, ["http404"])
    out = veo.archive_videos(_frame(sim, [gone, fine]), tmp_path, progress=False)
    errors = dict(zip(out["task_id"], out["archive_error"], strict=True))
    assert errors[gone].startswith("HTTP 404") and "14 days" in errors[gone]
    assert errors[fine] is pd.NA
    assert out.set_index("task_id").loc[gone, ["path", "bytes", "sha256"]].isna().all()


def test_giving_up_leaves_nothing_at_the_final_name(sim, tmp_path) -> None:
    [task_id] = _pick(sim, 1)
    sim.media.script(task_id, ["reset"] * 6)
    out = veo.archive_videos(_frame(sim, [task_id]), tmp_path, progress=False)
    assert out.loc[0, "archive_error"].startswith("gave up after 6 attempts")
    assert not list(tmp_path.rglob("*.mp4"))  # only the hidden .part, to resume from
    [part] = tmp_path.rglob("*.part")
    assert part.name == f".{task_id}.mp4.part"
    again = veo.archive_videos(_frame(sim, [task_id]), tmp_path, progress=False)
    assert again.loc[0, "archive_error"] is pd.NA
    assert _sent(sim, task_id)["bytes"] == _size(sim, task_id)  # the rerun resumed the part


def test_a_part_left_by_a_killed_run_is_resumed(sim, tmp_path) -> None:
    [task_id] = _pick(sim, 1)
    df = _frame(sim, [task_id])
    data = media.mp4_bytes(media.file_spec(sim.task, sim.task(task_id), "v"))
    day = df.loc[0, "complete_time"].strftime("%Y-%m-%d")
    part = tmp_path / day / f".{task_id}.mp4.part"
    part.parent.mkdir()
    part.write_bytes(data[:1000])
    out = veo.archive_videos(df, tmp_path, progress=False)
    assert out.loc[0, "sha256"] == hashlib.sha256(data).hexdigest()
    assert _sent(sim, task_id)["bytes"] == len(data) - 1000
    assert not part.exists()


# --- the store: second runs, verify ------------------------------------------------------
def test_a_second_run_downloads_only_what_is_missing(sim, tmp_path) -> None:
    ids = _pick(sim, 4)
    df = _frame(sim, ids)
    store = tmp_path / "s.sqlite"
    first = veo.archive_videos(df, tmp_path / "v", store=store, progress=False)
    with Store(store) as s:
        rows = ArchiveTable(s).rows()
    assert sorted(r["task_id"] for r in rows) == sorted(ids) and all(r["sha256"] for r in rows)
    Path(first.loc[1, "path"]).unlink()
    requests_before = {i: _sent(sim, i)["requests"] for i in ids}
    second = veo.archive_videos(df, tmp_path / "v", store=store, progress=False)
    again = {i: _sent(sim, i)["requests"] - requests_before[i] for i in ids}
    assert again == {ids[0]: 0, ids[1]: 1, ids[2]: 0, ids[3]: 0}
    assert second["sha256"].tolist() == first["sha256"].tolist()


def test_verify_rehashes_and_replaces_a_changed_file(sim, tmp_path) -> None:
    ids = _pick(sim, 2)
    df = _frame(sim, ids)
    store = tmp_path / "s.sqlite"
    first = veo.archive_videos(df, tmp_path / "v", store=store, progress=False)
    bad = Path(first.loc[0, "path"])
    bad.write_bytes(b"\0" * bad.stat().st_size)  # same size, other bytes
    plain = veo.archive_videos(df, tmp_path / "v", store=store, progress=False)
    assert _sent(sim, ids[0])["requests"] == 1  # without verify the store is trusted
    assert plain["sha256"].tolist() == first["sha256"].tolist()
    checked = veo.archive_videos(df, tmp_path / "v", store=store, progress=False, verify=True)
    assert _sent(sim, ids[0])["requests"] == 2 and _sent(sim, ids[1])["requests"] == 1
    assert hashlib.sha256(bad.read_bytes()).hexdigest() == checked.loc[0, "sha256"]


def test_a_run_without_a_store_rehashes_what_is_there(sim, tmp_path) -> None:
    [task_id] = _pick(sim, 1)
    df = _frame(sim, [task_id])
    first = veo.archive_videos(df, tmp_path, progress=False)
    second = veo.archive_videos(df, tmp_path, progress=False)
    assert _sent(sim, task_id)["requests"] == 1
    cols = ["path", "bytes", "sha256", "media_width", "media_duration_s", "media_has_audio"]
    assert second[cols].equals(first[cols])


# --- no key to a media host -------------------------------------------------------------
def test_no_authorization_header_reaches_the_media_host(sim, tmp_path, monkeypatch) -> None:
    ids = _pick(sim, 2)
    netrc = tmp_path / "netrc"  # requests would add Basic auth from it to a plain session
    netrc.write_text("machine 127.0.0.1 login user password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    before = sim.media.stats()["with_authorization"]
    url = _frame(sim, ids[:1]).loc[0, "video_url"]
    requests.get(url, timeout=10).close()  # the control: a plain session does send one
    assert sim.media.stats()["with_authorization"] == before + 1
    veo.archive_videos(_frame(sim, ids), tmp_path / "v", progress=False)
    assert sim.media.stats()["with_authorization"] == before + 1


# --- delivery_check ----------------------------------------------------------------------
#: Where the delivery checks' simulator stands still: its corpus then holds, succeeded,
#: every rare case they pick (3 extends of a first clip without their stitched video, 2
#: 1080p upgrades of a first clip with the aspect defect). The shared simulator's
#: statuses follow the wall clock: at some hours none of those has succeeded yet.
STILL_AT = 1_796_255_805.0


@pytest.fixture(scope="module")
def still_sim() -> Iterator[Simulator]:
    s = Simulator(SENTINEL_KEY, seed=0, n_tasks=2000, start_time=STILL_AT, clock_speed=0)
    s.start()
    yield s
    s.stop()


@pytest.mark.parametrize(
    ("defect", "issue", "kind"),
    [
        ("720p", "resolution_below_requested", ""),
        ("no_audio", "no_audio", ""),
        ("short", "duration_below_requested", "generate"),
        ("aspect", "aspect_mismatch", "generate"),
        ("corrupt", "unreadable_media", ""),
        ("base_clip", "extend_without_full_video", "extend"),
    ],
)
def test_each_delivery_issue_is_found(still_sim, tmp_path, defect, issue, kind) -> None:
    sim = still_sim
    # an extend of a first clip: the frame then holds all it is checked against
    first = "generate" if kind == "extend" else ""
    [bad] = _pick(sim, 1, frozenset({defect}), kind, parent_kind=first)
    [good] = _pick(sim, 1, kind=kind, parent_kind=first)
    df = _frame(sim, [bad, good])
    archive = veo.archive_videos(df, tmp_path, progress=False)
    problems = veo.delivery_check(df, archive)
    assert problems[["task_id", "issue"]].astype(str).values.tolist() == [[bad, issue]]
    assert problems["issue"].cat.categories.tolist() == list(DELIVERY_ISSUES)
    assert problems[["expected", "got"]].notna().all().all()
    if defect == "corrupt":
        assert archive.set_index("task_id").loc[bad, "archive_error"] == UNREADABLE
        assert Path(archive.set_index("task_id").loc[bad, "path"]).is_file()  # kept, whole


def test_an_extend_without_full_result_urls_is_flagged(sim, tmp_path) -> None:
    [task_id] = _pick(sim, 1, kind="extend")
    record = sim.record(task_id)
    record["data"]["response"].pop("fullResultUrls")  # the stitched video never came
    import orjson

    with Store(tmp_path / "s.sqlite") as store:
        store.put(task_id, orjson.dumps(record).decode())
        df = from_store(store)
        archive = veo.archive_videos(df, tmp_path / "v", store=store, progress=False)
    assert "/v/" in archive.loc[0, "url"]  # the extension clip, all there was
    problems = veo.delivery_check(df, archive)
    assert problems[["issue", "expected", "got"]].astype(str).values.tolist() == [
        ["extend_without_full_video", "fullResultUrls", "resultUrls only"]
    ]


def test_delivery_check_refuses_what_is_not_an_archive(sim) -> None:
    with pytest.raises(veo.InputError, match="archive_videos"):
        veo.delivery_check(veo.schema.empty_frame(), pd.DataFrame({"task_id": []}))


# --- the simulator's media host -----------------------------------------------------------
def test_the_media_host_honours_ranges_and_forgets_after_14_days(sim) -> None:
    [task_id] = _pick(sim, 1)
    url = _frame(sim, [task_id]).loc[0, "video_url"]
    whole = requests.get(url, timeout=10)
    assert whole.status_code == 200 and whole.headers["Accept-Ranges"] == "bytes"
    tail = requests.get(url, headers={"Range": "bytes=100-"}, timeout=10)
    assert tail.status_code == 206 and tail.content == whole.content[100:]
    assert (
        tail.headers["Content-Range"] == f"bytes 100-{len(whole.content) - 1}/{len(whole.content)}"
    )
    last = requests.get(url, headers={"Range": "bytes=-10"}, timeout=10)
    assert last.content == whole.content[-10:]
    past = requests.get(url, headers={"Range": f"bytes={len(whole.content)}-"}, timeout=10)
    assert past.status_code == 416
    old = next(t for t in sim.tasks() if t.response and sim.now() - t.complete_ts > 15 * 86400)
    stale = sim.media.rewrite(old.response["resultUrls"][0].encode()).decode()
    assert requests.get(stale, timeout=10).status_code == 404


# --- S3, for real: moto's server on loopback (the s3 fixture: conftest.py) -----------------
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_archive_to_s3_uploads_only_complete_files(sim, tmp_path, s3, monkeypatch) -> None:
    import boto3

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3", endpoint_url=s3["endpoint"], region_name="us-east-1", **s3["creds"])
    client.create_bucket(Bucket="videos")
    ids = _pick(sim, 3)
    sim.media.script(ids[0], ["reset"])
    sim.media.script(ids[1], ["http404"])
    df = _frame(sim, ids)
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": s3["endpoint"], "region_name": "us-east-1"},
    }
    store = tmp_path / "s.sqlite"
    out = veo.archive_videos(
        df, "s3://videos/veo", store=store, storage_options=options, progress=False
    )
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="videos").get("Contents", []))
    day = {i: df.set_index("task_id").loc[i, "complete_time"].strftime("%Y-%m-%d") for i in ids}
    assert keys == sorted(f"veo/{day[i]}/{i}.mp4" for i in (ids[0], ids[2]))  # no part object
    for task_id in (ids[0], ids[2]):
        row = out.set_index("task_id").loc[task_id]
        assert row["path"] == f"s3://videos/veo/{day[task_id]}/{task_id}.mp4"
        body = client.get_object(Bucket="videos", Key=f"veo/{day[task_id]}/{task_id}.mp4")
        data = body["Body"].read()
        assert hashlib.sha256(data).hexdigest() == row["sha256"] and len(data) == row["bytes"]
        assert row["media_codec"] == "h264"
    assert out.set_index("task_id").loc[ids[1], "archive_error"].startswith("HTTP 404")
    before = {i: _sent(sim, i)["requests"] for i in ids}
    again = veo.archive_videos(
        df, "s3://videos/veo", store=store, storage_options=options, progress=False, verify=True
    )
    assert {i: _sent(sim, i)["requests"] - before[i] for i in ids} == {
        ids[0]: 0,
        ids[1]: 1,
        ids[2]: 0,
    }
    assert again["archive_error"].isna().sum() == 3  # the 404 was a one-off: the rerun got it


# --- the CLI -------------------------------------------------------------------------------
def test_cli_archive_exit_codes(sim, tmp_path, capsys) -> None:
    ok, gone = _pick(sim, 2)
    store = tmp_path / "s.sqlite"
    veo.fetch_records(
        [ok, gone],
        client=veo.Client(sim.api_key, base_url=sim.base_url),
        store=store,
        progress=False,
    )
    sim.media.script(gone, ["http404"])
    argv = ["archive", "--store", str(store), "--dest", str(tmp_path / "v"), "--no-progress"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert f"{gone}: HTTP 404" in out and "1 of 2 videos archived and readable" in out
    assert main(argv) == 0
    assert "2 of 2 videos archived" in capsys.readouterr().out
    assert main([*argv, "--origin"]) == 0  # tasks without originUrls: nothing more to save
    assert main(["archive", "--store", str(tmp_path / "nope.sqlite"), "--dest", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no store at" in err
    (tmp_path / "file").write_text("")
    assert main(["archive", "--store", str(store), "--dest", str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_a_whole_part_left_before_its_rename_is_published_without_a_download(sim, tmp_path):
    [task_id] = _pick(sim, 1)
    df = _frame(sim, [task_id])
    data = media.mp4_bytes(media.file_spec(sim.task, sim.task(task_id), "v"))
    day = df.loc[0, "complete_time"].strftime("%Y-%m-%d")
    part = tmp_path / day / f".{task_id}.mp4.part"
    part.parent.mkdir()
    part.write_bytes(data)
    out = veo.archive_videos(df, tmp_path, progress=False)
    assert out.loc[0, "sha256"] == hashlib.sha256(data).hexdigest()
    assert _sent(sim, task_id) == {"requests": 1, "bytes": 0}  # one Range request: 416
    assert (tmp_path / day / f"{task_id}.mp4").read_bytes() == data


def test_a_destination_that_cannot_be_written_stops_the_run_with_one_clear_error(sim, tmp_path):
    [task_id] = _pick(sim, 1)
    (tmp_path / "file").write_text("")
    with pytest.raises(veo.ArchiveError, match="cannot write"):
        veo.archive_videos(_frame(sim, [task_id]), tmp_path / "file" / "v", progress=False)
    with pytest.raises(veo.InputError, match="is a file"):
        veo.archive_videos(_frame(sim, [task_id]), tmp_path / "file", progress=False)


def test_origin_files_are_saved_beside_the_videos(sim, tmp_path) -> None:
    ids = _pick(sim, 2, aspect="9:16") + _pick(sim, 2, aspect="16:9")  # origin: non-16:9 only
    df = _frame(sim, ids)
    with_origin = [i for i, u in zip(df["task_id"], df["origin_urls"], strict=True) if len(u)]
    assert with_origin == ids[:2]
    store = tmp_path / "s.sqlite"
    out = veo.archive_videos(df, tmp_path / "v", store=store, progress=False, origin=True)
    assert out.columns[-4:].tolist() == [
        "origin_path",
        "origin_bytes",
        "origin_sha256",
        "origin_error",
    ]
    got = out.set_index("task_id")
    for task_id in ids:
        if task_id in with_origin:
            path = Path(got.loc[task_id, "origin_path"])
            assert (
                path.name == f"{task_id}.origin.mp4"
                and path.parent == Path(got.loc[task_id, "path"]).parent
            )
            assert (
                hashlib.sha256(path.read_bytes()).hexdigest() == got.loc[task_id, "origin_sha256"]
            )
        else:
            assert got.loc[task_id, ["origin_path", "origin_error"]].isna().all()
    with Store(store) as s:
        assert {r["task_id"] for r in ArchiveTable(s).rows(kind="origin")} == set(with_origin)
    before = sim.media.stats()["requests"]
    veo.archive_videos(df, tmp_path / "v", store=store, progress=False, origin=True)
    assert sim.media.stats()["requests"] == before  # both kinds remembered


def test_an_upgrade_is_checked_against_its_parents_request(still_sim, tmp_path) -> None:
    # a 1080p of a first clip: its parent's request names the aspect ratio
    sim = still_sim
    [task_id] = _pick(sim, 1, frozenset({"aspect"}), kind="1080p", parent_kind="generate")
    parent = sim.task(task_id).parent_id
    df = _frame(sim, [task_id, parent])
    archive = veo.archive_videos(df[df["task_id"] == task_id], tmp_path, progress=False)
    problems = veo.delivery_check(df, archive)  # the aspect ratio is the parent's request
    assert problems[["task_id", "issue"]].astype(str).values.tolist() == [
        [task_id, "aspect_mismatch"]
    ]
    alone = veo.delivery_check(df[df["task_id"] == task_id], archive)
    assert alone.empty  # without the parent, nothing says what was asked
