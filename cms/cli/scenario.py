"""`cms scenario run [FILE|-] [--jsonl]`: a case's life as a script (cms.scenario).

Prints one JSON result (with --jsonl: one line per scenario line, in order). A bad scenario prints
``error: <path>: <message>`` to stderr and exits 2, never a traceback; with ``--jsonl`` the error is
an object on that line, the other lines are still played, and the exit code is 2.
"""

from __future__ import annotations

import asyncio
import json
import sys
import warnings

import typer

from cms.cli.calculation import EXIT_BAD_INPUT, CliError, read_input, split_lines
from cms.scenario.script import ScenarioError, read_scenario

app = typer.Typer(help="Play a scripted case through the real workflows (time-skipping Temporal, PostgreSQL).",
                  no_args_is_help=True, add_completion=False)


@app.command("run")
def run_command(
    file: str | None = typer.Argument(None, help="Scenario file (JSON, or JSON Lines with --jsonl); - or omitted for stdin."),
    jsonl: bool = typer.Option(False, "--jsonl", help="One scenario per line; one result (or error object) per line."),
) -> None:
    """Play one scenario (or one per line with --jsonl) and print the case as it ends."""
    # The embedded PostgreSQL package warns on import where XDG_RUNTIME_DIR is unset; stderr is
    # for the scenario's own errors.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        text = read_input(file)
    except CliError as error:
        typer.echo(f"error: {error.field}: {error.message}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if jsonl:
        errors = asyncio.run(_play_lines([line for line in split_lines(text) if line.strip()]))
        if errors:
            raise typer.Exit(EXIT_BAD_INPUT)
        return
    try:
        scenario = read_scenario(text)   # checked before any server starts
        from cms.scenario.runs import play_one

        result = asyncio.run(play_one(scenario))
    except ScenarioError as error:
        typer.echo(f"error: {error.path}: {error.message}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False))


async def _play_lines(lines: list[str]) -> int:
    from cms.scenario.runs import play_all

    errors = 0
    async for outcome in play_all(lines):
        if isinstance(outcome, ScenarioError):
            errors += 1
            line = {"error": f"{outcome.path}: {outcome.message}"}
        else:
            line = outcome
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    return errors


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="scenario")
