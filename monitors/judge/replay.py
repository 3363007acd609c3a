"""Replay: judge a past run's partitions again, in memory, and compare with what it found.

The run's own config version (its stored text) is planned again over the dataset's stored
metrics and batches, with the clock the run judged with, through the same evaluation a run
uses (monitors.judge.evaluate.evaluate_partition). Nothing is written: no alert, occurrence or
run changes, and the session is rolled back. Another version (or the config file as it is
now) can stand in for the run's own: "would it fire today?".

Each difference (a finding that appeared, vanished or changed) comes with its causes, each
checked, never guessed: the data judged was re-delivered since (batches landed after the
run, within the history the monitor reads), the config differs for that monitor (the
diff's lines about it), the code version differs. A difference with none of them is
reported as unexplained: that is a reproducibility bug.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitors.config import MonitorsConfig
from monitors.config_versions import config_of, diff_configs, resolve_config
from monitors.errors import NotFound, Refused
from monitors.judge.provenance import finding_record
from monitors.settings import Settings
from store.models import Batch, ConfigVersion, Dataset, Run, RunStatus


@dataclass
class Difference:
    partition: str
    monitor: str
    change: str                      # appeared | vanished | changed
    before: dict[str, Any] | None    # the run's finding
    after: dict[str, Any] | None     # the replay's
    causes: list[str] = field(default_factory=list)


@dataclass
class Replay:
    run_id: int
    dataset: str
    partitions: list[str]
    run_config_version: int | None
    replay_config_version: int | str | None
    run_code_version: str | None
    replay_code_version: str
    findings: int                    # the run's
    replayed: int                    # the replay's
    differences: list[Difference]

    @property
    def identical(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "identical": self.identical}


def replay_run(session: Session, settings: Settings, run_id: int, *,
               config: str | None = None) -> Replay:
    """Replay run `run_id` under its own config version, or under `config` (a version
    number, or "current" for the file as it is now). The caller's session is only read."""
    from monitors.contract import Contract
    from monitors.judge.baselines import load_baselines
    from monitors.judge.evaluate import (
        HISTORY_DAYS,
        MetricHistory,
        evaluate_partition,
        history_since,
        metrics_read_by,
    )
    from monitors.judge.plan import judged_in_own_run, plan_monitors
    from monitors.judge.references import load_references
    from monitors.pipeline.run import code_version
    from store import queries

    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    if run.status != RunStatus.succeeded:
        raise Refused(f"run {run_id} is {run.status}: only a succeeded run has findings to replay")
    own = session.scalar(select(ConfigVersion).where(ConfigVersion.hash == run.config_version))
    if own is None or run.judged_at is None:
        raise Refused(f"run {run_id} predates kept config versions and findings: it cannot be replayed")
    run_config = config_of(own)
    if config is None:
        replay_config, label = run_config, own.number
    else:
        replay_config, label = resolve_config(session, settings, config)
    dataset = session.get(Dataset, run.dataset_id)
    declared = replay_config.dataset(dataset.name)
    # a contract declared in the config is what the run's sync put on the dataset
    contract = declared.contract if declared is not None and declared.contract is not None \
        else Contract.model_validate(dataset.contract)
    specs = judged_in_own_run(plan_monitors(dataset.kind, contract, declared))
    first, last = run.partition_from, run.partition_to
    # what the run judged under besides its config: the pinned references that config
    # declares and the new normals accepted by the time it finished (wall time: its
    # judging clock may be a backfill's or a test's)
    references = load_references(session, dataset.id, declared)
    history = MetricHistory(queries.read_metrics(session, dataset.id, until=last,
                                                 since=min(history_since(first),
                                                           references.earliest() or dt.date.max),
                                                 metrics=sorted(metrics_read_by(specs))),
                            window_days=HISTORY_DAYS, references=references,
                            baselines=load_baselines(session, dataset.id,
                                                     as_of=run.finished_at or run.started_at))
    partitions = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    replayed: list[dict[str, Any]] = []
    for partition in partitions:
        verdicts = evaluate_partition(session, dataset, contract, specs, history, partition,
                                      run.judged_at)
        replayed += [finding_record(v) for v in verdicts if v.finding is not None]
    session.rollback()  # evaluation reads only; make sure of it
    now_code = code_version()
    causes = _Causes(session, run, dataset, run_config, replay_config, own.number, label, now_code)
    differences = [_with_causes(d, causes) for d in _compare(run.findings or [], replayed)]
    return Replay(run_id=run.id, dataset=dataset.name, partitions=[p.isoformat() for p in partitions],
                  run_config_version=own.number, replay_config_version=label,
                  run_code_version=run.code_version, replay_code_version=now_code,
                  findings=len(run.findings or []), replayed=len(replayed), differences=differences)


