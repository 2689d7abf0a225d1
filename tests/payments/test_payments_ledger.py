"""The ledger through the gRPC service: idempotency, suspense, validation, append-only, returns."""

from datetime import date

import grpc
import psycopg
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cms_proto.payments.v1 import payments_pb2 as pb
from services.common.errors import field_violations_of
from tests.helpers.rows import required_row
from tests.payments.payments_helpers import deliver, new_schedule

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _invalid(call) -> list[tuple[str, str]]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return field_violations_of(error.value)


async def test_bad_input_is_invalid_argument_naming_each_field(payments_stub, case_id) -> None:
    violations = await _invalid(payments_stub.RecordIncomingPayment(pb.RecordIncomingPaymentRequest(
        idempotency_key="", case_id=case_id, amount_pence=-500, received_on="05/01/2026")))
    assert {field for field, _ in violations} == {"idempotency_key", "amount_pence", "received_on", "method"}
    violations = await _invalid(payments_stub.CreateSchedule(pb.CreateScheduleRequest(
        idempotency_key="k", case_id=case_id, service_type="cash", effective_date="2026-02-30",
        weekly_liability_pence=-1)))
    assert {f for f, _ in violations} >= {"service_type", "frequency", "method", "effective_date", "weekly_liability_pence"}
    violations = await _invalid(payments_stub.PostCharge(pb.PostChargeRequest(
        idempotency_key="k", case_id=case_id, charge_kind="committal")))
    assert [f for f, _ in violations] == ["charge_kind"]
    violations = await _invalid(payments_stub.GetBalance(pb.GetBalanceRequest(case_id=" ")))
    assert violations == [("case_id", "is required")]


@pytest.mark.parametrize(("received_on", "words"), [("9999-12-31", "implausibly far ahead"),
                                                    ("2012-12-09", "before the 2012 scheme began")])
async def test_a_date_outside_the_window_is_refused_and_nothing_is_posted(payments_stub, case_id, received_on,
                                                                          words) -> None:
    # 9999-12-31 once reached the disbursement workflow and failed its task for ever (date overflow).
    await new_schedule(payments_stub, case_id)
    violations = await _invalid(payments_stub.RecordIncomingPayment(pb.RecordIncomingPaymentRequest(
        idempotency_key=f"far-{received_on}", case_id=case_id, amount_pence=500, received_on=received_on,
        method=pb.METHOD_CARD)))
    assert [field for field, _ in violations] == ["received_on"]
    assert words in violations[0][1]
    balance = await payments_stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of="2026-12-31"))
    assert balance.paid_to_date_pence == 0


async def test_float_amounts_cannot_reach_the_ledger() -> None:
    from temporalio.exceptions import ApplicationError

    from activities.payments import require_pence

    for bad in (12.5, 10.0, -1, 0, True, "100"):
        with pytest.raises(ApplicationError):
            require_pence("amount_pence", bad)
    with pytest.raises(TypeError):
        pb.RecordIncomingPaymentRequest(amount_pence=12.5)  # type: ignore[arg-type]  # a float, to prove the int64 wire type refuses it


async def test_duplicate_notification_posts_once_and_a_reused_key_is_refused(payments_stub, fake_bank, case_id) -> None:
    await new_schedule(payments_stub, case_id)
    await payments_stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=0))
    note = fake_bank.emit_payment(case_id, 6000, date(2026, 1, 5))
    first, again = await deliver(payments_stub, note), await deliver(payments_stub, note)
    assert (first.duplicate, again.duplicate) == (False, True)
    assert first.transaction_id == again.transaction_id
    balance = await payments_stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of="2026-01-06"))
    assert (balance.arrears_pence, balance.paid_to_date_pence) == (0, 6000)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await payments_stub.RecordIncomingPayment(pb.RecordIncomingPaymentRequest(
            idempotency_key=note.bank_reference, case_id=case_id, amount_pence=9999, received_on="2026-01-05",
            method=pb.METHOD_CARD))
    assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_payment_for_an_unknown_case_goes_to_suspense_and_is_reported(payments_stub, fake_bank) -> None:
    note = fake_bank.emit_payment("no-such-case", 1234, date(2026, 1, 7))
    result = await deliver(payments_stub, note)
    assert result.account == "suspense"
    report = await payments_stub.Reconcile(pb.ReconcileRequest(as_of="2026-12-31"))
    assert note.bank_reference in [item.bank_reference for item in report.suspense_items]
    assert report.suspense_pence >= 1234
    assert report.ok, list(report.differences)


async def test_a_returned_payment_is_reversed_and_owed_again(payments_stub, fake_bank, case_id) -> None:
    await new_schedule(payments_stub, case_id)
    await payments_stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=0))
    paid = fake_bank.emit_payment(case_id, 6000, date(2026, 1, 5))
    await deliver(payments_stub, paid)
    returned = fake_bank.emit_return(paid, date(2026, 1, 8))
    assert not (await deliver(payments_stub, returned)).duplicate
    assert (await deliver(payments_stub, returned)).duplicate
    status = await payments_stub.CheckPeriod(pb.CheckPeriodRequest(case_id=case_id, period_index=0))
    assert (status.status, status.paid_pence, status.arrears_pence) == ("missed", 0, 6000)
    balance = await payments_stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of="2026-01-09"))
    assert (balance.paid_to_date_pence, balance.payable_to_receiving_parent_pence) == (0, 0)


