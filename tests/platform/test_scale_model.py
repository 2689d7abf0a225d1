"""scripts/scale_model.py: the arithmetic from per-case-year costs to the national service."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.scale_model import (
    MEASURES,
    PROFILES,
    SECONDS_PER_YEAR,
    Volume,
    costs_from_rows,
    main,
    scale,
)


def bench_rows(**overrides: float) -> list[dict]:
    base = {"runs": 4, "events": 150, "history_kib": 60, "workflow_tasks": 20, "activities": 25,
            "db_rows": 70, "db_kib": 80, "worker_cpu": 0.4, "server_cpu": 0.1}
    rows = []
    for profile in PROFILES:
        scale_by = 10 if profile == "weekly Collect & Pay" else 1
        for field, name in MEASURES.items():
            value = overrides.get(field, base[field] * scale_by)
            rows.append({"area": "case_year", "benchmark": f"case-year, {profile}: {name}", "value": value})
    return rows


def test_yearly_costs_become_national_rates() -> None:
    rows = dict((quantity, value) for quantity, value, _ in scale(costs_from_rows(bench_rows()),
                                                                   Volume(cases=1_000_000, collect_and_pay_share=0.5)))
    # 500,000 cases x 150 events + 500,000 x 1,500 events, over a year.
    expected = (500_000 * 150 + 500_000 * 1_500) / SECONDS_PER_YEAR
    assert rows["history events per second (average)"] == f"{expected:,.1f}"
    assert rows["history shards"] == "512"


def test_a_heavier_peak_needs_more_shards_in_powers_of_two() -> None:
    heavy = costs_from_rows(bench_rows(workflow_tasks=2_000_000, activities=2_000_000))
    shards = int(dict((q, v) for q, v, _ in scale(heavy))["history shards"].replace(",", ""))
    assert shards > 512 and shards & (shards - 1) == 0


def test_jittering_the_due_time_lowers_the_peak() -> None:
    costs = costs_from_rows(bench_rows())
    one_hour = dict((q, v) for q, v, _ in scale(costs, Volume(peak_window_hours=1)))
    eight_hours = dict((q, v) for q, v, _ in scale(costs, Volume(peak_window_hours=8)))
    assert float(one_hour["peak over average"].rstrip("x")) > float(eight_hours["peak over average"].rstrip("x"))


def test_missing_bench_rows_give_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "latest.json"
    results.write_text(json.dumps(bench_rows()[:-1]))
    assert main([str(results)]) == 2
    assert "run `make bench`" in capsys.readouterr().err
    results.write_text(json.dumps(bench_rows()))
    assert main([str(results)]) == 0
    assert "| history shards | 512 |" in capsys.readouterr().out
