"""What a case does with the payment events payments reports (a missed or part payment), and the
decision to move a Direct Pay case to Collect & Pay (docs/rules.md section 10).

Both only record: the arrears, the timeline, a collections caseworker task, and a decided move
(`CaseState.pending_switch`). The case's main line takes a decided move into the schedule, so the
recalculation never runs inside a handler.
"""

from __future__ import annotations

from datetime import date, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.enforcement import move_to_collect_and_pay_problem
    from domain.money import format_pence
    from domain.payment_events import payment_event_problem
    from domain.rulesets import rules_for
    from domain.service_type import (
        COLLECT_AND_PAY_REASONS,
        DIRECT_PAY_PATTERN_MONTHS,
        collect_and_pay_start,
        direct_pay_pattern,
    )
    from workflows.case_messages import PAYMENT_EVENTS_REMEMBERED, CaseState, ServiceSwitch
    from workflows.case_record import CaseRecorder
    from workflows.enforcement_messages import EnforcementInput, PayerMeans, enforcement_workflow_id
    from workflows.payments import PaymentEvent

# A missed payment: a collections caseworker contacts the paying parent within 7 days.
COLLECTIONS_CONTACT_DAYS = 7
COLLECTIONS_TEAM = "collections"
# Due dates of missed Direct Pay payments kept in the state: enough to see a pattern, bounded.
DIRECT_PAY_MISSES_REMEMBERED = 6
# Patch: a Direct Pay case moves to Collect & Pay from the start of a collection period, by a
# caseworker's `switch_to_collect_and_pay` or by itself after repeated missed Direct Pay payments.
COLLECT_AND_PAY_SWITCH_PATCH = "collect-and-pay-switch"
# Patch: a missed or part payment on Collect & Pay not put right within 7 days of contact starts
# enforcement, a child workflow of the case (workflows/enforcement.py).
ENFORCEMENT_PATCH = "enforcement-after-missed-payment"


