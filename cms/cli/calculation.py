"""`cms calculate`, `cms what-if` and `cms gen-cases` (docs/design.md, Contracts).

The statutory rules live in :mod:`domain.calculation`; this module only reads input,
chooses the rule set, spreads big batches over the machine's cores and prints. Bad input
prints ``error: <field path>: <message>`` to stderr and exits 2, never a traceback; with
``--jsonl`` the error is an object on that line and the other lines are still computed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from multiprocessing import get_context
from pathlib import Path

import typer

from domain.calculation import ValidationError, calculate, parse_request
from domain.calculation.batch import WhatIfSummary, calculate_lines, compare_lines
from domain.calculation.fast import CompiledRules, compile_rules
from domain.calculation.synthetic import synthetic_cases
from domain.money import format_pence, round_half_up
from domain.rulesets import RuleSet, RuleSetError, current_rules, rule_set, rule_set_from_dict, rules_for

EXIT_BAD_INPUT = 2
CHUNK_LINES = 25_000
PARALLEL_FROM_LINES = 40_000  # below this, starting processes costs more than it saves


class CliError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _fail(field: str, message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    typer.echo(f"error: {field}: {message}" if field else f"error: {message}", err=True)
    return typer.Exit(code)


# --- rule sets and input ------------------------------------------------------------

def load_rules(rules: str | None, effective_date: str | None, option: str = "--rules") -> RuleSet:
    """--rules (a packaged id or a JSON file) wins over --effective-date; else the current set."""
    try:
        if rules:
            path = Path(rules)
            if rules.endswith(".json") or path.is_file():
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                except OSError as exc:
                    raise CliError(option, f"cannot read rule set file: {exc.strerror or exc}") from None
                except ValueError as exc:
                    raise CliError(option, f"rule set file is not valid JSON: {exc}") from None
                return rule_set_from_dict(data)
            return rule_set(rules)
        if effective_date:
            try:
                when = date.fromisoformat(effective_date)
            except ValueError:
                raise CliError("--effective-date", f"must be a date as YYYY-MM-DD, got {effective_date!r}") from None
            return rules_for(when)
        return current_rules()
    except RuleSetError as exc:
        raise CliError(option if rules else "--effective-date", str(exc)) from None


def read_input(file: str | None) -> str:
    if file is None or file == "-":
        return sys.stdin.read()
    try:
        return Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError("FILE", f"cannot read {file!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CliError("FILE", f"{file!r} is not UTF-8 text") from None


def split_lines(text: str) -> list[str]:
    """JSON Lines: one request per line; a final newline does not make an extra line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _chunks(lines: Sequence[str], size: int = CHUNK_LINES) -> Iterator[tuple[int, str]]:
    """(first line number, joined text) pieces: one string pickles far faster than a list."""
    for start in range(0, len(lines), size):
        yield start + 1, "\n".join(lines[start:start + size])


def worker_count(requested: int = 0) -> int:
    if requested > 0:
        return requested
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# --- process pool -------------------------------------------------------------------
# Workers are forked with the compiled rule sets already in memory (see _init_worker), so
# each task carries only a chunk of text and returns a chunk of text or a small summary.

@dataclass
class _WorkerState:
    compiled: list[CompiledRules] = field(default_factory=list)   # one rule set, or baseline and new
    explain: bool = False


_WORKER = _WorkerState()


def _init_worker(rules: Sequence[RuleSet], explain: bool) -> None:
    _WORKER.compiled = [compile_rules(r) for r in rules]
    _WORKER.explain = explain


def _calculate_chunk(task: tuple[int, str]) -> tuple[str, int]:
    out, errors = calculate_lines(task[1].split("\n"), _WORKER.compiled[0], explain=_WORKER.explain)
    return "\n".join(out), errors


def _compare_chunk(task: tuple[int, str]) -> WhatIfSummary:
    baseline, new = _WORKER.compiled
    return compare_lines(task[1].split("\n"), baseline, new, first_line_number=task[0])


def _run(tasks: list[tuple[int, str]], work: Callable, rules: Sequence[RuleSet], explain: bool,
         workers: int, ordered: bool = True) -> Iterator:
    if workers <= 1 or len(tasks) <= 1:
        _init_worker(rules, explain)
        yield from map(work, tasks)
        return
    with get_context("fork").Pool(workers, initializer=_init_worker, initargs=(tuple(rules), explain)) as pool:
        results = pool.imap(work, tasks) if ordered else pool.imap_unordered(work, tasks)
        yield from results


def recalculate_lines(lines: Sequence[str], rules: RuleSet, explain: bool = False,
                      workers: int = 0) -> Iterator[tuple[str, int]]:
    """Output text chunks (in input order) and error counts for a whole caseload."""
    workers = worker_count(workers) if len(lines) >= PARALLEL_FROM_LINES else 1
    return _run(list(_chunks(lines)), _calculate_chunk, [rules], explain, workers)


def what_if(lines: Sequence[str], baseline: RuleSet, new: RuleSet, workers: int = 0) -> WhatIfSummary:
    """Recalculate a caseload under two rule sets and summarise the changes per rate band."""
    workers = worker_count(workers) if len(lines) >= PARALLEL_FROM_LINES else 1
    summary = WhatIfSummary()
    for part in _run(list(_chunks(lines)), _compare_chunk, [baseline, new], False, workers, ordered=False):
        summary.merge(part)
    return summary


# --- commands -----------------------------------------------------------------------

