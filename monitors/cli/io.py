"""What every CLI command shares: reading a date argument, printing a listing or one JSON
document (with --json, nothing else goes to stdout), and the exit codes."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

EXIT_USAGE = 2
# the largest id or count a store holds (a 64-bit signed integer on both databases)
LARGEST = 2**63 - 1


def date_argument(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def count_argument(text: str) -> int:
    """An id, a limit or an offset: a whole number the store can hold, refused in one usage
    line otherwise (a number past 2**63 made the driver overflow with a traceback)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= LARGEST:
        raise argparse.ArgumentTypeError(f"out of range (0 to {LARGEST}): {text}")
    return value


def emit(args: argparse.Namespace, document: Any, lines: list[str]) -> None:
    if getattr(args, "json", False):
        json.dump(document, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print("\n".join(lines) if lines else "(none)")
