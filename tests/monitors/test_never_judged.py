"""A monitor or check that can never judge (a missing column, an unknown metric) is a
warning where a person looks: `config validate`, and the log of every run of its dataset."""
from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import yaml

from monitors.cli import main
from monitors.contract import Contract
from monitors.intake.profile import BatchProfiler
from monitors.judge import performance
from monitors.judge.never_judged import COLUMN_METRICS, KNOWN_METRICS, TABLE_METRICS
from tests.monitors import steps


def config_with_typos() -> dict:
    config = steps.config()
    config["datasets"][0]["monitors"] = [
        {"name": "nulls:incme", "metric": "null_fraction", "column": "incme",
         "detector": "absolute", "options": {"upper": 0.1}},
        {"name": "amount:avg", "metric": "average", "column": "amount", "detector": "absolute",
         "options": {"upper": 100}},
        {"name": "amount:mean", "metric": "mean", "column": "amount", "detector": "absolute",
         "options": {"upper": 1000}}]
    config["datasets"][0]["checks"] = [{"check": "not_null", "column": "chanel"}]
    return config


def test_config_validate_warns_of_monitors_that_can_never_judge(settings, tmp_path, capsys):
    path = tmp_path / "monitors.yaml"
    path.write_text(yaml.safe_dump(config_with_typos()))
    assert main(["config", "validate", str(path), "--json"]) == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert warnings == [
        "monitor nulls:incme on dataset orders: no column incme; columns are amount, channel, id",
        "monitor amount:avg on dataset orders: unknown metric average; metrics are "
        + warnings[1].split("metrics are ", 1)[1],
        "check not_null:chanel on dataset orders: no column chanel; columns are amount, channel, id"]
    assert "mean" in warnings[1] and "row_count" in warnings[1]
    assert main(["config", "validate", str(path)]) == 0
    said = capsys.readouterr().out
    assert "warning: monitor nulls:incme on dataset orders: no column incme" in said


def test_a_run_logs_each_monitor_that_can_never_judge(settings, sessions):
    config = config_with_typos()
    del config["datasets"][0]["contract"]  # the columns come from the first batch
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.config_path.write_text(yaml.safe_dump(config))
    day = steps.START
    steps.deliver(settings.home, day, 50)
    run = steps.run(sessions, settings, day, day, now=steps.live_morning(day))
    warned = [line.split(" ", 1)[1] for line in run.log.splitlines() if " warning: " in line]
    assert warned == [
        "warning: monitor nulls:incme on dataset orders: no column incme; columns are amount, channel, id",
        "warning: monitor amount:avg on dataset orders: unknown metric average; metrics are "
        + warned[1].split("metrics are ", 1)[1],
        "warning: check not_null:chanel on dataset orders: no column chanel; columns are amount, channel, id"]


def test_the_metric_list_holds_every_metric_that_is_stored():
    contract = Contract.model_validate(steps.CONTRACT)
    profiler = BatchProfiler(contract.arrow_schema(), categorical=contract.categorical())
    profiler.update(pa.table({"id": [1, 2, 3], "amount": [1.5, -2.0, 0.0],
                              "channel": ["web", "app", None]}))
    stored = {m.metric for m in profiler.metrics()}
    assert stored <= COLUMN_METRICS | TABLE_METRICS
    assert {*performance.SCALARS, *performance.BINNED, performance.SCORE_HISTOGRAM,
            *performance.ESTIMATES} <= KNOWN_METRICS
    assert "arrival_delay_hours" in TABLE_METRICS and dt  # stored by ingest beside the profile
