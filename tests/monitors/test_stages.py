"""Stages as an operator sees them: a partition with a critical alert (its own or an
upstream's) holds its stages, which run by themselves once the gate releases (resolve,
override with a reason); a failing stage is retried then failed with its exit code and log;
a timeout kills it; a worker SIGKILLed mid-stage leaves a stage that the next worker runs
again, and the outbox holds each partition once."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import func, select

from monitors.cli import main
from monitors.config import ConfigError, parse_config
from monitors.lifecycle.alerts import resolve
from monitors.pipeline.stages import list_stages, plan_stages, run_due_stages
from monitors.pipeline.worker import Worker
from store.models import StageAction
from tests.monitors.lineage_store import add_lineage
from tests.monitors.signals import NOW, alerts, day, fires, record

# appends its partition to a file once, atomically (read, add, write a temporary file,
# rename): the contract a stage's outputs keep, so running it twice changes nothing
APPEND = """\
import os, sys, time
out, partition = sys.argv[1], sys.argv[2]
with open("starts.txt", "a") as f:
    f.write(f"{os.environ['MONITORS_DATASET']} {os.environ['MONITORS_PARTITION']} {out}\\n")
time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 0)
lines = open(out).read().split() if os.path.exists(out) else []
if partition not in lines:
    with open(out + ".tmp", "w") as f:
        f.write("\\n".join(lines + [partition]) + "\\n")
    os.replace(out + ".tmp", out)
