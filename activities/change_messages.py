"""What ChangeWorkflow (and CaseWorkflow's change ledger) send the change activities.

Standard library only, so a workflow imports them without loading the activities' clients. The
names and fields are part of every recorded history: rename or reshape nothing; a new field
needs a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ChangeOpened:
    case_id: str
    change_no: int
    workflow_id: str
    kind: str
    reported_date: str
    received_at: str          # ISO instant (workflow time)
    sla_due_at: str
    seconds_per_day: float
    idempotency_key: str = ""


@dataclass
class ChangeStatusUpdate:
    case_id: str
    change_no: int
    status: str               # awaiting_review | escalated
    assigned_team: str
    needs_caseworker: bool
    review_reason: str | None = None
    escalated_at: str | None = None
    breached_at: str | None = None


@dataclass
class PaymentScheduleChange:
    idempotency_key: str      # `<workflow id>/schedule`
    case_id: str
    change_no: int
    effective_date: str
    weekly_liability_pence: int | None   # None: the liability ends (case closure)
    paying_parent_pays_pence: int | None
    adjustment_pence: int     # + arrears from a backdated increase, − overpaid


@dataclass
class ChangeNotice:
    idempotency_key: str      # `<workflow id>/notice`
    case_id: str
    change_no: int
    outcome: str
    reason: str
    explanation: list[dict[str, str]] = field(default_factory=list)
    recipients: list[str] = field(default_factory=lambda: ["paying_parent", "receiving_parent"])


@dataclass
class ChangeCleared:
    case_id: str
    change_no: int
    outcome: str
    reason: str
    effective_date: str | None
    cleared_at: str
    cleared_day: str
    on_time: bool
    weekly_liability_pence: int | None = None
    adjustment_pence: int = 0
    reviewer: str | None = None
    review_note: str | None = None


@dataclass
class ChangeDecisionWrite:
    """The payment instruction, the parents' notice and the clearance of an automatic change,
    written by one local activity in one transaction (ChangeWorkflow's one-write patch)."""

    notice: ChangeNotice
    cleared: ChangeCleared
    payment_change: PaymentScheduleChange | None = None   # None: nothing changes for payments


@dataclass
class ChangeArrears:
    """What a backdated change adds for payments already due (domain.changes.backdated_arrears_pence)."""

    case_id: str
    change_no: int
    arrears_pence: int
