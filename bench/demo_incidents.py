"""Which of the demo's injected incidents raised an alert, and how noisy the rest is.

Lands the demo (default 120 days) into a fresh MONITORS_HOME, then matches every alert to
the ground truth: an alert matches an incident of the same dataset when its partition lies
from 2 days before to 3 days after the incident's (to the end of the span for incidents
that persist: a new category, a level shift, a drift), and its column is the incident's,
or either has none (table-level). Alerts matching nothing are noise, reported per 30 days.

    python bench/demo_incidents.py [--days 120] [--seed 7]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PERSISTENT = {"new_category", "level_shift", "score_drift"}  # kinds that last once begun


def matches(alert: dict, incident: dict, end: dt.date) -> bool:
    if alert["dataset"] != incident["dataset"] or alert["partition"] is None:
        return False
    if incident["column"] and alert["column"] and alert["column"] != incident["column"]:
        return False
    start = dt.date.fromisoformat(incident["partition"])
    last = end if incident["kind"] in PERSISTENT else start + dt.timedelta(days=3)
    return start - dt.timedelta(days=2) <= dt.date.fromisoformat(alert["partition"]) <= last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="demo-incidents-"))
    os.environ["MONITORS_HOME"] = str(home)
    os.environ.pop("MONITORS_DB_URL", None)
    os.environ.pop("MONITORS_CONFIG", None)

    from monitors.alerts import list_alerts
    from monitors.demo import land_demo
    from monitors.settings import load_settings
    from store.engine import open_store

    settings = load_settings()
    _, sessions = open_store(settings.db_url)
    started = time.perf_counter()
    land_demo(sessions, settings, days=args.days, seed=args.seed)
    seconds = time.perf_counter() - started
    incidents = json.loads((home / "demo" / "incidents.json").read_text())
    with sessions() as session:
        alerts = list_alerts(session)
    end = max(dt.date.fromisoformat(a["partition"]) for a in alerts if a["partition"]) if alerts \
        else dt.date.today()

    caught, missed = [], []
    for incident in incidents:
        hits = [a for a in alerts if matches(a, incident, end)]
        (caught if hits else missed).append({**incident, "alerts": [
            {"id": a["id"], "monitor": a["monitor"], "partition": a["partition"],
             "message": a["message"]} for a in hits]})
    noise = [a for a in alerts if not any(matches(a, i, end) for i in incidents)]
    per_30 = len(noise) / args.days * 30

    print(f"demo: {args.days} days, seed {args.seed}, landed and monitored in {seconds:.1f} s")
    print(f"alerts: {len(alerts)}; incidents caught {len(caught)}/{len(incidents)}; "
          f"unmatched alerts {len(noise)} ({per_30:.2f} per 30 days)\n")
    for item in caught:
        first = item["alerts"][0]
        print(f"  caught  {item['kind']:<14} {item['dataset']:<18} {item['partition']} "
              f"by {', '.join(sorted({a['monitor'] for a in item['alerts']}))} (first: {first['partition']})")
    for item in missed:
        print(f"  MISSED  {item['kind']:<14} {item['dataset']:<18} {item['partition']} {item['description']}")
    if noise:
        print("\nunmatched alerts:")
        for a in noise:
            print(f"  {a['dataset']:<18} {a['partition']} {a['monitor']:<28} {a['message'][:110]}")

    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "demo_incidents.json").write_text(json.dumps({
        "days": args.days, "seed": args.seed, "seconds": round(seconds, 1),
        "alerts": len(alerts), "incidents": len(incidents), "caught": caught, "missed": missed,
        "unmatched": [{k: a[k] for k in ("dataset", "column", "monitor", "partition", "message")}
                      for a in noise],
        "unmatched_per_30_days": round(per_30, 2)}, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
