"""Disbursement on arrival: money reaching a case between due dates is passed on within 2 working
days, through the outbox (migration 0003) and its dispatcher (services/payments/disbursements.py),
with the real payments service, PostgreSQL and a time-skipping Temporal server."""

import asyncio
import functools
from dataclasses import replace
from datetime import date, timedelta
from types import SimpleNamespace

import psycopg
import pytest
import pytest_asyncio
import temporalio.converter
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from cms.config import TASK_QUEUE_PAYMENTS, load_settings
from cms.grpc_client import Channels
from cms.infra.processes import free_port
from cms.temporal import connect
from cms.worker_catalog import payment_activities, payments_client
from cms_proto.payments.v1 import payments_pb2 as pb
from cms_proto.payments.v1 import payments_pb2_grpc
from services.common.server import serve_in_background
from services.payments import ledger
from services.payments.bank import FakeBank
from services.payments.disbursements import (
    ENABLE_ENV,
    DispatcherStats,
    disbursement_workflow_id,
    dispatch_pending,
    run_dispatcher,
    start_dispatcher,
)
from services.payments.service import register
from tests.helpers.auth import caller_channel
from tests.helpers.codec import assert_sealed, codec_data_converter
from tests.helpers.replay import PAYMENT_HISTORIES, record_history
from tests.payments.payments_forwarder import Forwarder
from tests.payments.payments_helpers import deliver, fresh_database, new_schedule, payments_pool
from workflows.payments import ALL_WORKFLOWS, DisbursementInput, DisbursementResult, DisbursementWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

# The dispatcher's case calendar: a minute a day, so each test runs within one case day.
SECONDS_PER_DAY = 60.0
FRIDAY = date(2026, 1, 9)          # between the weekly due dates of Monday 5 and Monday 12 January


@pytest.fixture(scope="module")
def outbox_db(database_url: str) -> str:
    # A database of its own: other modules' payments leave outbox rows nobody dispatches.
    return fresh_database(database_url, "payments_outbox_tests")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(outbox_db: str):
    bank = FakeBank(seed=61)
    settings = load_settings()
    settings = replace(settings, database_url=outbox_db, ports={**settings.ports, "payments": free_port()})
    running = await serve_in_background("payments", functools.partial(register, bank=bank), settings)
    channel = caller_channel(running.address)
    yield SimpleNamespace(stub=payments_pb2_grpc.PaymentsServiceStub(channel), bank=bank, address=running.address,
                          settings=settings)
    await channel.close()
    await running.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pool(outbox_db: str):
    async with payments_pool(outbox_db, max_size=6) as pool:
        yield pool


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def temporal(time_skipping_env: WorkflowEnvironment, service):
    """A payments worker on the real task queue, and the dispatcher's settings and client. The
    worker reaches the payments service through `payments_link`, which a test can cut."""
    service_host, service_port = service.address.rsplit(":", 1)
    link = Forwarder(free_port(), service_host, int(service_port))
    await link.start()
    channels = Channels()
    target = time_skipping_env.client.service_client.config.target_host
    settings = replace(service.settings, temporal_address=target, seconds_per_day=SECONDS_PER_DAY)
    # The environment's connection and time skipping, with the payload codec as every worker has it.
    config = time_skipping_env.client.config()
    config["data_converter"] = codec_data_converter()
    client = Client(**config)
    async with Worker(client, task_queue=TASK_QUEUE_PAYMENTS, workflows=ALL_WORKFLOWS,
                      activities=payment_activities(payments_client(f"127.0.0.1:{link.listen_port}", channels))):
        yield SimpleNamespace(client=client, settings=settings,
                              dispatcher_client=await connect(settings), payments_link=link)
    await channels.close()
    await link.stop()


_counter = iter(range(1, 10_000))


@pytest.fixture
def case_id() -> str:
    return f"arrive-{next(_counter):04d}"


async def charged_case(stub, case_id: str, periods: int = 1) -> None:
    """Weekly £50 + £10 fee from Monday 5 January 2026, with `periods` periods charged."""
    await new_schedule(stub, case_id)
    for index in range(periods):
        await stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=index))


