"""What the demo's outbox holds per partition, against the demo's ground truth: nothing bad
reaches it, and clean days are delivered.

Lands the demo (default 120 days) into a fresh MONITORS_HOME, or reads one already landed
(`--home`, with MONITORS_DB_URL when its store is not the default SQLite file), then for
every partition of the model scores compares the outbox (`MONITORS_HOME/outbox/`, written
by the demo's deliver stage) with the ground truth (`demo/incidents.json`):

- a **bad** day is one whose data is bad for the model that day: the snapshot it reads or
  the scores it wrote are broken (a corruption, a volume drop, a schema break, the first
  day of a level shift, a recalibration's days, and every day from a lasting score drift
  on). Its data must not reach the outbox: the day is absent, or (a corrected redelivery,
  the ground truth's `corrected_on`) the outbox holds the corrected batch's rows.
- a **clean** day has no incident on it: it should be delivered. A clean day held is a
  false hold, listed with the alert that holds it.
- the rest are reported as they are: the days after a lasting change of the world (a new
  channel, more products held), a late batch, a model rollout, label-side incidents
  (seen only when labels land, days after delivery), a batch that never came.

    python bench/demo_outbox.py [--days 120] [--seeds 7 1 2] [--home PATH] [--out PATH]

Prints a table per seed and writes bench/results/demo_outbox.json.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# bad for the model on the incident's days (`days` of the ground truth, default 1)
BAD = {"sign_flip", "unit_change", "duplicated_keys", "volume_drop", "null_spike",
       "schema_change", "level_shift", "calibration_break"}
# bad from its day to the span's end: the model's scores stay shifted
BAD_LASTING = {"score_drift"}
# a change of the world that stays: its first day is an incident, the days after carry it
LASTING = {"new_category", "level_shift", "model_rollout"}
SCORED = ("customer_snapshot", "model_scores")  # what the scores' outbox is built from


def classify(day: dt.date, incidents: list[dict]) -> tuple[str, list[str]]:
    """The day's class (bad, clean, incident, changed) and the incidents on it."""
    on, after = [], []
    for incident in incidents:
        if incident["dataset"] not in SCORED:
            continue  # the outcomes' own incidents say nothing of the day's scores
        start = dt.date.fromisoformat(incident["partition"])
        last = start + dt.timedelta(days=incident.get("days", 1) - 1)
        if start <= day <= last or (incident["kind"] in BAD_LASTING and day >= start):
            on.append(incident)
        elif day > last and incident["kind"] in LASTING:
            after.append(incident)
    kinds = sorted({i["kind"] for i in on})
    if any(i["kind"] in BAD | BAD_LASTING for i in on):
        return "bad", kinds
    if on:
        return "incident", kinds
    return ("changed", sorted({i["kind"] for i in after})) if after else ("clean", [])


