"""Enforcement of unpaid child maintenance (docs/rules.md section 5): the ladder, its notices, orders,
charges, approvals and the checks that keep it fair.

Pure rules, no clock and no I/O: the enforcement workflow asks these functions what may happen
next and records the answers. Money is integer pence. Every figure the law sets (deduction limits,
notice periods, charges, waivers) comes from the rule set in force, never from this module.

Money collected through enforcement is allocated like any other receipt (domain/payments/
allocation.py): maintenance and arrears first, enforcement charges last.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from domain.money import format_pence
from domain.rulesets import RuleSet

# The ladder, in the order it is climbed (docs/rules.md 5.2).
CONTACT = "contact"
ARREARS_NOTICE = "arrears_notice"
DEDUCTION_FROM_EARNINGS_ORDER = "deduction_from_earnings_order"
REGULAR_DEDUCTION_ORDER = "regular_deduction_order"
LUMP_SUM_DEDUCTION_ORDER = "lump_sum_deduction_order"
LIABILITY_ORDER = "liability_order"
ENFORCEMENT_AGENTS = "enforcement_agents"
CHARGING_ORDER = "charging_order"
DRIVING_LICENCE_DISQUALIFICATION = "driving_licence_disqualification"
PASSPORT_DISQUALIFICATION = "passport_disqualification"
COMMITTAL = "committal"
LADDER = (CONTACT, ARREARS_NOTICE, DEDUCTION_FROM_EARNINGS_ORDER, REGULAR_DEDUCTION_ORDER,
          LUMP_SUM_DEDUCTION_ORDER, LIABILITY_ORDER, ENFORCEMENT_AGENTS, CHARGING_ORDER,
          DRIVING_LICENCE_DISQUALIFICATION, PASSPORT_DISQUALIFICATION, COMMITTAL)

# Steps beside the ladder: a plan pauses it; Direct Pay cases are warned, then moved.
REPAYMENT_PLAN = "repayment_plan"
DIRECT_PAY_WARNING = "direct_pay_warning"
MOVED_TO_COLLECT_AND_PAY = "moved_to_collect_and_pay"
STEPS = (*LADDER, REPAYMENT_PLAN, DIRECT_PAY_WARNING, MOVED_TO_COLLECT_AND_PAY)

DEDUCTION_ORDERS = (DEDUCTION_FROM_EARNINGS_ORDER, REGULAR_DEDUCTION_ORDER, LUMP_SUM_DEDUCTION_ORDER)
AFTER_LIABILITY_ORDER = (ENFORCEMENT_AGENTS, CHARGING_ORDER)
COURT_SANCTIONS = (DRIVING_LICENCE_DISQUALIFICATION, PASSPORT_DISQUALIFICATION, COMMITTAL)

# How a step ends.
PAID_IN_FULL = "paid_in_full"   # the arrears are cleared: enforcement closes
NOT_PUT_RIGHT = "not_put_right"  # contact or a notice ran out with the arrears still owed
INEFFECTIVE = "ineffective"     # an order ran and did not clear the arrears
GRANTED = "granted"             # a court made the order asked for
NOT_MADE = "not_made"           # a court refused it
WITHDRAWN = "withdrawn"         # a caseworker stopped the step, with a reason
PAUSED = "paused"               # a repayment plan was agreed while the step was open
KEPT = "kept"                   # a repayment plan ran its term
BROKEN = "broken"               # a repayment plan missed an instalment
SENT = "sent"                   # a letter step (Direct Pay warning) was sent
OUTCOMES = (PAID_IN_FULL, NOT_PUT_RIGHT, INEFFECTIVE, GRANTED, NOT_MADE, WITHDRAWN, PAUSED, KEPT,
            BROKEN, SENT)
CLOSING_OUTCOMES = (PAID_IN_FULL, KEPT, WITHDRAWN)

CASEWORKER = "caseworker"
SENIOR_CASEWORKER = "senior_caseworker"
APPROVER_ROLES = (CASEWORKER, SENIOR_CASEWORKER)
# Who must approve a later remedy, in order: the second of two is a different, senior person.
APPROVERS_NEEDED: dict[str, tuple[str, ...]] = {
    ENFORCEMENT_AGENTS: (CASEWORKER,),
    CHARGING_ORDER: (CASEWORKER,),
    DRIVING_LICENCE_DISQUALIFICATION: (CASEWORKER, SENIOR_CASEWORKER),
    PASSPORT_DISQUALIFICATION: (CASEWORKER, SENIOR_CASEWORKER),
    COMMITTAL: (CASEWORKER, SENIOR_CASEWORKER),
}


@dataclass(frozen=True)
class Payer:
    """What the ladder needs to know of the paying parent's means of paying."""

    employed: bool
    has_bank_account: bool


