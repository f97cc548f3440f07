"""How large the reliability loops run, and the record of what they ran.

`make test` runs each fault loop a few times (fast, to keep the suite honest on every change);
`make stress` sets COVERLENS_STRESS=1 and runs the full counts the project promises. Every loop
records what it actually did; pytest prints the records at the end of the run ("reliability"
section) and test-output/reliability.json keeps them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STRESS_ENV = "COVERLENS_STRESS"
REPORT_FILE = Path(__file__).resolve().parents[1] / "test-output" / "reliability.json"

_records: list[dict[str, Any]] = []


def stressed() -> bool:
    return os.environ.get(STRESS_ENV, "") not in ("", "0")


def scale(fast: int, stress: int) -> int:
    """`stress` under `make stress`, else `fast`."""
    return stress if stressed() else fast


def record(check: str, **figures: Any) -> None:
    _records.append({"check": check, **figures})


def summary_lines() -> list[str]:
    mode = "stress" if stressed() else "fast"
    return [f"[{mode}] {r['check']}: " + ", ".join(f"{k} {v}" for k, v in r.items() if k != "check")
            for r in _records]


def write_report() -> None:
    if not _records:
        return
    REPORT_FILE.parent.mkdir(parents=True, exist_ok=True)
    REPORT_FILE.write_text(json.dumps({"mode": "stress" if stressed() else "fast", "checks": _records},
                                      indent=2) + "\n", encoding="utf-8")