def rows_in(path: Path) -> int:
    with path.open(newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def measure(home: Path, days: int | None, seed: int | None) -> dict:
    """Land the demo into `home` (when `days` is given), then compare outbox and truth."""
    os.environ["MONITORS_HOME"] = str(home)
    os.environ.pop("MONITORS_CONFIG", None)
    from sqlalchemy import select

    from monitors.demo import SCORES, land_demo
    from monitors.pipeline.stages import list_stages
    from monitors.settings import load_settings
    from store.engine import open_store
    from store.models import Alert, Batch, Dataset

    settings = load_settings()
    engine, sessions = open_store(settings.db_url)
    seconds = None
    if days is not None:
        started = time.perf_counter()
        land_demo(sessions, settings, days=days, seed=seed, end=dt.date(2026, 6, 30))
        seconds = round(time.perf_counter() - started, 1)
    incidents = json.loads((home / "demo" / "incidents.json").read_text())
    with sessions() as session:
        batches = session.execute(select(Batch.partition, Batch.status, Batch.rows).join(Dataset)
                                  .where(Dataset.name == SCORES).order_by(Batch.id)).all()
        stages: dict[str, list[dict]] = {}
        for stage in list_stages(session, SCORES):
            stages.setdefault(stage["partition"], []).append(stage)
        holders = {a.id: a for a in session.scalars(select(Alert).where(
            Alert.id.in_({s["held_by"] for ss in stages.values() for s in ss if s["held_by"]})))}
        names = dict(session.execute(select(Dataset.id, Dataset.name)).all())
    engine.dispose()
    landed: dict[str, int] = {}       # the batch in force
    replaced: dict[str, list[int]] = {}  # batches it superseded
    for partition, status, rows in batches:
        key = partition.isoformat()
        if status == "ingested":
            landed[key] = rows
        elif status == "superseded":
            replaced.setdefault(key, []).append(rows)
    corrected = {i["partition"]: i["corrected_on"] for i in incidents if i.get("corrected_on")}
    outbox = {p.stem.removeprefix(f"{SCORES}_"): rows_in(p)
              for p in sorted((home / "outbox").glob(f"{SCORES}_*.csv"))}
    span = sorted({*landed, *replaced, *stages, *(i["partition"] for i in incidents)})
    first, last = dt.date.fromisoformat(span[0]), dt.date.fromisoformat(span[-1])
    table = []
    for offset in range((last - first).days + 1):
        day = first + dt.timedelta(days=offset)
        key = day.isoformat()
        kind, on = classify(day, incidents)
        delivered = outbox.get(key)
        # bad data reached the outbox unless what is there is the corrected redelivery's
        fixed = key in corrected and delivered is not None and delivered == landed.get(key) \
            and delivered not in replaced.get(key, [])
        held = [s for s in stages.get(key, []) if s["held_by"]]
        holder = holders.get(held[0]["held_by"]) if held else None
        table.append({
            "partition": key, "class": kind, "incidents": on,
            "scores_rows": landed.get(key), "outbox_rows": delivered,
            "delivered": delivered is not None,
            "bad_reached_outbox": kind == "bad" and delivered is not None and not fixed,
            "corrected_on": corrected.get(key), "delivered_corrected": fixed,
            "stages": {s["stage"]: s["state"] for s in stages.get(key, [])},
            "held_by": None if holder is None else
            f"#{holder.id} {names[holder.dataset_id]} {holder.monitor} ({holder.severity})"})
    def count(cls: str, **having) -> int:
        return sum(1 for r in table if r["class"] == cls
                   and all(r[k] == v for k, v in having.items()))

    summary = {
        "bad_days": count("bad"), "bad_reached_outbox": count("bad", bad_reached_outbox=True),
        "bad_delivered_corrected": count("bad", delivered_corrected=True),
        "clean_days": count("clean"), "clean_delivered": count("clean", delivered=True),
        "changed_days": count("changed"), "changed_delivered": count("changed", delivered=True),
        "incident_days": count("incident"),
        "incident_delivered": count("incident", delivered=True),
        "outbox_files": len(outbox)}
    return {"seed": seed, "days": days, "seconds": seconds, "summary": summary,
            "clean_held": [r for r in table if r["class"] == "clean" and not r["delivered"]],
            "partitions": table}


def report(result: dict, *, verbose: bool) -> None:
    s = result["summary"]
    print(f"seed {result['seed']}, {result['days']} days"
          + (f", landed in {result['seconds']} s" if result["seconds"] else ""))
    for row in result["partitions"]:
        if not verbose and row["class"] == "clean" and row["delivered"]:
            continue
        where = (f"outbox {row['outbox_rows']} rows" if row["delivered"] else "not delivered")
        if row["delivered_corrected"]:
            where += f" (the corrected redelivery of {row['corrected_on']})"
        flag = "  BAD DATA DELIVERED" if row["bad_reached_outbox"] else ""
        print(f"  {row['partition']} {row['class']:<8} {','.join(row['incidents']):<34} "
              f"{where:<52} {row['held_by'] or ''}{flag}")
    print(f"  bad days {s['bad_days']}: reached the outbox {s['bad_reached_outbox']} "
          f"(delivered corrected {s['bad_delivered_corrected']}); clean days "
          f"{s['clean_days']}: delivered {s['clean_delivered']}; days carrying a change "
          f"{s['changed_days']}: delivered {s['changed_delivered']}; other incident days "
          f"{s['incident_days']}: delivered {s['incident_delivered']}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7])
    parser.add_argument("--home", type=Path, help="a landed demo's MONITORS_HOME: read, not landed")
    parser.add_argument("--verbose", action="store_true", help="list delivered clean days too")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "demo_outbox.json")
    args = parser.parse_args()
    if args.home is not None:
        results = [measure(args.home, None, None)]
    else:
        results = []
        for seed in args.seeds:
            os.environ.pop("MONITORS_DB_URL", None)
            results.append(measure(Path(tempfile.mkdtemp(prefix="demo-outbox-")), args.days, seed))
    for result in results:
        report(result, verbose=args.verbose)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
