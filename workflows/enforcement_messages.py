"""The messages of EnforcementWorkflow (workflows/enforcement.py): its input, the caseworker's
updates (approvals, repayment plans, outcomes, withdrawal), the arrears it is told of, and the
status it answers.

Standard library only, passed through the workflow sandbox. The names and fields are part of
every recorded history: rename or reshape nothing; a new field needs a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ENFORCEMENT_STAGE = "Enforcement"
ENFORCEMENT_CLOSED_STAGE = "EnforcementClosed"
ENFORCEMENT_ENDED_SIGNAL = "enforcement_ended"


def enforcement_workflow_id(case_id: str, n: int) -> str:
    return f"case-{case_id}/enforcement-{n}"


@dataclass
class PayerMeans:
    """The paying parent's means, from the case. The employer is the paying parent's detail:
    only they and the employer's own instruction may carry it (domain/safeguarding.py)."""

    employed: bool = False
    has_bank_account: bool = False
    net_income_per_period_pence: int = 0
    other_deductions_per_period_pence: int = 0
    employer: str = ""


@dataclass
class EnforcementInput:
    case_id: str
    n: int
    paying_parent_id: str
    receiving_parent_id: str
    arrears_pence: int
    means: PayerMeans
    today: str                        # case-calendar date enforcement starts (ISO)
    # What enforcement asks for each pay period (maintenance due plus an arrears instalment);
    # 0: the whole arrears at once.
    requested_per_period_pence: int = 0
    seconds_per_day: float = 86400.0
    # False only on the time-skipping test server, which cannot register custom search attributes.
    publish_search_attributes: bool = True
    payments_task_queue: str = "cms-payments"
    # The case has closed: enforcement goes on against the arrears only.
    arrears_only: bool = False
    # The case workflow to tell when enforcement ends (signal `enforcement_ended` with n); empty: nobody.
    parent_workflow_id: str = ""


@dataclass
class ArrearsUpdate:
    """Arrears as payments now reports them (a payment, a deduction received, an adjustment)."""

    event_id: str
    arrears_pence: int


@dataclass
class ApprovalRequest:
    __strict_json__ = True  # unknown keys refused by the strict data converter (not a field)

    step: str = ""
    staff_id: str = ""
    role: str = ""       # caseworker | senior_caseworker
    reason: str = ""


@dataclass
class PlanRequest:
    __strict_json__ = True

    amount_per_period_pence: int = 0
    periods: int = 0
    period_days: int = 30
    staff_id: str = ""
    reason: str = ""


@dataclass
class OutcomeRequest:
    """A caseworker records how a step ended (a court's decision, an order that did not work,
    a plan broken)."""

    __strict_json__ = True

    step: str = ""
    outcome: str = ""
    staff_id: str = ""
    reason: str = ""


@dataclass
class WithdrawRequest:
    __strict_json__ = True

    staff_id: str = ""
    reason: str = ""


@dataclass
class StepView:
    step: str
    started_on: str
    ended_on: str = ""
    charge_pence: int = 0
    outcome: str = ""
    detail: str = ""     # e.g. the deduction per period, or why the step was refused


@dataclass
class ApprovalView:
    step: str
    staff_id: str
    role: str
    reason: str


@dataclass
class EnforcementStatus:
    case_id: str
    n: int
    steps: list[StepView] = field(default_factory=list)
    current_step: str = ""
    pending_approval: str = ""
    approvals: list[ApprovalView] = field(default_factory=list)
    arrears_pence: int = 0
    arrears_at_start_pence: int = 0
    charges_posted_pence: int = 0
    needs_caseworker: bool = False
    caseworker_reason: str = ""
    closed: bool = False
    ended_because: str = ""   # paid_in_full | kept | withdrawn, once closed

    @property
    def collected_pence(self) -> int:
        """Arrears collected since enforcement started."""
        return max(0, self.arrears_at_start_pence - self.arrears_pence)