def _calculate_one(text: str, rules: RuleSet, explain: bool) -> None:
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise _fail("request", f"not valid JSON: {exc}") from None
    try:
        result = calculate(parse_request(obj), rules)
    except ValidationError as exc:
        raise _fail(exc.field, exc.message) from None
    typer.echo(json.dumps(result.to_json(include_explanation=explain), indent=2, ensure_ascii=False))


def calculate_command(
    file: str | None = typer.Argument(None, help="Request file (JSON, or JSON Lines with --jsonl); - or omitted for stdin."),
    jsonl: bool = typer.Option(False, "--jsonl", help="Read JSON Lines; write one result (or error object) per line, in order."),
    effective_date: str | None = typer.Option(None, "--effective-date", help="Decision's effective date (YYYY-MM-DD): chooses the rule set in force."),
    rules: str | None = typer.Option(None, "--rules", help="Rule set id (e.g. gb-2012, gb-2012-fees-2pct) or a rule set JSON file; wins over --effective-date."),
    no_explanation: bool = typer.Option(False, "--no-explanation", help="Leave out the explanation (the fast batch path; figures are identical)."),
    workers: int = typer.Option(0, "--workers", help="Processes for big --jsonl batches (0: one per core)."),
) -> None:
    """Calculate child maintenance for one request (or many with --jsonl)."""
    try:
        chosen = load_rules(rules, effective_date)
        text = read_input(file)
        if not jsonl:
            _calculate_one(text, chosen, explain=not no_explanation)
            return
        lines = split_lines(text)
        errors = 0
        out = sys.stdout
        for chunk, chunk_errors in recalculate_lines(lines, chosen, explain=not no_explanation, workers=workers):
            out.write(chunk)
            out.write("\n")
            errors += chunk_errors
        out.flush()
    except CliError as exc:
        raise _fail(exc.field, exc.message) from None
    if errors:
        typer.echo(f"error: {errors} of {len(lines)} lines had bad input (see the error objects)", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)


def _pounds(pence: int) -> str:
    return format_pence(pence)


def _what_if_table(summary: WhatIfSummary, baseline: RuleSet, new: RuleSet):
    from rich.table import Table

    table = Table(title=f"What if: {baseline.id} → {new.id} (per week)")
    table.add_column("Band now", no_wrap=True)
    for heading in ("Cases", "Pays more", "Pays less", "Same", "Payer change", "Mean", "Max up", "Max down",
                    "Receiver change", "Band moved"):
        table.add_column(heading, justify="right", overflow="fold")

    def row(name: str, band) -> list[str]:
        mean = format_pence(round_half_up(Fraction(band.payer_total_change, band.cases))) if band.cases else "-"
        return [name, f"{band.cases:,}", f"{band.payer_up:,}", f"{band.payer_down:,}", f"{band.payer_same:,}",
                _pounds(band.payer_total_change), mean, _pounds(band.payer_max_increase),
                _pounds(-band.payer_max_decrease), _pounds(band.receiver_total_change), f"{band.band_moved:,}"]

    for name, band in summary.bands.items():
        if band.cases:
            table.add_row(*row(name, band))
    table.add_row(*row("all", summary.total()), style="bold")
    return table


def what_if_command(
    rules: str = typer.Option(..., "--rules", help="The new rule set: a packaged id or a rule set JSON file."),
    cases: str = typer.Option(..., "--cases", help="Caseload as JSON Lines (one calculation request a line); - for stdin."),
    baseline: str | None = typer.Option(None, "--baseline", help="Baseline rule set (default: the set now in force)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of a table."),
    workers: int = typer.Option(0, "--workers", help="Processes (0: one per core)."),
) -> None:
    """Report how a rule change moves every case: up, down, by how much, per rate band."""
    try:
        new = load_rules(rules, None, "--rules")
        base = load_rules(baseline, None, "--baseline")
        lines = split_lines(read_input(cases))
    except CliError as exc:
        raise _fail(exc.field, exc.message) from None
    summary = what_if(lines, base, new, workers=workers)
    if as_json:
        typer.echo(json.dumps(summary.to_json(base.id, new.id), indent=2))
    else:
        from rich.console import Console

        console = Console()
        if not console.is_terminal:  # piped to a file: wide enough that no figure is folded
            console = Console(width=160)
        console.print(_what_if_table(summary, base, new))
        note = " Amounts are per week; 'payer' = liability + collection fee, 'receiver' = liability − fee."
        console.print(f"{summary.total().cases:,} cases compared, {summary.errors:,} with bad input.{note}")
        for error in summary.first_errors:
            console.print(f"  line {error['line']}: {error['field']}: {error['message']}", style="red")
    if summary.errors:
        raise typer.Exit(EXIT_BAD_INPUT)


def gen_cases_command(
    count: int = typer.Option(1000, "--count", min=0, help="Number of synthetic calculation requests."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same caseload."),
) -> None:
    """Write a synthetic caseload as JSON Lines to stdout (for benchmarks and what-if)."""
    out = sys.stdout
    batch: list[str] = []
    encode = json.JSONEncoder(separators=(",", ":")).encode
    for request in synthetic_cases(count, seed):
        batch.append(encode(request))
        if len(batch) >= 10_000:
            out.write("\n".join(batch) + "\n")
            batch.clear()
    if batch:
        out.write("\n".join(batch) + "\n")
    out.flush()


def register(app: typer.Typer) -> None:
    """Add `calculate`, `what-if` and `gen-cases` to the `cms` app."""
    app.command("calculate")(calculate_command)
    app.command("what-if")(what_if_command)
    app.command("gen-cases")(gen_cases_command)
