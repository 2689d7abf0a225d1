"""Every golden case from the shared golden file, through both calculation paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domain.calculation import calculate, parse_request
from domain.calculation.fast import calculate_fast, compile_rules, fast_result_to_json
from domain.rulesets import current_rules

REPO = Path(__file__).resolve().parents[2]
SHARED_GOLDEN = REPO / ".." / "shared" / "golden" / "calculation_cases.json"
BUNDLED_GOLDEN = Path(__file__).resolve().parent / "data" / "calculation_cases.json"


def load_golden_cases() -> list[dict]:
    for path in (SHARED_GOLDEN, BUNDLED_GOLDEN):
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    raise FileNotFoundError(f"golden cases not found at {SHARED_GOLDEN} or {BUNDLED_GOLDEN}")


CASES = load_golden_cases()


def test_golden_file_has_cases():
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_case_reference_engine(case):
    result = calculate(parse_request(case["input"]))
    body = result.to_json()
    explanation = body.pop("explanation")
    assert body == case["expected"]
    assert explanation and all(set(step) == {"step", "text"} and step["text"] for step in explanation)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_case_fast_path(case):
    compiled = compile_rules(current_rules())
    assert fast_result_to_json(calculate_fast(case["input"], compiled)) == case["expected"]


def test_bundled_copy_matches_shared_file_when_both_exist():
    if SHARED_GOLDEN.is_file() and BUNDLED_GOLDEN.is_file():
        assert json.loads(SHARED_GOLDEN.read_text()) == json.loads(BUNDLED_GOLDEN.read_text())
