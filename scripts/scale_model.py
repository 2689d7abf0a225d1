"""The scale model: from what one case-year costs on this machine to what the national service needs.

    python scripts/scale_model.py [bench/results/latest.json] [--cases 780000] [--collect-and-pay-share 0.35]

It reads the rows `make bench` wrote (bench/bench_case_year.py: per case-year, for a Direct Pay and
a weekly Collect & Pay case, the workflow runs, history events and bytes, workflow tasks, activity
executions, PostgreSQL rows and bytes, and CPU) and prints, as a Markdown table, the Temporal
cluster, the worker and service processes and the PostgreSQL that carry the national volume.
docs/scale.md explains every assumption and names the published guidance it leans on; the
assumptions are the named constants below and the command's options, so a reader can change one
and see what moves.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

SECONDS_PER_YEAR = 365.25 * 24 * 3600
# National volume (docs/scale.md, "Inputs").
OPEN_CASES = 780_000
COLLECT_AND_PAY_SHARE = 0.35
# Collection cycles fall due on working days. Unjittered, a day's cycles start within the hour
# their timers share; the peak window says over how many hours a day's work is spread.
WORKING_DAYS_PER_WEEK = 5
PEAK_WINDOW_HOURS = 1.0
# Persistence transactions per workflow task and per activity (schedule/start/complete, batched).
WRITES_PER_WORKFLOW_TASK = 2
WRITES_PER_ACTIVITY = 2
# Frontend requests per workflow task or activity: a poll and a completion.
FRONTEND_REQUESTS_PER_TASK = 2
FRONTEND_RPS_PER_HOST = 2_400          # the server's default frontend.rps per instance
TARGET_UTILISATION = 0.6               # headroom for a node loss and bursts
CORES_PER_TEMPORAL_HOST = 4
# How the Temporal server's CPU divides between its roles (history does the persistence work).
HISTORY_SHARE, MATCHING_SHARE = 0.6, 0.25
DEFAULT_SHARDS = 512                   # the Helm chart's numHistoryShards; immutable once deployed
# A published throughput point: about 210 workflows/s (5 local activities each) on 512 shards
# with the database at 80% CPU. Shards are scaled from it by workflow tasks + activities per second.
REFERENCE_TASKS_PER_SECOND_AT_512_SHARDS = 210 * 6

PROFILES = ("Direct Pay", "weekly Collect & Pay")
MEASURES = {
    "runs": "workflow runs", "events": "history events", "history_kib": "history bytes",
    "workflow_tasks": "workflow tasks", "activities": "activity executions",
    "db_rows": "PostgreSQL rows written", "db_kib": "PostgreSQL bytes added",
    "worker_cpu": "worker and services CPU", "server_cpu": "Temporal test server and PostgreSQL CPU",
}


class ModelInputError(ValueError):
    """The bench results lack a row the model needs."""


@dataclass(frozen=True)
class CaseYearCost:
    runs: float
    events: float
    history_kib: float
    workflow_tasks: float
    activities: float
    db_rows: float
    db_kib: float
    worker_cpu: float
    server_cpu: float


def costs_from_rows(rows: list[dict]) -> dict[str, CaseYearCost]:
    """Each profile's per-case-year costs from `make bench` rows."""
    values = {row["benchmark"]: float(row["value"]) for row in rows if row.get("area", "case_year") == "case_year"}
    costs = {}
    for profile in PROFILES:
        found = {}
        for field, name in MEASURES.items():
            key = f"case-year, {profile}: {name}"
            if key not in values:
                raise ModelInputError(f"the bench results have no row {key!r}: run `make bench` (or "
                                      "`.venv/bin/python -m bench case_year`) first")
            found[field] = values[key]
        costs[profile] = CaseYearCost(**found)
    return costs


@dataclass(frozen=True)
class Volume:
    cases: int = OPEN_CASES
    collect_and_pay_share: float = COLLECT_AND_PAY_SHARE
    peak_window_hours: float = PEAK_WINDOW_HOURS


def _national(costs: dict[str, CaseYearCost], volume: Volume, field: str) -> float:
    """The yearly national total of one measure."""
    collect_and_pay = volume.cases * volume.collect_and_pay_share
    direct_pay = volume.cases - collect_and_pay
    return (getattr(costs["Direct Pay"], field) * direct_pay
            + getattr(costs["weekly Collect & Pay"], field) * collect_and_pay)


def _peak_factor(costs: dict[str, CaseYearCost], volume: Volume) -> float:
    """Peak over average load: the weekly collection cycles of one working day in its window."""
    cycles = costs["weekly Collect & Pay"]
    week_of_cycles = cycles.workflow_tasks + cycles.activities
    share_of_load = (week_of_cycles * volume.cases * volume.collect_and_pay_share
                     / max(_national(costs, volume, "workflow_tasks") + _national(costs, volume, "activities"), 1))
    # A working day's cycles in the window, against the same work spread over the whole week.
    concentration = (7 * 24) / (WORKING_DAYS_PER_WEEK * volume.peak_window_hours)
    return share_of_load * concentration + (1 - share_of_load)


