"""Start JupyterLab on loopback for browser tests (the recipe proven on this machine).

Lab runs from this venv's Python with a fixed token, HOME in a temp dir (Jupyter,
IPython, matplotlib and Chromium write their dotfiles there), the news popup off and
no update check, in its own process group so that stopping it also ends its kernels.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: its base URL, token, notebook dir and HOME."""

    url: str
    token: str
    root: Path
    home: Path
    pid: int

    def api(self, method: str, path: str) -> requests.Response:
        """Call Lab's REST API (``/api/...``) with the token."""
        return requests.request(
            method,
            f"{self.url}{path}",
            headers={"Authorization": f"token {self.token}"},
            timeout=10,
        )

    def start_kernel(self, notebook: str) -> None:
        """Start the notebook's kernel now (Lab attaches to it when the page opens it)."""
        body = {"path": notebook, "type": "notebook", "kernel": {"name": "python3"}}
        requests.post(
            f"{self.url}/api/sessions",
            json=body,
            headers={"Authorization": f"token {self.token}"},
            timeout=30,
        ).raise_for_status()

    def delete_sessions(self) -> None:
        """Shut down every session (and its kernel) Lab holds."""
        for s in self.api("GET", "/api/sessions").json():
            self.api("DELETE", f"/api/sessions/{s['id']}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_lab(root: Path, home: Path, *, timeout: float = 60.0) -> Iterator[Lab]:
    """Run JupyterLab serving ``root`` until the block ends (then kill its process group)."""
    home.mkdir(parents=True, exist_ok=True)
    labconfig = home / ".jupyter" / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    port, token = _free_port(), "veo-viewer-test-token"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "KIE_"))}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    log = open(home / "lab.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
            "--ip=127.0.0.1", f"--port={port}", f"--ServerApp.root_dir={root}",
            f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--ServerApp.port_retries=0",
        ],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    lab = Lab(f"http://127.0.0.1:{port}", token, root, home, proc.pid)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {(home / 'lab.log').read_text()[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                if lab.api("GET", "/api/status").ok:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("jupyter lab did not answer /api/status")
            time.sleep(0.25)
        yield lab
    finally:
        with contextlib.suppress(Exception):
            lab.delete_sessions()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # kernels left in the group
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
