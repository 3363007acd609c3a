"""A backfill judges a drift monitor over its whole range in one call: it must give every
partition the verdict a call for that partition alone gives (backtest == live), across a
missing day, a gap longer than the history window and an accepted new normal."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from monitors.contract import infer_contract
from monitors.intake.profile import profile_table
from monitors.judge.baselines import Baselines, Marker
from monitors.judge.evaluate import MetricHistory, evaluate_metric, metrics_read_by
from monitors.judge.plan import plan_monitors

FIRST = dt.date(2025, 1, 1)


def _day(index: int) -> pd.DataFrame:
    rng = np.random.default_rng(index)
    rows = 400
    drifted = 20 <= index < 23 or index >= 225  # a spell of drift, and a new level that stays
    return pd.DataFrame({
        "amount": rng.lognormal(3.0 + (0.8 if drifted else 0.0), 0.4, rows).round(2),
        "age": rng.integers(18, 90, rows),
        "channel": rng.choice(["web", "shop", "phone"], rows,
                              p=[0.2, 0.3, 0.5] if drifted else [0.5, 0.3, 0.2]),
    })


def test_a_ranged_drift_gives_each_partition_the_verdict_of_its_own_call():
    # 32 days, a missing day, then nothing for 190 days (longer than the 182-day window),
    # then 12 more: the partitions after the gap read fewer predecessors than the range has
    indexes = [i for i in range(32) if i != 12] + list(range(220, 232))
    contract = infer_contract(pa.Table.from_pandas(_day(0), preserve_index=False).schema)
    specs = [s for s in plan_monitors("data", contract, None) if s.detector == "drift"]
    assert {s.metric for s in specs} == {"quantiles", "freq"}
    rows = []
    for i in indexes:
        day = FIRST + dt.timedelta(days=i)
        table = pa.Table.from_pandas(_day(i), preserve_index=False)
        rows += [(pd.Timestamp(day), m.column, m.metric, m.key, m.value)
                 for m in profile_table(table.cast(contract.arrow_schema()),
                                        categorical=contract.categorical())]
    frame = pd.DataFrame(rows, columns=["partition", "column", "metric", "key", "value"])
    frame = frame[frame["metric"].isin(metrics_read_by(specs))]
    # a person accepted the amounts' new level on the third day of the spell
    baselines = Baselines([Marker("amount", "quantiles", FIRST + dt.timedelta(days=21), "ops", None, None)])
    start, end = FIRST + dt.timedelta(days=3), FIRST + dt.timedelta(days=231)
    ranged = MetricHistory(frame, window_days=182, baselines=baselines, span=(start, end))
    alone = MetricHistory(frame, window_days=182, baselines=baselines)
    fired = 0
    for partition in pd.date_range(start, end, freq="D").date:
        if pd.Timestamp(partition) not in set(frame["partition"]):
            continue
        for spec in specs:
            expected = evaluate_metric(spec, alone, partition)
            assert evaluate_metric(spec, ranged, partition) == expected, (spec.name, partition)
            fired += expected.finding is not None
    assert ranged._ranged, "the range path was not taken"
    assert fired > 0  # findings are compared too, not only quiet days
