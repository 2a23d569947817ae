"""Deliberate duplicate submissions in the corpus: a client that timed out and sent the
same generate request again (private).

kie.ai bills both: the first task goes on rendering and succeeds. With
``resubmit_share`` > 0 the simulator turns that share of a block's generate tasks (those
no other task depends on) into re-submissions of another generate task of the block: the
same ``paramJson``, created 20 s to 10 min after it, rendering as long and ending the
same way. Ids and positions do not change; with the default share of 0 nothing does.
"""

from __future__ import annotations

import random

import orjson

from ._blocks import Task

__all__ = ["MAX_DELAY_S", "MIN_DELAY_S", "resubmit"]

MIN_DELAY_S = 20.0  # a client timeout, then a retry
MAX_DELAY_S = 600.0  # well inside analysis' default 15-minute window


def _copy(original: Task, slot: Task, delay: float) -> Task:
    create = round(original.create_ts + delay, 3)
    complete = round(original.complete_ts + delay, 3)
    response = None
    if original.response is not None:
        old_stem = f"{original.task_id[4:]}_{int(original.complete_ts)}"
        new_stem = f"{slot.task_id[4:]}_{int(complete)}"
        text = orjson.dumps(original.response).decode()
        text = text.replace(old_stem, new_stem).replace(original.task_id, slot.task_id)
        response = orjson.loads(text)
    return original._replace(
        task_id=slot.task_id,
        position=slot.position,
        create_ts=create,
        complete_ts=complete,
        response=response,
        time_format=slot.time_format,
    )


def resubmit(tasks: list[Task], *, seed: int, block: int, share: float, now: float) -> list[Task]:
    """``tasks`` with ``share`` of the generate tasks made re-submissions (deterministic)."""
    if share <= 0:
        return tasks
    rng = random.Random(f"{seed}:resubmit:{block}")
    parents = {t.parent_id for t in tasks if t.parent_id}
    generate = [i for i, t in enumerate(tasks) if t.task_type == "generate"]
    free = [i for i in generate if tasks[i].task_id not in parents]
    out = list(tasks)
    taken: set[int] = set()
    for j in free:
        if rng.random() >= share or j in taken:
            continue
        k = rng.choice(generate)
        delay = rng.uniform(MIN_DELAY_S, MAX_DELAY_S)
        if k == j or k in taken or tasks[k].create_ts + delay > now:
            continue
        out[j] = _copy(tasks[k], tasks[j], delay)
        taken.update((j, k))
    return out
