"""The recalculation path of a case: the statutory calculation on the case's facts from a date,
the letters that explain it to both parents, the payment schedule letters, and the new schedule
version handed to payments.

Every recalculation of a case goes through `CaseRecalculation.recalculate_from`: the initial
calculation, a default decision replaced, a child who stops qualifying, the annual review, the
move to Collect & Pay and each change of circumstances. What it calculates on is the case's facts
now, unless the caller passes a `CalculationBasis`: the facts as they stood from an earlier date
(a change applied out of date order) or the income in force before an annual review already done
(a change dated before it). The basis is an argument, never a field of the workflow, so a handler
that reads the case's facts while a recalculation awaits its letters sees the case as it is.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.case_messages import CaseNotice, ScheduleRequest
    from domain import lifecycle
    from domain.calculation import (
        CalculationResult,
        ReceivingParent,
        as_service_type,
        calculate,
        default_decision,
        parse_request,
    )
    from domain.calculation import Child as CalcChild
    from domain.money import format_pence
    from domain.payments.letters import schedule_letter_facts
    from domain.payments.schedule import Frequency, Rate, first_collection_date, next_instalments
    from workflows.case_messages import CaseState, LiabilityRecord, RateInForce
    from workflows.case_record import CaseRecorder

COLLECT_AND_PAY_TEMPLATE = "service_type_change"
# Patch: every new schedule comes with a payment schedule letter (the next payment and the regular
# one, as payments charges them) to the paying parent, and on Direct Pay to the receiving parent.
SCHEDULE_LETTER_PATCH = "payment-schedule-letter"
# Patch: every path that recalculates holds one workflow lock (CaseWorkflow._one_recalculation), and
# a cleared change keeps the case's service type unless it changes it (case_change_applier.py).
ONE_RECALCULATION_PATCH = "one-recalculation-at-a-time"
# Patch: in a recalculation on the facts of an earlier date, a date before the paying parent's
# income was known (the case was on a default decision) is recalculated as a default decision,
# not on an income of £0.
OUT_OF_ORDER_DEFAULT_PATCH = "change-out-of-order-default-rate"
# Patch: a case on Collect & Pay from its assessment is first collected no earlier than 10 working
# days after the payment schedule letter; what fell due from the initial effective date until then
# is initial arrears, spread over the first 52 weeks' instalments (never a missed payment).
FIRST_COLLECTION_PATCH = "first-collection-after-notice"


@dataclass(frozen=True)
class CalculationBasis:
    """What a recalculation calculates on when it is not the case's facts now.

    `inputs`: the calculation request as it stood from an earlier date (a change applied out of
    date order), with `income_known` saying whether the paying parent's income was known by then
    (False: a default decision; None: not recorded). `income_before_review`: the weekly income in
    force before an annual review already done, for a change dated before that review."""

    inputs: dict[str, Any] | None = None
    income_known: bool | None = None
    income_before_review: int | None = None

    @property
    def earlier_facts(self) -> bool:
        """A version for an earlier date, superseded at once by the versions after it."""
        return self.inputs is not None


CURRENT_FACTS = CalculationBasis()


def as_rates(history: list[RateInForce]) -> tuple[Rate, ...]:
    """The case's liability history (kept as JSON-friendly strings in the state) as the schedule
    arithmetic takes it."""
    return tuple(Rate(date.fromisoformat(rate.effective_from), rate.weekly_liability_pence, rate.weekly_fee_pence)
                 for rate in history)


class CaseRecalculation:
    """The recalculation path (see the module docstring), over the case's state and recorder."""

    def __init__(self, state: CaseState, recorder: CaseRecorder) -> None:
        self._s = state
        self._record = recorder

    async def recalculate_from(self, effective_on: date, reason: str, template: str = "recalculation",
                               extra_facts: dict[str, str] | None = None,
                               basis: CalculationBasis = CURRENT_FACTS) -> LiabilityRecord:
        """Recalculates effective `effective_on`; notifies both parents with the explanation (plus
        `extra_facts` for the letter) and hands the new schedule to payments."""
        s = self._s
        record = self._record
        result = self.calculate(effective_on, basis)
        if s.hmrc_annual_pence is not None:
            s.awaiting_income = False
            record.clear_caseworker_if("HMRC")
        s.liability = LiabilityRecord(
            rate=result.rate, weekly_liability_pence=result.weekly_liability_pence,
            paying_parent_pays_pence=result.paying_parent_pays_pence,
            receiving_parent_receives_pence=result.receiving_parents_receive_pence,
            effective_date=effective_on.isoformat(), rule_set_id=result.rule_set_id,
            gross_weekly_income_pence=result.gross_weekly_income_pence,
        )
        if result.rate != "default":
            s.default_decision_from = None
        elif s.default_decision_from is None:
            s.default_decision_from = effective_on.isoformat()
        if result.rate == "default" and template != COLLECT_AND_PAY_TEMPLATE:
            template = "default_decision"
        record.log("calculation", f"{reason}: {result.rate} rate, {format_pence(result.weekly_liability_pence)} "
                                  f"a week from {effective_on.isoformat()}")
        facts = {"effective_date": effective_on.isoformat(), "rate": result.rate,
                 "weekly_liability_pence": str(result.weekly_liability_pence),
                 "paying_parent_pays_pence": str(result.paying_parent_pays_pence),
                 "receiving_parent_receives_pence": str(result.receiving_parents_receive_pence),
                 **(extra_facts or {})}
        texts = [step.text for step in result.explanation]
        key = f"{template}-{effective_on.isoformat()}-{s.schedule_version + 1}"
        self._set_first_collection(basis)
        rates = self._rates_with(effective_on, result)
        await record.send([*record.to_both_parents(template, key, facts, texts),
                           *self._schedule_letters(effective_on, rates, key, basis)])
        record.log("parents_notified", "Both parents notified with the explanation")
        await self._hand_schedule_to_payments(effective_on, result, rates, basis)
        return s.liability

    # --- what the case calculates on ---------------------------------------------------------
    def calculate(self, effective_on: date, basis: CalculationBasis = CURRENT_FACTS) -> CalculationResult:
        s = self._s
        as_of_default = self._default_decision_as_of(effective_on, basis)
        if as_of_default is not None:
            return as_of_default
        qualifying = [c for c in s.children if c.stopped_qualifying_on is None]
        if s.hmrc_annual_pence is None and s.stated_weekly_income_pence is None:
            parent = ReceivingParent(s.receiving_parent_id, tuple(CalcChild(c.child_id, c.shared_care_nights)
                                                                  for c in qualifying))
            return default_decision(len(qualifying), (parent,), as_service_type(s.service_type),
                                    effective_date=effective_on)
        if basis.inputs is not None:
            return calculate(parse_request(copy.deepcopy(basis.inputs)), effective_date=effective_on)
        request = self.calculation_request(income_before_review=basis.income_before_review)
        return calculate(parse_request(request), effective_date=effective_on)

    def calculation_request(self, income_before_review: int | None = None) -> dict[str, Any]:
        """The case's calculation request (the `cms calculate` JSON contract) from its state."""
        s = self._s
        paying_parent: dict[str, Any] = {"relevant_other_children": s.relevant_other_children,
                                         "flat_rate_benefit": s.flat_rate_benefit}
        if s.stated_weekly_income_pence is not None:
            paying_parent["gross_weekly_income_pence"] = s.stated_weekly_income_pence
        elif income_before_review is not None:
            paying_parent["gross_weekly_income_pence"] = income_before_review
        elif s.hmrc_annual_pence is not None:
            paying_parent["income"] = {"hmrc_annual_pence": s.hmrc_annual_pence}
        else:
            paying_parent["gross_weekly_income_pence"] = 0  # not known yet: a default decision applies
        if s.special_expenses_weekly_pence:
            paying_parent["special_expenses_weekly_pence"] = s.special_expenses_weekly_pence
        children = [{"id": c.child_id, "shared_care_nights": c.shared_care_nights}
                    for c in s.children if c.stopped_qualifying_on is None]
        return {"paying_parent": paying_parent,
                "receiving_parents": [{"id": s.receiving_parent_id, "children": children}] if children else [],
                "service_type": s.service_type}

    def schedule_service_type(self, basis: CalculationBasis = CURRENT_FACTS) -> str:
        """The service type of the schedule version being handed to payments."""
        if basis.inputs is not None:
            return str(basis.inputs.get("service_type", self._s.service_type))
        return self._s.service_type

    def _default_decision_as_of(self, effective_on: date, basis: CalculationBasis) -> CalculationResult | None:
        """On the facts of an earlier date: the default decision, when the paying parent's income
        was not yet known from that date (the case was on a default decision and the income came
        with a later-dated change), on the children as they stood then. None otherwise."""
        if basis.inputs is None or basis.income_known is not False:
            return None
        parents = tuple(ReceivingParent(rp["id"], tuple(CalcChild(c["id"], c.get("shared_care_nights", 0) or 0)
                                                        for c in rp["children"]))
                        for rp in basis.inputs["receiving_parents"] if rp["children"])
        if not parents or not workflow.patched(OUT_OF_ORDER_DEFAULT_PATCH):
            return None
        children = sum(len(parent.children) for parent in parents)
        return default_decision(children, parents, as_service_type(self.schedule_service_type(basis)),
                                effective_date=effective_on)

    # --- what goes to payments and the letters about it --------------------------------------
    def _set_first_collection(self, basis: CalculationBasis) -> None:
        """With the first schedule of a case on Collect & Pay: its first collection, counted from
        today, when the payment schedule letter goes out with the decision."""
        s = self._s
        if s.schedule_version or s.first_collection_date or self.schedule_service_type(basis) != "collect_and_pay":
            return
        if workflow.patched(FIRST_COLLECTION_PATCH):
            s.first_collection_date = first_collection_date(self._record.today()).isoformat()

    def _first_collection(self) -> date | None:
        return date.fromisoformat(self._s.first_collection_date) if self._s.first_collection_date else None

    def _first_due(self, plan_first_due: date) -> date:
        """The first schedule's first payment: the first collection's instalment when there is one."""
        s = self._s
        first_collection = self._first_collection()
        if s.schedule_version != 1 or first_collection is None or not s.rates:
            return plan_first_due
        history = as_rates(s.rates)
        return next_instalments(Frequency(s.payment_frequency), history[0].effective_from, history, first_collection,
                                count=1, first_collection=first_collection)[0].period.due_date

    def _schedule_letters(self, effective_on: date, rates: list[RateInForce] | None, key: str,
                          basis: CalculationBasis) -> list[CaseNotice]:
        """The payment schedule letters for the version about to be handed to payments, whose
        liability history is `rates`, in the same write as the calculation letters. None for a
        version superseded at once (the earlier dates of a change applied out of date order) or in
        a run that began before the liability history was kept."""
        s = self._s
        if rates is None or basis.earlier_facts or not workflow.patched(SCHEDULE_LETTER_PATCH):
            return []
        history = as_rates(rates)
        service_type = self.schedule_service_type(basis)
        recipients = [(s.paying_parent_id, True)]
        if service_type == "direct_pay":
            recipients.append((s.receiving_parent_id, False))
        # Its own idempotency key: the calculation letter to the same parent has `key` already.
        return [self._record.notice(party, "payment_schedule", f"{key}/schedule", schedule_letter_facts(
                    s.payment_frequency, service_type, history, effective_on, self._record.today(),
                    to_paying_parent=paying, first_collection=self._first_collection()))
                for party, paying in recipients]

    async def _hand_schedule_to_payments(self, effective_on: date, result: CalculationResult,
                                         rates: list[RateInForce] | None, basis: CalculationBasis) -> None:
        """Hands the new schedule version to payments; `rates` is the liability history with it."""
        s = self._s
        record = self._record
        s.rates = rates
        s.schedule_version += 1
        plan = lifecycle.payment_plan(result.paying_parent_pays_pence, s.payment_frequency, effective_on)
        if s.phase == "assessment":
            await record.enter("PaymentSchedule", sync=False)
        await record.write_schedule(ScheduleRequest(
            idempotency_key=f"{workflow.info().workflow_id}/schedule-{s.schedule_version}",
            case_id=s.case_id, version=s.schedule_version, service_type=self.schedule_service_type(basis),
            frequency=plan.frequency, effective_from=effective_on.isoformat(),
            weekly_liability_pence=result.weekly_liability_pence,
            paying_parent_pays_weekly_pence=result.paying_parent_pays_pence,
            instalment_pence=plan.instalment_pence, first_instalment_pence=plan.first_instalment_pence,
            instalments_per_year=plan.instalments_per_year, first_due_date=self._first_due(plan.first_due_date).isoformat(),
            annual_pence=plan.annual_pence, method=s.payment_method,
            # Payments keeps the first version's first collection for every later version.
            first_collection_date=(s.first_collection_date or "") if s.schedule_version == 1 else "",
            paying_parent_fee_pence=sum(rp.paying_parent_fee_pence for rp in result.receiving_parents),
            receiving_parent_fee_pence=sum(rp.receiving_parent_fee_pence for rp in result.receiving_parents),
            rule_set_id=result.rule_set_id,
            # The case calendar, so payments' collection cycles keep case time too.
            case_day=record.today().isoformat(), case_instant=workflow.now().isoformat(),
            seconds_per_day=s.seconds_per_day,
        ))
        if s.rates is None:  # a run that began before the liability history was kept
            upcoming = f"first payment {format_pence(plan.first_instalment_pence)} due {plan.first_due_date.isoformat()}"
        else:  # as payments charges it (the plan's own first date is the end of the first period)
            history = as_rates(s.rates)
            ahead = next_instalments(Frequency(s.payment_frequency), history[0].effective_from, history,
                                     record.today(), count=1, first_collection=self._first_collection())[0]
            upcoming = (f"next payment {format_pence(ahead.amount_pence + ahead.fee_pence)} "
                        f"due {ahead.period.due_date.isoformat()}")
        record.log("schedule", f"Payment schedule {s.schedule_version} handed to payments: {plan.frequency}, {upcoming}")

    def _rates_with(self, effective_on: date, result: CalculationResult) -> list[RateInForce] | None:
        """The liability history as payments will hold it once this version is handed over (it
        replaces every entry from its date on), kept from the first schedule; None in a run that
        began before the history was kept (state only: no command depends on it but the letters)."""
        s = self._s
        kept = [] if s.schedule_version == 0 else s.rates
        if kept is None:
            return None
        on = effective_on.isoformat()
        return [rate for rate in kept if rate.effective_from < on] + [RateInForce(
            on, result.weekly_liability_pence, result.paying_parent_pays_pence - result.weekly_liability_pence,
            result.rate)]