print("wrote", partition, "to", out)
"""
FAIL = "import sys\nprint('boom: the model file is missing')\nsys.exit(3)\n"


def configure(settings, stages: str) -> None:
    """A config declaring customers, and sales built from it with `stages` (YAML lines)."""
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    (home / "append.py").write_text(APPEND)
    (home / "fail.py").write_text(FAIL)
    (home / "monitors.yaml").write_text(textwrap.dedent("""\
        datasets:
          - {name: customers, format: csv, source: landing/customers}
          - name: sales
            format: csv
            source: landing/sales
            upstream: [customers]
            stages:
        """) + textwrap.indent(textwrap.dedent(stages).replace("PY", sys.executable), "      "))


TWO_STAGES = """\
- {name: score, run: "PY append.py scores.txt {partition}"}
- {name: deliver, run: "PY append.py outbox.txt {partition}", timeout: 1m}
"""


def plan(sessions, settings, dataset_id, partition):
    """What a run does once it has verified the partition."""
    from monitors.config import load_config

    with sessions.begin() as session:
        plan_stages(session, load_config(settings.config_path, settings), dataset_id, [partition],
                    now=NOW)


def states(sessions, dataset="sales", partition=None):
    with sessions() as session:
        return {s["stage"]: s for s in list_stages(session, dataset, partition)}


def run_stages(sessions, settings):
    return run_due_stages(sessions, settings, worker_id="test")


def lines(path):
    return path.read_text().split() if path.exists() else []


def wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def test_a_bad_stage_is_a_config_error_naming_the_dataset_and_the_stage():
    base = "datasets:\n  - name: sales\n    format: csv\n    source: s\n    stages:\n"
    cases = {
        "      - {name: score, run: a}\n      - {name: score, run: b}\n": "declared twice",
        "      - {name: score, run: 'python s.py {day}'}\n": "unknown placeholder {day}",
        "      - {name: score, run: a, timeout: soon}\n": "timeout 'soon'",
        "      - {name: score, run: ''}\n": "run is empty",
        "      - {name: score, run: a, when: never}\n": "when",
    }
    for stages, problem in cases.items():
        with pytest.raises(ConfigError) as refused:
            parse_config(base + stages)
        assert "dataset 'sales'" in str(refused.value) and "'score'" in str(refused.value)
        assert problem in str(refused.value)
    config = parse_config(base + "      - {name: score, run: 'python s.py {partition} {dataset}', "
                                 "timeout: 30m, retries: 1}\n")
    (stage,) = config.dataset("sales").stages
    assert stage.timeout_seconds == 1800 and stage.retries == 1
    assert stage.argv(partition=day(1), dataset="sales") == ["python", "s.py", day(1).isoformat(), "sales"]


@pytest.mark.parametrize("holder", ["customers", "sales"])  # the upstream's alert, or its own
def test_a_held_stage_does_not_run_and_runs_on_the_worker_poll_once_the_alert_is_resolved(
        settings, sessions, holder, capsys):
    ids = add_lineage(sessions)
    configure(settings, TWO_STAGES)
    record(sessions, [fires(ids[holder], day(1), severity="critical")])
    (alert,) = alerts(sessions)
    plan(sessions, settings, ids["sales"], day(1))
    plan(sessions, settings, ids["sales"], day(2))  # another partition: not held

    held = states(sessions, partition=day(1))
    assert [(s["state"], s["held_by"]) for s in held.values()] == [("held", alert["id"])] * 2
    assert main(["stages", "list", "--dataset", "sales", "--date", str(day(1)), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)  # one JSON document, nothing else
    assert [(s["stage"], s["state"], s["held_by"]) for s in listed] == [
        ("score", "held", alert["id"]), ("deliver", "held", alert["id"])]
    assert main(["stages", "list", "--dataset", "sales", "--date", str(day(1))]) == 0
    assert f"held by #{alert['id']}" in capsys.readouterr().out
    run_stages(sessions, settings)
    assert lines(settings.home / "outbox.txt") == [day(2).isoformat()]
    assert states(sessions, partition=day(1))["score"]["state"] == "held"

    worker = Worker(sessions, settings, schedules=False, poll_interval=0.1, held_stages_every=0.5)
    worker.start()
    try:
        with sessions.begin() as session:
            resolve(session, alert["id"], by="bo", resolution="fixed", now=NOW)
        wait_for(lambda: states(sessions, partition=day(1))["deliver"]["state"] == "succeeded")
    finally:
        worker.stop(timeout=10)
    assert sorted(lines(settings.home / "outbox.txt")) == [day(1).isoformat(), day(2).isoformat()]
    done = states(sessions, partition=day(1))
    assert done["score"]["held_by"] is None and done["score"]["exit_code"] == 0
    assert done["score"]["inputs"] == {"customers": f"{ids['customers']}-{day(1)}",
                                       "sales": f"{ids['sales']}-{day(1)}"}


def test_an_override_needs_a_reason_and_then_lets_the_held_stages_run(settings, sessions, capsys):
    ids = add_lineage(sessions)
    configure(settings, TWO_STAGES)
    record(sessions, [fires(ids["customers"], day(1), severity="critical")])
    (alert,) = alerts(sessions)
    plan(sessions, settings, ids["sales"], day(1))
    before = states(sessions)

    for reason in ([], ["--reason", "  "]):
        assert main(["stages", "override", "--dataset", "sales", "--date", str(day(1)),
                     "--by", "alice", *reason]) == 2
        assert "reason" in capsys.readouterr().err
    assert states(sessions) == before  # nothing changed
    with sessions() as session:
        assert session.scalar(select(func.count(StageAction.id))) == 0
    run_stages(sessions, settings)
    assert not (settings.home / "outbox.txt").exists()

    assert main(["stages", "override", "--dataset", "sales", "--date", str(day(1)), "--by",
                 "alice", "--reason", "vendor confirmed the drop is real", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["alert_ids"] == [alert["id"]]
    assert {s["state"] for s in document["stages"]} == {"overridden"}
    run_stages(sessions, settings)
    assert lines(settings.home / "outbox.txt") == [day(1).isoformat()]
    assert {s["state"] for s in states(sessions).values()} == {"succeeded"}
    with sessions() as session:
        (action,) = session.scalars(select(StageAction)).all()
        assert (action.action, action.by, action.reason, action.alert_ids) == (
            "override", "alice", "vendor confirmed the drop is real", [alert["id"]])
    # the override let that alert past, not the next one
    record(sessions, [fires(ids["sales"], day(1), monitor="nulls", column="amount",
                            severity="critical")])
    assert main(["stages", "run", "--dataset", "sales", "--date", str(day(1)), "--by", "bo"]) == 0
    new = max(a["id"] for a in alerts(sessions))
    assert {(s["state"], s["held_by"]) for s in states(sessions).values()} == {("held", new)}


def test_a_failing_stage_is_retried_then_failed_with_its_exit_code_and_log(settings, sessions):
    ids = add_lineage(sessions)
    configure(settings, """\
        - {name: score, run: "PY fail.py", retries: 1}
        - {name: deliver, run: "PY append.py outbox.txt {partition}"}
        """)
    plan(sessions, settings, ids["sales"], day(1))
    run_stages(sessions, settings)

    score, deliver = states(sessions).values()
    assert (score["state"], score["attempts"], score["exit_code"]) == ("failed", 2, 3)
    assert "boom: the model file is missing" in score["log_tail"]
    assert "exit code 3" in score["note"]
    logs = sorted(p.name for p in (settings.home / "stages" / "sales" / day(1).isoformat()).iterdir())
    assert logs == ["score.1.log", "score.2.log"]
    assert deliver["state"] == "queued" and deliver["attempts"] == 0  # never after a failure
    assert not (settings.home / "outbox.txt").exists()
    assert run_stages(sessions, settings) == []  # a failed stage waits for a person


def test_a_stage_past_its_timeout_is_killed(settings, sessions):
    ids = add_lineage(sessions)
    configure(settings, '- {name: score, run: "PY append.py outbox.txt {partition} 60", timeout: 1s}\n')
    plan(sessions, settings, ids["sales"], day(1))
    started = time.monotonic()
    run_stages(sessions, settings)

    assert time.monotonic() - started < 15
    score = states(sessions)["score"]
    assert score["state"] == "failed" and score["exit_code"] == -signal.SIGKILL
    assert "timed out after 1s" in score["note"]
    assert not (settings.home / "outbox.txt").exists()


def test_a_worker_killed_mid_stage_leaves_it_to_the_next_worker_and_the_outbox_holds_it_once(
        settings, sessions):
    ids = add_lineage(sessions)
    configure(settings, """\
        - {name: score, run: "PY append.py scores.txt {partition}"}
        - {name: deliver, run: "PY append.py outbox.txt {partition} 3"}
        """)
    for n in (1, 2):
        plan(sessions, settings, ids["sales"], day(n))
    command = [sys.executable, "-m", "monitors", "worker", "--no-schedules",
               "--lease-seconds", "2", "--poll-seconds", "0.2"]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    first = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: states(sessions, partition=day(1))["deliver"]["state"] == "running")
        time.sleep(0.5)  # well inside its 3 s
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        first.kill()
    assert states(sessions, partition=day(1))["deliver"]["state"] == "running"  # as it died
    second = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: all(s["state"] == "succeeded" for n in (1, 2)
                             for s in states(sessions, partition=day(n)).values()), timeout=60)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=20)

    outbox = lines(settings.home / "outbox.txt")
    assert sorted(outbox) == [day(1).isoformat(), day(2).isoformat()]  # each partition once
    deliver = states(sessions, partition=day(1))["deliver"]
    assert deliver["attempts"] == 2 and "was lost mid-stage" in deliver["note"]
    starts = (settings.home / "starts.txt").read_text().splitlines()
    assert starts.count(f"sales {day(1)} outbox.txt") == 2  # it was started again


def test_a_run_files_the_stages_held_by_its_check_and_a_corrected_rerun_releases_them(
        settings, sessions, capsys):
    home = settings.home
    configure(settings, "")  # the helper scripts
    (home / "monitors.yaml").write_text(textwrap.dedent(f"""\
        datasets:
          - name: orders
            format: csv
            source: landing/orders
            contract:
              columns:
                - {{name: order_id, type: integer, nullable: false}}
                - {{name: amount, type: float}}
            checks:
              - {{check: in_range, column: amount, options: {{min: 0}}, severity: critical}}
            stages:
              - {{name: deliver, run: "{sys.executable} append.py outbox.txt {{partition}}"}}
        """))
    landing = home / "landing" / "orders"
    landing.mkdir(parents=True)
    partition = day(1).isoformat()
    (landing / f"orders_{partition}.csv").write_text("order_id,amount\n1,10.5\n2,-3.0\n3,7.25\n")
    run = ["run", "--dataset", "orders", "--date", partition, "--now"]

    assert main(run) == 0
    capsys.readouterr()
    (deliver,) = states(sessions, "orders").values()
    (alert,) = [a for a in alerts(sessions) if a["severity"] == "critical"]
    assert (deliver["state"], deliver["held_by"]) == ("held", alert["id"])
    assert not (home / "outbox.txt").exists()

    # the corrected delivery lands and the partition is run again: the check passes there,
    # the gate releases and the stage runs on the new batch
    corrected = landing / f"orders_{partition}.fixed.csv"
    corrected.write_text("order_id,amount\n1,10.5\n2,3.0\n3,7.25\n")
    os.utime(corrected, (time.time() + 5, time.time() + 5))  # delivered after the first
    assert main(run) == 0
    capsys.readouterr()
    (deliver,) = states(sessions, "orders").values()
    assert deliver["state"] == "succeeded" and deliver["held_by"] is None
    assert lines(home / "outbox.txt") == [partition]
    assert main(["batches", "list", "--dataset", "orders", "--json"]) == 0
    in_force = [b for b in json.loads(capsys.readouterr().out) if b["status"] == "ingested"]
    assert deliver["inputs"] == {"orders": in_force[0]["fingerprint"]}

    # the same data run again rebuilds nothing; a rerun from the stage does, once
    assert main(run) == 0
    assert main(["stages", "run", "--dataset", "orders", "--date", partition, "--by", "bo",
                 "--now"]) == 0
    capsys.readouterr()
    assert (home / "starts.txt").read_text().count("orders") == 2
    assert lines(home / "outbox.txt") == [partition]
    assert main(["stages", "run", "--dataset", "orders", "--date", partition, "--by", "bo",
                 "--from-stage", "score"]) == 2
    assert "no stage 'score'" in capsys.readouterr().err


def test_a_corrected_upstream_partition_rebuilds_the_stages_built_on_it_in_order(settings, sessions):
    from store.models import Batch

    ids = add_lineage(sessions)
    configure(settings, TWO_STAGES)
    plan(sessions, settings, ids["sales"], day(1))
    run_stages(sessions, settings)
    assert {s["state"] for s in states(sessions).values()} == {"succeeded"}

    plan(sessions, settings, ids["customers"], day(1))  # the same upstream data: nothing to do
    assert run_stages(sessions, settings) == []
    with sessions.begin() as session:  # a corrected customers batch is in force on day 1
        batch = session.scalar(select(Batch).where(Batch.dataset_id == ids["customers"],
                                                   Batch.partition == day(1)))
        batch.fingerprint = "corrected"
    plan(sessions, settings, ids["customers"], day(1))
    requeued = states(sessions)
    assert [s["state"] for s in requeued.values()] == ["queued", "queued"]
    assert "customers" in requeued["score"]["note"] and "corrected" in requeued["score"]["note"]
    run_stages(sessions, settings)
    rebuilt = states(sessions)
    assert [s["state"] for s in rebuilt.values()] == ["succeeded", "succeeded"]
    assert rebuilt["score"]["inputs"]["customers"] == "corrected"
    assert rebuilt["score"]["finished_at"] <= rebuilt["deliver"]["started_at"]  # in order
    assert lines(settings.home / "outbox.txt") == [day(1).isoformat()]  # still once


def test_a_skipped_stage_lets_the_next_one_run_and_needs_a_reason(settings, sessions, capsys):
    ids = add_lineage(sessions)
    configure(settings, """\
        - {name: score, run: "PY fail.py"}
        - {name: deliver, run: "PY append.py outbox.txt {partition}"}
        """)
    plan(sessions, settings, ids["sales"], day(1))
    run_stages(sessions, settings)
    skip = ["stages", "skip", "--dataset", "sales", "--date", str(day(1)), "--stage", "score",
            "--by", "alice"]
    assert main(skip) == 2 and states(sessions)["score"]["state"] == "failed"
    assert main([*skip, "--reason", "scored by hand"]) == 0
    run_stages(sessions, settings)
    assert [s["state"] for s in states(sessions).values()] == ["skipped", "succeeded"]
    assert lines(settings.home / "outbox.txt") == [day(1).isoformat()]


def test_a_stopping_worker_kills_its_stage_and_hands_it_back(settings, sessions):
    ids = add_lineage(sessions)
    configure(settings, '- {name: score, run: "PY append.py outbox.txt {partition} 60"}\n')
    plan(sessions, settings, ids["sales"], day(1))
    worker = Worker(sessions, settings, schedules=False, poll_interval=0.1)
    worker.start()
    try:
        wait_for(lambda: states(sessions)["score"]["state"] == "running")
    finally:
        started = time.monotonic()
        worker.stop(timeout=20)
    assert time.monotonic() - started < 10  # not the stage's 60 s
    score = states(sessions)["score"]
    assert score["state"] == "queued" and "handed back" in score["note"]
    assert not (settings.home / "outbox.txt").exists()
