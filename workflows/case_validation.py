"""What a caseworker's request to a case must satisfy before it is accepted.

Each update of the case workflow has a validator that calls one of these: a request that fails
raises ValueError with a message a caseworker can act on, and leaves nothing in the history. They
read the case's state and change nothing.
"""

from __future__ import annotations

from datetime import date

from domain import lifecycle
from domain.date_window import parse_day_in_window
from domain.service_type import COLLECT_AND_PAY_REASONS
from workflows.case_messages import (
    CaseState,
    CloseRequest,
    CollectAndPayRequest,
    HoldRequest,
    ManualReviewRequest,
    NoteRequest,
    ReleaseRequest,
    SafeguardingFlag,
)

MAX_TEXT = 2000


def require_text(**values: str) -> None:
    for name, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} is required")
        if len(value) > MAX_TEXT:
            raise ValueError(f"{name} is longer than 2,000 characters")


def require_open(s: CaseState) -> None:
    if s.phase in ("closing", "closed") or s.close_requested is not None:
        raise ValueError("the case is closed or closing")


def check_note(note: NoteRequest) -> None:
    require_text(text=note.text, author=note.author)


def check_manual_review(s: CaseState, request: ManualReviewRequest) -> None:
    require_text(reason=request.reason, actor=request.actor)
    require_open(s)


def check_complete_review(s: CaseState, request: ReleaseRequest) -> None:
    require_text(actor=request.actor)
    if not s.needs_caseworker:
        raise ValueError("the case has no open caseworker task")


def check_hold(s: CaseState, request: HoldRequest) -> None:
    require_text(reason=request.reason, actor=request.actor)
    require_open(s)
    if s.on_hold:
        raise ValueError("the case is already on hold")


def check_release(s: CaseState, request: ReleaseRequest) -> None:
    require_text(actor=request.actor)
    if not s.on_hold:
        raise ValueError("the case is not on hold")


def check_safeguarding(s: CaseState, request: SafeguardingFlag) -> None:
    require_text(reason=request.reason, actor=request.actor)
    require_open(s)
    if s.safeguarded:
        raise ValueError("the case already has a safeguarding profile")


def check_close(s: CaseState, request: CloseRequest, today: date) -> None:
    require_text(reason=request.reason, actor=request.actor)
    allowed = sorted(lifecycle.CLOSURE_REASONS - {"no_qualifying_child"})
    if request.reason not in allowed:
        raise ValueError(f"reason must be one of {', '.join(allowed)}")
    require_open(s)
    closure_date(s, request, today)


def closure_date(s: CaseState, request: CloseRequest, today: date) -> date:
    """The first day without liability the closure asks for (domain.lifecycle.closure_date)."""
    if not isinstance(request.event_date, str):
        raise ValueError("event_date must be an ISO date (YYYY-MM-DD)")
    event = None
    if request.event_date:
        # Inside the window the wait for a day asked cannot overflow the case calendar.
        event, problem = parse_day_in_window(request.event_date)
        if problem or event is None:
            raise ValueError(f"event_date: {problem}")
    return lifecycle.closure_date(request.reason, today, event, _iso(s.initial_effective_date), _iso(s.application_date))


def _iso(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def check_collect_and_pay(s: CaseState, request: CollectAndPayRequest) -> None:
    """A move to Collect & Pay is decided on an active Direct Pay case with a schedule, outside an
    annual review and a hold, and only once."""
    require_text(reason=request.reason, actor=request.actor)
    if request.reason not in COLLECT_AND_PAY_REASONS:
        raise ValueError(f"reason must be one of {', '.join(COLLECT_AND_PAY_REASONS)}")
    if not isinstance(request.note, str) or len(request.note) > MAX_TEXT:
        raise ValueError("note must be text of at most 2,000 characters")
    require_open(s)
    if s.service_type == "collect_and_pay":
        raise ValueError("the case is already on Collect & Pay")
    if s.pending_switch is not None:
        raise ValueError(f"the case is already moving to Collect & Pay from {s.pending_switch.effective_from}")
    if s.phase != "active" or s.liability is None:
        raise ValueError("the case has no payment schedule yet: the service type is still part of the assessment")
    if s.stage != "Active":
        raise ValueError("the annual review is under way: move the case when it is done")
    if s.on_hold:
        raise ValueError("the case is on hold: release the hold first")
