"""Calculation benchmarks (docs/design.md).

Rows, each as a ratio to a baseline measured in the same run:

* single-calculation latency (p50, µs): the reference engine with its explanation, and
  the fast path, against ``json.loads`` of the same request;
* batch recalculation of the whole synthetic caseload (1,000,000 cases; 20,000 with
  ``quick``): wall time and throughput over all cores, including JSON decoding and
  encoding of every result line, against a plain single-process Python loop that only
  parses the same lines;
* the what-if report (baseline vs the 2% / 2% fee rule set) over the same caseload.

Run alone: ``python -m bench.bench_calculation [--quick]``.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from multiprocessing import get_context

from cms.cli.calculation import recalculate_lines, what_if, worker_count
from domain.calculation import calculate, parse_request
from domain.calculation.fast import calculate_fast, compile_rules
from domain.calculation.synthetic import synthetic_request
from domain.rulesets import current_rules, rule_set

FULL_CASES = 1_000_000
QUICK_CASES = 20_000
GENERATION_CHUNK = 50_000
_encode = json.JSONEncoder(separators=(",", ":")).encode


def _generate_chunk(task: tuple[int, int, int]) -> list[str]:
    seed, index, count = task
    rng = random.Random(seed * 1_000_003 + index)
    return [_encode(synthetic_request(rng)) for _ in range(count)]


def synthetic_lines(count: int, seed: int = 2012) -> list[str]:
    """A deterministic synthetic caseload as JSON lines, generated on every core."""
    tasks = [(seed, i, min(GENERATION_CHUNK, count - start))
             for i, start in enumerate(range(0, count, GENERATION_CHUNK))]
    with get_context("fork").Pool(worker_count()) as pool:
        return [line for chunk in pool.map(_generate_chunk, tasks) for line in chunk]


def _p50_microseconds(work, items, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        for item in items:
            start = time.perf_counter_ns()
            work(item)
            samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


def _row(name, value, unit, baseline, target, ratio=None):
    if ratio is None and baseline:
        ratio = value / baseline
    return {"benchmark": name, "value": round(value, 3), "unit": unit,
            "baseline": None if baseline is None else round(baseline, 3),
            "ratio": None if ratio is None else round(ratio, 3), "target": target}


def _plain_parse_loop(lines: list[str]) -> float:
    decode = json.loads
    start = time.perf_counter()
    for line in lines:
        decode(line)
    return time.perf_counter() - start


def single_latency_rows(lines: list[str], quick: bool) -> list[dict]:
    sample = lines[:500]
    rules = current_rules()
    compiled = compile_rules(rules)
    repeat = 2 if quick else 10
    parse_only = _p50_microseconds(json.loads, sample, repeat)
    full = _p50_microseconds(lambda line: calculate(parse_request(json.loads(line)), rules).to_json(), sample, repeat)
    fast = _p50_microseconds(lambda line: calculate_fast(json.loads(line), compiled), sample, repeat)
    return [
        _row("single calculation with explanation, p50", full, "µs", parse_only, "a few hundred µs at most"),
        _row("single calculation, fast path, p50", fast, "µs", parse_only, "< 20 µs"),
    ]


def batch_rows(lines: list[str]) -> list[dict]:
    rules = current_rules()
    parse_seconds = _plain_parse_loop(lines)
    start = time.perf_counter()
    errors = 0
    for _chunk, chunk_errors in recalculate_lines(lines, rules):
        errors += chunk_errors
    batch_seconds = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"synthetic caseload had {errors} bad lines")
    n = len(lines)
    start = time.perf_counter()
    summary = what_if(lines, rules, rule_set("gb-2012-fees-2pct"))
    what_if_seconds = time.perf_counter() - start
    if summary.total().cases != n:
        raise RuntimeError("what-if did not compare every case")
    scale = FULL_CASES / n  # targets are for the national caseload
    return [
        _row(f"batch recalculation of {n:,} cases (wall, {worker_count()} processes)", batch_seconds, "s",
             parse_seconds, f"< {10 / scale:.2f} s (10 s per 1M)"),
        _row(f"batch throughput ({n:,} cases)", n / batch_seconds, "cases/s", n / parse_seconds,
             "> 100,000 cases/s"),
        _row(f"what-if report over {n:,} cases (wall)", what_if_seconds, "s", parse_seconds,
             f"< {30 / scale:.2f} s (30 s per 1M)"),
    ]


def run(quick: bool = False) -> list[dict]:
    lines = synthetic_lines(QUICK_CASES if quick else FULL_CASES)
    return single_latency_rows(lines, quick) + batch_rows(lines)


def _print(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Calculation benchmarks (ratio = value / baseline: plain JSON parse of the same input)")
    for heading in ("benchmark", "value", "unit", "baseline", "ratio", "target"):
        table.add_column(heading, justify="left" if heading in {"benchmark", "unit", "target"} else "right")
    for row in rows:
        table.add_row(row["benchmark"], f"{row['value']:,}", row["unit"],
                      "-" if row["baseline"] is None else f"{row['baseline']:,}",
                      "-" if row["ratio"] is None else f"{row['ratio']:,}", row["target"])
    Console().print(table)


if __name__ == "__main__":
    _print(run(quick="--quick" in sys.argv[1:]))
