"""Subprocess entry point for the crash-safety trials (``bench/crash.py``, the tests).

    python tests/_crash_child.py BASE_URL STORE IDS_FILE [EVERY]

Fetches the ids (one per line) into the store with the key from ``KIE_API_KEY``; prints
``go`` when the fetch starts and ``n`` after every ``EVERY`` answers, so the parent can
SIGKILL it at a chosen moment of the run; ``done`` at the end.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    from veo_notebook.client import Client
    from veo_notebook.fetch import fetch_records

    base_url, store, ids_file = argv[:3]
    every = int(argv[3]) if len(argv) > 3 else 20
    with open(ids_file, encoding="utf-8") as f:
        ids = [line.rstrip("\n") for line in f if line.strip()]
    seen = 0

    def tick(_outcome: object) -> None:
        nonlocal seen
        seen += 1
        if seen % every == 0:
            sys.stdout.write(f"{seen}\n")
            sys.stdout.flush()

    with Client(base_url=base_url) as client:
        sys.stdout.write("go\n")
        sys.stdout.flush()
        fetch_records(ids, client=client, store=store, progress=False, on_update=tick)
    sys.stdout.write("done\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