async def outbox(pool, case_id: str) -> list[tuple[str, bool, str | None]]:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT bank_reference, started_at IS NOT NULL, workflow_id FROM disbursement_outbox"
                                 " WHERE case_id = %s ORDER BY outbox_id", (case_id,))
        return list(await cur.fetchall())


async def disbursed(pool, case_id: str) -> list[int]:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT (detail->>'amount_pence')::bigint FROM transactions"
                                 " WHERE case_id = %s AND kind = 'disbursement' ORDER BY transaction_id", (case_id,))
        return [row[0] for row in await cur.fetchall()]


async def ledger_due_by(pool, case_id: str) -> list[str]:
    """The due times the ledger recorded with the case's disbursements."""
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT detail->>'due_by' FROM transactions"
                                 " WHERE case_id = %s AND kind = 'disbursement' ORDER BY transaction_id", (case_id,))
        return [row[0] for row in await cur.fetchall()]


async def result_of(client: Client, case_id: str, bank_reference: str) -> DisbursementResult:
    handle = client.get_workflow_handle(disbursement_workflow_id(case_id, bank_reference),
                                        result_type=DisbursementResult)
    return await handle.result()


async def eventually(condition, what: str, timeout: float = 60) -> None:
    """Waits for a condition the code under test brings about in the background."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


async def test_money_arriving_between_due_dates_goes_out_within_two_working_days(service, pool, temporal,
                                                                                  case_id) -> None:
    await charged_case(service.stub, case_id)
    note = service.bank.emit_payment(case_id, 6000, FRIDAY)
    await deliver(service.stub, note)
    # The outbox row was committed with the payment: pending until the dispatcher starts it.
    assert await outbox(pool, case_id) == [(note.bank_reference, False, None)]

    assert await dispatch_pending(pool, temporal.dispatcher_client, temporal.settings) == 1
    result = await result_of(temporal.client, case_id, note.bank_reference)
    # £50 maintenance less the receiving parent's 4%; Friday + 2 working days = Tuesday.
    assert (result.amount_pence, result.due_by, result.on_time) == (4800, "2026-01-13", True)
    assert await disbursed(pool, case_id) == [4800]
    workflow_id = disbursement_workflow_id(case_id, note.bank_reference)
    assert await outbox(pool, case_id) == [(note.bank_reference, True, workflow_id)]
    balance = await service.stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of="2026-01-09"))
    assert balance.payable_to_receiving_parent_pence == 0
    await record_history(temporal.client.get_workflow_handle(workflow_id), PAYMENT_HISTORIES,
                         "disbursement_on_arrival")
    # Stored sealed: without the codec, the disbursement's history shows neither the amount nor the date.
    without_codec = Client(**{**temporal.client.config(), "data_converter": temporalio.converter.default()})
    raw = await without_codec.get_workflow_handle(workflow_id).fetch_history()
    await assert_sealed(raw.events, ["4800", "2026-01-09"])


async def test_a_disbursement_started_after_its_due_time_is_reported_late(service, pool, temporal, case_id) -> None:
    await charged_case(service.stub, case_id)
    note = service.bank.emit_payment(case_id, 6000, FRIDAY)
    await deliver(service.stub, note)
    async with pool.connection() as conn:   # as if the dispatcher had been down for 5 case days
        await conn.execute("UPDATE disbursement_outbox SET created_at = created_at - %s WHERE case_id = %s",
                           (timedelta(seconds=5 * SECONDS_PER_DAY), case_id))
    assert await dispatch_pending(pool, temporal.dispatcher_client, temporal.settings) == 1
    result = await result_of(temporal.client, case_id, note.bank_reference)
    assert (result.amount_pence, result.due_by, result.on_time) == (4800, "2026-01-13", False)
    # Paid out on Wednesday 14th; the ledger too counts from Friday's arrival (not due Friday 16th).
    assert await ledger_due_by(pool, case_id) == ["2026-01-13"]


async def _retrying_past_due(handle) -> bool:
    """The first attempt chain hit its due-time bound (4 case days = 0.4 s) and the second chain is
    waiting to retry: whatever happens next happens a second or more in, over 10 case days late."""
    description = await handle.describe()
    return any(activity.activity_id == "2" and activity.attempt >= 2
               for activity in description.raw_description.pending_activities)


async def test_a_disbursement_past_its_due_time_still_goes_out_and_is_reported_late(service, pool, temporal,
                                                                                    case_id) -> None:
    await charged_case(service.stub, case_id)
    note = service.bank.emit_payment(case_id, 6000, FRIDAY)
    await deliver(service.stub, note)
    fast_days = DisbursementInput(case_id, FRIDAY.isoformat(), note.bank_reference, seconds_per_day=0.1)
    await temporal.payments_link.stop()   # the payments service is unreachable
    try:
        handle = await temporal.client.start_workflow(
            DisbursementWorkflow.run, fast_days, id=disbursement_workflow_id(case_id, note.bank_reference),
            task_queue=TASK_QUEUE_PAYMENTS)
        await eventually(lambda: _retrying_past_due(handle), "attempts continuing after the due time")
    finally:
        await temporal.payments_link.start()
    result = await handle.result()
    assert (result.amount_pence, result.due_by, result.on_time) == (4800, "2026-01-13", False)
    await record_history(handle, PAYMENT_HISTORIES, "disbursement_overdue")
    assert await disbursed(pool, case_id) == [4800]
    async with pool.connection() as conn:   # started by hand: no dispatcher should start it again
        await conn.execute("UPDATE disbursement_outbox SET started_at = now() WHERE case_id = %s", (case_id,))


async def test_a_duplicate_bank_notification_makes_one_row_one_workflow_one_disbursement(service, pool, temporal,
                                                                                         case_id) -> None:
    await charged_case(service.stub, case_id)
    note = service.bank.emit_payment(case_id, 6000, FRIDAY)
    deliveries = service.bank.deliveries([note], duplicate_share=1.0) + [note]
    assert len(deliveries) == 3
    for notification in deliveries:
        await deliver(service.stub, notification)
    assert [ref for ref, _, _ in await outbox(pool, case_id)] == [note.bank_reference]

    assert await dispatch_pending(pool, temporal.dispatcher_client, temporal.settings) == 1
    assert await dispatch_pending(pool, temporal.dispatcher_client, temporal.settings) == 0
    assert (await result_of(temporal.client, case_id, note.bank_reference)).amount_pence == 4800
    await deliver(service.stub, note)   # and once more after it went out
    assert await dispatch_pending(pool, temporal.dispatcher_client, temporal.settings) == 0
    assert await disbursed(pool, case_id) == [4800]


class DiesAfterStarting:
    """A Temporal client whose process is killed right after the workflow started, before the
    dispatcher could stamp the outbox row (its database transaction is rolled back)."""

    def __init__(self, client: Client):
        self._client = client
        self.run_ids: list[str] = []

    async def start_workflow(self, *args, **kwargs):
        handle = await self._client.start_workflow(*args, **kwargs)
        self.run_ids.append(handle.first_execution_run_id)
        raise ConnectionResetError("dispatcher killed before stamping the row")


async def test_a_dispatcher_killed_before_stamping_starts_no_second_disbursement(service, pool, temporal,
                                                                                 case_id) -> None:
    await charged_case(service.stub, case_id)
    note = service.bank.emit_payment(case_id, 6000, FRIDAY)
    await deliver(service.stub, note)
    dying = DiesAfterStarting(temporal.dispatcher_client)
    with pytest.raises(ConnectionResetError):
        await dispatch_pending(pool, dying, temporal.settings)
    assert await outbox(pool, case_id) == [(note.bank_reference, False, None)]   # still pending

    # The restarted dispatcher finds the workflow already started and only stamps the row.
    assert await dispatch_pending(pool, temporal.dispatcher_client, temporal.settings) == 1
    assert (await result_of(temporal.client, case_id, note.bank_reference)).amount_pence == 4800
    description = await temporal.client.get_workflow_handle(
        disbursement_workflow_id(case_id, note.bank_reference)).describe()
    assert [description.run_id] == dying.run_ids
    assert await disbursed(pool, case_id) == [4800]
    assert (await outbox(pool, case_id))[0][1] is True


async def test_concurrent_dispatchers_start_each_row_once(service, pool, temporal, case_id) -> None:
    await charged_case(service.stub, case_id, periods=4)
    notes = [service.bank.emit_payment(case_id, 6000, date(2026, 1, 26)) for _ in range(4)]
    for note in notes:
        await deliver(service.stub, note)
    counts = await asyncio.gather(*(dispatch_pending(pool, temporal.dispatcher_client, temporal.settings, limit=2)
                                    for _ in range(4)))
    assert sum(counts) == 4
    results = [await result_of(temporal.client, case_id, note.bank_reference) for note in notes]
    # Whichever ran first took everything payable then; together exactly what was collected.
    assert sum(r.amount_pence for r in results) == sum(await disbursed(pool, case_id)) == 4 * 4800


async def test_collection_cycle_and_arrival_disbursements_never_pay_twice(service, pool, case_id) -> None:
    """The collection cycle's disbursement and arrival disbursements of the same case racing each
    other and the payments themselves: the case lock lets each move only what is payable then."""
    stub = service.stub
    await charged_case(stub, case_id, periods=5)
    notes = [service.bank.emit_payment(case_id, 6000, date(2026, 1, 26)) for _ in range(4)]

    def disburse(key: str):
        return stub.Disburse(pb.DisburseRequest(idempotency_key=f"{case_id}/{key}", case_id=case_id,
                                                as_of="2026-02-02"))

    replies = await asyncio.gather(*(deliver(stub, note) for note in notes),
                                   *(disburse(f"disbursement-{note.bank_reference}") for note in notes),
                                   *(disburse(f"collection-{n}/disburse-{n}") for n in range(4)))
    paid_out = sum(reply.amount_pence for reply in replies[len(notes):])
    # Then many at once on one payment's money: all read "payable" together unless serialised.
    last = service.bank.emit_payment(case_id, 6000, date(2026, 2, 2))
    await deliver(stub, last)
    replies = await asyncio.gather(*(disburse(f"sweep-{n}") for n in range(16)))
    paid_out += sum(reply.amount_pence for reply in replies)
    paid_out += (await disburse("final-sweep")).amount_pence
    assert paid_out == sum(await disbursed(pool, case_id)) == 5 * 4800
    balance = await stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of="2026-02-02"))
    assert balance.payable_to_receiving_parent_pence == 0
    report = await stub.Reconcile(pb.ReconcileRequest(as_of="2026-12-31"))
    assert report.ok, list(report.differences)


async def test_temporal_unreachable_keeps_rows_pending_until_it_is_back(service, pool, temporal, case_id) -> None:
    await charged_case(service.stub, case_id, periods=2)
    target_host, target_port = temporal.settings.temporal_address.rsplit(":", 1)
    forwarder = Forwarder(free_port(), target_host, int(target_port))
    settings = replace(temporal.settings, temporal_address=f"127.0.0.1:{forwarder.listen_port}")
    stats, stop = DispatcherStats(), asyncio.Event()
    loop = asyncio.create_task(run_dispatcher(pool, settings, stop, stats, poll_seconds=0.05, max_backoff_seconds=0.3))
    try:
        # Down from the start: the dispatcher cannot even connect.
        first = service.bank.emit_payment(case_id, 6000, FRIDAY)
        await deliver(service.stub, first)
        await eventually(lambda: _true(stats.failed_passes >= 2), "two failed passes while Temporal is down")
        assert await outbox(pool, case_id) == [(first.bank_reference, False, None)]
        await forwarder.start()
        await eventually(lambda: _started(pool, case_id, 1), "the first row started once Temporal is back")
        assert (await result_of(temporal.client, case_id, first.bank_reference)).amount_pence == 4800

        # Down after connecting: starts fail, the row waits, and goes out when Temporal returns.
        await forwarder.stop()
        failed_before = stats.failed_passes
        second = service.bank.emit_payment(case_id, 6000, date(2026, 1, 13))
        await deliver(service.stub, second)
        await eventually(lambda: _true(stats.failed_passes > failed_before), "a failed pass after the outage")
        assert (await outbox(pool, case_id))[1] == (second.bank_reference, False, None)
        await forwarder.start()
        await eventually(lambda: _started(pool, case_id, 2), "the second row started once Temporal is back")
        assert (await result_of(temporal.client, case_id, second.bank_reference)).amount_pence == 4800
        assert await disbursed(pool, case_id) == [4800, 4800]
    finally:
        stop.set()
        await loop
        await forwarder.stop()


async def _true(value: bool) -> bool:
    return value


async def _started(pool, case_id: str, count: int) -> bool:
    return sum(started for _, started, _ in await outbox(pool, case_id)) == count


async def test_a_payment_that_rolls_back_leaves_no_outbox_row(pool, outbox_db, case_id) -> None:
    async with await psycopg.AsyncConnection.connect(outbox_db, options="-c search_path=payments,public") as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            async with conn.transaction():
                header = await ledger.claim(conn, f"{case_id}/half-posted", {"n": 1}, kind="incoming_payment",
                                            case_id=case_id, value_date=FRIDAY)
                # One leg only: the balance check refuses the whole transaction at COMMIT.
                await conn.execute("INSERT INTO postings (transaction_id, account, case_id, amount_pence)"
                                   " VALUES (%s, 'client_funds', NULL, 6000)", (header.transaction_id,))
    assert await outbox(pool, case_id) == []


async def test_money_to_suspense_is_not_disbursed(service, pool, case_id) -> None:
    note = service.bank.emit_payment(f"{case_id}-unknown", 6000, FRIDAY)
    reply = await deliver(service.stub, note)
    assert reply.account == "suspense"
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM disbursement_outbox WHERE bank_reference = %s",
                                 (note.bank_reference,))
        assert (await cur.fetchone())[0] == 0


async def register_with_dispatcher(server, pool, settings, bank=None):
    """services.payments.service.register, which starts the dispatcher when switched on."""
    return await register(server, pool, settings, bank=bank)


async def test_the_service_dispatches_by_itself_when_switched_on(service, pool, temporal, case_id, monkeypatch) -> None:
    monkeypatch.setenv(ENABLE_ENV, "1")
    settings = replace(temporal.settings, ports={**temporal.settings.ports, "payments": free_port()})
    started = []

    async def register_and_keep(server, pool, settings):
        started.append(await register_with_dispatcher(server, pool, settings, bank=service.bank))
        return started[-1]

    running = await serve_in_background("payments", register_and_keep, settings)
    try:
        await charged_case(service.stub, case_id)
        note = service.bank.emit_payment(case_id, 6000, FRIDAY)
        await deliver(service.stub, note)   # through the other instance: the outbox is shared
        await eventually(lambda: _started(pool, case_id, 1), "the service's own dispatcher started the row")
        result = await result_of(temporal.client, case_id, note.bank_reference)
        assert (result.amount_pence, result.due_by) == (4800, "2026-01-13")
    finally:
        await running.stop()
    dispatcher = started[0].dispatcher
    assert dispatcher.task.done() and dispatcher.stats.dispatched >= 1


async def test_the_dispatcher_stays_off_unless_switched_on(service, pool, monkeypatch) -> None:
    monkeypatch.delenv(ENABLE_ENV, raising=False)
    assert start_dispatcher(pool, service.settings) is None


async def test_money_assigned_out_of_suspense_goes_out_within_two_working_days_of_the_assignment(
        service, pool, temporal, case_id) -> None:
    await charged_case(service.stub, case_id)
    note = service.bank.emit_payment(f"{case_id}-mistyped", 6000, FRIDAY)
    assert (await deliver(service.stub, note)).account == "suspense"
    assert await outbox(pool, case_id) == []                 # nobody's money yet

    monday = date(2026, 1, 12)
    await service.stub.AssignSuspensePayment(pb.AssignSuspensePaymentRequest(
        idempotency_key=f"{case_id}/assign", bank_reference=note.bank_reference, case_id=case_id,
        assigned_on=monday.isoformat(), assigned_by="staff-1"))
    assert await outbox(pool, case_id) == [(note.bank_reference, False, None)]
    assert await dispatch_pending(pool, temporal.dispatcher_client, temporal.settings) == 1
    result = await result_of(temporal.client, case_id, note.bank_reference)
    assert (result.amount_pence, result.due_by, result.on_time) == (4800, "2026-01-14", True)
    assert await disbursed(pool, case_id) == [4800]