async def test_the_database_refuses_updates_deletes_and_unbalanced_or_late_legs(payments_db, payments_stub,
                                                                                 fake_bank, case_id) -> None:
    await new_schedule(payments_stub, case_id)
    await payments_stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=0))
    async with await psycopg.AsyncConnection.connect(payments_db, options="-c search_path=payments") as conn:
        for statement in ("UPDATE postings SET amount_pence = amount_pence * 2",
                          "DELETE FROM transactions", "TRUNCATE postings CASCADE", "UPDATE charges SET amount_pence = 1"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                await conn.execute(statement)
            await conn.rollback()
        with pytest.raises(psycopg.errors.CheckViolation, match="does not balance"):
            async with conn.transaction():
                cur = await conn.execute("INSERT INTO transactions (idempotency_key, fingerprint, kind, value_date)"
                                         " VALUES ('bad-1', 'x', 'reversal', '2026-01-01') RETURNING transaction_id")
                tid = required_row(await cur.fetchone(), "the transaction just inserted")[0]
                await conn.execute("INSERT INTO postings (transaction_id, account, amount_pence) VALUES"
                                   " (%s, 'client_funds', 100), (%s, 'suspense', -99)", (tid, tid))
        with pytest.raises(psycopg.errors.CheckViolation, match="together with their transaction"):
            async with conn.transaction():
                cur = await conn.execute("SELECT transaction_id FROM transactions WHERE case_id = %s", (case_id,))
                tid = required_row(await cur.fetchone(), f"a transaction of {case_id}")[0]
                await conn.execute("INSERT INTO postings (transaction_id, account, amount_pence) VALUES"
                                   " (%s, 'client_funds', 100), (%s, 'suspense', -100)", (tid, tid))


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(amounts=st.lists(st.integers(1, 9000), min_size=1, max_size=8), seed=st.integers(0, 10_000),
       duplicate_share=st.floats(0, 0.9))
async def test_duplicates_and_reordering_never_change_the_books(payments_stub, fake_bank, amounts, seed,
                                                                 duplicate_share) -> None:
    case_id = f"prop-{seed}-{next(_ids)}"
    await new_schedule(payments_stub, case_id)
    for index in range(3):
        await payments_stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=index))
    notes = [fake_bank.emit_payment(case_id, amount, date(2026, 1, 19)) for amount in amounts]
    fake_bank.seed = seed
    for note in fake_bank.deliveries(notes, duplicate_share=duplicate_share):
        await deliver(payments_stub, note)
    balance = await payments_stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of="2026-01-20"))
    total = sum(amounts)
    assert balance.paid_to_date_pence == total
    owed = 3 * 6000
    assert balance.arrears_pence == max(owed - total, 0)
    assert balance.credit_pence == max(total - owed, 0)
    report = await payments_stub.Reconcile(pb.ReconcileRequest(as_of="2026-12-31"))
    assert report.ok and report.ledger_total_pence == 0 and report.unbalanced_transactions == 0, list(report.differences)


import itertools  # noqa: E402

_ids = itertools.count()


async def test_money_paid_in_advance_settles_the_next_charge(payments_stub, fake_bank, case_id) -> None:
    await new_schedule(payments_stub, case_id)
    early = await deliver(payments_stub, fake_bank.emit_payment(case_id, 9000, date(2026, 1, 2)))
    assert early.account == "pp_maintenance"
    before = await payments_stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of="2026-01-03"))
    assert (before.credit_pence, before.payable_to_receiving_parent_pence) == (9000, 0)
    status = await payments_stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=0))
    assert (status.status, status.paid_pence) == ("paid", 6000)
    after = await payments_stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of="2026-01-05"))
    assert (after.credit_pence, after.arrears_pence, after.payable_to_receiving_parent_pence) == (3000, 0, 4800)
    status = await payments_stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=1))
    assert (status.status, status.paid_pence) == ("part_paid", 3000)


async def test_stopping_a_schedule_ends_charges_but_keeps_arrears(payments_stub, fake_bank, case_id) -> None:
    await new_schedule(payments_stub, case_id)
    for index in range(3):   # 5, 12 and 19 January charged; nothing paid
        await payments_stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=index))
    stopped = await payments_stub.StopSchedule(pb.StopScheduleRequest(
        idempotency_key=f"{case_id}/stop", case_id=case_id, stop_from="2026-01-19", reason="closed"))
    assert [(a.period_index, a.amount_delta_pence, a.fee_delta_pence) for a in stopped.adjustments] == [(2, -5000, -1000)]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await payments_stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=3))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    balance = await payments_stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of="2026-02-01"))
    assert balance.arrears_pence == 12000 and balance.next_payment_pence == 0


