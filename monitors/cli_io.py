"""What every CLI command shares: reading a date argument, printing a listing or one JSON
document (with --json, nothing else goes to stdout), and the exit codes."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

EXIT_USAGE = 2


def date_argument(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def emit(args: argparse.Namespace, document: Any, lines: list[str]) -> None:
    if getattr(args, "json", False):
        json.dump(document, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print("\n".join(lines) if lines else "(none)")
