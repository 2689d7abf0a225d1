"""domain.payment_events: which payment events a case ignores, and why."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from domain.payment_events import payment_event_problem


@dataclass(frozen=True)
class Event:
    event_id: str = "case-1/collection-3/missed"
    case_id: str = "1"
    kind: str = "missed"
    due_pence: int = 10_000
    paid_pence: int = 0
    arrears_pence: int = 10_000


def test_a_whole_event_for_the_case_is_taken() -> None:
    assert payment_event_problem(Event(), "1", case_closed=False) == ""
    assert payment_event_problem(Event(kind="part_paid", paid_pence=4_000), "1", case_closed=False) == ""


@pytest.mark.parametrize(("change", "problem"), [
    ({"case_id": "2"}, "event for another case"),
    ({"kind": "refund"}, "unknown kind 'refund'"),
    ({"event_id": ""}, "no event_id"),
    ({"due_pence": -1}, "amounts must be whole non-negative pence"),
    ({"paid_pence": 12.5}, "amounts must be whole non-negative pence"),
    ({"arrears_pence": True}, "amounts must be whole non-negative pence"),
])
def test_an_unusable_event_says_why(change: dict[str, Any], problem: str) -> None:
    assert payment_event_problem(replace(Event(), **change), "1", case_closed=False) == problem


def test_a_closed_case_takes_no_more_events() -> None:
    assert payment_event_problem(Event(), "1", case_closed=True) == "the case is closed"
