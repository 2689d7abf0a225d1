"""The `cms` command: calculation (`cms calculate`, `cms what-if`, `cms gen-cases`), scenarios
(`cms scenario run`), casework (`cms case …`) and the payment-risk model (`cms risk train`)."""

from __future__ import annotations

import typer

from cms.cli import calculation, risk, scenario

app = typer.Typer(help="Child maintenance service: statutory calculation and casework tools.",
                  no_args_is_help=True, add_completion=False)
calculation.register(app)
scenario.register(app)
risk.register(app)


def _attach_casework() -> None:
    # `cms case …` is the same as `cmsctl case …`, for people who only remember one command.
    from cms.cli.cmsctl import app as cmsctl_app

    app.add_typer(cmsctl_app, name="ctl", help="Caseworker commands (same as `cmsctl`).")


_attach_casework()

if __name__ == "__main__":
    app()
