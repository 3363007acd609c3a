"""The demo's pipeline stages, declared on its model scores (`monitors.demo.demo_config`)
and run by the worker once a run has verified a partition and its gate is safe:

    python -I monitors/demo_stages.py score     # the verified scores -> the day's scored list
    python -I monitors/demo_stages.py deliver   # the scored list -> MONITORS_HOME/outbox

Each runs in MONITORS_HOME with MONITORS_PARTITION set (`monitors.pipeline.stages`). `score` reads
the partition's model scores as they landed (the model's output, which the demo's factory
simulates) and writes the day's scored list: every customer with their score, model
version and rank, the ones to contact (predicted 'buy') marked. `deliver` publishes that
list to the outbox, where the bank's campaign system picks it up.

Both keep the stage contract: their outputs are safe to write twice (written to a
temporary file in the same folder, then renamed over the target), so a stage run again
after its worker died leaves one whole file per partition.

Run as a script by the worker, so it imports nothing of ours (the repository need not be
on the stage's path); the demo calls `main` in its own process to play its history.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

SCORES = "model_scores"


def scored_path(home: Path, partition: str) -> Path:
    return home / "demo" / "scored" / f"{SCORES}_{partition}.csv"


def outbox_path(home: Path, partition: str) -> Path:
    return home / "outbox" / f"{SCORES}_{partition}.csv"


def score(home: Path, partition: str, out: TextIO) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    source = home / "landing" / SCORES / f"{SCORES}_{partition}.parquet"
    if not source.is_file():
        print(f"score: no model scores for {partition} ({source} is missing)", file=out)
        return 1
    table = pq.read_table(source, columns=["customer_id", "score", "model_version",
                                           "predicted_class"])
    ranked = table.take(pc.sort_indices(table, sort_keys=[("score", "descending"),
                                                          ("customer_id", "ascending")]))
    ranked = ranked.append_column("rank", pa.array(range(1, ranked.num_rows + 1), pa.int64()))
    ranked = ranked.append_column("contact", pc.equal(ranked["predicted_class"], "buy"))
    _write_atomically(scored_path(home, partition),
                      lambda path: pacsv.write_csv(ranked.drop_columns(["predicted_class"]), path))
    contacts = pc.sum(ranked["contact"]).as_py() or 0
    print(f"score: {partition}: {ranked.num_rows} customers scored, {contacts} to contact", file=out)
    return 0


def deliver(home: Path, partition: str, out: TextIO) -> int:
    import shutil

    source = scored_path(home, partition)
    if not source.is_file():
        print(f"deliver: nothing scored for {partition} ({source} is missing)", file=out)
        return 1
    target = outbox_path(home, partition)
    _write_atomically(target, lambda path: shutil.copyfile(source, path))
    print(f"deliver: {partition}: published {target.relative_to(home)}", file=out)
    return 0


def _write_atomically(target: Path, write) -> None:
    """Write to a temporary file beside the target, then rename it over the target: a
    reader sees the old file or the new one, never half of one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    write(partial)
    os.replace(partial, target)


STAGES = {"score": score, "deliver": deliver}


def main(argv: list[str], environ: Mapping[str, str], out: TextIO, home: Path | None = None) -> int:
    """`score` or `deliver` for the partition in MONITORS_PARTITION; the exit code."""
    if len(argv) != 1 or argv[0] not in STAGES or not environ.get("MONITORS_PARTITION"):
        print(f"usage: MONITORS_PARTITION=YYYY-MM-DD demo_stages.py {'|'.join(STAGES)}", file=out)
        return 2
    return STAGES[argv[0]](home or Path.cwd(), environ["MONITORS_PARTITION"], out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ, sys.stdout))
