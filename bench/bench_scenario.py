"""`cms scenario` benchmarks: scenarios played per second on one set of servers (as `--jsonl` plays
them), against one bare workflow on the same time-skipping server in the same run.

Rows:
* two years of a Direct Pay case with five changes of circumstances, played end to end
  (application, assessment, two annual reviews, every change through its change workflow,
  the result read): scenarios per second, and the ratio to bare one-activity workflows per second;
* the same case's wall time per year of case life (target: under 2 s);
* two years of a weekly Collect & Pay case with the same changes (a collection cycle workflow
  every week, each charging, checking and passing money on through the payments service).

The servers' start-up is not counted: `--jsonl` pays it once for every line. Run alone:
``python -m bench.bench_scenario [--quick]``.
"""

from __future__ import annotations

import asyncio
import copy
import sys
import time
import uuid
from typing import Any

from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.bare_workflow import BareWorkflow, bare_activity
from cms.scenario.player import ScenarioPlayer
from cms.scenario.script import Scenario, scenario_from
from cms.scenario.stack import ScenarioServices, ScenarioStack

YEARS = 2
TWO_YEARS_FIVE_CHANGES: dict[str, Any] = {
    "application": {"receiving_parent": {"party_id": "rp-1", "full_name": "Receiving Parent"},
                    "paying_parent": {"party_id": "pp-1", "full_name": "Paying Parent"},
                    "children": [{"child_id": "c-1", "date_of_birth": "2015-05-01"},
                                 {"child_id": "c-2", "date_of_birth": "2017-09-12"}],
                    "application_date": "2025-03-03"},
    "hmrc": {"2023-24": 3120000, "2024-25": 3300000, "2025-26": 3500000},
    "events": [
        {"on": "2025-05-10", "report_change": {"kind": "paying_parent_income", "effective_date": "2025-05-10",
                                               "details": {"weekly_income_pence": 80000}}},
        {"on": "2025-08-01", "report_change": {"kind": "shared_care_nights", "effective_date": "2025-08-01",
                                               "details": {"child_id": "c-1", "nights": 110}}},
        {"on": "2025-11-20", "report_change": {"kind": "relevant_other_children", "effective_date": "2025-11-20",
                                               "details": {"count": 1}}},
        {"on": "2026-06-15", "report_change": {"kind": "flat_rate_benefit_started", "effective_date": "2026-06-15"}},
        {"on": "2026-10-01", "report_change": {"kind": "flat_rate_benefit_stopped", "effective_date": "2026-10-01"}},
    ],
    "until": "2027-03-10",
}


def two_year_case(collect_and_pay: bool = False) -> Scenario:
    """Two years, five changes: the case both scenario benchmarks and the case-year costs play."""
    data = copy.deepcopy(TWO_YEARS_FIVE_CHANGES)
    if collect_and_pay:
        data["application"].update(requested_service_type="SERVICE_TYPE_COLLECT_AND_PAY", payment_frequency="weekly")
    return scenario_from(data)


async def _bare_rate(services: ScenarioServices, count: int) -> float:
    """Bare one-activity workflows per second, one after another, on the scenario's server."""
    client = services.client
    queue = f"bench-bare-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=queue, workflows=[BareWorkflow], activities=[bare_activity],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        started = time.perf_counter()
        for i in range(count):
            await client.execute_workflow(BareWorkflow.run, i, id=f"bare-{queue}-{i}", task_queue=queue)
        return count / (time.perf_counter() - started)


async def _scenario_seconds(player: ScenarioPlayer, scenario: Scenario, count: int) -> float:
    """Mean wall seconds per scenario, each played whole (its result read)."""
    started = time.perf_counter()
    for _ in range(count):
        result = await player.play(scenario)
        assert result["stage"] == "Active", result["stage"]
    return (time.perf_counter() - started) / count


async def _run(quick: bool) -> list[dict]:
    count = 2 if quick else 5
    async with ScenarioStack() as services:
        player = ScenarioPlayer(services)
        direct_pay, collect_and_pay = two_year_case(), two_year_case(collect_and_pay=True)
        await player.play(direct_pay)   # warm-up: first imports and connections
        await _bare_rate(services, 5)
        bare = await _bare_rate(services, 10 if quick else 40)
        per_scenario = await _scenario_seconds(player, direct_pay, count)
        per_cp_scenario = await _scenario_seconds(player, collect_and_pay, 1 if quick else 2)
    return [
        {"benchmark": "scenario: 2 years, 5 changes, Direct Pay", "value": 1 / per_scenario, "unit": "scenarios/s",
         "baseline": bare, "ratio": (1 / per_scenario) / bare, "target": "measured (ratio to a bare workflow)"},
        {"benchmark": "scenario wall time per case-year, Direct Pay", "value": per_scenario / YEARS, "unit": "s",
         "baseline": 2.0, "ratio": per_scenario / YEARS / 2.0, "target": "< 2 s a year"},
        {"benchmark": "scenario: 2 years, 5 changes, weekly Collect & Pay", "value": 1 / per_cp_scenario,
         "unit": "scenarios/s", "baseline": bare, "ratio": (1 / per_cp_scenario) / bare,
         "target": "measured (ratio to a bare workflow)"},
        {"benchmark": "scenario wall time per case-year, weekly Collect & Pay", "value": per_cp_scenario / YEARS,
         "unit": "s", "baseline": 2.0, "ratio": per_cp_scenario / YEARS / 2.0, "target": "< 2 s a year"},
    ]


def run(quick: bool) -> list[dict]:
    return asyncio.run(_run(quick))


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
