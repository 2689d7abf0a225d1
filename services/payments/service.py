"""PaymentsService (cms.payments.v1): validation, then the ledger, in one database transaction
per request (a disbursement takes two: the bank is called between them, outside any transaction).

Bad input is INVALID_ARGUMENT with field violations and changes nothing; an unknown case for a
read is NOT_FOUND; a request that contradicts the case's state is FAILED_PRECONDITION; an
idempotency key reused for a different request is ALREADY_EXISTS. Money is int64 pence on the
wire (a float cannot be sent), and must be positive where money moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import TypeVar

import grpc
import structlog
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from cms.config import Settings
from cms_proto.payments.v1 import payments_pb2 as pb
from cms_proto.payments.v1 import payments_pb2_grpc
from domain.date_window import parse_day_in_window
from domain.payments.fees import enforcement_charge
from domain.payments.schedule import PERIODS_PER_YEAR, Frequency
from domain.payments.statement import render_text, statement_lines
from domain.payments.working_days import add_working_days
from domain.rulesets import RuleSetError, rule_set, rules_for
from services.common.errors import FieldViolations, abort_invalid
from services.payments import ledger
from services.payments.bank import BankAdapter, FakeBank
from services.payments.business_metrics import start_payments_metrics
from services.payments.disbursements import start_dispatcher
from services.payments.ledger import (
    charges,
    direct_pay,
    payouts,
    queries,
    receipts,
    reconciliation,
    schedules,
    suspense,
)

log = structlog.get_logger("payments")

_FREQUENCIES = {pb.FREQUENCY_WEEKLY: Frequency.WEEKLY, pb.FREQUENCY_FORTNIGHTLY: Frequency.FORTNIGHTLY,
                pb.FREQUENCY_FOUR_WEEKLY: Frequency.FOUR_WEEKLY, pb.FREQUENCY_MONTHLY: Frequency.MONTHLY}
_SERVICE_TYPES = ("direct_pay", "collect_and_pay")
DISBURSE_WITHIN_WORKING_DAYS = 2
MAX_PENCE = 10**12   # £10bn: far above any real amount, catches unit mistakes and overflow


class _Checks:
    """Collects field violations so a caller learns every problem at once."""

    def __init__(self) -> None:
        self.violations: list[tuple[str, str]] = []

    def text(self, field: str, value: str) -> str:
        if not value.strip():
            self.violations.append((field, "is required"))
        elif len(value) > 200:
            self.violations.append((field, "is longer than 200 characters"))
        return value

    def day(self, field: str, value: str, required: bool = True) -> date | None:
        if not value:
            if required:
                self.violations.append((field, "is required (an ISO date, YYYY-MM-DD)"))
            return None
        # Inside the window a date cannot overflow the arithmetic of the workflows it reaches.
        day, problem = parse_day_in_window(value)
        if problem:
            self.violations.append((field, problem))
            return None
        return day

    def pence(self, field: str, value: int, allow_zero: bool = False) -> int:
        if value < 0 or (value == 0 and not allow_zero):
            self.violations.append((field, "must be a positive whole number of pence" if not allow_zero
                                    else "must not be negative"))
        elif value > MAX_PENCE:
            self.violations.append((field, "is implausibly large"))
        return value

    def index(self, field: str, value: int) -> int:
        if value < 0:
            self.violations.append((field, "must not be negative"))
        return value

    def done(self) -> None:
        if self.violations:
            raise FieldViolations(self.violations)


_T = TypeVar("_T")


def _checked(value: _T | None) -> _T:
    """A required field after `_Checks.done()`, which refuses a request without it."""
    if value is None:
        raise AssertionError("a required field passed the checks without a value")
    return value


def _today() -> date:
    return datetime.now(UTC).date()


def _result(posted: ledger.Posted) -> pb.PostingResult:
    return pb.PostingResult(transaction_id=str(posted.transaction_id), duplicate=posted.duplicate,
                            account=str(posted.detail.get("account", "")))


def _handled(method):
    """Maps validation and ledger exceptions to gRPC statuses, in one place."""
    async def wrapper(self, request, context):
        try:
            return await method(self, request, context)
        except FieldViolations as error:
            await abort_invalid(context, error)
        except ledger.NotFound as error:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(error))
        except ledger.Precondition as error:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
        except ledger.IdempotencyConflict as error:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(error))
    wrapper.__name__ = method.__name__
    return wrapper


def _schedule_reply(schedule: ledger.ScheduleRow, duplicate: bool, adjustments: list, effective: date) -> pb.Schedule:
    """The schedule for one reference year from `effective`'s period, with adjustments posted;
    none before the first collection (initial arrears are spread over the instalments after it)."""
    start_index = max(schedule.period_containing(max(effective, schedule.starts_on)), schedule.first_collected_index())
    payments = []
    for index in range(start_index, start_index + PERIODS_PER_YEAR[schedule.frequency]):
        due = schedule.instalment(index)
        payments.append(pb.ScheduledPayment(due_date=due.period.due_date.isoformat(), amount_pence=due.amount_pence,
                                            fee_pence=due.fee_pence, period_index=index,
                                            period_start=due.period.start.isoformat(),
                                            period_end=due.period.end.isoformat()))
    return pb.Schedule(schedule_id=str(schedule.schedule_id), case_id=schedule.case_id, payments=payments,
                       version=schedule.version, duplicate=duplicate, service_type=schedule.service_type,
                       adjustments=[pb.Adjustment(period_index=a.period.index, amount_delta_pence=a.amount_delta_pence,
                                                  fee_delta_pence=a.fee_delta_pence) for a in adjustments])


class PaymentsService(payments_pb2_grpc.PaymentsServiceServicer):
    def __init__(self, pool: AsyncConnectionPool, settings: Settings, bank: BankAdapter,
                 business_metrics: bool = False):
        self._pool = pool
        self._settings = settings
        self._bank = bank
        # Money that lands between due dates is passed on within 2 working days by a
        # DisbursementWorkflow per payment (transactional outbox; on when
        # CMS_PAYMENTS_DISBURSE_ON_ARRIVAL=1). Started here, inside the serving event loop.
        self.dispatcher = start_dispatcher(pool, settings)
        # Gauges of suspense, the outbox, arrears and the last reconciliation, refreshed from the
        # ledger while metrics are served (CMS_METRICS) or when `business_metrics` forces them.
        self.business_metrics = start_payments_metrics(pool, force=business_metrics)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        """One database transaction: committed when the block ends, rolled back if it raises
        (a refused request leaves nothing behind)."""
        async with self._pool.connection() as conn, conn.transaction():
            yield conn

    async def aclose(self) -> None:
        """serve() calls this on a graceful stop, before the pool closes."""
        if self.business_metrics is not None:
            await self.business_metrics.aclose()
        if self.dispatcher is not None:
            await self.dispatcher.aclose()

    @_handled
    async def GetBalance(self, request, context):
        checks = _Checks()
        case_id = checks.text("case_id", request.case_id)
        as_of = checks.day("as_of", request.as_of, required=False) or _today()
        checks.done()
        async with self._transaction() as conn:
            found = await queries.balance(conn, case_id, as_of)
        return pb.Balance(case_id=case_id, arrears_pence=found.arrears_pence, paid_to_date_pence=found.paid_to_date_pence,
                          next_payment_pence=found.next_payment_pence,
                          next_payment_due=found.next_payment_due.isoformat() if found.next_payment_due else "",
                          enforcement_charges_pence=found.enforcement_charges_pence, credit_pence=found.credit_pence,
                          payable_to_receiving_parent_pence=found.payable_to_receiving_parent_pence,
                          service_type=found.service_type,
                          overpaid_to_receiving_parent_pence=found.overpaid_to_receiving_parent_pence)

    @_handled
    async def GetStatement(self, request, context):
        checks = _Checks()
        case_id = checks.text("case_id", request.case_id)
        start = checks.day("from_date", request.from_date, required=False) or date.min
        # Default: everything posted so far (a fast demo calendar runs ahead of the real date).
        end = checks.day("to_date", request.to_date, required=False) or date.max
        if start > end:
            checks.violations.append(("from_date", "is after to_date"))
        checks.done()
        async with self._transaction() as conn:
            if await schedules.current_schedule(conn, case_id) is None:
                raise ledger.NotFound(f"case {case_id} has no schedule")
            opening, events = await queries.statement_events(conn, case_id, start, end)
        lines = statement_lines(events, opening)
        return pb.Statement(
            case_id=case_id, opening_balance_pence=opening,
            closing_arrears_pence=lines[-1].balance_pence if lines else opening,
            lines=[pb.StatementLine(date=line.on.isoformat(), description=line.description, due_pence=line.due_pence,
                                    paid_pence=line.paid_pence, balance_pence=line.balance_pence) for line in lines],
            text=render_text(case_id, lines))

    @_handled
    async def RecordIncomingPayment(self, request, context):
        checks = _Checks()
        key = checks.text("idempotency_key", request.idempotency_key)
        amount = checks.pence("amount_pence", request.amount_pence)
        received_on = checks.day("received_on", request.received_on)
        if request.method == pb.METHOD_UNSPECIFIED:
            checks.violations.append(("method", "is required"))
        checks.done()
        payment = receipts.IncomingPayment(key, request.case_id.strip(), amount, _checked(received_on),
                                           pb.Method.Name(request.method))
        async with self._transaction() as conn:
            posted = await receipts.record_incoming_payment(conn, payment)
        if posted.detail.get("account") == ledger.SUSPENSE and not posted.duplicate:
            log.warning("payment_to_suspense", bank_reference=key, amount_pence=amount,
                        reason=posted.detail.get("reason"))
        return _result(posted)

    @_handled
    async def RecordBankReturn(self, request, context):
        checks = _Checks()
        key = checks.text("idempotency_key", request.idempotency_key)
        original = checks.text("original_bank_reference", request.original_bank_reference)
        on = checks.day("returned_on", request.returned_on)
        checks.done()
        async with self._transaction() as conn:
            posted = await receipts.record_return(conn, key, original, _checked(on))
        return _result(posted)

    @_handled
    async def CreateSchedule(self, request, context):
        checks = _Checks()
        key = checks.text("idempotency_key", request.idempotency_key)
        case_id = checks.text("case_id", request.case_id)
        if request.service_type not in _SERVICE_TYPES:
            checks.violations.append(("service_type", f"must be one of {', '.join(_SERVICE_TYPES)}"))
        frequency = _FREQUENCIES.get(request.frequency)
        if frequency is None:
            checks.violations.append(("frequency", "is required (weekly, fortnightly, four-weekly or monthly)"))
        if request.method == pb.METHOD_UNSPECIFIED:
            checks.violations.append(("method", "is required"))
        effective = checks.day("effective_date", request.effective_date)
        weekly = checks.pence("weekly_liability_pence", request.weekly_liability_pence, allow_zero=True)
        fee = checks.pence("paying_parent_fee_pence", request.paying_parent_fee_pence, allow_zero=True)
        checks.pence("receiving_parent_fee_pence", request.receiving_parent_fee_pence, allow_zero=True)
        if request.service_type == "direct_pay" and (request.paying_parent_fee_pence or request.receiving_parent_fee_pence):
            checks.violations.append(("paying_parent_fee_pence", "Direct Pay has no collection fees"))
        if request.due_offset_days < 0:
            checks.violations.append(("due_offset_days", "must not be negative"))
        first_collection = checks.day("first_collection_date", request.first_collection_date, required=False)
        if first_collection is not None and request.service_type != "collect_and_pay":
            checks.violations.append(("first_collection_date", "only Collect & Pay payments are collected"))
        elif first_collection is not None and effective is not None and first_collection < effective:
            checks.violations.append(("first_collection_date", "must not be before effective_date"))
        rule_set_id = request.rule_set_id
        try:
            if rule_set_id:
                rule_set(rule_set_id)
            elif effective is not None:
                rule_set_id = rules_for(effective).id
        except RuleSetError as error:
            checks.violations.append(("rule_set_id", str(error)))
        checks.done()
        effective = _checked(effective)
        schedule_request = schedules.ScheduleRequest(key, case_id, request.service_type, _checked(frequency),
                                                     pb.Method.Name(request.method), effective, weekly, fee, rule_set_id,
                                                     request.decision_ref or None, request.due_offset_days,
                                                     first_collection)
        async with self._transaction() as conn:
            schedule, duplicate, adjustments = await schedules.create_schedule(conn, schedule_request)
        return _schedule_reply(schedule, duplicate, adjustments, effective)

    @_handled
    async def StopSchedule(self, request, context):
        checks = _Checks()
        key = checks.text("idempotency_key", request.idempotency_key)
        case_id = checks.text("case_id", request.case_id)
        stop_from = checks.day("stop_from", request.stop_from)
        checks.done()
        stop_from = _checked(stop_from)
        async with self._transaction() as conn:
            schedule, duplicate, adjustments = await schedules.stop_schedule(conn, key, case_id, stop_from,
                                                                             request.reason or "closed")
        return _schedule_reply(schedule, duplicate, adjustments, stop_from)

    @_handled
    async def ReportDirectPayment(self, request, context):
        checks = _Checks()
        key = checks.text("idempotency_key", request.idempotency_key)
        case_id = checks.text("case_id", request.case_id)
        due_date = checks.day("due_date", request.due_date)
        if request.received:
            checks.pence("amount_pence", request.amount_pence)
        elif request.amount_pence:
            checks.violations.append(("amount_pence", "must be 0 when the payment was missed"))
        checks.done()
        async with self._transaction() as conn:
            duplicate, shortfall = await direct_pay.report_direct_payment(conn, key, case_id, _checked(due_date),
                                                                          request.received, request.amount_pence)
        return pb.DirectPaymentResult(duplicate=duplicate, shortfall_pence=shortfall)

    @_handled
    async def PostCharge(self, request, context):
        checks = _Checks()
        key = checks.text("idempotency_key", request.idempotency_key)
        case_id = checks.text("case_id", request.case_id)
        on = checks.day("charged_on", request.charged_on, required=False) or _today()
        amount = 0
        try:
            amount = enforcement_charge(request.charge_kind, rules_for(on))
        except (ValueError, RuleSetError) as error:
            checks.violations.append(("charge_kind", str(error)))
        checks.done()
        async with self._transaction() as conn:
            if await schedules.current_schedule(conn, case_id) is None:
                raise ledger.NotFound(f"case {case_id} has no schedule")
            posted = await charges.post_enforcement_charge(conn, key, case_id, request.charge_kind, amount, on,
                                                           request.decision_ref or None)
        return _result(posted)

    @_handled
    async def ChargePeriod(self, request, context):
        checks = _Checks()
        case_id = checks.text("case_id", request.case_id)
        index = checks.index("period_index", request.period_index)
        checks.done()
        async with self._transaction() as conn:
            posted = await charges.charge_period(conn, case_id, index)
            return await self._period_status(conn, case_id, index, posted)

    @_handled
    async def CheckPeriod(self, request, context):
        checks = _Checks()
        case_id = checks.text("case_id", request.case_id)
        index = checks.index("period_index", request.period_index)
        checks.done()
        async with self._transaction() as conn:
            return await self._period_status(conn, case_id, index, None)

    async def _period_status(self, conn: AsyncConnection, case_id: str, index: int,
                             posted: ledger.Posted | None) -> pb.PeriodStatus:
        status = await queries.period_status(conn, case_id, index)
        found = await queries.balance(conn, case_id, status.due_date)
        return pb.PeriodStatus(case_id=case_id, period_index=index, due_date=status.due_date.isoformat(),
                               due_pence=status.due_pence, paid_pence=status.paid_pence, status=status.status,
                               transaction_id=str(posted.transaction_id) if posted else "",
                               duplicate=bool(posted and posted.duplicate), arrears_pence=found.arrears_pence)

    @_handled
    async def Disburse(self, request, context):
        checks = _Checks()
        key = checks.text("idempotency_key", request.idempotency_key)
        case_id = checks.text("case_id", request.case_id)
        as_of = checks.day("as_of", request.as_of)
        # Money passed on because it arrived is due within 2 working days of arriving, however
        # late the disbursement starts; any other disbursement, of the day it is made.
        arrived_on = checks.day("arrived_on", request.arrived_on, required=False)
        if arrived_on and as_of and arrived_on > as_of:
            checks.violations.append(("arrived_on", "is after as_of (money is passed on after it arrives)"))
        checks.done()
        as_of = _checked(as_of)
        due_by = add_working_days(arrived_on or as_of, DISBURSE_WITHIN_WORKING_DAYS)
        async with self._transaction() as conn:
            started = await payouts.start_disbursement(conn, key, case_id, as_of, due_by)
        if started is None:
            return pb.DisbursementResult(amount_pence=0, due_by=due_by.isoformat())
        amount = int(started.detail["amount_pence"])
        reference = f"OUT-{started.transaction_id}"
        # The instruction is in bank clearing (committed); the bank call and its settlement are
        # idempotent by reference, so a crash here is finished by the retry.
        sent = await asyncio.to_thread(self._bank.send_payment, reference, amount, as_of)
        async with self._transaction() as conn:
            await payouts.settle_disbursement(conn, f"{key}/settled", reference, case_id, sent.amount_pence, sent.on)
        return pb.DisbursementResult(amount_pence=amount, due_by=started.detail["due_by"], bank_reference=reference,
                                     duplicate=started.duplicate)

    @_handled
    async def Reconcile(self, request, context):
        checks = _Checks()
        as_of = checks.day("as_of", request.as_of, required=False) or _today()
        checks.done()
        bank_balance = await asyncio.to_thread(self._bank.closing_balance, as_of)
        async with self._transaction() as conn:
            report = await reconciliation.reconcile(conn, as_of, bank_balance)
            await reconciliation.record_reconciliation(conn, report)
        if not report["ok"]:
            log.error("reconciliation_differences", as_of=as_of.isoformat(), differences=report["differences"])
        return pb.ReconciliationReport(
            ok=report["ok"], as_of=report["as_of"], postings=report["postings"],
            ledger_total_pence=report["ledger_total_pence"], client_funds_pence=report["client_funds_pence"],
            bank_movements_pence=report["bank_movements_pence"], bank_balance_pence=bank_balance or 0,
            suspense_pence=report["suspense_pence"], bank_clearing_pence=report["bank_clearing_pence"],
            differences=report["differences"], unbalanced_transactions=len(report["unbalanced_transactions"]),
            suspense_items=[pb.SuspenseItem(**item) for item in report["suspense_items"]],
            receiving_parent_overpaid_pence=report["rp_overpaid_pence"],
            receiving_parent_overpayments=[pb.CaseAmount(**item) for item in report["receiving_parent_overpayments"]])

    @_handled
    async def ListSuspense(self, request, context):
        checks = _Checks()
        as_of = checks.day("as_of", request.as_of, required=False)
        if not 0 <= request.limit <= 1000:
            checks.violations.append(("limit", "must be between 1 and 1000 (0: the default, 100)"))
        checks.done()
        async with self._transaction() as conn:
            items = await suspense.suspense_items(conn, as_of, request.limit or 100)
        return pb.SuspenseList(items=[pb.SuspenseItem(bank_reference=i.bank_reference, claimed_case_id=i.claimed_case_id,
                                                      amount_pence=i.amount_pence, received_on=i.received_on.isoformat())
                                      for i in items],
                               total_pence=sum(i.amount_pence for i in items))

    @_handled
    async def AssignSuspensePayment(self, request, context):
        checks = _Checks()
        key = checks.text("idempotency_key", request.idempotency_key)
        reference = checks.text("bank_reference", request.bank_reference)
        case_id = checks.text("case_id", request.case_id)
        assigned_by = checks.text("assigned_by", request.assigned_by)
        on = checks.day("assigned_on", request.assigned_on, required=False) or _today()
        checks.done()
        async with self._transaction() as conn:
            posted = await suspense.assign_suspense(conn, key, reference.strip(), case_id.strip(), on, assigned_by.strip())
        if not posted.duplicate:
            log.info("suspense_assigned", bank_reference=reference, case_id=case_id, assigned_by=assigned_by,
                     amount_pence=posted.detail.get("amount_pence"))
        return pb.SuspenseAssignment(transaction_id=str(posted.transaction_id), duplicate=posted.duplicate,
                                     case_id=case_id.strip(), amount_pence=int(posted.detail.get("amount_pence", 0)),
                                     credit_pence=int(posted.detail.get("credit_pence", 0)))


async def register(server: grpc.aio.Server, pool: AsyncConnectionPool, settings: Settings,
                   bank: BankAdapter | None = None, business_metrics: bool = False) -> PaymentsService:
    # Development uses a fake bank without a statement of its own (see FakeBank.reports_balance);
    # tests pass the FakeBank that emitted their payments; production passes a real adapter here.
    service = PaymentsService(pool, settings, bank if bank is not None else FakeBank(reports_balance=False),
                              business_metrics=business_metrics)
    payments_pb2_grpc.add_PaymentsServiceServicer_to_server(service, server)
    return service
