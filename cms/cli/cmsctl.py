"""`cmsctl`: caseworker and operator commands against the running service (CaseService gRPC)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Caseworker commands: list and show cases, notes, holds, reviews, SLA.",
                  no_args_is_help=True, add_completion=False)
