"""Named kill points, so that the fault tests can stop a worker at an exact place.

`MONITORS_KILL_AT=<point>` makes the process SIGKILL itself the first time it reaches that
point; `<point>#N` the N-th time. A SIGKILL cannot be caught or cleaned up after, which is
the point: whatever the store holds afterwards is what a power cut would have left. Unset
(always, outside the fault tests), a kill point costs one environment lookup.
"""
from __future__ import annotations

import os
import signal
from collections import Counter

POINTS = {
    "ingest.profiling": "a batch is half read and profiled",
    "ingest.writing": "a batch and its metric rows are written, not committed",
    "alerts.writing": "a partition's alerts, occurrences and events are written, not committed",
}
_reached: Counter[str] = Counter()


def kill_point(name: str) -> None:
    target = os.environ.get("MONITORS_KILL_AT")
    if not target:
        return
    if name not in POINTS:
        raise ValueError(f"unknown kill point {name!r}")
    point, _, nth = target.partition("#")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
