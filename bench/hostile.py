"""Small hostile inputs, each refused or quarantined within 10 s and 500 MiB (issue 14).

Cases (each a fresh process, as a user or the worker meets them; wall time from start to
exit and the process's peak resident memory, imports included):
- `json_bomb`: a 3 MB gzipped JSON-lines file whose one line expands to 3 GiB, ingested
  (`python -m monitors ingest`): quarantined by the line limit;
- `csv_bomb`: a gzipped CSV of one well-formed row repeated, expanding to 3 GiB:
  quarantined by the compression-ratio limit;
- `dense_bomb`: a gzipped CSV of varied rows at about 170 times (under the ratio limit),
  expanding to 3 GiB: quarantined by the compressed-content limit (1 GiB);
- `long_row`: a CSV with a 20 MiB row at line 3: quarantined by the line limit, naming the line;
- `wide_header`: a CSV whose header has 100k columns, ingested into an existing dataset,
  and `wide_create`: the same file with `ingest --create`: refused by the column limit;
- `alias_bomb`: a 1 KB monitors YAML with nested anchors (a billion nodes expanded), read
  by `ingest`: refused by the config-node limit;
- `regex`: the pattern check `(a+)+$` against one value of a million characters (with
  Python's backtracking engine, 30 characters already take minutes): RE2 answers.

All at the default limits (monitors.settings.Limits). Inputs are generated once into a
folder of their own and reused (the 3 GiB bomb takes about 20 s to compress).

    python bench/hostile.py                      # from the repository root
    python bench/hostile.py --data /tmp/hostile-inputs

Writes bench/results/hostile.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "hostile.json"
DEFAULT_DATA = Path(tempfile.gettempdir()) / "monitors-bench-hostile"
MiB = 1 << 20
BOUND_SECONDS, BOUND_MIB = 10.0, 500.0
EXPANDED_MIB = 3072
REGEX_CHILD = """
import pandas as pd
from detectors.checks import matches_pattern
frame = pd.DataFrame({"code": ["a" * 1_000_000 + "!", "aaa"]})
print(matches_pattern(frame, "code", r"(a+)+$").findings[0].detail)
"""


def gzip_stream(path: Path, head: bytes, block: bytes, repeats: int, tail: bytes = b"") -> None:
    # one compressor fed the same block: a valid gzip file without holding 3 GiB anywhere
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    with path.open("wb") as handle:
        handle.write(compressor.compress(head))
        for _ in range(repeats):
            handle.write(compressor.compress(block))
        handle.write(compressor.compress(tail) + compressor.flush())


def make_inputs(data: Path) -> dict[str, Path]:
    data.mkdir(parents=True, exist_ok=True)
    files = {
        "events_good": data / "events_2026-05-01.jsonl",
        "rows_good": data / "rows_2026-05-01.csv",
        "json_bomb": data / "events_2026-05-02.jsonl.gz",
        "csv_bomb": data / "rows_2026-05-02.csv.gz",
        "wide_header": data / "rows_2026-05-03.csv",
        "dense_bomb": data / "rows_2026-05-04.csv.gz",
        "long_row": data / "rows_2026-05-05.csv",
        "alias_bomb": data / "monitors.yaml",
    }
    files["events_good"].write_text('{"id": 1, "note": "a"}\n{"id": 2, "note": "b"}\n')
    files["rows_good"].write_text("id,note\n1,a\n2,b\n")
    if not files["json_bomb"].exists():
        gzip_stream(files["json_bomb"], b'{"id": 1, "note": "', b"x" * MiB, EXPANDED_MIB, b'"}\n')
    if not files["csv_bomb"].exists():
        # rows a parser accepts, repeated: compresses about a thousand times
        rows = b"1,lol\n" * (MiB // 6)
        gzip_stream(files["csv_bomb"], b"id,note\n", rows, EXPANDED_MIB * MiB // len(rows))
    if not files["dense_bomb"].exists():
        # ids that differ, a long note that repeats: ~170x, which the ratio limit lets through
        note = b"lorem" * 300
        rows = b"".join(b"%d,%s\n" % (i * 7919 % 10_000_019, note) for i in range(MiB // len(note)))
        gzip_stream(files["dense_bomb"], b"id,note\n", rows, EXPANDED_MIB * MiB // len(rows))
    files["long_row"].write_bytes(b"id,note\n1,a\n2," + b"y" * (20 * MiB) + b"\n3,b\n")
    names = ["id", "note"] + [f"c{i}" for i in range(100_000)]
    files["wide_header"].write_text(",".join(names) + "\n" + ",".join(["1"] * len(names)) + "\n")
    lines = ["datasets: []", "bomb:", "  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    files["alias_bomb"].write_text("\n".join(lines) + "\n")
    return files


def measure(command: list[str], env: dict[str, str]) -> dict:
    """Wall time and the peak resident memory of one child process (its own rusage)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    out, err = child.stdout.read().decode(), child.stderr.read().decode()
    child.stdout.close()
    child.stderr.close()
    said = (err.strip() or out.strip()).splitlines()
    return {"seconds": round(seconds, 2), "peak_mib": round(usage.ru_maxrss / 1024, 1),
            "exit": os.waitstatus_to_exitcode(status), "said": said[-1][:300] if said else ""}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder for the generated inputs (reused)")
    args = parser.parse_args()
    files = make_inputs(args.data)
    sizes = {name: path.stat().st_size for name, path in files.items()}
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "MONITORS_HOME": home, "MONITORS_FILE_ROOTS": str(args.data)}
        for key in ("MONITORS_DB_URL", "MONITORS_CONFIG"):
            env.pop(key, None)
        env = {k: v for k, v in env.items() if not k.startswith("MONITORS_LIMIT_")}
        cli = [sys.executable, "-m", "monitors"]
        for dataset, good in (("events", "events_good"), ("rows", "rows_good")):
            done = measure([*cli, "ingest", "--dataset", dataset, "--create", str(files[good])], env)
            assert done["exit"] == 0, done
        cases = {
            "json_bomb": [*cli, "ingest", "--dataset", "events", str(files["json_bomb"])],
            "csv_bomb": [*cli, "ingest", "--dataset", "rows", str(files["csv_bomb"])],
            "dense_bomb": [*cli, "ingest", "--dataset", "rows", str(files["dense_bomb"])],
            "long_row": [*cli, "ingest", "--dataset", "rows", str(files["long_row"])],
            "wide_header": [*cli, "ingest", "--dataset", "rows", str(files["wide_header"])],
            "wide_create": [*cli, "ingest", "--dataset", "wide", "--create",
                            str(files["wide_header"])],
            # a command that reads the monitors YAML before it does anything
            "alias_bomb": [*cli, "ingest", "--dataset", "rows", str(files["rows_good"])],
            "regex": [sys.executable, "-c", REGEX_CHILD],
        }
        results = {}
        for name, command in cases.items():
            case_env = dict(env, MONITORS_CONFIG=str(files["alias_bomb"])) if name == "alias_bomb" else env
            result = measure(command, case_env)
            result["within_bounds"] = (result["seconds"] <= BOUND_SECONDS
                                       and result["peak_mib"] <= BOUND_MIB)
            results[name] = result
            print(f"{name:12} {result['seconds']:6.2f} s {result['peak_mib']:7.1f} MiB  "
                  f"exit {result['exit']}  {result['said']}")
    document = {
        "what": "hostile inputs refused or quarantined: wall time and peak RSS of one fresh "
                "process each, default limits",
        "bounds": {"seconds": BOUND_SECONDS, "peak_mib": BOUND_MIB},
        "input_bytes": {k: v for k, v in sizes.items() if not k.endswith("_good")},
        "expanded_mib": EXPANDED_MIB,
        "cases": results,
        "all_within_bounds": all(r["within_bounds"] for r in results.values()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"all within {BOUND_SECONDS:.0f} s and {BOUND_MIB:.0f} MiB: {document['all_within_bounds']}"
          f" -> {RESULTS.relative_to(ROOT)}")
    return 0 if document["all_within_bounds"] else 1


if __name__ == "__main__":
    sys.exit(main())