class CasePaymentEvents:
    """Payment events and the decided move to Collect & Pay, over the case's state and recorder."""

    def __init__(self, state: CaseState, recorder: CaseRecorder) -> None:
        self._s = state
        self._record = recorder

    def record(self, event: PaymentEvent) -> None:
        """A missed or part payment: recorded in the timeline and the arrears; a missed payment
        opens a collections caseworker task due in 7 case days. A repeated delivery is dropped."""
        s = self._s
        record = self._record
        problem = payment_event_problem(event, s.case_id, case_closed=s.phase == "closed")
        if problem:
            workflow.logger.warning("payment event ignored", extra={"case_id": s.case_id, "problem": problem})
            return
        if event.event_id in s.payment_event_ids:
            return
        s.payment_event_ids = (s.payment_event_ids + [event.event_id])[-PAYMENT_EVENTS_REMEMBERED:]
        s.arrears_pence = event.arrears_pence
        if event.kind != "direct_pay_missed" and s.service_type == "collect_and_pay" \
                and workflow.patched(ENFORCEMENT_PATCH):
            self._enforcement_due()
        due = f"{format_pence(event.due_pence)} due {event.due_date}"
        if event.kind == "part_paid":
            record.log("payment_part_paid", f"Part payment: {format_pence(event.paid_pence)} of {due}; "
                                            f"arrears {format_pence(event.arrears_pence)}")
            return
        s.missed_payments += 1
        what = "Direct Pay payment reported missed" if event.kind == "direct_pay_missed" else "Missed payment"
        record.log("payment_missed", f"{what}: {format_pence(event.paid_pence)} paid of {due}; "
                                     f"arrears {format_pence(event.arrears_pence)}")
        if event.kind == "direct_pay_missed" and workflow.patched(COLLECT_AND_PAY_SWITCH_PATCH):
            self._direct_pay_missed(event, what)
            return
        record.open_task(f"{what}: contact the paying parent", COLLECTIONS_CONTACT_DAYS, team=COLLECTIONS_TEAM)
        record.log("caseworker_needed", f"{what}: collections to contact the paying parent within "
                                        f"{COLLECTIONS_CONTACT_DAYS} days")

    def _enforcement_due(self) -> None:
        """The first miss while no enforcement is open: enforcement starts after the contact window."""
        s = self._s
        if s.enforcement_due_on is None and not s.enforcement_open:
            s.enforcement_due_on = (self._record.today() + timedelta(days=COLLECTIONS_CONTACT_DAYS)).isoformat()

    async def start_enforcement_if_due(self, today: date, publish: bool) -> bool:
        """On the day enforcement is due: starts it if the arrears are still owed (True when the
        day has come, whether or not it started)."""
        s = self._s
        if s.enforcement_due_on is None or today < date.fromisoformat(s.enforcement_due_on):
            return False
        s.enforcement_due_on = None
        if not s.arrears_pence or s.enforcement_open:
            return True
        s.enforcements_started += 1
        s.enforcement_open = True
        n = s.enforcements_started
        data = EnforcementInput(s.case_id, n, s.paying_parent_id, s.receiving_parent_id, s.arrears_pence,
                                PayerMeans(), today.isoformat(), seconds_per_day=s.seconds_per_day,
                                publish_search_attributes=publish,
                                parent_workflow_id=workflow.info().workflow_id)
        # Abandoned, not ended, when the case run continues as new or closes: the arrears stay
        # collectable and enforcement goes on against them.
        await workflow.start_child_workflow("EnforcementWorkflow", data, id=enforcement_workflow_id(s.case_id, n),
                                            parent_close_policy=workflow.ParentClosePolicy.ABANDON)
        self._record.log("enforcement_started", f"Arrears of {format_pence(s.arrears_pence)} not put right within "
                                                f"{COLLECTIONS_CONTACT_DAYS} days of contact: enforcement started")
        return True

    def enforcement_ended(self, n: int) -> None:
        if n == self._s.enforcements_started:
            self._s.enforcement_open = False
            self._record.log("enforcement_ended", f"Enforcement {n} ended")

    def _direct_pay_missed(self, event: PaymentEvent, what: str) -> None:
        """A missed Direct Pay payment: a collections task either way; a pattern of misses moves
        the case to Collect & Pay by itself, a first miss suggests the move to the caseworker."""
        s = self._s
        try:
            due = date.fromisoformat(event.due_date)
        except (TypeError, ValueError):
            due = self._record.today()   # a report without a usable date counts as due today
        dues = sorted(set(s.direct_pay_missed_due) | {due.isoformat()})
        s.direct_pay_missed_due = dues[-DIRECT_PAY_MISSES_REMEMBERED:]
        movable = s.phase == "active" and s.service_type == "direct_pay" and s.pending_switch is None
        pattern = direct_pay_pattern(date.fromisoformat(d) for d in s.direct_pay_missed_due)
        if movable and workflow.patched(ENFORCEMENT_PATCH):
            pattern = self._warned_before(pattern)
        if movable and pattern and not s.on_hold:
            switch = self.decide_collect_and_pay("direct_pay_missed", "system")
            task = (f"{what} again within {DIRECT_PAY_PATTERN_MONTHS} months: moving to Collect & Pay from "
                    f"{switch.effective_from}; contact the paying parent about the arrears and how to pay")
        elif movable:
            task = (f"{what}: contact the paying parent; if they have not shown they will pay, move the case "
                    "to Collect & Pay (switch_to_collect_and_pay)")
        else:
            task = f"{what}: contact the paying parent"
        self._record.open_task(task, COLLECTIONS_CONTACT_DAYS, team=COLLECTIONS_TEAM)
        self._record.log("caseworker_needed", f"{task} (within {COLLECTIONS_CONTACT_DAYS} days)")

    def _warned_before(self, pattern: bool) -> bool:
        """Reg 6: the case moves only if the paying parent was warned in writing within the last
        12 months and this miss came after the warning; without such a warning, one is sent."""
        s = self._s
        today = self._record.today()
        warned_on = date.fromisoformat(s.direct_pay_warned_on) if s.direct_pay_warned_on else None
        problem = move_to_collect_and_pay_problem(warned_on, today, today, rules_for(today))
        if problem and (warned_on is None or "months old" in problem):
            s.direct_pay_warning_due = True
        return pattern and not problem

    async def send_direct_pay_warning(self) -> None:
        """The written warning of reg 6, to the paying parent, on the case's main line."""
        s = self._s
        record = self._record
        today = record.today().isoformat()
        s.direct_pay_warning_due = False
        s.direct_pay_warned_on = today
        await record.send([record.notice(s.paying_parent_id, "direct_pay_warning", f"direct-pay-warning-{today}",
                                         {"warned_on": today})])
        record.log("direct_pay_warning", "Warning sent to the paying parent: a further missed payment moves the "
                                         "case to Collect & Pay")

    def decide_collect_and_pay(self, reason: str, actor: str, note: str = "") -> ServiceSwitch:
        """Records the decision to move to Collect & Pay from the next collection period."""
        s = self._s
        today = self._record.today()
        switch = ServiceSwitch(reason, actor, today.isoformat(), self.collect_and_pay_start(today).isoformat(), note)
        s.pending_switch = switch
        self._record.log("collect_and_pay_decided", f"Move to Collect & Pay decided by {actor} "
                                                    f"({COLLECT_AND_PAY_REASONS[reason]}): from {switch.effective_from}")
        return switch

    def collect_and_pay_start(self, today: date) -> date:
        s = self._s
        liability_from = date.fromisoformat(s.liability.effective_date) if s.liability else None
        ied = date.fromisoformat(s.initial_effective_date) if s.initial_effective_date else None
        return collect_and_pay_start(s.payment_frequency, ied, liability_from, today)
