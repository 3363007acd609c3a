"""Provenance: what a run and each of its verdicts were made of.

A firing verdict's `judged_on` names the detector and its options, the history window it
read (first and last partition, how many points, a digest of the values), the config
version and code version in force, the baseline markers in force (an accepted new normal,
a pinned drift reference) and the fingerprint of the batch under test: enough to
say "judged on 26 points 2026-05-11..2026-11-11 under config v14, detector anomalies
{min_change: 0.1}" and to tell, later, whether the same judgement can be made again.

A run keeps its findings as `finding_record`s; a replay (monitors.judge.replay) makes the same
records and compares them.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitors.errors import NotFound
from store.models import Batch, ConfigVersion, Dataset, Run


def judged_on(verdict, history, *, config_version: int | None, config_hash: str | None,
              code_version: str | None, fingerprint: str | None) -> dict[str, Any]:
    """What `verdict` was judged on (history: the run's MetricHistory)."""
    spec = verdict.spec
    record: dict[str, Any] = {"detector": spec.detector, "options": dict(spec.options),
                              "config_version": config_version, "config_hash": config_hash,
                              "code_version": code_version,
                              "inputs": {verdict.partition.isoformat(): fingerprint} if fingerprint else {}}
    if spec.kind == "metric":
        record.update(history_window(spec, history, verdict.partition))
        record.update(markers_in_force(spec, history, verdict.partition))
    return record


def markers_in_force(spec, history, partition: dt.date) -> dict[str, Any]:
    """The accepted new normal the monitor judged from (monitors.judge.baselines) and, for drift,
    the pinned reference it judged against as well (monitors.judge.references): what a person
    changed by hand, which the history window alone does not show."""
    found: dict[str, Any] = {}
    marker = history.baselines.marker(spec.column, spec.metric, partition) if spec.metric else None
    if marker is not None:
        found["baseline"] = {"from": marker.from_partition.isoformat(), "by": marker.created_by,
                             "note": marker.note, "alert_id": marker.alert_id}
    window = history.references.window(spec.column, partition) if spec.detector == "drift" else None
    if window is not None:
        found["reference"] = {"from": window.start.isoformat(), "to": window.end.isoformat(),
                              "kind": window.kind,
                              # an accepted new normal after the window replaces it
                              "moved_to": (marker.from_partition.isoformat()
                                           if marker is not None and marker.from_partition > window.start
                                           else None)}
    return found


def history_window(spec, history, partition: dt.date) -> dict[str, Any]:
    """The span, size and digest of the history a metric monitor read for `partition`."""
    from monitors.judge.evaluate import (
        detector_input,  # pandas and the detectors: a run has them
    )

    try:
        data = detector_input(spec, history, partition)
    except ValueError:  # a check's detector on a metric: its failure is the finding
        return {}
    present = data.dropna(how="all") if data.ndim == 2 else data.dropna()
    if present.empty:
        return {"points": 0}
    digest = hashlib.sha256(present.to_json(orient="split", date_format="iso",
                                            double_precision=15).encode()).hexdigest()[:16]
    return {"points": len(present), "start": present.index.min().date().isoformat(),
            "end": present.index.max().date().isoformat(), "history_digest": digest}


def describe(judged: dict[str, Any] | None) -> str | None:
    """One line for a person: "judged on 26 points 2026-05-11..2026-11-11 under config v14,
    detector anomalies {min_change: 0.1}"."""
    if not judged:
        return None
    parts = ["judged on"]
    if judged.get("points"):
        parts.append(f"{judged['points']} points {judged['start']}..{judged['end']}")
    elif judged.get("inputs"):
        partition, fingerprint = next(iter(judged["inputs"].items()))
        parts.append(f"the batch of {partition} ({fingerprint[:12]})")
    else:
        parts.append("no stored history")
    version = judged.get("config_version")
    parts.append(f"under config v{version}," if version is not None else "under an unrecorded config,")
    options = ", ".join(f"{k}: {v}" for k, v in sorted(judged.get("options", {}).items()))
    parts.append(f"detector {judged['detector']}" + (f" {{{options}}}" if options else ""))
    if judged.get("code_version"):
        parts.append(f"(code {judged['code_version']})")
    baseline, reference = judged.get("baseline"), judged.get("reference")
    if baseline:
        parts.append(f"; new normal accepted from {baseline['from']} by {baseline['by']}"
                     + (f" ({baseline['note']})" if baseline.get("note") else ""))
    if reference:
        parts.append(f"; {reference.get('kind', 'pinned reference')} "
                     f"{reference['from']}..{reference['to']}"
                     + (f", moved to the new normal from {reference['moved_to']}"
                        if reference.get("moved_to") else ""))
    return " ".join(parts).replace(" ; ", "; ")


def finding_record(verdict) -> dict[str, Any]:
    """A finding as a run keeps it and a replay compares it: what fired, where, how."""
    finding = verdict.finding
    value = finding.value
    return {"partition": verdict.partition.isoformat(), "monitor": verdict.spec.name,
            "column": verdict.spec.column,
            "detector": "monitor_failed" if verdict.failed else verdict.spec.detector,
            "value": None if value is None or math.isnan(value) else float(value),
            "detail": finding.detail}


def run_details(session: Session, run_id: int) -> dict[str, Any]:
    """A run with what it was made of: every input batch with its file and fingerprint
    (and whether it is still the one in force), the config version and the code version."""
    from monitors.pipeline.queue import run_summary

    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    dataset = session.get(Dataset, run.dataset_id)
    version = session.scalar(select(ConfigVersion).where(ConfigVersion.hash == run.config_version)) \
        if run.config_version else None
    inputs = []
    for partition, fingerprint in sorted((run.inputs or {}).items()):
        batches = session.scalars(select(Batch).where(
            Batch.dataset_id == run.dataset_id, Batch.partition == dt.date.fromisoformat(partition))
            .order_by(Batch.id)).all()
        used = next((b for b in reversed(batches) if b.fingerprint == fingerprint), None)
        in_force = next((b for b in batches if b.status == "ingested"), None)
        inputs.append({"partition": partition, "fingerprint": fingerprint,
                       "source": used.source if used else None,
                       "rows": used.rows if used else None,
                       "batch_id": used.id if used else None,
                       "still_in_force": in_force is not None and in_force.fingerprint == fingerprint,
                       "in_force_fingerprint": in_force.fingerprint if in_force else None})
    document = run_summary(run, dataset.name, version.number if version else None)
    document.update({"inputs": inputs, "findings": len(run.findings or []),
                     "judged_at": run.judged_at.isoformat() if run.judged_at else None,
                     "config_introduced_by": version.introduced_by if version else None})
    return document

