"""A bad scenario is refused before anything starts: `error: <path>: <message>` on stderr, exit 2,
no traceback. And the HMRC table answers with the latest tax year ended before the request."""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

import pytest
from typer.testing import CliRunner

from cms.cli.main import app
from cms.scenario.hmrc import ScenarioHmrc, latest_ended_tax_year
from cms.scenario.script import HmrcFigure, read_scenario

GOOD: dict[str, Any] = {
    "//": ["a comment the harness ignores"],
    "application": {"receiving_parent": {"party_id": "rp-1", "full_name": "Receiving Parent"},
                    "paying_parent": {"party_id": "pp-1", "full_name": "Paying Parent"},
                    "children": [{"child_id": "c-1", "date_of_birth": "2016-05-01"}],
                    "application_date": "2025-03-03"},
    "hmrc": {"2024-25": 3120000},
    "events": [{"on": "2025-06-01", "report_change": {"kind": "relevant_other_children", "details": {"count": 1}}},
               {"on": "2025-04-01", "payment": {"amount_pence": 7200}}],
    "until": "2025-09-01",
}


def _with(change) -> str:
    scenario = copy.deepcopy(GOOD)
    change(scenario)
    return json.dumps(scenario)


def _refused(text: str) -> str:
    result = CliRunner().invoke(app, ["scenario", "run", "-"], input=text)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr and result.stdout == ""
    return result.stderr.strip()


def test_a_good_scenario_is_read_with_its_comment_ignored_and_events_in_date_order() -> None:
    scenario = read_scenario(json.dumps(GOOD))
    assert [event.on for event in scenario.events] == [date(2025, 4, 1), date(2025, 6, 1)]
    assert scenario.events[1].request.details_json == '{"count": 1}'
    assert (scenario.until, scenario.hmrc) == (date(2025, 9, 1), {"2024-25": 3120000})


def test_an_hmrc_figure_sent_mid_year_is_an_event() -> None:
    scenario = read_scenario(_with(lambda s: s["events"].append(
        {"on": "2025-05-01", "hmrc_income": {"annual_pence": 3900000, "tax_year": "2025-26"}})))
    sent = scenario.events[1]
    assert (sent.on, sent.kind, sent.request) == (date(2025, 5, 1), "hmrc_income", HmrcFigure(3900000, "2025-26"))


@pytest.mark.parametrize("change, error", [
    (lambda s: s.update(colour="blue"), "error: colour: unknown key"),
    (lambda s: s["events"][0].update(on="2025-03-02"), "error: events[0].on: is before the application (2025-03-03)"),
    (lambda s: s.update(until="2025/09/01"), "error: until: '2025/09/01' is not an ISO date (YYYY-MM-DD)"),
    (lambda s: s["events"][1].update(on="1 April 2025"), "error: events[1].on: '1 April 2025' is not an ISO date"),
    (lambda s: s["events"].append({"on": "2025-05-01", "dance": {}}), "error: events[2].dance: unknown action"),
    (lambda s: s["events"].append({"on": "2025-05-01", "signal_case": {"action": "dance", "actor": "cw-1"}}),
     "error: events[2].signal_case.action: unknown action 'dance'"),
    (lambda s: s["application"].update(colour="blue"), "error: application: unknown field 'colour'"),
    (lambda s: s["application"].pop("application_date"), "error: application.application_date: required"),
    (lambda s: s["application"]["children"][0].update(date_of_birth="2026-01-01"),
     "error: application.children[0].date_of_birth: is after the application date"),
    (lambda s: s["events"][0]["report_change"].update(case_id="c-1"),
     "error: events[0].report_change.case_id: the scenario fills this in itself"),
    (lambda s: s.update({"//": "not a list"}), "error: //: a comment is a list of strings"),
    (lambda s: s["hmrc"].update({"2024-26": 1}), "error: hmrc.2024-26: a tax year is written like"),
    (lambda s: s["events"][1]["payment"].update(amount_pence=-1), "error: events[1].payment.amount_pence: required"),
    (lambda s: s.pop("until"), "error: until: required"),
    (lambda s: s["events"].append({"on": "2025-05-01", "hmrc_income": {"tax_year": "2024-25"}}),
     "error: events[2].hmrc_income.annual_pence: required"),
    (lambda s: s["events"].append({"on": "2025-05-01", "hmrc_income": {"annual_pence": 1, "tax_year": "2024"}}),
     "error: events[2].hmrc_income.tax_year: a tax year is written like"),
    (lambda s: s["events"].append({"on": "2025-05-01", "hmrc_income": {"annual_pence": 1.5}}),
     "error: events[2].hmrc_income.annual_pence: annual income in whole pence"),
])
def test_a_bad_scenario_is_refused_naming_where(change, error: str) -> None:
    assert _refused(_with(change)).startswith(error)


def test_text_that_is_not_json_is_refused() -> None:
    assert _refused("{not json").startswith("error: (input): not valid JSON")


def test_a_missing_file_is_refused() -> None:
    result = CliRunner().invoke(app, ["scenario", "run", "/nonexistent/scenario.json"])
    assert result.exit_code == 2 and result.stderr.startswith("error: FILE: cannot read")


@pytest.mark.parametrize("requested_on, tax_year", [
    ("2025-06-02", "2024-25"), ("2026-02-01", "2024-25"), ("2025-04-05", "2023-24"), ("2025-04-06", "2024-25"),
    ("2026-01-01", "2024-25"), ("2026-04-06", "2025-26"),
])
def test_hmrc_reads_the_latest_tax_year_that_ended_before_the_request(requested_on: str, tax_year: str) -> None:
    assert latest_ended_tax_year(date.fromisoformat(requested_on)) == tax_year


async def test_a_year_missing_from_the_table_is_no_record() -> None:
    hmrc = ScenarioHmrc()
    hmrc.use({"2024-25": 3120000})
    found = await hmrc.latest_annual_income("pp-1", "2025-06-02")
    missing = await hmrc.latest_annual_income("pp-1", "2026-06-02")
    assert (found.found, found.annual_pence, found.tax_year) == (True, 3120000, "2024-25")
    assert (missing.found, missing.tax_year) == (False, "2025-26")


def test_with_jsonl_each_bad_line_is_an_error_object_on_its_line() -> None:
    lines = [_with(lambda s: s.update(colour="blue")), "{not json", _with(lambda s: s.pop("until"))]
    result = CliRunner().invoke(app, ["scenario", "run", "--jsonl", "-"], input="\n".join(lines) + "\n")
    assert result.exit_code == 2
    errors = [json.loads(line)["error"] for line in result.stdout.splitlines()]
    assert [error.split(":")[0] for error in errors] == ["colour", "(input)", "until"]
