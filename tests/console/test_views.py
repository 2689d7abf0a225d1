"""The console's view models: what a page says, from the services' messages."""

from __future__ import annotations

from datetime import timedelta

from cms_proto.case.v1 import case_pb2
from cms_proto.payments.v1 import payments_pb2
from services.console import views
from tests.console.fakes import NOW, safeguarded_case, stamp


def summary(case_id: str, team: str, due_in_days: float | None, reason: str = "") -> case_pb2.CaseSummary:
    item = case_pb2.CaseSummary(case_id=case_id, stage="Assessment", service_type="direct_pay", needs_caseworker=True,
                                assigned_team=team, caseworker_reason=reason)
    if due_in_days is not None:
        item.sla_due_at.CopyFrom(stamp(NOW + timedelta(days=due_in_days)))
    return item


def test_money_is_pounds_and_pence_with_thousands_and_a_minus_sign() -> None:
    assert views.money(0) == "£0.00"
    assert views.money(123456789) == "£1,234,567.89"
    assert views.money(-505) == "−£5.05"


def test_codes_read_as_words() -> None:
    assert views.words("rules_cannot_decide") == "Rules cannot decide"
    assert views.words("ChangeReview") == "Change review"


def test_dates_read_as_gov_uk_writes_them() -> None:
    assert views.day_text("2026-03-07") == "7 March 2026"
    assert views.day_text("") == ""
    assert views.moment_text(NOW) == "2 March 2026 at 10:00am"
    assert views.moment_text(NOW + timedelta(days=120, hours=4)) == "30 June 2026 at 3:00pm"  # British Summer Time


def test_case_queue_groups_by_team_soonest_due_first_and_unassigned_last() -> None:
    teams = views.case_queue([
        summary("late", "changes-review", -1, "Manual review: check income"),
        summary("no-deadline", "changes-review", None),
        summary("soon", "changes-review", -2),
        summary("other", "", 5),
        summary("collections", "collections", 1),
        case_pb2.CaseSummary(case_id="not-waiting", needs_caseworker=False),
    ], NOW)
    assert [team.team for team in teams] == ["changes-review", "collections", views.UNASSIGNED]
    assert [row.case_id for row in teams[0].rows] == ["soon", "late", "no-deadline"]
    late = teams[0].rows[1]
    assert late.overdue and late.due.startswith("Overdue since 1 March 2026")
    assert late.why == "Manual review: check income"
    assert teams[0].rows[0].why == "Waiting for a caseworker at the assessment stage"
    assert teams[0].rows[2].due == "No deadline" and not teams[0].rows[2].overdue


def test_queue_rows_link_to_the_temporal_ui_only_when_given_a_link() -> None:
    link = "http://ui/namespaces/default/workflows/{workflow_id}"
    [team] = views.case_queue([summary("C9", "t", 1)], NOW, link)
    assert team.rows[0].temporal_url == "http://ui/namespaces/default/workflows/case-C9"
    [team] = views.case_queue([summary("C9", "t", 1)], NOW)
    assert team.rows[0].temporal_url == ""


def change(no: int, age: int, **fields: object) -> case_pb2.ChangeItem:
    values: dict[str, object] = {"status": "awaiting_review", **fields}
    item = case_pb2.ChangeItem(case_id="C1", change_no=no, kind="shared_care_nights", assigned_team="changes-review",
                               age_days=age, **values)  # type: ignore[arg-type]
    item.sla_due_at.CopyFrom(stamp(NOW + timedelta(days=28 - age)))
    return item


def test_a_change_row_says_why_and_where_its_28_day_clock_stands() -> None:
    waiting = views.change_row(change(1, 5, needs_caseworker=True, review_reason="evidence_disputed"))
    assert waiting.why == "Waiting for a caseworker's review: the evidence is disputed"
    assert waiting.clock == "Day 5 of 28: 23 days left" and not waiting.nearly_breached and not waiting.breached
    near = views.change_row(change(2, 22))
    assert near.nearly_breached and near.clock == "Day 22 of 28: 6 days left"
    late = views.change_row(change(3, 31, breached=True))
    assert late.breached and late.clock == "Breached: 3 days over the 28 days"
    assert late.why == "Not decided within 28 days"
    cleared = views.change_row(change(4, 30, status="cleared", breached=True, outcome="applied", reason="verified"))
    assert not cleared.breached and cleared.clock == "Cleared on day 30 of 28 (late)"
    assert cleared.why == "Applied: verified"