@pytest_asyncio.fixture(loop_scope="session")
async def case_gateway(payments_stub):
    """The case workflow's gateway to this payments service (no case read model here)."""
    from activities.case_payments import GrpcPayments
    from cms.grpc_client import Channels
    from cms.worker_catalog import payments_client

    channels = Channels()
    yield GrpcPayments(payments_client(payments_stub.address, channels))
    await channels.close()


async def test_the_case_workflow_gateway_creates_and_stops_schedules(payments_stub, case_gateway, case_id) -> None:
    from activities.case_messages import ScheduleRequest, StopScheduleRequest

    gateway = case_gateway
    request = ScheduleRequest(idempotency_key=f"case-{case_id}/schedule-1", case_id=case_id, version=1,
                              service_type="collect_and_pay", frequency="fortnightly", effective_from="2026-02-02",
                              weekly_liability_pence=4800, paying_parent_pays_weekly_pence=5760,
                              instalment_pence=11520, first_instalment_pence=11520, instalments_per_year=26,
                              first_due_date="2026-02-02", annual_pence=299520, paying_parent_fee_pence=960)
    await gateway.create_schedule(request)
    await gateway.create_schedule(request)   # a retried hand-off finds the first version
    status = await payments_stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=0))
    assert (status.due_date, status.due_pence) == ("2026-02-02", 11520)
    await gateway.stop_schedule(StopScheduleRequest(f"case-{case_id}/stop-1", case_id, "2026-02-16", "closed"))
    balance = await payments_stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of="2026-03-01"))
    assert (balance.arrears_pence, balance.next_payment_pence) == (11520, 0)


async def test_the_case_workflow_gateway_does_not_retry_a_refused_schedule(case_gateway, case_id) -> None:
    from temporalio.exceptions import ApplicationError

    from activities.case_messages import ScheduleRequest

    with pytest.raises(ApplicationError) as refused:
        await case_gateway.create_schedule(ScheduleRequest(
            idempotency_key=f"case-{case_id}/schedule-1", case_id=case_id, version=1, service_type="collect_and_pay",
            frequency="weekly", effective_from="not-a-date", weekly_liability_pence=4800,
            paying_parent_pays_weekly_pence=4800, instalment_pence=4800, first_instalment_pence=4800,
            instalments_per_year=52, first_due_date="2026-02-02", annual_pence=249600))
    assert refused.value.non_retryable and refused.value.type == "INVALID_ARGUMENT"


async def test_concurrent_deliveries_of_one_notification_post_once(payments_stub, fake_bank, case_id) -> None:
    import asyncio

    await new_schedule(payments_stub, case_id)
    await payments_stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=0))
    note = fake_bank.emit_payment(case_id, 2500, date(2026, 1, 5))
    others = [fake_bank.emit_payment(case_id, 1000, date(2026, 1, 5)) for _ in range(3)]
    results = await asyncio.gather(*(deliver(payments_stub, n) for n in [note] * 6 + others * 2))
    assert len({r.transaction_id for r in results[:6]}) == 1
    assert sum(not r.duplicate for r in results) == 4
    balance = await payments_stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of="2026-01-05"))
    assert (balance.paid_to_date_pence, balance.arrears_pence) == (5500, 500)


async def test_reconciliation_reports_a_payment_the_bank_has_but_the_ledger_lost(database_url) -> None:
    """Its own database: the shared one must stay reconciled for the other tests."""
    from services.payments import ledger
    from services.payments.bank import FakeBank
    from tests.payments.payments_helpers import fresh_database

    url = fresh_database(database_url, "payments_reconciliation_tests")
    bank = FakeBank(seed=11)
    async with await psycopg.AsyncConnection.connect(url, options="-c search_path=payments") as conn:
        delivered = bank.emit_payment("nobody", 700, date(2026, 2, 2))
        await ledger.record_incoming_payment(conn, ledger.IncomingPayment(
            delivered.bank_reference, "nobody", 700, delivered.on, "METHOD_CARD"))
        report = await ledger.reconcile(conn, date(2026, 2, 28), bank.closing_balance(date(2026, 2, 28)))
        assert report["ok"] and report["suspense_pence"] == 700
        bank.emit_payment("nobody", 900, date(2026, 2, 3))           # the notification never arrives
        report = await ledger.reconcile(conn, date(2026, 2, 28), bank.closing_balance(date(2026, 2, 28)))
        assert not report["ok"]
        assert report["differences"] == ["bank balance 1600 pence differs from recorded movements 700 pence"]


async def test_returning_an_advance_payment_already_applied_makes_it_owed_again(payments_stub, fake_bank,
                                                                                case_id) -> None:
    await new_schedule(payments_stub, case_id)
    early = fake_bank.emit_payment(case_id, 6000, date(2026, 1, 2))
    await deliver(payments_stub, early)
    await payments_stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=0))   # credit applied
    await deliver(payments_stub, fake_bank.emit_return(early, date(2026, 1, 7)))
    balance = await payments_stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of="2026-01-08"))
    assert (balance.arrears_pence, balance.credit_pence, balance.paid_to_date_pence) == (6000, 0, 0)
    report = await payments_stub.Reconcile(pb.ReconcileRequest(as_of="2026-12-31"))
    assert report.ok, list(report.differences)
