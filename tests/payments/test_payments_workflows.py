"""Payment-cycle workflows on the time-skipping server, with the real payments service behind
their activities: a missed period is signalled to the case workflow, collected money passed on."""

import uuid
from datetime import date

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.payments_messages import DirectPaymentReport
from cms.grpc_client import Channels
from cms.worker_catalog import payment_activities, payments_client
from cms_proto.payments.v1 import payments_pb2 as pb
from tests.helpers.replay import PAYMENT_HISTORIES, record_history
from tests.payments.payments_case_stub import CaseStub
from tests.payments.payments_helpers import deliver, new_schedule
from workflows.payments import (
    ALL_WORKFLOWS,
    CollectionCycleInput,
    CollectionCycleWorkflow,
    DirectPayReportInput,
    DirectPayReportWorkflow,
    DisbursementInput,
    DisbursementWorkflow,
    ReconciliationWorkflow,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

# A short case calendar rather than time skipping: the shared time-skipping server stops skipping
# while any other test's workflow has a task no worker polls, and real short timers do not care.
SECONDS_PER_DAY = 0.02


@pytest_asyncio.fixture(loop_scope="session")
async def payments_worker(time_skipping_env: WorkflowEnvironment, payments_stub):
    channels = Channels()
    queue = f"cms-payments-test-{uuid.uuid4().hex[:6]}"
    async with Worker(time_skipping_env.client, task_queue=queue, workflows=[*ALL_WORKFLOWS, CaseStub],
                      activities=payment_activities(payments_client(payments_stub.address, channels))):
        yield {"client": time_skipping_env.client, "queue": queue}
    await channels.close()


async def test_a_missed_period_is_signalled_and_a_paid_one_disbursed(payments_worker, payments_stub, fake_bank,
                                                                       case_id) -> None:
    client, queue = payments_worker["client"], payments_worker["queue"]
    await new_schedule(payments_stub, case_id)
    case = await client.start_workflow(CaseStub.run, 1, id=f"case-{case_id}", task_queue=queue)
    missed = await client.execute_workflow(
        CollectionCycleWorkflow.run, CollectionCycleInput(case_id, 0, "2026-01-05", today="2026-01-01", seconds_per_day=SECONDS_PER_DAY),
        id=f"case-{case_id}/collection-0", task_queue=queue)
    assert (missed.period.status, missed.signalled, missed.disbursed_pence) == ("missed", "missed", 0)
    received = await case.result()
    assert [(e.kind, e.period_index, e.due_pence, e.paid_pence) for e in received.events] == [("missed", 0, 6000, 0)]

    await deliver(payments_stub, fake_bank.emit_payment(case_id, 12000, date(2026, 1, 11)))
    paid = await client.execute_workflow(
        CollectionCycleWorkflow.run, CollectionCycleInput(case_id, 1, "2026-01-12", today="2026-01-06", seconds_per_day=SECONDS_PER_DAY),
        id=f"case-{case_id}/collection-1", task_queue=queue)
    # The advance payment settles period 1 and the missed period 0: 2 × £50 maintenance less 4%.
    assert (paid.period.status, paid.signalled) == ("paid", "")
    assert (paid.disbursed_pence, paid.disbursement_due_by) == (9600, "2026-01-15")
    await record_history(client.get_workflow_handle(f"case-{case_id}/collection-0"),
                         PAYMENT_HISTORIES, "collection_missed")
    await record_history(client.get_workflow_handle(f"case-{case_id}/collection-1"),
                         PAYMENT_HISTORIES, "collection_paid")


async def test_disbursement_workflow_records_its_due_time(payments_worker, payments_stub, fake_bank, case_id) -> None:
    import datetime

    client, queue = payments_worker["client"], payments_worker["queue"]
    await new_schedule(payments_stub, case_id)
    await payments_stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=0))
    note = fake_bank.emit_payment(case_id, 6000, datetime.date(2026, 1, 9))   # a Friday
    await deliver(payments_stub, note)
    result = await client.execute_workflow(
        DisbursementWorkflow.run, DisbursementInput(case_id, "2026-01-09", note.bank_reference),
        id=f"case-{case_id}/disbursement-{note.bank_reference}", task_queue=queue)
    assert (result.amount_pence, result.due_by, result.on_time) == (4800, "2026-01-13", True)
    await record_history(client.get_workflow_handle(f"case-{case_id}/disbursement-{note.bank_reference}"),
                         PAYMENT_HISTORIES, "disbursement")
    report = await client.execute_workflow(ReconciliationWorkflow.run, "2026-12-31", id=f"recon-{case_id}",
                                           task_queue=queue)
    assert report.ok, report.differences


async def test_a_missed_direct_payment_is_signalled_to_the_case(payments_worker, payments_stub, case_id) -> None:
    client, queue = payments_worker["client"], payments_worker["queue"]
    await new_schedule(payments_stub, case_id, fee=0, service_type="direct_pay")
    case = await client.start_workflow(CaseStub.run, 1, id=f"case-{case_id}", task_queue=queue)
    report = DirectPaymentReport(case_id, "2026-01-05", received=False, amount_pence=0, business_key="report-1")
    outcome = await client.execute_workflow(DirectPayReportWorkflow.run, DirectPayReportInput(report),
                                            id=f"case-{case_id}/direct-pay-report-1", task_queue=queue)
    assert (outcome.duplicate, outcome.shortfall_pence) == (False, 5000)
    await record_history(client.get_workflow_handle(f"case-{case_id}/direct-pay-report-1"),
                         PAYMENT_HISTORIES, "direct_pay_missed")
    events = (await case.result()).events
    assert [(e.kind, e.arrears_pence) for e in events] == [("direct_pay_missed", 5000)]
    balance = await payments_stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of="2026-01-06"))
    assert (balance.service_type, balance.arrears_pence) == ("direct_pay", 5000)
    statement = await payments_stub.GetStatement(pb.GetStatementRequest(case_id=case_id, to_date="2026-01-31"))
    assert [(line.description, line.balance_pence) for line in statement.lines] == [("Direct Pay payment due", 5000)]
