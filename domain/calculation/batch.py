"""Batch recalculation and what-if comparison over JSON Lines, in pure code.

These functions take lines of text and return lines or summaries; they do no I/O, so
the CLI can run them in several processes over chunks of a file and merge the results.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from .engine import calculate
from .fast import CompiledRules, FastResult, calculate_fast
from .request import ValidationError, parse_request

RATE_BANDS = ("nil", "flat", "reduced", "basic", "basic_plus", "default")

_decode = json.JSONDecoder().decode
_encode = json.JSONEncoder(ensure_ascii=False).encode


def error_object(field_path: str, message: str) -> dict:
    return {"error": {"field": field_path, "message": message}}


def decode_request(line: str) -> object:
    """Decode one JSON line; raises ValidationError on text that is not JSON."""
    try:
        return _decode(line)
    except ValueError as exc:
        raise ValidationError("request", f"not valid JSON: {exc}") from None


def _json_string(text: str) -> str:
    # Plain ids need no escaping; anything else goes through the JSON encoder.
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return _encode(text)


def encode_fast_result(result: FastResult) -> str:
    """The same text as ``json.dumps(fast_result_to_json(result), ensure_ascii=False)``, faster."""
    rate, gwi, amount, liability, rows = result
    parents = ", ".join(
        f'{{"id": {_json_string(r[0])}, "weekly_amount_pence": {r[1]}, "paying_parent_fee_pence": {r[2]}, '
        f'"receiving_parent_fee_pence": {r[3]}}}'
        for r in rows
    )
    return (f'{{"rate": "{rate}", "gross_weekly_income_pence": {gwi}, "rate_amount_pence": {amount}, '
            f'"weekly_liability_pence": {liability}, "receiving_parents": [{parents}]}}')


def calculate_line(line: str, compiled: CompiledRules) -> str:
    """One input line -> one output line (a result, or an error object on bad input)."""
    try:
        result = calculate_fast(decode_request(line), compiled)
    except ValidationError as exc:
        return _encode({"error": exc.to_json()})
    return encode_fast_result(result)


def calculate_line_explained(line: str, compiled: CompiledRules) -> str:
    """Like :func:`calculate_line` but through the reference engine, with the explanation."""
    try:
        result = calculate(parse_request(decode_request(line)), compiled.rules)
    except ValidationError as exc:
        return _encode({"error": exc.to_json()})
    return _encode(result.to_json())


def calculate_lines(lines: Iterable[str], compiled: CompiledRules,
                    explain: bool = False) -> tuple[list[str], int]:
    """Output lines for input lines, in order, and how many of them were errors."""
    one_line = calculate_line_explained if explain else calculate_line
    out = [one_line(line, compiled) for line in lines]
    errors = sum(1 for line in out if line.startswith('{"error"'))
    return out, errors


def payer_total(result: FastResult) -> int:
    """What the paying parent pays a week: liability plus collection fees."""
    return result[3] + sum(row[2] for row in result[4])


def receiver_total(result: FastResult) -> int:
    """What the receiving parents receive a week: liability less their fees."""
    return result[3] - sum(row[3] for row in result[4])


@dataclass
class BandChange:
    """Changes for the cases in one baseline rate band (weekly pence)."""

    cases: int = 0
    payer_up: int = 0
    payer_down: int = 0
    payer_total_change: int = 0
    payer_max_increase: int = 0
    payer_max_decrease: int = 0
    receiver_up: int = 0
    receiver_down: int = 0
    receiver_total_change: int = 0
    liability_changed: int = 0
    band_moved: int = 0

    @property
    def payer_same(self) -> int:
        return self.cases - self.payer_up - self.payer_down

    def add(self, base: FastResult, new: FastResult) -> None:
        self.cases += 1
        payer = payer_total(new) - payer_total(base)
        receiver = receiver_total(new) - receiver_total(base)
        if payer > 0:
            self.payer_up += 1
            self.payer_max_increase = max(self.payer_max_increase, payer)
        elif payer < 0:
            self.payer_down += 1
            self.payer_max_decrease = max(self.payer_max_decrease, -payer)
        self.payer_total_change += payer
        if receiver > 0:
            self.receiver_up += 1
        elif receiver < 0:
            self.receiver_down += 1
        self.receiver_total_change += receiver
        self.liability_changed += new[3] != base[3]
        self.band_moved += new[0] != base[0]

    def merge(self, other: BandChange) -> None:
        for name in ("cases", "payer_up", "payer_down", "payer_total_change", "receiver_up", "receiver_down",
                     "receiver_total_change", "liability_changed", "band_moved"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.payer_max_increase = max(self.payer_max_increase, other.payer_max_increase)
        self.payer_max_decrease = max(self.payer_max_decrease, other.payer_max_decrease)

    def to_json(self) -> dict:
        body = dict(self.__dict__)
        body["payer_same"] = self.payer_same
        return body


@dataclass
class WhatIfSummary:
    """How a new rule set changes the caseload, per baseline rate band."""

    bands: dict[str, BandChange] = field(default_factory=lambda: {band: BandChange() for band in RATE_BANDS})
    errors: int = 0
    first_errors: list[dict] = field(default_factory=list)  # line number and error, at most 10

    def total(self) -> BandChange:
        total = BandChange()
        for band in self.bands.values():
            total.merge(band)
        return total

    def merge(self, other: WhatIfSummary) -> None:
        for name, band in other.bands.items():
            self.bands.setdefault(name, BandChange()).merge(band)
        self.errors += other.errors
        self.first_errors = (self.first_errors + other.first_errors)[:10]

    def to_json(self, baseline_id: str, new_id: str) -> dict:
        return {
            "baseline_rules": baseline_id,
            "new_rules": new_id,
            "cases": self.total().cases,
            "errors": self.errors,
            "first_errors": self.first_errors,
            "bands": {name: band.to_json() for name, band in self.bands.items() if band.cases},
            "total": self.total().to_json(),
        }


def compare_lines(lines: Iterable[str], baseline: CompiledRules, new: CompiledRules,
                  first_line_number: int = 1) -> WhatIfSummary:
    """Recalculate every case under both rule sets and tally the differences."""
    summary = WhatIfSummary()
    bands = summary.bands
    for number, line in enumerate(lines, start=first_line_number):
        try:
            request = decode_request(line)
            base = calculate_fast(request, baseline)
            changed = calculate_fast(request, new)
        except ValidationError as exc:
            summary.errors += 1
            if len(summary.first_errors) < 10:
                summary.first_errors.append({"line": number, **exc.to_json()})
            continue
        bands[base[0]].add(base, changed)
    return summary
