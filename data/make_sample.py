"""Regenerate the sample data in this folder, deterministically, from the simulator.

    .venv/bin/python data/make_sample.py   # data/sample_ids.txt, data/sample_tasks.parquet

The simulator's corpus is seeded and its clock frozen at a fixed instant (clock_speed=0),
so every run writes the same 3,000 task ids and the same typed frame: 16 days of tasks
(every model, generation type and task type; failures with the real error codes and
messages; a share still generating; the oldest past the API's 14 days, so unread, with
``fetch_error`` "422 Temporarily supports records within 14 days.").

The records are taken from the simulator without HTTP (``Simulator.record``) and given to
``to_frame`` as store rows, exactly as ``fetch_records`` would after fetching them.
``sample_ids.txt`` holds the same ids (index order) for trying ``veo-notebook fetch``
against ``veo-notebook simulate --seed 0 --n-tasks 3000``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson

import veo_notebook as veo
from veo_notebook import simulator

HERE = Path(__file__).resolve().parent
SEED = 0
N_TASKS = 3000
SPAN_DAYS = 16.0
PENDING_SHARE = 0.04
#: Sim "now" (and the fetch time of every record): 2026-03-01 00:00:00 UTC.
FROZEN_AT = 1772323200.0


def sample_frame(n_tasks: int = N_TASKS, seed: int = SEED):  # type: ignore[no-untyped-def]
    """The sample's typed frame (deterministic)."""
    sim = simulator.Simulator(
        seed=seed,
        n_tasks=n_tasks,
        clock_speed=0.0,
        start_time=FROZEN_AT,
        span_days=SPAN_DAYS,
        pending_share=PENDING_SHARE,
    )
    rows = []
    for task_id in sim.task_ids():
        envelope = sim.record(task_id)
        code = envelope.get("code")
        error = None if code == 200 else f"{code} {envelope.get('msg')}"
        raw = orjson.dumps(envelope).decode()
        rows.append({"task_id": task_id, "raw": raw, "fetched_at": FROZEN_AT, "fetch_error": error})
    return veo.to_frame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder (default: data/)")
    args = parser.parse_args()
    df = sample_frame()
    args.out.mkdir(parents=True, exist_ok=True)
    ids = args.out / "sample_ids.txt"
    ids.write_text("".join(f"{t}\n" for t in df["task_id"]), encoding="utf-8")
    parquet = args.out / "sample_tasks.parquet"
    veo.to_parquet(df, parquet)
    counts = df["status"].value_counts(dropna=False).to_dict()
    print(f"wrote {ids} and {parquet}: {len(df)} tasks {counts}")


if __name__ == "__main__":
    main()