@dataclass(frozen=True)
class StepRecord:
    step: str
    outcome: str = ""  # "" while the step is open


def _tried(history: Sequence[StepRecord], step: str) -> bool:
    return any(record.step == step for record in history)


def _ended_with(history: Sequence[StepRecord], step: str, *outcomes: str) -> bool:
    return any(record.step == step and record.outcome in outcomes for record in history)


def _suitable_deduction_orders(payer: Payer) -> tuple[str, ...]:
    orders: tuple[str, ...] = (DEDUCTION_FROM_EARNINGS_ORDER,) if payer.employed else ()
    if payer.has_bank_account:
        orders += (REGULAR_DEDUCTION_ORDER, LUMP_SUM_DEDUCTION_ORDER)
    return orders


def is_closed(history: Sequence[StepRecord]) -> bool:
    """Enforcement has ended: the arrears were paid, a plan was kept, or it was withdrawn."""
    return any(record.outcome in CLOSING_OUTCOMES for record in history)


def step_start_problem(step: str, history: Sequence[StepRecord], payer: Payer) -> str:
    """Why `step` may not start now ("" when it may). Approvals are checked separately."""
    if step not in LADDER:
        return f"{step!r} is not a step of the enforcement ladder"
    if is_closed(history):
        return "enforcement is closed"
    still_open = [record.step for record in history if not record.outcome]
    if still_open:
        return f"{still_open[-1]} is still open"
    if _tried(history, step):
        return f"{step} has already been taken"
    if step == CONTACT:
        return ""
    if not _tried(history, CONTACT):
        return "the paying parent must be contacted first"
    if step == ARREARS_NOTICE:
        return ""
    if not _tried(history, ARREARS_NOTICE):
        return "an arrears notice must be sent first"
    if step in DEDUCTION_ORDERS:
        return _deduction_order_problem(step, payer)
    if step == LIABILITY_ORDER:
        untried = [order for order in _suitable_deduction_orders(payer)
                   if not _ended_with(history, order, INEFFECTIVE, NOT_MADE)]
        return f"a {untried[0]} must be tried first" if untried else ""
    if not _ended_with(history, LIABILITY_ORDER, GRANTED):
        return "a court must first grant a liability order"
    if step in AFTER_LIABILITY_ORDER:
        return ""
    if not any(_ended_with(history, remedy, INEFFECTIVE) for remedy in AFTER_LIABILITY_ORDER):
        return "enforcement agents or a charging order must first have failed"
    return ""


def _deduction_order_problem(step: str, payer: Payer) -> str:
    if step == DEDUCTION_FROM_EARNINGS_ORDER and not payer.employed:
        return "the paying parent has no employer to serve a deduction from earnings order on"
    if step != DEDUCTION_FROM_EARNINGS_ORDER and not payer.has_bank_account:
        return "the paying parent has no known bank account"
    return ""


def next_step(history: Sequence[StepRecord], payer: Payer) -> str | None:
    """The next ladder step that may start, or None (closed, a step open, or nothing left)."""
    for step in LADDER:
        if not step_start_problem(step, history, payer):
            return step
    return None


def needs_approval(step: str) -> bool:
    return step in APPROVERS_NEEDED


# --- notice periods -------------------------------------------------------------------------

def _days(rules: RuleSet, name: str) -> timedelta:
    return timedelta(days=rules.enforcement.days[name])


def put_right_by(contacted_on: date, rules: RuleSet) -> date:
    """The last day to put a missed payment right after contact before enforcement goes on."""
    return contacted_on + _days(rules, "put_right_after_contact")


def arrears_notice_due_by(enforcement_started_on: date, rules: RuleSet) -> date:
    """The day by which the arrears notice is sent (SI 2009/3151; the period is set as data)."""
    return enforcement_started_on + _days(rules, "arrears_notice_within")


