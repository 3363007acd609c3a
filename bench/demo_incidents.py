"""Which of the demo's injected incidents raised an alert, and how noisy the rest is.

Lands the demo (default 120 days) into a fresh MONITORS_HOME, then matches every alert to
the ground truth: an alert matches an incident of the same dataset when its partition lies
from the incident's partition to 3 days after it (to the end of the span for incidents
that persist, a new category, a level shift, a drift, when the alert is on the incident's
column), and it is on the incident's column or table-level. An alert's partition is its
first firing. An incident that lasts some days (the ground truth's `days`) has them in its
window; an alert where the ground truth says the incident also shows (its `effects`: the
class a shifted score crosses into, the outcomes of scores that never came) is explained
by it but does not catch it. Alerts matching nothing are noise, reported per 30 days.

    python bench/demo_incidents.py [--days 120] [--seed 7 | --seeds 1 2 7] [--out PATH]

With several seeds it also reports, over all of them, the median and worst lag in days
from an incident to its first alert.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PERSISTENT = {"new_category", "level_shift", "score_drift"}  # kinds that last once begun


def matches(alert: dict, incident: dict, end: dt.date, *, effects: bool = False) -> bool:
    """Same dataset; a column-level alert on the incident's column, or a table-level alert;
    first firing within the incident's window: its days and 3 more (to the span's end for
    lasting incidents seen on their own column). With `effects`, also an alert where the
    ground truth says the incident shows besides (its knock-on on a dataset made from the
    broken one), in the same window: such an alert is explained, but does not catch it."""
    if alert["first_partition"] is None:
        return False
    targets = [(incident["dataset"], incident["column"])]
    if effects:
        targets += [tuple(t) for t in incident.get("effects", ())]
    if not any(alert["dataset"] == dataset and alert["column"] in (None, column)
               for dataset, column in targets):
        return False
    start = dt.date.fromisoformat(incident["partition"])
    lasting = incident["kind"] in PERSISTENT and alert["column"] is not None
    last = end if lasting else start + dt.timedelta(days=incident.get("days", 1) - 1 + 3)
    return start <= dt.date.fromisoformat(alert["first_partition"]) <= last


def run_seed(days: int, seed: int) -> dict:
    """Land the demo for one seed in a fresh MONITORS_HOME and match its alerts."""
    home = Path(tempfile.mkdtemp(prefix="demo-incidents-"))
    os.environ["MONITORS_HOME"] = str(home)
    os.environ.pop("MONITORS_DB_URL", None)
    os.environ.pop("MONITORS_CONFIG", None)

    from monitors.demo import land_demo
    from monitors.lifecycle.alerts import get_alert, list_alerts
    from monitors.settings import load_settings
    from store.engine import open_store

    settings = load_settings()
    engine, sessions = open_store(settings.db_url)
    started = time.perf_counter()
    land_demo(sessions, settings, days=days, seed=seed)
    seconds = time.perf_counter() - started
    incidents = json.loads((home / "demo" / "incidents.json").read_text())
    with sessions() as session:
        alerts = [{**a, "first_partition": min((f["partition"] for f in get_alert(session, a["id"])["firings"]),
                                                default=a["partition"])}
                  for a in list_alerts(session)]
    engine.dispose()
    end = max(dt.date.fromisoformat(a["partition"]) for a in alerts if a["partition"]) if alerts \
        else dt.date.today()

    caught, missed = [], []
    for incident in incidents:
        hits = sorted((a for a in alerts if matches(a, incident, end)), key=lambda a: a["first_partition"])
        lag = ((dt.date.fromisoformat(hits[0]["first_partition"])
                - dt.date.fromisoformat(incident["partition"])).days if hits else None)
        (caught if hits else missed).append({**incident, "lag_days": lag, "alerts": [
            {"id": a["id"], "monitor": a["monitor"], "partition": a["first_partition"],
             "message": a["message"]} for a in hits]})
    noise = [a for a in alerts if not any(matches(a, i, end, effects=True) for i in incidents)]
    return {"days": days, "seed": seed, "seconds": round(seconds, 1), "alerts": len(alerts),
            "incidents": len(incidents), "caught": caught, "missed": missed,
            "unmatched": [{k: a[k] for k in ("dataset", "column", "monitor", "first_partition", "message")}
                          for a in noise],
            "unmatched_per_30_days": round(len(noise) / days * 30, 2)}


def report(result: dict) -> None:
    print(f"demo: {result['days']} days, seed {result['seed']}, landed and monitored in "
          f"{result['seconds']:.1f} s")
    print(f"alerts: {result['alerts']}; incidents caught {len(result['caught'])}/{result['incidents']}; "
          f"unmatched alerts {len(result['unmatched'])} ({result['unmatched_per_30_days']:.2f} per 30 days)\n")
    for item in result["caught"]:
        first = item["alerts"][0]
        print(f"  caught  {item['kind']:<14} {item['dataset']:<18} {item['partition']} "
              f"by {', '.join(sorted({a['monitor'] for a in item['alerts']}))} "
              f"(first: {first['partition']}, lag {item['lag_days']} d)")
    for item in result["missed"]:
        print(f"  MISSED  {item['kind']:<14} {item['dataset']:<18} {item['partition']} {item['description']}")
    if result["unmatched"]:
        print("\nunmatched alerts:")
        for a in result["unmatched"]:
            print(f"  {a['dataset']:<18} {a['first_partition']} {a['monitor']:<28} {a['message'][:110]}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--seeds", type=int, nargs="+", help="several seeds, one demo each "
                                                              "(overrides --seed)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "demo_incidents.json",
                        help="where the figures go (a held-out seed's beside the main ones)")
    args = parser.parse_args()
    results = [run_seed(args.days, seed) for seed in (args.seeds or [args.seed])]
    for result in results:
        report(result)
    lags = sorted(item["lag_days"] for r in results for item in r["caught"])
    caught = sum(len(r["caught"]) for r in results)
    total = sum(r["incidents"] for r in results)
    noise = sum(len(r["unmatched"]) for r in results)
    summary = {"seeds": [r["seed"] for r in results], "days": args.days, "caught": caught,
               "incidents": total,
               "median_lag_days": statistics.median(lags) if lags else None,
               "worst_lag_days": lags[-1] if lags else None,
               "unmatched_per_30_days": round(noise / (args.days * len(results)) * 30, 2),
               "seconds": [r["seconds"] for r in results]}
    print(f"all seeds: caught {caught}/{total}; lag to first alert median "
          f"{summary['median_lag_days']} d, worst {summary['worst_lag_days']} d; unmatched "
          f"{summary['unmatched_per_30_days']:.2f} per 30 days; run times {summary['seconds']} s")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    document = results[0] if len(results) == 1 else {"summary": summary, "runs": results}
    args.out.write_text(json.dumps(document, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
