"""Archive throughput and crash safety: archive_videos vs a sequential ``requests.get`` loop.

    .venv/bin/python bench/archive.py            # 500 videos (about a minute)
    .venv/bin/python bench/archive.py --quick    # 200 videos

The simulator runs in its own process (``veo-notebook simulate``) on loopback, serving
real MP4 files (H.264 + AAC, made with PyAV, a few frames at the task's real size) with
``--latency`` seconds before each answer (a media host's time to first byte). Measured:

a. the same videos downloaded by a plain loop (``requests.get`` → write → SHA-256) and by
   ``archive_videos`` with 8 workers, with and without the PyAV probe: target ≥ 4×;
b. a run SIGKILLed mid-archive (once 30 % of the files are published), then a rerun
   with the same store: every file at a final name is whole (its SHA-256 is the served
   file's), and no file was sent more than twice (bytes the media host sent per task,
   over both runs, ≤ 2 × its size).

Timings are noisy on a shared machine; the ratio is what the target is about.
"""

from __future__ import annotations

import argparse
import hashlib
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import requests

import veo_notebook as veo
from veo_notebook.archive import ArchiveTable
from veo_notebook.frame import from_store
from veo_notebook.store import Store

KEY = "sk-bench-key-000000000000"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimProcess:
    """``veo-notebook simulate`` in a child process, driven through its admin routes."""

    def __init__(self, n_tasks: int, latency: float) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "veo_notebook", "simulate", "--port", str(self.port)]
        argv += ["--api-key", KEY, "--n-tasks", str(n_tasks), "--latency", str(latency)]
        self.proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                requests.get(self.base_url + "/_sim/stats", timeout=1).raise_for_status()
                return
            except requests.RequestException:
                time.sleep(0.05)
        raise RuntimeError("the simulator did not start")

    def ids(self, kind: str) -> list[str]:
        return requests.get(f"{self.base_url}/_sim/ids", params={"kind": kind}, timeout=30).json()

    def media(self, reset: bool = False) -> dict[str, Any]:
        if reset:
            requests.post(f"{self.base_url}/_sim/media", json={"reset": True}, timeout=30)
        return requests.get(f"{self.base_url}/_sim/media", timeout=30).json()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def sequential(urls: list[str], folder: Path) -> tuple[float, dict[str, str]]:
    """Seconds for a plain loop over ``urls``, and the SHA-256 of each body."""
    folder.mkdir(parents=True)
    digests = {}
    t0 = time.perf_counter()
    for i, url in enumerate(urls):
        r = requests.get(url, timeout=60)
        r.raise_for_status()
        (folder / f"{i}.mp4").write_bytes(r.content)
        digests[url] = hashlib.sha256(r.content).hexdigest()
    return time.perf_counter() - t0, digests


_CHILD = textwrap.dedent(
    """
    import sys, pandas as pd, veo_notebook as veo
    from veo_notebook.frame import from_store
    from veo_notebook.store import Store
    with Store(sys.argv[1]) as store:
        veo.archive_videos(from_store(store), sys.argv[2], store=store, progress=False)
    """
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=500, help="videos (default: %(default)s)")
    ap.add_argument("--quick", action="store_true", help="200 videos")
    ap.add_argument("--latency", type=float, default=0.05, help="seconds before each answer")
    ap.add_argument(
        "--kill-at", type=float, default=0.3, help="SIGKILL once this share is published"
    )
    args = ap.parse_args(argv)
    n = 200 if args.quick else args.n
    sim = SimProcess(n_tasks=max(1000, 2 * n), latency=args.latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            ids = sim.ids("success")[:n]
            client = veo.Client(KEY, base_url=sim.base_url)
            store = work / "s.sqlite"
            df = veo.fetch_records(ids, client=client, store=store, progress=False)
            urls = df["video_url"].tolist()
            # warm the simulator's file cache (made once per size and length), untimed
            veo.archive_videos(df, work / "warm", workers=8, progress=False, probe=False)

            seq_s, digests = sequential(urls, work / "seq")
            runs = {}
            for probe in (False, True):
                t0 = time.perf_counter()
                out = veo.archive_videos(
                    df, work / f"par{probe}", workers=8, progress=False, probe=probe
                )
                runs[probe] = time.perf_counter() - t0
                assert (
                    out["archive_error"].isna().sum()
                    + (out["archive_error"] == "unreadable media").sum()
                    == n
                )
            print(
                f"videos: {n}, media latency {args.latency * 1000:.0f} ms, "
                f"{sum(out['bytes'].fillna(0)) / 1e6:.1f} MB"
            )
            print(f"sequential requests.get loop: {seq_s:6.2f} s  ({n / seq_s:6.1f} videos/s)")
            for probe, secs in runs.items():
                label = "archive_videos, 8 workers" + (", probed" if probe else ", no probe")
                print(
                    f"{label:29s}: {secs:6.2f} s  ({n / secs:6.1f} videos/s)  {seq_s / secs:4.1f}x"
                )

            # b. SIGKILL mid-archive, then a rerun
            sizes = dict(zip(df["task_id"], out["bytes"], strict=True))
            dest = work / "killed"
            sim.media(reset=True)
            child = subprocess.Popen([sys.executable, "-c", _CHILD, str(store), str(dest)])
            while len(list(dest.rglob("*.mp4"))) < args.kill_at * n and child.poll() is None:
                time.sleep(0.01)  # mid-archive: once a share of the files is published
            child.send_signal(signal.SIGKILL)
            child.wait()
            finals = list(dest.rglob("*.mp4"))
            parts = list(dest.rglob("*.part"))
            with Store(store) as s:
                recorded = len(ArchiveTable(s).rows())
            bad = [
                p
                for p in finals
                if hashlib.sha256(p.read_bytes()).hexdigest() not in set(digests.values())
            ]
            print(
                f"SIGKILL mid-archive: {len(finals)} files at final names "
                f"({len(bad)} not whole), {len(parts)} .part files, {recorded} rows recorded"
            )
            t0 = time.perf_counter()
            with Store(store) as s:
                again = veo.archive_videos(from_store(s), dest, store=s, progress=False)
            rerun_s = time.perf_counter() - t0
            sent = sim.media()["by_task"]
            ratio = {t: sent.get(t, {"bytes": 0})["bytes"] / sizes[t] for t in ids}
            twice = sum(r > 1.0 for r in ratio.values())
            finals = list(dest.rglob("*.mp4"))
            bad = [
                p
                for p in finals
                if hashlib.sha256(p.read_bytes()).hexdigest() not in set(digests.values())
            ]
            print(
                f"rerun: {rerun_s:.2f} s, {again['archive_error'].isna().sum()} archived; "
                f"{len(finals)} files, {len(bad)} not whole, "
                f"{len(list(dest.rglob('*.part')))} .part files left"
            )
            print(
                f"bytes sent per file over both runs / its size: max {max(ratio.values()):.2f}"
                f" ({twice} files sent partly twice); target <= 2"
            )
            ok = seq_s / runs[True] >= 4 and not bad and max(ratio.values()) <= 2.0
            return 0 if ok else 1
    finally:
        sim.stop()


if __name__ == "__main__":
    sys.exit(main())