def pay_after_arrears_notice_by(notice_sent_on: date, rules: RuleSet) -> date:
    """The last day to pay after the arrears notice before the ladder goes on."""
    return notice_sent_on + _days(rules, "pay_after_arrears_notice")


def employer_liable_from(order_served_on: date, rules: RuleSet) -> date:
    """An employer is not liable for failing to deduct until this many days after service."""
    return order_served_on + _days(rules, "employer_liable_after_service")


def liability_order_application_from(notice_served_on: date, rules: RuleSet) -> date:
    """The first day a liability order may be applied for after notice of intention (reg 28)."""
    return notice_served_on + _days(rules, "liability_order_notice")


def liability_order_hearing_by(applied_on: date, rules: RuleSet) -> date:
    """When the court step is expected to have an outcome; a caseworker is asked if it has not."""
    return applied_on + _days(rules, "liability_order_court")


# --- deductions and ability to pay ---------------------------------------------------------

@dataclass(frozen=True)
class AbilityToPay:
    """What is recorded before each escalation: income, other deductions and the protected part."""

    net_income_pence: int
    other_deductions_pence: int
    protected_pence: int

    @property
    def available_pence(self) -> int:
        """What may be taken this period without leaving the payer below protected earnings."""
        return max(0, self.net_income_pence - self.other_deductions_pence - self.protected_pence)


def _check_pence(**amounts: int) -> None:
    for name, value in amounts.items():
        if type(value) is not int or value < 0:
            raise ValueError(f"{name} must be a whole non-negative number of pence")


