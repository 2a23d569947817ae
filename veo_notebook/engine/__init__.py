"""One analysis, several engines: where the aggregates of a statistic are computed.

Every analysis function (:mod:`veo_notebook.analysis`) splits its statistic in two:

1. an **aggregate** an engine computes over the source — counts, exact sums, maxima,
   the values at the ranks an interval needs, event-time counts for Kaplan–Meier, a
   bounded set of rows — returned as a small table;
2. one **finishing step** in pandas on that table (intervals, Kaplan–Meier, labels),
   shared by every engine.

So pandas, DuckDB and Spark give identical numbers by construction: engines only count,
sum exactly and pick order statistics; every formula on top is the same code.

>>> from veo_notebook import engine
>>> engine.resolve(df).name                                   # doctest: +SKIP
'pandas'
>>> engine.resolve("history/", engine="duckdb").name          # doctest: +SKIP
'duckdb'

The user's guide is ``docs/engines.md``.
"""

from __future__ import annotations

from ._base import Engine
from ._source import ENGINES, PANDAS_MAX_ROWS, is_spark_frame, resolve

__all__ = ["ENGINES", "PANDAS_MAX_ROWS", "Engine", "is_spark_frame", "resolve"]
