"""Start-up time of the command line, against importing its two foundations.

Cases (each a fresh process, wall time from start to exit):
- `python -m monitors --help`;
- `python -m monitors alerts list --json` on a store holding the demo's 120 days;
- the yardstick: `python -c "import pandas, sqlalchemy"`, what any command of a pandas and
  SQLAlchemy tool pays before doing anything.

The three are interleaved on every repeat, so a burst of load from elsewhere hits them
alike, and the medians are compared. The demo store is made once in a MONITORS_HOME of its
own (`python -m monitors demo --days 120 --seed 1`) and reused by later runs.

Targets (issue 10): `--help` no slower than the yardstick; `alerts list --json` at most
1.5x it.

    python bench/startup.py                       # from the repository root
    python bench/startup.py --repeats 9 --home /tmp/startup-demo

Writes bench/results/startup.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "startup.json"
DEFAULT_HOME = Path(tempfile.gettempdir()) / "monitors-bench-startup"
DEMO_DAYS, DEMO_SEED = 120, 1
TARGETS = {"help": 1.0, "alerts_list": 1.5}
COMMANDS = {
    "baseline": [sys.executable, "-c", "import pandas, sqlalchemy"],
    "help": [sys.executable, "-m", "monitors", "--help"],
    "alerts_list": [sys.executable, "-m", "monitors", "alerts", "list", "--json"],
}


def environment(home: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("MONITORS_DB_URL", "MONITORS_CONFIG", "PYTHONPROFILEIMPORTTIME")}
    return environ | {"MONITORS_HOME": str(home), "PYTHONPATH": str(ROOT)}


def ensure_demo(home: Path) -> dict:
    """The demo store in `home`, made when absent (a marker file says it is complete)."""
    marker = home / "bench-demo.json"
    if marker.exists():
        return json.loads(marker.read_text(encoding="utf-8")) | {"reused": True}
    home.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "monitors", "demo", "--days", str(DEMO_DAYS),
                    "--seed", str(DEMO_SEED)], cwd=ROOT, env=environment(home), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    made = {"days": DEMO_DAYS, "seed": DEMO_SEED,
            "build_seconds": round(time.perf_counter() - started, 1)}
    marker.write_text(json.dumps(made), encoding="utf-8")
    return made | {"reused": False}


def timed(command: list[str], environ: dict[str, str]) -> tuple[float, bytes]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=environ, capture_output=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[1:])} failed ({done.returncode}): "
                         f"{done.stderr.decode()[-2000:]}")
    return elapsed, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command (default 5)")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME,
                        help=f"MONITORS_HOME of the demo store (default {DEFAULT_HOME})")
    args = parser.parse_args(argv)

    demo = ensure_demo(args.home)
    environ = environment(args.home)
    for command in COMMANDS.values():  # warm-up: the file system cache, compiled bytecode
        _, stdout = timed(command, environ)
    alerts = len(json.loads(stdout))  # the last warm-up is `alerts list --json`
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            times[name].append(timed(command, environ)[0])
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratios = {name: medians[name] / medians["baseline"] for name in TARGETS}

    import pandas
    import sqlalchemy

    results = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "pandas": pandas.__version__,
                    "sqlalchemy": sqlalchemy.__version__, "cpus": os.cpu_count(),
                    "load_average_at_start": load},
        "yardstick": "python -c 'import pandas, sqlalchemy'",
        "store": {"backend": "sqlite", "alerts": alerts, **demo},
        "repeats": args.repeats,
        "seconds": {name: round(value, 3) for name, value in medians.items()},
        "all_seconds": {name: [round(x, 3) for x in values] for name, values in times.items()},
        "ratio_to_baseline": {name: round(value, 3) for name, value in ratios.items()},
        "targets": {name: {"ratio": round(ratios[name], 3), "target": target,
                           "met": ratios[name] <= target} for name, target in TARGETS.items()},
    }
    print(f"{'import pandas, sqlalchemy':<34} {medians['baseline']:.3f} s")
    for name, label in (("help", "--help"), ("alerts_list", f"alerts list --json ({alerts} alerts)")):
        target = results["targets"][name]
        print(f"{label:<34} {medians[name]:.3f} s  {target['ratio']:.2f}x  "
              f"(target <= {target['target']}x)  {'met' if target['met'] else 'NOT MET'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