def ability_to_pay(net_income_pence: int, other_deductions_pence: int, rules: RuleSet) -> AbilityToPay:
    """The payer's means for one pay period; protected earnings round up, in the payer's favour."""
    _check_pence(net_income_pence=net_income_pence, other_deductions_pence=other_deductions_pence)
    protected = net_income_pence * rules.enforcement.protected_earnings
    return AbilityToPay(net_income_pence, other_deductions_pence, -(-protected.numerator // protected.denominator))


def affordability_problem(amount_per_period_pence: int, means: AbilityToPay) -> str:
    """Why taking this amount each period is refused ("" when it is affordable), with the figure."""
    _check_pence(amount_per_period_pence=amount_per_period_pence)
    if amount_per_period_pence <= means.available_pence:
        return ""
    return (f"{format_pence(amount_per_period_pence)} a period would leave the paying parent below "
            f"protected earnings of {format_pence(means.protected_pence)}; at most "
            f"{format_pence(means.available_pence)} a period can be taken")


@dataclass(frozen=True)
class EarningsDeduction:
    """One pay period under a deduction from earnings order."""

    means: AbilityToPay
    requested_pence: int      # maintenance due this period plus the arrears instalment
    deduction_pence: int      # what the employer pays over
    employer_admin_pence: int  # what the employer may keep for its costs

    @property
    def left_to_payer_pence(self) -> int:
        return (self.means.net_income_pence - self.means.other_deductions_pence
                - self.deduction_pence - self.employer_admin_pence)

    @property
    def shortfall_pence(self) -> int:
        """What the order could not take this period; it stays owed as arrears."""
        return self.requested_pence - self.deduction_pence


def earnings_deduction(net_earnings_pence: int, requested_pence: int, rules: RuleSet,
                       other_deductions_pence: int = 0) -> EarningsDeduction:
    """The deduction for one pay period (s.31 CSA 1991): at most the maximum share of net earnings,
    and never leaving less than the protected earnings proportion. The employer's admin charge is
    kept inside the protection too, so the payer always keeps the protected amount."""
    _check_pence(requested_pence=requested_pence)
    means = ability_to_pay(net_earnings_pence, other_deductions_pence, rules)
    limit = net_earnings_pence * rules.enforcement.maximum_deduction
    maximum = limit.numerator // limit.denominator
    admin = rules.enforcement.employer_admin_pence_per_deduction
    deduction = max(0, min(requested_pence, maximum, means.available_pence - admin))
    return EarningsDeduction(means, requested_pence, deduction, admin if deduction else 0)


# --- charges --------------------------------------------------------------------------------

def charge_pence(step: str, rules: RuleSet, waiver: str = "") -> int:
    """The charge a step posts (Fees Regulations 2014), or 0 when none applies or it is waived
    (reg 12: `waiver` names the ground, one of the rule set's charge_waivers)."""
    if waiver and waiver not in rules.enforcement.charge_waivers:
        known = ", ".join(rules.enforcement.charge_waivers)
        raise ValueError(f"unknown charge waiver {waiver!r} (known: {known})")
    if waiver:
        return 0
    return rules.enforcement_charges_pence.get(step, 0)


def charge_idempotency_key(enforcement_id: str, step: str) -> str:
    """One key per charge, so a retried or replayed posting is applied once by payments."""
    return f"{enforcement_id}/charge/{step}"


# --- approvals ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Approval:
    step: str
    staff_id: str
    role: str
    reason: str


def approval_problem(approval: Approval, pending_step: str | None, given: Sequence[Approval]) -> str:
    """Why an approval is refused ("" when it is accepted). `given`: approvals already recorded
    for the pending step."""
    if not approval.reason.strip():
        return "an approval needs a reason"
    if not approval.staff_id.strip():
        return "an approval needs the approver's staff id"
    if pending_step is None:
        return f"{approval.step} is not pending; no step is waiting for approval"
    if approval.step != pending_step:
        return f"{approval.step} is not pending; the pending step is {pending_step}"
    needed = APPROVERS_NEEDED[pending_step]
    if len(given) >= len(needed):
        return f"{pending_step} is already approved"
    if any(earlier.staff_id == approval.staff_id for earlier in given):
        return (f"{approval.staff_id} has already approved {pending_step}; "
                "a second, different senior caseworker must approve")
    role_needed = needed[len(given)]
    allowed = APPROVER_ROLES if role_needed == CASEWORKER else (SENIOR_CASEWORKER,)
    if approval.role not in allowed:
        return f"{pending_step} needs the approval of a {role_needed.replace('_', ' ')}"
    return ""


def approvals_complete(step: str, given: Sequence[Approval]) -> bool:
    return len(given) >= len(APPROVERS_NEEDED.get(step, ()))


# --- repayment plans ------------------------------------------------------------------------

@dataclass(frozen=True)
class RepaymentPlan:
    amount_per_period_pence: int
    periods: int
    left_step: str  # the ladder step the plan paused, resumed if the plan is broken

    @property
    def total_pence(self) -> int:
        return self.amount_per_period_pence * self.periods


def repayment_plan_problem(plan: RepaymentPlan, arrears_pence: int, means: AbilityToPay) -> str:
    """Why a plan is refused ("" when it may be agreed)."""
    if type(plan.periods) is not int or plan.periods <= 0:
        return "a repayment plan needs a term of at least one period"
    if type(plan.amount_per_period_pence) is not int or plan.amount_per_period_pence <= 0:
        return "a repayment plan needs a positive amount a period"
    if plan.total_pence < arrears_pence:
        return (f"the plan pays {format_pence(plan.total_pence)}, less than the arrears of "
                f"{format_pence(arrears_pence)}")
    return affordability_problem(plan.amount_per_period_pence, means)


def after_plan(plan: RepaymentPlan, outcome: str) -> str | None:
    """The step enforcement resumes at after a plan ends (None: enforcement closes)."""
    if outcome == KEPT:
        return None
    if outcome == BROKEN:
        return plan.left_step
    raise ValueError(f"a repayment plan ends kept or broken, not {outcome!r}")


# --- Direct Pay -----------------------------------------------------------------------------

def add_months(day: date, months: int) -> date:
    """`day` moved on by whole months; the 31st becomes the month's last day where needed."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def move_to_collect_and_pay_problem(warned_on: date | None, later_miss_reported_on: date | None,
                                    today: date, rules: RuleSet) -> str:
    """Why a Direct Pay case may not move to Collect & Pay ("" when it may): the paying parent
    must have been warned in writing within the previous 12 months, and the receiving parent must
    since have reported a further miss (SI 2014/1386 reg 6)."""
    if warned_on is None:
        return "the paying parent has not been warned in writing that a further miss moves the case"
    months = rules.enforcement.direct_pay_warning_valid_months
    if add_months(warned_on, months) < today:
        return f"the warning of {warned_on.isoformat()} is more than {months} months old"
    if later_miss_reported_on is None or not warned_on < later_miss_reported_on <= today:
        return f"the receiving parent has reported no miss since the warning of {warned_on.isoformat()}"
    return ""
