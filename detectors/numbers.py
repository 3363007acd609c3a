"""Numbers as a person reads them in an alert, its message and the CLI. Pure Python, so
the CLI can format without loading pandas."""
from __future__ import annotations

import math


def fmt_number(x: float) -> str:
    """A measured value as a person reads it in an alert: four significant digits with the
    thousands grouped ("0.03", "412.5", "1,234"), whole numbers from ten thousand on
    ("123,457"), three significant digits below a thousandth ("2.5e-05")."""
    if not math.isfinite(x):
        return str(x)
    if x != 0 and abs(x) < 1e-3:
        return f"{x:.3g}"
    if abs(x) < 9999.5:  # 9999.7 would round to "1e+04" with four digits
        return f"{x:,.4g}"
    return f"{x:,.0f}"