def _power_of_two_at_least(value: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(value, 1))))


def scale(costs: dict[str, CaseYearCost], volume: Volume = Volume()) -> list[tuple[str, str, str]]:
    """(quantity, value, how it is worked out) rows."""
    per_second = {field: _national(costs, volume, field) / SECONDS_PER_YEAR for field in MEASURES}
    peak = _peak_factor(costs, volume)
    tasks = per_second["workflow_tasks"] + per_second["activities"]
    writes = (per_second["workflow_tasks"] * WRITES_PER_WORKFLOW_TASK + per_second["activities"] * WRITES_PER_ACTIVITY)
    frontend_rps = tasks * FRONTEND_REQUESTS_PER_TASK * peak
    server_cores = per_second["server_cpu"] * peak / TARGET_UTILISATION
    worker_cores = per_second["worker_cpu"] * peak / TARGET_UTILISATION
    shards = max(DEFAULT_SHARDS, _power_of_two_at_least(
        DEFAULT_SHARDS * tasks * peak / REFERENCE_TASKS_PER_SECOND_AT_512_SHARDS))
    history_hosts = max(2, math.ceil(server_cores * HISTORY_SHARE / CORES_PER_TEMPORAL_HOST))
    matching_hosts = max(2, math.ceil(server_cores * MATCHING_SHARE / CORES_PER_TEMPORAL_HOST))
    frontend_hosts = max(2, math.ceil(frontend_rps / (FRONTEND_RPS_PER_HOST * TARGET_UTILISATION)))
    database_gib_per_year = _national(costs, volume, "db_kib") / 1024 ** 2
    history_gib_per_year = _national(costs, volume, "history_kib") / 1024 ** 2
    return [
        ("open cases", f"{volume.cases:,}", f"{volume.collect_and_pay_share:.0%} on weekly Collect & Pay, the rest Direct Pay"),
        ("workflow runs a year", f"{_national(costs, volume, 'runs'):,.0f}", "per-profile runs per case-year x cases"),
        ("history events per second (average)", f"{per_second['events']:,.1f}", "events per case-year x cases / seconds in a year"),
        ("workflow tasks + activities per second (average)", f"{tasks:,.1f}", "the same for tasks and activity executions"),
        ("peak over average", f"{peak:,.1f}x", f"a working day's collection cycles within {volume.peak_window_hours:g} h"),
        ("persistence writes per second (peak)", f"{writes * peak:,.0f}",
         f"{WRITES_PER_WORKFLOW_TASK} per workflow task, {WRITES_PER_ACTIVITY} per activity, at the peak"),
        ("history shards", f"{shards:,}", f"at least the chart's {DEFAULT_SHARDS}; scaled from ~{REFERENCE_TASKS_PER_SECOND_AT_512_SHARDS:,} tasks/s at 512"),
        ("Temporal server cores (peak)", f"{server_cores:,.1f}", f"measured server CPU per case-year, at {TARGET_UTILISATION:.0%} use"),
        ("history hosts", f"{history_hosts}", f"{HISTORY_SHARE:.0%} of the server cores, {CORES_PER_TEMPORAL_HOST} cores a host, at least 2"),
        ("matching hosts", f"{matching_hosts}", f"{MATCHING_SHARE:.0%} of the server cores, at least 2"),
        ("frontend hosts", f"{frontend_hosts}", f"{FRONTEND_REQUESTS_PER_TASK} requests per task at the peak, {FRONTEND_RPS_PER_HOST:,} rps a host"),
        ("worker and service processes (peak)", f"{math.ceil(worker_cores)}", "one core each (the GIL): measured CPU per case-year"),
        ("PostgreSQL rows written per second (peak)", f"{per_second['db_rows'] * peak:,.0f}", "ledger, outboxes, read model; about one page write each at worst"),
        ("PostgreSQL growth a year", f"{database_gib_per_year:,.0f} GiB", "bytes added per case-year x cases (pages, so an upper bound)"),
        ("Temporal history written a year", f"{history_gib_per_year:,.0f} GiB", "kept for the namespace's retention after a run closes"),
    ]


def markdown(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| quantity | value | how |", "|---|---:|---|"]
    lines += [f"| {quantity} | {value} | {how} |" for quantity, value, how in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("results", nargs="?", type=Path, default=Path("bench/results/latest.json"))
    parser.add_argument("--cases", type=int, default=OPEN_CASES)
    parser.add_argument("--collect-and-pay-share", type=float, default=COLLECT_AND_PAY_SHARE)
    parser.add_argument("--peak-window-hours", type=float, default=PEAK_WINDOW_HOURS)
    args = parser.parse_args(argv)
    try:
        rows = json.loads(args.results.read_text())
        costs = costs_from_rows(rows)
    except (OSError, json.JSONDecodeError, ModelInputError) as error:
        print(f"error: {args.results}: {error}", file=sys.stderr)
        return 2
    volume = Volume(args.cases, args.collect_and_pay_share, args.peak_window_hours)
    print(markdown(scale(costs, volume)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
