"""A run: for a dataset and a range of partitions, land pending deliveries, evaluate every
enabled monitor over the history up to each partition, and turn verdicts into alerts.

Idempotent: the same inputs and config give the same verdicts and leave alerts unchanged.
A run records its stages' timings, log lines, progress, inputs' fingerprints and the
config and code versions.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from detectors.result import Finding
from monitors.catalog import (
    delivered_files,
    deliveries,
    infer_missing_contract,
    sync_datasets,
)
from monitors.config import ConfigError, MonitorsConfig
from monitors.config_versions import record_version
from monitors.contract import Contract
from monitors.errors import NotFound, Unreachable
from monitors.faults import kill_point
from monitors.intake.freshness import note_watching
from monitors.intake.ingest import ingest_file, ingest_sql
from monitors.judge.baselines import load_baselines
from monitors.judge.evaluate import (
    HISTORY_DAYS,
    MetricHistory,
    Verdict,
    evaluate_partition,
    history_since,
    metrics_read_by,
)
from monitors.judge.never_judged import never_judged
from monitors.judge.performance import judge_labels
from monitors.judge.plan import judged_in_own_run, plan_monitors
from monitors.judge.provenance import finding_record, judged_on
from monitors.judge.references import load_references
from monitors.lifecycle.alerts import Recorded, Signal, record_signals
from monitors.lifecycle.incidents import group_incidents
from monitors.lifecycle.notify import HttpSender, Sender, notify_config_from, notify_run
from monitors.pipeline.gates import refresh_gates
from monitors.pipeline.run_config import config_for_runs
from monitors.settings import Settings
from store import queries
from store.models import Dataset, DatasetKind, Run, RunStatus

ROOT = Path(__file__).resolve().parents[2]


@cache
def code_version() -> str:
    """The git commit when there is one, else a hash of the package sources."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=5)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    except OSError:
        pass
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("[dm]*/**/*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class RunLog:
    """Log lines and stage timings, kept on the run row."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.stages: dict[str, float] = {}

    def write(self, line: str) -> None:
        self.lines.append(f"{dt.datetime.now(dt.UTC):%H:%M:%S} {line}")

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = round(self.stages.get(name, 0.0) + time.perf_counter() - started, 4)


def execute_run(sessions: sessionmaker[Session], settings: Settings, run_id: int, *,
                should_stop: Callable[[], bool] = lambda: False,
                now: dt.datetime | None = None, notify: bool = True,
                sender: Sender | None = None) -> None:
    """Do the work of a run and set its final status. `now` is the wall clock unless given
    (the demo replays days). Failures are recorded on the run, never raised to the worker."""
    log = RunLog()
    with sessions.begin() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise NotFound(f"no run {run_id}")
        if run.status == RunStatus.queued:  # executed inline (`run --now`), not claimed
            run.status, run.claimed_by = RunStatus.running, "inline"
        run.started_at = run.started_at or dt.datetime.now(dt.UTC)
        run.code_version = code_version()
        try:
            config, config_version = config_for_runs(settings)
        except ConfigError as exc:  # a broken config fails the run with the file's own words
            run.status, run.error, run.finished_at = RunStatus.failed, str(exc), dt.datetime.now(dt.UTC)
            return
        run.config_version = config_version
        # a form of the config not seen before is kept (a hand edit of the file, at the latest
        # here): every run links to a version whose text can be shown, diffed and replayed
        config_number = record_version(session, config, settings).number
        dataset_id, trigger = run.dataset_id, run.trigger
        partitions = list(pd.date_range(run.partition_from, run.partition_to, freq="D").date)
        run.progress_total, run.progress_done = len(partitions), 0
    try:
        status, error, recorded = _execute(sessions, settings, config, config_version, run_id,
                                           dataset_id, partitions, log, should_stop, now,
                                           config_number=config_number)
        if status == RunStatus.succeeded:  # verified: file the stages that build on it
            from monitors.pipeline.stages import plan_stages

            with log.stage("plan stages"), sessions.begin() as session:
                plan_stages(session, config, dataset_id, partitions,
                            now=now or dt.datetime.now(dt.UTC))
        # a run stopped by an outage notifies too: its outage alert is news
        if notify and status != RunStatus.running:
            with log.stage("notify"), sessions.begin() as session:
                sent = notify_run(session, dataset=session.get(Dataset, dataset_id),
                                  recorded=recorded, backfill=trigger == "backfill",
                                  now=now or dt.datetime.now(dt.UTC),
                                  config=notify_config_from(config.notifications),
                                  sender=sender or HttpSender())
                log.write(f"notifications: {len(sent.sent)} sent, {len(sent.failed)} failed, "
                          f"{len(sent.skipped)} alert(s) kept quiet")
    except Exception as exc:  # the run fails with its reason; the worker goes on
        log.write(f"failed: {type(exc).__name__}: {exc}")
        status, error = RunStatus.failed, f"{type(exc).__name__}: {exc}"
    with sessions.begin() as session:
        run = session.get(Run, run_id)
        # still running = stopped midway: the worker re-queues it (it is idempotent)
        if status != RunStatus.running:
            run.status, run.error = status, error
            run.finished_at = dt.datetime.now(dt.UTC)
        run.stages = log.stages
        run.log = "\n".join(log.lines)


def _execute(sessions, settings, config: MonitorsConfig, config_version: str, run_id,
             dataset_id, partitions, log: RunLog, should_stop, now, *,
             config_number: int | None = None) -> tuple[str, str | None, Recorded]:
    with sessions.begin() as session:
        sync_datasets(session, config, settings.home)
        dataset = session.get(Dataset, dataset_id)
        note_watching(dataset, now or dt.datetime.now(dt.UTC))
        infer_missing_contract(settings, dataset, partitions)
        name, kind, file_format = dataset.name, dataset.kind, dataset.format
        # parsed once: ingestion and evaluation of every partition of the run use it; a
        # dataset with nothing delivered yet has no columns, only deliveries, to judge
        contract = Contract.model_validate(dataset.contract or {"columns": []})
        declared = config.dataset(name)
        specs = judged_in_own_run(plan_monitors(kind, contract, declared))
        owner = declared.owner if declared else None
    log.write(f"{name}: {len(partitions)} partition(s), {len(specs)} monitor(s)")
    # judged on the contract in force (inferred from a first batch, perhaps): never silent
    for line in never_judged(declared, contract) if declared else []:
        log.write(f"warning: {line}")
    inputs: dict[str, str] = {}
    findings: list[dict] = []  # what a replay compares its own findings to
    total = Recorded()
    asked, outage = list(partitions), None
    unreached: list[dt.date] = []
    with log.stage("ingest"):
        # the landing folder listed once for the range (a file landing after this is the
        # next run's); a year's backfill listed a year of files once per partition
        with sessions() as session:
            listed = (None if file_format == "sql" else
                      deliveries(settings, session.get(Dataset, dataset_id), set(partitions)))
        for index, partition in enumerate(partitions):
            try:
                with sessions.begin() as session:
                    for outcome in land_pending(
                            session, settings, session.get(Dataset, dataset_id), partition,
                            contract, listed=None if listed is None else listed.get(partition, [])):
                        log.write(f"{partition}: {outcome.status}"
                                  + (f" ({outcome.reason})" if outcome.reason else ""))
            except Unreachable as exc:
                # an outage, not bad data: nothing landed or quarantined, and this partition
                # and the rest of the range (the same source) are left to the next run
                outage, unreached = exc, partitions[index:]
                log.write(f"{partition}: {exc}; {len(unreached)} partition(s) not judged, "
                          "retried at the next run")
                partitions = partitions[:index]
                break
    with log.stage("history"), sessions() as session:
        references = load_references(session, dataset_id, declared)
        # the range as asked for (an outage may leave no partition to judge)
        since = min(history_since(asked[0]), references.earliest() or dt.date.max)
        history = MetricHistory(
            queries.read_metrics(session, dataset_id, until=asked[-1], since=since,
                                 metrics=sorted(metrics_read_by(specs))),
            window_days=HISTORY_DAYS, baselines=load_baselines(session, dataset_id),
            references=references, span=(partitions[0], partitions[-1]) if partitions else None)
    for done, partition in enumerate(partitions, start=1):
        if should_stop():
            log.write(f"stopped before {partition}: handed back to the worker")
            return RunStatus.running, None, total
        with sessions.begin() as session:
            dataset = session.get(Dataset, dataset_id)
            batch = queries.get_current_batch(session, dataset_id, partition)
            if batch is not None:
                inputs[partition.isoformat()] = batch.fingerprint
            clock = now or dt.datetime.now(dt.UTC)
            with log.stage("evaluate"):
                verdicts = evaluate_partition(session, dataset, contract, specs, history,
                                              partition, now)
            signals = [to_signal(dataset, v, owner, judged_on=judged_on(
                           v, history, config_version=config_number, config_hash=config_version,
                           code_version=code_version(),
                           fingerprint=batch.fingerprint if batch is not None else None)
                           if v.finding is not None else None)
                       for v in verdicts if not v.skipped]
            findings.extend(finding_record(v) for v in verdicts if v.finding is not None)
            if kind == DatasetKind.labels:  # the model outputs these labels resolve
                with log.stage("performance"):
                    signals += [to_signal(model, v, model_owner) for model, model_owner, v
                                in judge_labels(session, config, dataset, partition)
                                if not v.skipped]
            with log.stage("alerts"):
                recorded = record_signals(session, signals, now=now or dt.datetime.now(dt.UTC),
                                          config_version=config_version, run_id=run_id)
            with log.stage("incidents"):
                group_incidents(session, [*recorded.new, *recorded.reopened],
                                now=now or dt.datetime.now(dt.UTC))
                refresh_gates(session, dataset_id, partition, now=now or dt.datetime.now(dt.UTC))
            run = session.get(Run, run_id)
            run.progress_done, run.inputs = done, dict(inputs)
            run.findings, run.judged_at = list(findings), clock
            kill_point("alerts.writing")
            fired = sum(1 for v in verdicts if v.finding is not None)
            log.write(f"{partition}: {fired} finding(s); alerts new {len(recorded.new)}, "
                      f"updated {len(recorded.updated)}, resolved {len(recorded.resolved)}")
            # a monitor that could not judge says why (too little history, not due yet, ...)
            skipped = [f"{v.spec.name} ({v.skipped})" for v in verdicts if v.skipped]
            if skipped:
                log.write(f"{partition}: not judged: {'; '.join(skipped)}")
            total.merge(recorded)
    with sessions.begin() as session:
        dataset = session.get(Dataset, dataset_id)
        if dataset.format == "sql":
            # the outage's own alert opens on the first partition out of reach and resolves
            # once that partition (or a later one) is reached again
            signals = [outage_signal(dataset, p, None, owner) for p in partitions]
            if outage is not None:
                signals.append(outage_signal(dataset, unreached[0], outage, owner))
            total.merge(record_signals(session, signals, now=now or dt.datetime.now(dt.UTC),
                                       config_version=config_version, run_id=run_id))
    if outage is not None:
        return (RunStatus.failed, f"{outage}; partitions {unreached[0]} to {unreached[-1]} "
                "not judged, retried at the next run", total)
    return RunStatus.succeeded, None, total


OUTAGE_MONITOR = "source:unreachable"


def outage_signal(dataset: Dataset, partition: dt.date, outage: Unreachable | None,
                  owner: str | None) -> Signal:
    """The verdict of a SQL source's reachability for a partition: an outage alert (one
    per dataset, whatever the partitions it spans) when `outage`, else a pass that resolves it."""
    finding = None if outage is None else Finding(
        at=pd.Timestamp(partition), value=None, expected=None, lower=None, upper=None,
        score=0.0, detail=f"[outage] {outage} (not a verdict on the data: retried at the next run)")
    return Signal(dataset_id=dataset.id, monitor=OUTAGE_MONITOR, detector="source_unreachable",
                  column=None, severity="critical", partition=partition, finding=finding,
                  point=False, owner=owner,
                  evidence={"outage": str(outage)} if outage is not None else {})


def land_pending(session: Session, settings: Settings, dataset: Dataset, partition: dt.date,
                 contract: Contract | None = None, *, listed: list[Path] | None = None):
    """Ingest what was delivered for a partition (files named with its date, or the SQL
    partition). Already-landed content is a no-op, so this is safe to repeat. `contract`:
    the dataset's, parsed once by a run for all its partitions; `listed`: the partition's
    deliveries (monitors.catalog.deliveries), listed once by a run for all its partitions."""
    if dataset.format == "sql":
        return [ingest_sql(session, dataset, partition, contract=contract)]
    # only files inside the file roots, oldest delivery first (the latest ends up in force)
    return [ingest_file(session, dataset, path, partition, contract=contract,
                        limits=settings.limits)
            for path in (delivered_files(settings, dataset, partition) if listed is None else listed)]


def to_signal(dataset: Dataset, verdict: Verdict, owner: str | None = None, *,
              judged_on: dict | None = None) -> Signal:
    spec, finding = verdict.spec, verdict.finding
    evidence = dict(verdict.evidence or {})
    if spec.metric:
        evidence.setdefault("metric", spec.metric)
    if finding is not None:
        for name in ("before", "after", "count", "fraction"):
            if getattr(finding, name) is not None:
                evidence[name] = getattr(finding, name)
    return Signal(dataset_id=dataset.id, monitor=spec.name,
                  detector="monitor_failed" if verdict.failed else spec.detector,
                  column=spec.column, severity=spec.severity, partition=verdict.partition,
                  finding=finding, point=spec.point, owner=owner, evidence=evidence,
                  judged_on=judged_on)
