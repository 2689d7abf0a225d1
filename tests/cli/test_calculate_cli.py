"""`cms calculate`, `cms what-if` and `cms gen-cases` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cms.cli import calculation

REPO = Path(__file__).resolve().parents[2]
GOLDEN = next(p for p in (REPO / ".." / "shared" / "golden" / "calculation_cases.json",
                          REPO / "tests" / "domain" / "data" / "calculation_cases.json") if p.is_file())
CASES = json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    calculation.register(app)
    return app


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


def run(runner, app, args, stdin=None):
    return runner.invoke(app, args, input=stdin, catch_exceptions=False)


def test_calculate_one_request_from_stdin(runner, app):
    case = CASES[56]
    result = run(runner, app, ["calculate", "-"], json.dumps(case["input"]))
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    explanation = body.pop("explanation")
    assert body == case["expected"]
    assert [step["step"] for step in explanation][0] == "income"


def test_calculate_one_request_from_file(runner, app, tmp_path):
    path = tmp_path / "request.json"
    path.write_text(json.dumps(CASES[3]["input"]))
    result = run(runner, app, ["calculate", str(path)])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["weekly_liability_pence"] == CASES[3]["expected"]["weekly_liability_pence"]


def test_bad_input_names_the_field_and_exits_2(runner, app):
    bad = {"paying_parent": {"gross_weekly_income_pence": -5},
           "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1"}]}]}
    result = run(runner, app, ["calculate"], json.dumps(bad))
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: paying_parent.gross_weekly_income_pence: must not be negative, got -5"
    assert "Traceback" not in result.output


def test_not_json_and_missing_file(runner, app):
    result = run(runner, app, ["calculate"], "{nope")
    assert result.exit_code == 2 and result.stderr.startswith("error: request: not valid JSON")
    result = run(runner, app, ["calculate", "/no/such/file.json"])
    assert result.exit_code == 2 and result.stderr.startswith("error: FILE:")


@pytest.mark.parametrize("fast", [False, True])
def test_jsonl_golden_with_an_error_line(runner, app, fast):
    lines = [json.dumps(c["input"]) for c in CASES]
    lines.insert(5, '{"paying_parent": {"gross_weekly_income_pence": 1, "income": {"hmrc_annual_pence": 1}}, '
                    '"receiving_parents": [{"id": "a", "children": [{"id": "b"}]}]}')
    args = ["calculate", "--jsonl"] + (["--no-explanation"] if fast else [])
    result = run(runner, app, args, "\n".join(lines) + "\n")
    assert result.exit_code == 2
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(lines)
    assert out[5] == {"error": {"field": "paying_parent",
                                "message": "give exactly one of gross_weekly_income_pence or income (both were given)"}}
    results = out[:5] + out[6:]
    for got, case in zip(results, CASES):
        got.pop("explanation", None)
        assert got == case["expected"], case["name"]


def test_jsonl_all_good_exits_0(runner, app):
    lines = "\n".join(json.dumps(c["input"]) for c in CASES[:3])
    result = run(runner, app, ["calculate", "--jsonl", "--no-explanation"], lines)
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 3


def test_effective_date_and_rules_choose_the_fee_rule_set(runner, app):
    request = json.dumps(CASES[19]["input"])  # £60.00 a week, Collect & Pay
    now = json.loads(run(runner, app, ["calculate", "--effective-date", "2025-04-01"], request).stdout)
    later = json.loads(run(runner, app, ["calculate", "--effective-date", "2027-06-01"], request).stdout)
    by_id = json.loads(run(runner, app, ["calculate", "--rules", "gb-2012-fees-2pct"], request).stdout)
    assert now["receiving_parents"][0]["paying_parent_fee_pence"] == 1200
    assert later["receiving_parents"][0]["paying_parent_fee_pence"] == 120 == \
        by_id["receiving_parents"][0]["paying_parent_fee_pence"]
    bad = run(runner, app, ["calculate", "--rules", "nope"], request)
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --rules: unknown rule set")
    early = run(runner, app, ["calculate", "--effective-date", "2001-01-01"], request)
    assert early.exit_code == 2 and early.stderr.startswith("error: --effective-date:")


def test_gen_cases_is_deterministic_and_valid(runner, app):
    first = run(runner, app, ["gen-cases", "--count", "200", "--seed", "7"]).stdout
    second = run(runner, app, ["gen-cases", "--count", "200", "--seed", "7"]).stdout
    assert first == second and len(first.splitlines()) == 200
    checked = run(runner, app, ["calculate", "--jsonl", "--no-explanation"], first)
    assert checked.exit_code == 0


def test_what_if_fee_change(runner, app, tmp_path):
    cases = tmp_path / "cases.jsonl"
    cases.write_text(run(runner, app, ["gen-cases", "--count", "500", "--seed", "1"]).stdout)
    result = run(runner, app, ["what-if", "--rules", "gb-2012-fees-2pct", "--cases", str(cases), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    total = report["total"]
    assert report["cases"] == 500 and report["errors"] == 0
    assert total["payer_up"] == 0 and total["payer_down"] > 0 and total["receiver_down"] == 0
    assert total["liability_changed"] == 0
    assert sum(band["cases"] for band in report["bands"].values()) == 500
    table = run(runner, app, ["what-if", "--rules", "gb-2012-fees-2pct", "--cases", str(cases)])
    assert table.exit_code == 0 and "basic_plus" in table.stdout and "all" in table.stdout


def test_what_if_with_a_rule_set_file(runner, app, tmp_path):
    data = json.loads((REPO / "domain" / "rulesets" / "gb_2012_scheme.json").read_text())
    data["id"] = "flat-8"
    data["rates"]["flat_rate_pence"] = 800
    rules = tmp_path / "flat8.json"
    rules.write_text(json.dumps(data))
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join(json.dumps(c["input"]) for c in CASES) + "\n")
    report = json.loads(run(runner, app, ["what-if", "--rules", str(rules), "--cases", str(cases), "--json"]).stdout)
    assert report["new_rules"] == "flat-8" and report["bands"]["flat"]["payer_up"] > 0
    broken = tmp_path / "broken.json"
    broken.write_text("{}")
    bad = run(runner, app, ["what-if", "--rules", str(broken), "--cases", str(cases)])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --rules:")
