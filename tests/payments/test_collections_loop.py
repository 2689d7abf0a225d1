"""CollectionsWorkflow runs a Collect & Pay case's collection cycles one period after another,
with the real payments service behind them: missed periods reach the case (a stand-in), a new
plan skips cycles already run, and a stopped schedule ends the loop."""

import uuid

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from cms.grpc_client import Channels
from cms.worker_catalog import payment_activities, payments_client
from cms_proto.payments.v1 import payments_pb2 as pb
from tests.payments.payments_case_stub import CaseStub
from tests.payments.payments_helpers import new_schedule
from workflows.payments import ALL_WORKFLOWS, CollectionCycleResult, CollectionsInput, CollectionsWorkflow, PlannedPeriod

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECONDS_PER_DAY = 0.02   # a short real case calendar (see test_payments_workflows)


@pytest_asyncio.fixture(loop_scope="session")
async def worker(time_skipping_env: WorkflowEnvironment, payments_stub):
    channels = Channels()
    queue = f"cms-payments-loop-{uuid.uuid4().hex[:6]}"
    async with Worker(time_skipping_env.client, task_queue=queue, workflows=[*ALL_WORKFLOWS, CaseStub],
                      activities=payment_activities(payments_client(payments_stub.address, channels))):
        yield {"client": time_skipping_env.client, "queue": queue}
    await channels.close()


def _plan(case_id: str, periods: dict[int, str], version: int) -> CollectionsInput:
    return CollectionsInput(case_id, [PlannedPeriod(n, due) for n, due in periods.items()], case_day="2026-01-01",
                            seconds_per_day=SECONDS_PER_DAY, schedule_version=version)


async def test_cycles_run_in_turn_and_a_stopped_schedule_ends_the_loop(worker, payments_stub, case_id) -> None:
    client, queue = worker["client"], worker["queue"]
    await new_schedule(payments_stub, case_id)            # weekly from 5 January 2026, nothing paid
    case = await client.start_workflow(CaseStub.run, 2, id=f"case-{case_id}", task_queue=queue)
    loop = await client.start_workflow(CollectionsWorkflow.run, _plan(case_id, {0: "2026-01-05", 1: "2026-01-12"}, 1),
                                       id=f"case-{case_id}/collections", task_queue=queue)
    received = await case.result()
    assert [(e.kind, e.period_index) for e in received.events] == [("missed", 0), ("missed", 1)]
    for n in (0, 1):   # each cycle a workflow of its own, under the agreed id
        cycle = await client.get_workflow_handle(f"case-{case_id}/collection-{n}",
                                                 result_type=CollectionCycleResult).result()
        assert (cycle.period.period_index, cycle.signalled) == (n, "missed")

    # The case closes: the schedule stops; the next plan repeats period 1 (already run) and adds 2.
    await payments_stub.StopSchedule(pb.StopScheduleRequest(idempotency_key=f"{case_id}/stop", case_id=case_id,
                                                            stop_from="2026-01-19", reason="closed"))
    await loop.signal(CollectionsWorkflow.schedule_changed, _plan(case_id, {1: "2026-01-12", 2: "2026-01-19"}, 2))
    result = await loop.result()
    assert (result.cycles_run, result.stopped_at_period) == (2, 2)
