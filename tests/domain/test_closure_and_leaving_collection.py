"""When a caseworker's closure takes effect (domain.lifecycle.closure_date: reg 18(3)(b)-(c),
Sch 1 para 16, s.4(5)), and who decides a paying parent's request to leave Collect & Pay
(domain.service_type, s.4(2A) CSA 1991)."""

from __future__ import annotations

from datetime import date

import pytest

from domain.changes import CaseContext, decide, parse_change
from domain.lifecycle import closure_date
from domain.service_type import collect_and_pay_grounds, return_to_direct_pay_review

TODAY = date(2025, 8, 1)
IED = date(2025, 3, 5)


@pytest.mark.parametrize("reason", ["paying_parent_died", "receiving_parent_died", "party_left_uk",
                                    "receiving_parent_no_longer_caring"])
def test_an_event_ends_liability_from_the_date_it_happened(reason) -> None:
    assert closure_date(reason, TODAY, date(2025, 6, 3), IED) == date(2025, 6, 3)
    assert closure_date(reason, TODAY, IED, IED) == IED, "the initial effective date itself is allowed"
    assert closure_date(reason, TODAY, TODAY, IED) == TODAY


def test_without_a_date_the_closure_takes_effect_on_the_day_recorded() -> None:
    assert closure_date("paying_parent_died", TODAY, None, IED) == TODAY
    assert closure_date("receiving_parent_request", TODAY, None, IED) == TODAY


def test_an_event_date_in_the_future_or_before_liability_is_refused() -> None:
    with pytest.raises(ValueError, match="in the future"):
        closure_date("party_left_uk", TODAY, date(2025, 8, 2), IED)
    with pytest.raises(ValueError, match="before the initial effective date"):
        closure_date("paying_parent_died", TODAY, date(2025, 3, 4), IED)
    # Still in assessment (no initial effective date yet): not before the application.
    with pytest.raises(ValueError, match="before the application date"):
        closure_date("paying_parent_died", TODAY, date(2025, 2, 28), None, date(2025, 3, 1))


def test_the_receiving_parents_request_closes_from_the_day_asked_never_in_the_past() -> None:
    assert closure_date("receiving_parent_request", TODAY, date(2025, 9, 1), IED) == date(2025, 9, 1)
    with pytest.raises(ValueError, match="in the past"):
        closure_date("receiving_parent_request", TODAY, date(2025, 7, 31), IED)


def test_the_grounds_for_collect_and_pay_that_a_caseworker_must_weigh() -> None:
    assert collect_and_pay_grounds("collect_and_pay", "direct_pay_missed", False) == "direct_pay_missed"
    assert collect_and_pay_grounds("collect_and_pay", None, True) == "safeguarding"
    assert collect_and_pay_grounds("collect_and_pay", None, False) == ""      # a parent asked for it
    assert collect_and_pay_grounds("direct_pay", "direct_pay_missed", True) == ""
    assert return_to_direct_pay_review("direct_pay_missed", "paying_parent", "direct_pay") == "rules_cannot_decide"
    assert return_to_direct_pay_review("safeguarding", "paying_parent", "direct_pay") == "safeguarding"
    assert return_to_direct_pay_review("receiving_parent_request", "paying_parent", "direct_pay") is None
    assert return_to_direct_pay_review("direct_pay_missed", "receiving_parent", "direct_pay") is None


def _service_type_change(reported_by: str) -> dict:
    return {"kind": "service_type", "reported_by": reported_by, "reported_date": TODAY.isoformat(),
            "effective_date": TODAY.isoformat(),
            "details": {"service_type": "direct_pay"}}


INPUTS = {"paying_parent": {"gross_weekly_income_pence": 50_000, "relevant_other_children": 0},
          "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1", "shared_care_nights": 0}]}],
          "service_type": "collect_and_pay"}


@pytest.mark.parametrize(("grounds", "reported_by", "review"), [
    ("direct_pay_missed", "paying_parent", "rules_cannot_decide"),
    ("safeguarding", "paying_parent", "safeguarding"),
    ("", "paying_parent", None),
    ("direct_pay_missed", "receiving_parent", None),
])
def test_a_paying_parents_request_to_return_to_direct_pay_goes_to_a_caseworker(grounds, reported_by, review) -> None:
    change = parse_change(_service_type_change(reported_by), TODAY)
    decision = decide(change, INPUTS, CaseContext(initial_effective_date=IED, collect_and_pay_grounds=grounds))
    assert decision.review_reason == review
    assert decision.counts, "the rules still say what the change does once a caseworker accepts it"