def test_breach_queue_lists_breached_then_nearly_breached_and_nothing_else() -> None:
    rows = views.breach_rows([change(1, 22), change(2, 3), change(3, 30, breached=True),
                              change(4, 40, status="cleared", breached=True)])
    assert [row.change_no for row in rows] == [3, 1]


def test_withheld_party_fields_are_said_as_withheld_never_shown() -> None:
    view = views.case_view(safeguarded_case(), NOW)
    receiving = view.parties[0]
    assert receiving.withheld and ("Address", "Withheld") in receiving.rows and ("Phone", "Withheld") in receiving.rows
    assert ("Name", "Alex Receiver") in receiving.rows
    assert "[withheld]" not in repr(view)


def test_children_show_the_last_day_they_qualify() -> None:
    view = views.case_view(safeguarded_case(), NOW)
    [child] = view.children
    # Born 1 June 2015: every child qualifies until the 31 August on or after their 16th birthday.
    assert (child.born, child.qualifies_until) == ("1 June 2015", "31 August 2031")


def test_liability_history_lists_each_decided_change_that_set_one_then_the_first_calculation() -> None:
    applied = change(7, 10, status="cleared", outcome="applied", weekly_liability_pence=5000, has_weekly_liability=True,
                     effective_date="2026-02-02")
    rejected = change(8, 4, status="cleared", outcome="rejected")
    history = views.liability_history(safeguarded_case(), [applied, rejected])
    assert [(entry.when, entry.weekly) for entry in history] == [("2 February 2026", "£50.00"), ("5 January 2026", "")]
    assert history[0].what == "Shared care nights (change 7): Applied"


def test_latest_explanation_is_the_newest_explaining_entry() -> None:
    entries = [case_pb2.TimelineEntry(kind="calculation", text="first"), case_pb2.TimelineEntry(kind="note", text="a note"),
               case_pb2.TimelineEntry(kind="change_cleared", text="second")]
    assert views.latest_explanation(entries) == "second"
    assert views.latest_explanation(entries[1:2]) == ""


def test_balance_leaves_out_amounts_that_are_nothing() -> None:
    rows = views.balance_rows(payments_pb2.Balance(arrears_pence=100, paid_to_date_pence=0, credit_pence=250,
                                                   next_payment_pence=4000, next_payment_due="2026-04-01"))
    assert rows == (("Arrears", "£1.00"), ("Paid to date", "£0.00"), ("Next payment", "£40.00 due 1 April 2026"),
                    ("In credit", "£2.50"))


def test_suspense_rows_say_why_the_money_waits() -> None:
    [named, unnamed] = views.suspense_rows([
        payments_pb2.SuspenseItem(bank_reference="B1", claimed_case_id="C7", amount_pence=1000, received_on="2026-03-01"),
        payments_pb2.SuspenseItem(bank_reference="B2", amount_pence=1)])
    assert "names case C7" in named.why and named.amount == "£10.00"
    assert unnamed.why == "The payment names no case"


def test_the_queue_takes_in_changes_waiting_for_review_and_enforcement_waiting_for_approval() -> None:
    change = summary("C2", "changes-disputes", 10)
    change.workflow_id, change.workflow_type, change.change_no = "case-C2/change-3", "ChangeWorkflow", 3
    change.change_kind, change.review_reason = "shared_care_nights", "evidence_disputed"
    enforcement = summary("C3", "", None)
    enforcement.workflow_id, enforcement.workflow_type = "case-C3/enforcement-1", "EnforcementWorkflow"
    enforcement.enforcement_step = "liability_order"
    link = "http://ui/namespaces/default/workflows/{workflow_id}"
    teams = {team.team: team.rows for team in views.case_queue([change, enforcement], NOW, link)}
    [change_row] = teams["changes-disputes"]
    assert change_row.what == "Change 3: shared care nights"
    assert change_row.why == "The change waits for a caseworker's review: the evidence is disputed"
    assert change_row.href == "/cases/C2/changes/3/review"
    assert change_row.temporal_url == "http://ui/namespaces/default/workflows/case-C2%2Fchange-3"
    [enforcement_row] = teams[views.ENFORCEMENT_TEAM]
    assert enforcement_row.why == "Enforcement needs a caseworker at liability order: an approval or a decision"
    assert (enforcement_row.what, enforcement_row.href) == ("Enforcement", "/cases/C3")
