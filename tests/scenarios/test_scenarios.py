"""Every scenario under tests/scenarios/ played through `cms scenario run --jsonl` (one process,
the real CLI entry point), its output compared with `<name>.expected.json`: each key of the
expected file must equal the output's (lists compared whole). The scenario's "//" comment states
the rule, its legal source and the result worked by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCENARIOS = sorted(path for path in HERE.glob("*.json") if not path.name.endswith(".expected.json"))
# One line the service refuses (a change of a kind it does not know), after the others: its
# error object takes that line, and the scenarios around it are still played.
REFUSED = {"application": {"receiving_parent": {"party_id": "rp-1", "full_name": "R"},
                           "paying_parent": {"party_id": "pp-1", "full_name": "P"},
                           "children": [{"child_id": "c-1", "date_of_birth": "2016-05-01"}],
                           "application_date": "2025-03-03"},
           "events": [{"on": "2025-04-01", "report_change": {"kind": "lottery_win"}}],
           "until": "2025-05-01"}


def _expected(scenario: Path) -> dict[str, Any]:
    return json.loads(scenario.with_name(scenario.stem + ".expected.json").read_text())


@pytest.fixture(scope="module")
def played() -> dict[str, dict[str, Any]]:
    """Each scenario's output (or error object) by file name, from one `--jsonl` run."""
    lines = [json.dumps(json.loads(path.read_text())) for path in SCENARIOS] + [json.dumps(REFUSED)]
    run = subprocess.run([sys.executable, "-m", "cms", "scenario", "run", "--jsonl", "-"], cwd=REPO,
                         input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=900)
    outputs = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(outputs) == len(lines), run.stderr[-3000:]
    assert run.returncode == 2, "the refused line makes the run exit 2"
    names = [path.name for path in SCENARIOS] + ["(refused)"]
    return dict(zip(names, outputs, strict=True))


def test_every_scenario_has_its_expected_output() -> None:
    assert SCENARIOS, "no scenarios found"
    for scenario in SCENARIOS:
        assert scenario.with_name(scenario.stem + ".expected.json").is_file(), scenario.name
        comment = json.loads(scenario.read_text()).get("//")
        assert comment and all(isinstance(line, str) for line in comment), f"{scenario.name}: the rule worked by hand"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_scenario_matches_what_was_worked_by_hand(scenario: Path, played: dict[str, dict[str, Any]]) -> None:
    output = played[scenario.name]
    assert "error" not in output, output
    expected = _expected(scenario)
    assert {key: output.get(key) for key in expected} == expected


def test_a_refused_request_is_an_error_object_on_its_line(played: dict[str, dict[str, Any]]) -> None:
    assert played["(refused)"]["error"].startswith("events[0].report_change.kind: ")
