"""Detection quality on real labelled data, with default options, in one run:
`detect_anomalies` on every NAB series and `detect_breakouts` on every univariate TCPD
series. Prints both tables and writes bench/results/detection.json (each part also writes
its own file when run alone: bench/detection_nab.py, bench/detection_tcpd.py).

    python bench/detection.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import detection_nab  # noqa: E402  (bench scripts import each other as siblings)
import detection_tcpd  # noqa: E402


def main() -> None:
    nab = detection_nab.run()
    detection_nab.print_table(nab)
    print()
    tcpd = detection_tcpd.run()
    detection_tcpd.print_table(tcpd)
    out = ROOT / "bench" / "results" / "detection.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"nab": nab, "tcpd": tcpd}, indent=2, default=str) + "\n")
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
