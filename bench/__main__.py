"""`make bench`: every benchmark, printed as one table of ratios against same-run baselines.

Each module `bench/bench_<area>.py` exposes `run(quick: bool) -> list[dict]` with rows
{"benchmark", "value", "unit", "baseline", "ratio", "target"}. `BENCH_QUICK=1` shrinks them.
Results are also written to bench/results/latest.json, so a run can be compared with an earlier one.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table


def _modules(only: list[str]) -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_"))
    return [n for n in names if not only or any(o in n for o in only)]


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def main(argv: list[str]) -> int:
    quick = os.environ.get("BENCH_QUICK") == "1"
    console = Console()
    rows: list[dict] = []
    failures = 0
    for name in _modules(argv):
        started = time.monotonic()
        console.print(f"[bold]running {name}[/] …")
        try:
            module = importlib.import_module(f"bench.{name}")
            for row in module.run(quick=quick):
                rows.append({"area": name.removeprefix("bench_"), **row})
        except Exception as error:  # one broken benchmark must not hide the others
            failures += 1
            console.print(f"[red]{name} failed: {error!r}[/]")
        console.print(f"  {name} took {time.monotonic() - started:.1f}s")
    table = Table(title="make bench (ratios against baselines measured in the same run)")
    for column in ("area", "benchmark", "value", "unit", "baseline", "ratio", "target"):
        table.add_column(column, justify="right" if column in ("value", "baseline", "ratio") else "left")
    for row in rows:
        table.add_row(*(_fmt(row.get(c)) for c in ("area", "benchmark", "value", "unit", "baseline", "ratio", "target")))
    console.print(table)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    # A run of some benchmarks (`python -m bench changes`) must not overwrite the full table.
    (out / ("latest.json" if not argv else f"latest-{'-'.join(argv)}.json")).write_text(json.dumps(rows, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
