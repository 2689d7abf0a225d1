"""`cms risk …`: training the payment-risk model and reading its model card.

    cms risk train [--cases 3000] [--seed 7] [--ends-on 2026-09-28] [--cut-offs 6]
                   [--capacity 50] [--models-dir .data/models/risk]
    cms risk card VERSION [--models-dir …]

`train` simulates case histories, runs the rolling-origin backtest against the caseworkers' rule
and a logistic regression, trains the model on everything, and writes a new version (model file
and model card) under the models directory; it prints the version and the backtest table. The
risk service serves the version named by RISK_MODEL_VERSION (default: the newest).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

risk_app = typer.Typer(help="Payment-risk model: train, evaluate and read its model card.",
                       no_args_is_help=True, add_completion=False)


def _models_dir(given: Path | None) -> Path:
    from cms.config import load_settings

    return given or load_settings().data_dir / "models" / "risk"


@risk_app.command("train")
def train(
    cases: int = typer.Option(3000, min=100, help="Simulated case histories."),
    seed: int = typer.Option(7, help="Simulation and training seed (same seed, same model)."),
    ends_on: str = typer.Option("2026-09-28", help="Last day of the simulated histories (ISO date)."),
    years: float = typer.Option(3.0, min=1.5, help="Years of history before ends-on."),
    cut_offs: int = typer.Option(6, min=6, help="Monthly backtest cut-offs."),
    capacity: int = typer.Option(50, min=1, max=1000, help="Caseworker contacts a week per 1,000 eligible cases."),
    bootstrap: int = typer.Option(200, min=10, help="Bootstrap resamples for the confidence intervals."),
    models_dir: Path | None = typer.Option(None, help="Where model versions are kept (default .data/models/risk)."),
) -> None:
    from services.risk.artefact import TrainingConfig, train_and_evaluate, write

    try:
        last_day = date.fromisoformat(ends_on)
    except ValueError:
        typer.echo(f"error: ends-on: {ends_on!r} is not an ISO date (YYYY-MM-DD)", err=True)
        raise typer.Exit(2) from None
    config = TrainingConfig(cases=cases, seed=seed, ends_on=last_day, years=years, cut_offs=cut_offs,
                            capacity_per_thousand=capacity, bootstrap_reps=bootstrap)
    result = train_and_evaluate(config)
    target = _models_dir(models_dir)
    version = write(result, target)
    typer.echo(f"model {version} written to {target / version}")
    typer.echo(_summary(result.card))


@risk_app.command("card")
def card(version: str, models_dir: Path | None = typer.Option(None, help="Where model versions are kept.")) -> None:
    path = _models_dir(models_dir) / version / "card.md"
    if not path.exists():
        typer.echo(f"error: version: no model {version!r} in {path.parent.parent}", err=True)
        raise typer.Exit(2)
    typer.echo(path.read_text())


def _summary(card: dict) -> str:
    backtest = card["backtest"]
    rows = [f"backtest: {len(backtest['cut_offs'])} cut-offs, {backtest['test_cases']} test cases, "
            f"base rate {backtest['test_base_rate']:.3f}, capacity {backtest['capacity']}",
            f"{'model':<10}{'ROC AUC':>10}{'precision@k':>14}{'95% CI':>18}{'recall@k':>10}{'accuracy@k':>12}"]
    for name, m in backtest["metrics"].items():
        low, high = backtest["intervals"][name]["precision_at_capacity"]
        rows.append(f"{name:<10}{m['roc_auc']:>10.3f}{m['precision_at_capacity']:>14.3f}"
                    f"{f'[{low:.3f}, {high:.3f}]':>18}{m['recall_at_capacity']:>10.3f}{m['accuracy_at_capacity']:>12.3f}")
    return "\n".join(rows)


def register(app: typer.Typer) -> None:
    app.add_typer(risk_app, name="risk")
