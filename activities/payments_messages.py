"""What the payment workflows (workflows/payments.py) send the payments activities and get back.

Standard library only, so a workflow imports them without loading the activities' clients. The
names and fields are part of every recorded history: rename or reshape nothing; a new field
needs a default. Money is integer pence.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PeriodRef:
    case_id: str
    period_index: int


@dataclass
class PeriodOutcome:
    case_id: str
    period_index: int
    due_date: str
    due_pence: int
    paid_pence: int
    status: str            # paid | part_paid | missed
    arrears_pence: int


@dataclass
class DisbursementRequest:
    case_id: str
    as_of: str             # ISO date the money is passed on from
    business_key: str      # e.g. "disburse-3" for period 3
    arrived_on: str = ""   # ISO date the money arrived (disbursement on arrival); "" = as_of


@dataclass
class DisbursementOutcome:
    amount_pence: int
    due_by: str
    bank_reference: str


@dataclass
class EnforcementChargeRequest:
    case_id: str
    charge_kind: str       # deduction_from_earnings_order | regular_deduction_order | ...
    charged_on: str
    business_key: str      # e.g. "deo-1"
    decision_ref: str = ""


@dataclass
class PostingOutcome:
    transaction_id: str
    duplicate: bool
    account: str


@dataclass
class ScheduleRequest:
    case_id: str
    service_type: str      # direct_pay | collect_and_pay
    frequency: str         # weekly | fortnightly | four_weekly | monthly
    method: str            # direct_debit | standing_order | deduction_from_earnings | card
    effective_date: str
    weekly_liability_pence: int
    paying_parent_fee_pence: int
    decision_ref: str      # the calculation that caused it; also the business key
    due_offset_days: int = 0


@dataclass
class ScheduleOutcome:
    version: int
    first_due_date: str
    first_amount_pence: int
    adjustments_pence: int     # total of adjustments posted for periods already charged


@dataclass
class DirectPaymentReport:
    case_id: str
    due_date: str
    received: bool
    amount_pence: int
    business_key: str      # e.g. the report's id from the channel


@dataclass
class DirectPaymentOutcome:
    duplicate: bool
    shortfall_pence: int


@dataclass
class ReconciliationOutcome:
    ok: bool
    postings: int
    differences: list[str]
    suspense_pence: int
