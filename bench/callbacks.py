"""Callback receiver latency: how long ``veo-notebook callbacks`` takes to answer a delivery.

kie.ai waits 15 s for the answer, then retries. The receiver answers after verifying the
signature and committing the delivery to the store (one short SQLite transaction). This
starts the real CLI in a subprocess on a free loopback port and POSTs ``--n`` signed
deliveries, one after another over one keep-alive connection, then ``--n`` more from
``--threads`` threads at once (a burst of retries), and prints the answer-time
percentiles; every delivery must be kept.

    .venv/bin/python bench/callbacks.py            # 2,000 + 2,000 deliveries
    .venv/bin/python bench/callbacks.py --quick    # 200 + 200
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import orjson
import requests

from veo_notebook import Store
from veo_notebook.callbacks import CallbackTable

KEY = "bench-webhook-key"


def _delivery(i: int) -> tuple[bytes, dict[str, str]]:
    tid = f"{i:032x}"
    body = orjson.dumps(
        {
            "code": 200,
            "msg": "Veo3.1 video generated successfully.",
            "data": {
                "taskId": tid,
                "info": {"resultUrls": [f"https://tempfile.aiquickdraw.com/v/{tid}.mp4"]},
                "fallbackFlag": False,
            },
        }
    )
    ts = str(int(time.time()))
    mac = hmac.new(KEY.encode(), f"{tid}.{ts}".encode(), hashlib.sha256).digest()
    return body, {
        "Content-Type": "application/json",
        "X-Webhook-Timestamp": ts,
        "X-Webhook-Signature": base64.b64encode(mac).decode(),
    }


def _start(store: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "KIE_WEBHOOK_HMAC_KEY": KEY}
    cmd = [sys.executable, "-m", "veo_notebook", "callbacks", "--port", "0", "--store", str(store)]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "receiving on " in line:
            url = line.split("receiving on ", 1)[1].split(" ", 1)[0]
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, url
    raise RuntimeError("the receiver did not start")


def _post(session: requests.Session, url: str, i: int) -> float:
    body, headers = _delivery(i)
    t = time.perf_counter()
    r = session.post(url, data=body, headers=headers, timeout=15)
    took = time.perf_counter() - t
    assert r.status_code == 200, r.text
    return took


def _row(name: str, times: list[float], wall: float) -> str:
    ms = np.array(times) * 1000
    p50, p99 = np.percentile(ms, [50, 99])
    return f"| {name} | {len(ms)} | {p50:.1f} | {p99:.1f} | {ms.max():.1f} | {len(ms) / wall:.0f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 200 if args.quick else args.n
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "hooks.sqlite"
        proc, url = _start(store)
        try:
            with requests.Session() as s:
                _post(s, url, 10**9)  # warm-up, not counted
                t0 = time.perf_counter()
                seq = [_post(s, url, i) for i in range(n)]
                seq_wall = time.perf_counter() - t0
            local = threading.local()

            def one(i: int) -> float:
                if not hasattr(local, "s"):
                    local.s = requests.Session()
                return _post(local.s, url, n + i)

            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.threads) as pool:
                burst = list(pool.map(one, range(n)))
            burst_wall = time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait(30)
        with Store(store) as st:
            kept = CallbackTable(st).count()
    assert kept == 2 * n + 1, (kept, 2 * n + 1)
    print("| run | deliveries | p50 ms | p99 ms | max ms | deliveries/s |")
    print("|---|---|---|---|---|---|")
    print(_row("one connection, in turn", seq, seq_wall))
    print(_row(f"{args.threads} threads at once", burst, burst_wall))
    print(f"\nkept {kept} of {kept} deliveries (kie.ai's timeout: 15,000 ms)")


if __name__ == "__main__":
    main()