def _compare(before: list[dict], after: list[dict]) -> list[Difference]:
    old = {(f["partition"], f["monitor"]): f for f in before}
    new = {(f["partition"], f["monitor"]): f for f in after}
    differences = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        change = "appeared" if a is None else "vanished" if b is None else "changed"
        differences.append(Difference(key[0], key[1], change, a, b))
    return differences


class _Causes:
    """What differs between the run and its replay, checked per difference."""

    def __init__(self, session: Session, run: Run, dataset: Dataset, run_config: MonitorsConfig,
                 replay_config: MonitorsConfig, run_number: int, replay_label, now_code: str):
        self.session, self.run, self.dataset = session, run, dataset
        self.run_number, self.replay_label = run_number, replay_label
        # this dataset's changes (notification routes change no finding)
        self.config_lines = [line.removeprefix(f"{dataset.name}: ")
                             for line in diff_configs(run_config, replay_config)
                             if line.startswith((f"{dataset.name}: ", f"dataset {dataset.name} "))]
        self.code = (None if run.code_version == now_code
                     else f"code changed: the run used {run.code_version}, the replay {now_code}")
        # batches landed after the run finished: re-deliveries of what it had judged
        self.landed_since = session.scalars(select(Batch).where(
            Batch.dataset_id == dataset.id, Batch.ingested_at > (run.finished_at or run.started_at),
            Batch.partition <= run.partition_to).order_by(Batch.partition, Batch.id)).all()

    def of(self, difference: Difference) -> list[str]:
        from monitors.judge.evaluate import HISTORY_DAYS

        causes = []
        partition = dt.date.fromisoformat(difference.partition)
        window_start = partition - dt.timedelta(days=HISTORY_DAYS - 1)
        redelivered = sorted({b.partition for b in self.landed_since
                              if window_start <= b.partition <= partition})
        if redelivered:
            shown = ", ".join(p.isoformat() for p in redelivered[:5])
            more = f" and {len(redelivered) - 5} more" if len(redelivered) > 5 else ""
            was = (self.run.inputs or {}).get(difference.partition)
            now = self._in_force(partition)
            fingerprints = (f" (fingerprint {was[:12]} -> {now[:12]})"
                            if was and now and was != now else "")
            causes.append(f"data re-delivered since the run: partition(s) {shown}{more}"
                          f"{fingerprints}")
        # the lines about this monitor, else the dataset-wide ones (a family switched off,
        # a deadline, the contract) that may have changed any of its monitors
        mine = ([line for line in self.config_lines if _about(line, difference.monitor)]
                or [line for line in self.config_lines if not _names_a_monitor(line)])
        if mine:
            causes.append(f"config changed v{self.run_number} -> "
                          f"{_version(self.replay_label)}: " + "; ".join(mine))
        if self.code:
            causes.append(self.code)
        return causes or ["unexplained: same inputs, config and code (a nondeterministic monitor?)"]

    def _in_force(self, partition: dt.date) -> str | None:
        from store import queries

        batch = queries.get_current_batch(self.session, self.dataset.id, partition)
        return batch.fingerprint if batch is not None else None


def _about(line: str, monitor: str) -> bool:
    return f"monitor {monitor} " in f"{line} " or f"check {monitor} " in f"{line} "


def _names_a_monitor(line: str) -> bool:
    return line.startswith(("monitor ", "check "))


def _version(label) -> str:
    return f"v{label}" if isinstance(label, int) else str(label)


def _with_causes(difference: Difference, causes: _Causes) -> Difference:
    difference.causes = causes.of(difference)
    return difference
