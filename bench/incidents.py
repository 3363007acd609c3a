"""How many alerts and notifications a person gets over the demo, before and after
incidents (one cause, one incident, its root notified alone).

Lands the demo (default 120 days) twice into fresh MONITORS_HOMEs, each in a process of its
own: once with the code of a base commit (`--before`, default: the commit before lineage
and incidents, extracted with `git archive`) and once with this tree. Each run sends its
notifications through the real pipeline (`monitors.pipeline.run.execute_run` with notify on, one
webhook route for every alert) to a counting fake sender, so a message counts whenever the
product would have posted one.

    python bench/incidents.py [--days 120] [--seed 7] [--before 6045eb5]

Prints a table and writes bench/results/incidents.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = "6045eb5"  # main before this work: no lineage, no incidents


def measure(code: Path, days: int, seed: int) -> dict:
    """In this process, with `code` first on the path: land the demo, count."""
    sys.path.insert(0, str(code))
    home = Path(tempfile.mkdtemp(prefix="bench-incidents-"))
    os.environ["MONITORS_HOME"] = str(home)
    os.environ.pop("MONITORS_DB_URL", None)
    os.environ.pop("MONITORS_CONFIG", None)
    import datetime as dt

    import monitors.demo as demo
    from monitors.lifecycle.alerts import list_alerts
    from monitors.pipeline.run import execute_run
    from monitors.settings import load_settings
    from store.engine import open_store

    class Counting:
        def __init__(self):
            self.messages = 0

        def post(self, url, payload):
            self.messages += 1

    sender = Counting()
    settings = load_settings()
    settings.config_path.parent.mkdir(parents=True, exist_ok=True)
    # one route for every alert: what a team's on-call channel receives
    settings.config_path.write_text("notifications:\n  routes:\n"
                                    "    - url: https://hooks.example.com/bench\n")
    # the demo runs without notifying (it replays history); here every run notifies
    demo.execute_run = lambda *a, **kw: execute_run(*a, **{**kw, "notify": True, "sender": sender})
    _, sessions = open_store(settings.db_url)
    demo.land_demo(sessions, settings, days=days, seed=seed, end=dt.date(2026, 6, 30))
    with sessions() as session:
        alerts = list_alerts(session, now=dt.datetime(2026, 7, 1, tzinfo=dt.UTC))
        notified = sum(1 for a in alerts if _notified(session, a["id"]))
    truth = json.loads((home / "demo" / "incidents.json").read_text())
    drop = next(i["partition"] for i in truth if i["kind"] == "volume_drop")
    on_drop = [a for a in alerts if a["partition"] == drop]
    return {"alerts": len(alerts),
            "incidents": sum(1 for a in alerts if a.get("caused_by") is None),
            "caused_alerts": sum(1 for a in alerts if a.get("caused_by") is not None),
            "notifications": sender.messages, "alerts_notified": notified,
            "volume_drop_day": {"partition": drop, "alerts": len(on_drop),
                                "incidents": sum(1 for a in on_drop if a.get("caused_by") is None)}}


def _notified(session, alert_id: int) -> bool:
    from store.models import Alert

    return session.get(Alert, alert_id).notified_at is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--before", default=BASE, help="the commit to compare with")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child's code tree
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.days, args.seed)))
        return

    results = {"days": args.days, "seed": args.seed, "before_commit": args.before}
    with tempfile.TemporaryDirectory(prefix="bench-before-") as before:
        archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", before], input=archive, check=True)
        for label, code in (("before", Path(before)), ("after", ROOT)):
            done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--measure",
                                   str(code), "--days", str(args.days), "--seed", str(args.seed)],
                                  cwd=code, capture_output=True, text=True, check=True)
            results[label] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"demo {args.days} days, seed {args.seed}:  before ({args.before})  after")
    for key in ("alerts", "incidents", "notifications", "alerts_notified"):
        print(f"  {key:<18} {results['before'][key]:>8} {results['after'][key]:>8}")
    drop_before, drop_after = results["before"]["volume_drop_day"], results["after"]["volume_drop_day"]
    print(f"  volume-drop day {drop_after['partition']}: {drop_before['alerts']} alerts, "
          f"{drop_before['incidents']} -> {drop_after['incidents']} incident(s)")
    out = ROOT / "bench" / "results" / "incidents.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
