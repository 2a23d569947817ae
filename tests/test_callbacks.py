"""Callbacks over real sockets: the receiver as a user runs it (the CLI, a real port), the
simulator's signed callbacks flowing into it, the reader and the audit.

The signature is computed here independently (hmac + base64), not with the toolkit's
``sign``, so a wrong rule cannot pass on both sides.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pandas as pd
import pytest
import requests
from conftest import SENTINEL_KEY

from veo_notebook import Client, InputError, Store, callbacks, fetch_records
from veo_notebook.callbacks import (
    MAX_BODY_BYTES,
    CallbackTable,
    callback_audit,
    read_callbacks,
)
from veo_notebook.cli import main
from veo_notebook.simulator import Simulator
from veo_notebook.simulator.callbacks import (
    CALLBACK_FAULTS,
    DELAY_S,
    RETRY_OFFSETS_S,
    check_url,
    create_task,
)

HOOK_KEY = "whk-SENTINEL-hook-key-91c2e4"
HOOK_PIECES = {HOOK_KEY[i : i + 8] for i in range(len(HOOK_KEY) - 7)}
SUCCESS = {
    "code": 200,
    "msg": "Veo3.1 video generated successfully.",
    "data": {
        "taskId": "4c9a31a5bb61db65d10f1210d78cc08a",
        "info": {
            "resultUrls": ["https://tempfile.aiquickdraw.com/v/a_1.mp4"],
            "originUrls": None,
            "resolution": "1080p",
        },
        "fallbackFlag": False,
    },
}
FAILURE = {
    "code": 501,
    "msg": "Generation failed",
    "data": {"taskId": "t-fail", "fallbackFlag": False},
}


def _sig(task_id: str, stamp: str, key: str = HOOK_KEY) -> str:
    mac = hmac.new(key.encode(), f"{task_id}.{stamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def _signed(body: dict, *, key: str = HOOK_KEY, stamp: float | None = None) -> dict[str, str]:
    ts = str(int(time.time() if stamp is None else stamp))
    return {
        "Content-Type": "application/json",
        "X-Webhook-Timestamp": ts,
        "X-Webhook-Signature": _sig(body["data"]["taskId"], ts, key),
    }


def _leaks(text: str | bytes) -> list[str]:
    raw = text if isinstance(text, bytes) else text.encode()
    return [p for p in HOOK_PIECES if p.encode() in raw]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIE_")}
    env.update(extra)
    return env


class Receiver:
    """``veo-notebook callbacks`` in a subprocess; its stderr drained into ``lines``."""

    def __init__(self, store: Path, *args: str, key: str | None = HOOK_KEY) -> None:
        env = _env(**({"KIE_WEBHOOK_HMAC_KEY": key} if key else {}))
        cmd = [sys.executable, "-m", "veo_notebook", "callbacks", "--port", "0"]
        self.proc = subprocess.Popen(
            [*cmd, "--store", str(store), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.url = ""
        started = threading.Event()

        def drain() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.lines.append(line)
                if "receiving on " in line:
                    self.url = line.split("receiving on ", 1)[1].split(" ", 1)[0]
                    started.set()
            started.set()

        threading.Thread(target=drain, daemon=True).start()
        assert started.wait(60) and self.url, "".join(self.lines)
        self.base = self.url.rsplit("/", 1)[0]

    def stop(self) -> tuple[str, str]:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        return out, "".join(self.lines)


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    store = tmp_path_factory.mktemp("cb") / "hooks.sqlite"
    r = Receiver(store)
    r.store = store  # type: ignore[attr-defined]
    yield r
    out, err = r.stop()
    assert not _leaks(out + err)


def _kept(store: Path) -> list[dict]:
    with Store(store) as s:
        return CallbackTable(s).rows()


def _raw_http(port: int, head: bytes, chunks: list[bytes] = ()) -> bytes:  # type: ignore[assignment]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        for c in chunks:
            s.sendall(c)
        data = b""
        while b"\r\n\r\n" not in data:
            got = s.recv(65536)
            if not got:
                break
            data += got
    return data


# --- the CLI receiver: what it keeps and what it refuses ----------------------------------
def test_a_signed_delivery_is_kept_raw_and_a_retry_is_marked_duplicate(receiver) -> None:
    body = orjson.dumps(SUCCESS) + b"\n"
    headers = _signed(SUCCESS)  # signed once: a second later the signature differs
    for _ in range(2):
        r = requests.post(receiver.url, data=body, headers=headers, timeout=10)
        assert r.status_code == 200 and r.json() == {"code": 200, "msg": "success"}
    mine = [k for k in _kept(receiver.store) if k["task_id"] == SUCCESS["data"]["taskId"]]
    assert [k["duplicate"] for k in mine] == [False, True]
    assert mine[0]["body"] == body and mine[0]["signature_ok"] is True
    assert mine[0]["headers"]["x-webhook-signature"] == headers["X-Webhook-Signature"]
    assert abs(mine[0]["received_at"] - time.time()) < 600
    health = requests.get(receiver.base + "/health", timeout=10).json()
    assert health["status"] == "ok" and health["deliveries"] >= 2


def _stale(h: dict[str, str], seconds: float) -> dict[str, str]:
    ts = str(int(time.time() + seconds))
    return {**h, "X-Webhook-Timestamp": ts, "X-Webhook-Signature": _sig("t-rej", ts)}


REJECT_BODY = {"code": 200, "msg": "ok", "data": {"taskId": "t-rej"}}


@pytest.mark.parametrize(
    ("case", "status"),
    [
        pytest.param("forged", 401, id="forged-signature"),
        pytest.param("other-key", 401, id="signed-with-another-key"),
        pytest.param("no-signature", 401, id="missing-signature"),
        pytest.param("no-timestamp", 401, id="missing-timestamp"),
        pytest.param("stale", 401, id="stale-timestamp"),
        pytest.param("future", 401, id="future-timestamp"),
        pytest.param("not-json", 400, id="not-json"),
        pytest.param("no-task-id", 400, id="json-without-taskId"),
    ],
)
def test_rejected_deliveries_are_answered_and_never_stored(receiver, case, status) -> None:
    h = _signed(REJECT_BODY)
    body = orjson.dumps(REJECT_BODY)
    if case == "forged":
        h["X-Webhook-Signature"] = base64.b64encode(b"x" * 32).decode()
    elif case == "other-key":
        h = _signed(REJECT_BODY, key="another-key")
    elif case == "no-signature":
        del h["X-Webhook-Signature"]
    elif case == "no-timestamp":
        del h["X-Webhook-Timestamp"]
    elif case == "stale":
        h = _stale(h, -301)
    elif case == "future":
        h = _stale(h, +301)
    elif case == "not-json":
        body = b'{"code":200,"data":{"taskId":"t-rej"},}'  # a docs example's trailing comma
    else:
        body = orjson.dumps({"code": 200, "data": {}})
    before = len(_kept(receiver.store))
    r = requests.post(receiver.url, data=body, headers=h, timeout=10)
    assert r.status_code == status
    assert len(_kept(receiver.store)) == before
    assert requests.get(receiver.base + "/health", timeout=10).status_code == 200


def test_an_oversized_body_is_refused_before_it_is_read(receiver) -> None:
    port = int(receiver.base.rsplit(":", 1)[1])
    before = len(_kept(receiver.store))
    head = (
        f"POST /callback HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
    ).encode()
    answer = _raw_http(port, head)  # not one byte of the body sent: answered anyway
    assert answer.startswith(b"HTTP/1.1 413")
    # no Content-Length (chunked): counted as it streams, refused past the limit
    h = _signed(REJECT_BODY)
    head = (
        "POST /callback HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in h.items())
        + "\r\n"
    ).encode()
    piece = b" " * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    answer = _raw_http(port, head, [chunk] * (MAX_BODY_BYTES // len(piece) + 1))
    assert answer.startswith(b"HTTP/1.1 413")
    assert len(_kept(receiver.store)) == before
    assert requests.get(receiver.base + "/health", timeout=10).status_code == 200


def test_only_post_on_the_path(receiver) -> None:
    assert requests.get(receiver.url, timeout=10).status_code == 405
    assert requests.post(receiver.base + "/elsewhere", data=b"{}", timeout=10).status_code == 404


def test_the_cli_refuses_to_start_without_a_key(tmp_path) -> None:
    store = tmp_path / "s.sqlite"
    proc = subprocess.run(
        [sys.executable, "-m", "veo_notebook", "callbacks", "--port", "0", "--store", str(store)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("veo-notebook: error:")
    assert "KIE_WEBHOOK_HMAC_KEY" in lines[0] and "--no-signature" in lines[0]
    assert not store.exists()


def test_the_cli_says_so_loudly_without_signatures_and_keeps_unsigned(tmp_path) -> None:
    store = tmp_path / "s.sqlite"
    r = Receiver(store, "--no-signature", key=None)
    try:
        resp = requests.post(r.url, data=orjson.dumps(FAILURE), timeout=10)
        assert resp.status_code == 200
    finally:
        _, err = r.stop()
    assert err.startswith("WARNING: --no-signature: callbacks are NOT verified")
    (row,) = _kept(store)
    assert row["signature_ok"] is None and row["task_id"] == "t-fail"


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path, receiver) -> None:
    port = receiver.base.rsplit(":", 1)[1]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "veo_notebook",
            "callbacks",
            "--port",
            port,
            "--store",
            str(tmp_path / "s.sqlite"),
        ],
        env=_env(KIE_WEBHOOK_HMAC_KEY=HOOK_KEY),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and f":{port}" in proc.stderr
    assert not _leaks(proc.stderr)


# --- the whole loop: simulator → receiver → store → audit ---------------------------------
LOOP = ["ok", "dropped", "duplicated", "delayed", "wrong_signature", "nonjson", "disagreeing"]


@pytest.fixture(scope="module")
def loop(tmp_path_factory) -> Iterator[dict]:
    """Tasks created through the simulator's generate endpoint with a callBackUrl, one per
    fault (and a 4K one), delivered into a receiver on a real port (the sim's clock)."""
    store_path = tmp_path_factory.mktemp("loop") / "loop.sqlite"
    watch = _HookWatch()
    logging.getLogger().addHandler(watch)
    sim = Simulator(SENTINEL_KEY, n_tasks=5, clock_speed=0, callback_key=HOOK_KEY).start()
    try:
        faults = [*LOOP, "ok", "ok"]
        sim.callbacks.script(faults)
        with Store(store_path) as st, callbacks.serve(st, key=HOOK_KEY, clock=sim.now) as url:
            ids = [
                create_task(
                    sim.base_url,
                    SENTINEL_KEY,
                    {
                        "prompt": f"a cat, take {i}",
                        "callBackUrl": url,
                        **({"resolution": "4k"} if i == len(faults) - 1 else {}),
                    },
                )
                for i in range(len(faults))
            ]
            # sim time is stepped to each delivery and retry (no sleeping on sim time)
            assert sim.callbacks.wait_idle(60, step=sim.advance)
            sim.advance(max(0.0, max(sim.task(t).complete_ts for t in ids) - sim.now()) + 1)
        client = Client(SENTINEL_KEY, base_url=sim.base_url)
        frame = fetch_records(
            [], client=client, store=store_path, from_callbacks=store_path, progress=False
        )
        everything = fetch_records(ids, client=client, progress=False)
        yield {
            "sim": sim,
            "ids": ids,
            "faults": dict(zip(ids, faults, strict=True)),
            "store": store_path,
            "frame": frame,
            "everything": everything,
            "watch": watch,
        }
    finally:
        sim.stop()
        logging.getLogger().removeHandler(watch)


class _HookWatch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.hits: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if _leaks(text):
            self.hits.append(text)


def test_the_simulator_draws_the_scripted_faults(loop) -> None:
    assert loop["sim"].callbacks.injected() == loop["faults"]
    assert set(CALLBACK_FAULTS) == {*LOOP}


def test_refused_deliveries_are_retried_on_kie_ais_schedule(loop) -> None:
    attempts = loop["sim"].callbacks.attempts()
    for fault, status in (("wrong_signature", 401), ("nonjson", 400)):
        tid = next(t for t, f in loop["faults"].items() if f == fault)
        mine = [a for a in attempts if a["task_id"] == tid]
        assert [a["attempt"] for a in mine] == [1, 2, 3, 4]
        assert {a["status"] for a in mine} == {status}
        offsets = [a["sent_at"] - mine[0]["sent_at"] for a in mine[1:]]
        assert all(o >= want for o, want in zip(offsets, RETRY_OFFSETS_S, strict=True))
    dropped = next(t for t, f in loop["faults"].items() if f == "dropped")
    assert not [a for a in attempts if a["task_id"] == dropped]


def test_the_audit_finds_exactly_the_injected_faults(loop) -> None:
    audit = callback_audit(loop["everything"], read_callbacks(loop["store"])).set_index("task_id")
    assert list(audit.index) == loop["ids"]
    for tid, fault in loop["faults"].items():
        row = audit.loc[tid]
        assert bool(row["has_record"]), tid
        if fault in ("dropped", "wrong_signature", "nonjson"):
            assert not row["callback_received"] and row["deliveries"] == 0
            assert row["disagreement"] == "no callback", fault
            continue
        assert row["callback_received"] and row["deliveries"] == (2 if fault == "duplicated" else 1)
        assert bool(row["agrees"]) is (fault != "disagreeing"), fault
        if fault == "disagreeing":
            assert row["disagreement"].startswith(("video:", "status:"))
        else:
            assert pd.isna(row["disagreement"])
        assert bool(row["first_delay_s"] >= DELAY_S) is (fault == "delayed"), (fault, row)


def test_read_callbacks_types_both_shapes_and_4k_credits(loop) -> None:
    cb = read_callbacks(loop["store"])
    assert str(cb["received_at"].dtype) == "datetime64[ns, UTC]"
    assert cb["signature_ok"].all() and cb["duplicate"].sum() == 1
    dup = next(t for t, f in loop["faults"].items() if f == "duplicated")
    assert cb.loc[cb["duplicate"], "task_id"].tolist() == [dup]
    ok = cb[cb["status"] == "success"]
    # a list of URLs, also where the body held the old string form "[http://…]"; the
    # simulator links to its own media host, as in its records
    assert all(
        len(u) >= 1 and u[0].startswith(("https://", "http://")) and u[0].endswith(".mp4")
        for u in ok["result_urls"]
    )
    four_k = loop["ids"][-1]
    assert cb.loc[cb["task_id"] == four_k, "credits"].tolist() == [120]
    assert cb.loc[cb["task_id"] != four_k, "credits"].isna().all()
    raw = cb["raw"].map(orjson.loads)
    assert (raw.map(lambda d: d["data"]["taskId"]) == cb["task_id"]).all()


def test_fetch_from_callbacks_takes_the_ids_the_receiver_saw(loop) -> None:
    seen = [
        t for t, f in loop["faults"].items() if f not in ("dropped", "wrong_signature", "nonjson")
    ]
    got = loop["frame"]["task_id"].tolist()
    assert sorted(got) == sorted(seen)
    assert got == callbacks.task_ids(loop["store"])  # in the order first received
    assert loop["frame"]["fetch_error"].isna().all()


def test_the_webhook_key_is_never_shown(loop) -> None:
    sim = loop["sim"]
    assert not loop["watch"].hits
    assert not _leaks(repr(sim) + repr(sim.callbacks) + repr(callbacks.WebhookKey(HOOK_KEY)))
    assert not _leaks(Path(loop["store"]).read_bytes())
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(callbacks.WebhookKey(HOOK_KEY))


def test_cli_fetch_from_callbacks(loop, monkeypatch, capsys) -> None:
    monkeypatch.setenv("KIE_API_KEY", SENTINEL_KEY)
    store = str(loop["store"])
    argv = ["fetch", "--from-callbacks", "--store", store, "--base-url", loop["sim"].base_url]
    assert main([*argv, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{len(loop['frame'])} tasks (") and SENTINEL_KEY not in out
    assert main(["fetch", "--no-progress", "--base-url", loop["sim"].base_url]) == 2
    assert "--from-callbacks" in capsys.readouterr().err


def test_cli_report_with_the_callback_audit(loop, tmp_path, capsys) -> None:
    out = tmp_path / "r.html"
    store = str(loop["store"])
    argv = ["report", "--store", store, "--callbacks", store, "--out", str(out), "--no-figures"]
    assert main(argv) == 0
    text = out.read_text(encoding="utf-8")
    assert "<h2>Callbacks</h2>" in text and "video: callback" in text
    assert main([*argv[:3], "--callbacks", str(tmp_path / "none.jsonl"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("veo-notebook: error: no callbacks file") and len(err.splitlines()) == 1


# --- the reader and the audit on their own ------------------------------------------------
def test_read_callbacks_from_a_jsonl_log(tmp_path) -> None:
    string_urls = orjson.loads(orjson.dumps(SUCCESS))
    string_urls["data"]["taskId"] = "t-str"
    string_urls["data"]["info"]["resultUrls"] = "[https://x/a.mp4, https://x/b.mp4]"
    lines = [
        orjson.dumps({**SUCCESS, "received_at": "2026-01-06T00:17:05Z"}),
        b"",
        orjson.dumps({"received_at": 1767658626, "body": FAILURE}),
        orjson.dumps(string_urls),
        orjson.dumps({**SUCCESS, "received_at": 1767658627000}),
    ]
    path = tmp_path / "hooks.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    cb = read_callbacks(path)
    assert cb["task_id"].tolist() == [
        SUCCESS["data"]["taskId"],
        "t-fail",
        "t-str",
        SUCCESS["data"]["taskId"],
    ]
    assert cb["status"].tolist() == ["success", "failed", "success", "success"]
    assert cb["code"].tolist() == [200, 501, 200, 200]
    assert cb["result_urls"].tolist()[1:3] == [[], ["https://x/a.mp4", "https://x/b.mp4"]]
    assert cb["duplicate"].tolist() == [False, False, False, True]
    assert cb["signature_ok"].isna().all()
    when = cb["received_at"]
    assert when[0] == pd.Timestamp("2026-01-06T00:17:05Z") and pd.isna(when[2])
    assert when[1] == pd.Timestamp(1767658626, unit="s", tz="UTC")
    assert when[3] == pd.Timestamp(1767658627, unit="s", tz="UTC")
    assert callbacks.task_ids(path) == [SUCCESS["data"]["taskId"], "t-fail", "t-str"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(b'{"code":200}\n', ":1 has no data.taskId", id="no-task-id"),
        pytest.param(b'\n{"code":200,\n', ":2 is not JSON", id="not-json"),
        pytest.param(b"[1]\n", ":1 is not a JSON object", id="not-an-object"),
        pytest.param(
            b'{"data":{"taskId":"t"},"received_at":"soon"}\n', "received_at", id="bad-time"
        ),
    ],
)
def test_a_bad_jsonl_line_is_named(tmp_path, text, message) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(text)
    with pytest.raises(InputError, match=message):
        read_callbacks(path)


def test_a_missing_file_is_an_input_error_and_not_created(tmp_path) -> None:
    with pytest.raises(InputError, match="no callbacks file"):
        read_callbacks(tmp_path / "nope.sqlite")
    assert not (tmp_path / "nope.sqlite").exists()


def test_audit_without_a_record_and_a_pending_task_without_a_callback(tmp_path) -> None:
    from veo_notebook import to_frame

    rec = {
        "code": 200,
        "msg": "success",
        "data": {
            "taskId": "t-fail",
            "successFlag": 3,
            "errorCode": 501,
            "errorMessage": "Generation failed",
            "createTime": "2026-01-06T00:10:00Z",
            "completeTime": "2026-01-06T00:17:00Z",
        },
    }
    pending = {"code": 200, "msg": "success", "data": {"taskId": "t-pend", "successFlag": 0}}

    def done(tid: str, hook: str | None) -> dict:
        params = orjson.dumps({"prompt": "x", **({"callBackUrl": hook} if hook else {})})
        data = {"taskId": tid, "successFlag": 1, "paramJson": params.decode()}
        return {"code": 200, "msg": "success", "data": data}

    quiet = [done("t-none", None), done("t-mine", "https://hooks.example/cb")]
    quiet.append(done("t-other", "https://elsewhere.example/cb"))
    frame = to_frame([rec, pending, *quiet])
    path = tmp_path / "h.jsonl"
    path.write_bytes(
        orjson.dumps({**FAILURE, "received_at": "2026-01-06T00:17:03Z"})
        + b"\n"
        + orjson.dumps(SUCCESS)
        + b"\n"
    )
    audit = callback_audit(frame, path).set_index("task_id")
    assert list(audit.index) == [
        "t-fail",
        "t-pend",
        "t-none",
        "t-mine",
        "t-other",
        SUCCESS["data"]["taskId"],
    ]
    missing = audit["disagreement"] == "no callback"
    assert audit.index[missing.fillna(False)].tolist() == ["t-mine", "t-other"]  # asked for one
    mine = callback_audit(frame, path, expect="https://hooks.example/cb").set_index("task_id")
    assert mine.index[(mine["disagreement"] == "no callback").fillna(False)].tolist() == ["t-mine"]
    fail = audit.loc["t-fail"]
    assert (
        bool(fail["agrees"])
        and fail["first_delay_s"] == 3.0
        and fail["status"] == "generation_failed"
    )
    pend = audit.loc["t-pend"]
    assert pd.isna(pend["disagreement"]) and pd.isna(pend["agrees"]) and pend["deliveries"] == 0
    orphan = audit.loc[SUCCESS["data"]["taskId"]]
    assert orphan["disagreement"] == "no record" and not orphan["has_record"]
    assert pd.isna(orphan["first_delay_s"])


def test_the_simulator_posts_only_to_loopback(sim) -> None:
    assert check_url("http://[::1]:9/cb") is None and check_url("http://localhost:9/cb") is None
    for url in ("http://10.0.0.1/cb", "https://example.com/cb", "ftp://127.0.0.1/cb", 7):
        assert check_url(url) is not None
    with pytest.raises(ValueError, match="loopback"):
        create_task(sim.base_url, SENTINEL_KEY, {"prompt": "x", "callBackUrl": "http://8.8.8.8/"})
