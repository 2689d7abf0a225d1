"""A versioned payment-risk model: the LightGBM model file and its model card, side by side.

`<models>/<version>/model.txt` is the model; `card.json` (and a readable `card.md`) record what it
was trained on, its features, the label and eligibility rules, the backtest against the rule and a
logistic regression with confidence intervals, calibration and error rates by group. The version
names the training day and a hash of the model, so two different models never share a version.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from domain.risk_features import (
    COMPLIANCE_WINDOW,
    COMPLIANT_SHARE,
    FEATURES,
    LABEL_WINDOW,
    PAYMENT_GRACE,
)
from domain.risk_simulation import first_quarter_shares, quarter_shares, simulate
from services.risk import training

ELIGIBILITY = (f"Collect & Pay case with at least {COMPLIANCE_WINDOW.days} days of charges that is compliant on "
               f"the as-of date: at least {COMPLIANT_SHARE:.0%} of what fell due over the last "
               f"{COMPLIANCE_WINDOW.days} days (ending {PAYMENT_GRACE.days} days before, a payment's grace) "
               "was paid by the as-of date.")
LABEL = (f"Positive (breakdown): on some weekly check in the next {LABEL_WINDOW.days // 7} weeks the case is no "
         f"longer compliant (paid less than {COMPLIANT_SHARE:.0%} of what fell due over the last 3 months).")
INTENDED_USE = ("Orders a caseworker's early-contact worklist (top k a week). It never starts enforcement, "
                "changes a liability or decides anything about a parent; a caseworker decides whether and how "
                "to make contact. Scores of cases in enforcement are not used for early intervention.")
ACCURACY_NOTE = (
    "Accuracy alone means little here. Only a minority of compliant cases break down within 8 weeks (the base "
    "rate is in the data section), so a model that predicts 'no breakdown' for everyone is right about "
    "{never:.0%} of the time while finding nobody. '90% accuracy' could mean that useless model, an AUC of "
    "0.90, or a top-decile hit rate; they are very different things. At a 10% base rate a model with 90% "
    "sensitivity and 90% specificity flags 18% of the caseload and only half of those flagged would break "
    "down (PPV 0.50); at 5% the PPV is 0.32. What matters for early intervention is how many of the cases a "
    "caseworker can contact each week (the capacity) would otherwise break down (precision at capacity), how "
    "many breakdowns that finds (recall at capacity), and whether the probabilities can be taken at face "
    "value (calibration). Accuracy at capacity is reported for completeness; it is dominated by the many "
    "unflagged cases that do not break down.")


@dataclass(frozen=True)
class TrainingConfig:
    cases: int = 3000
    seed: int = 7
    ends_on: date = date(2026, 9, 28)
    years: float = 3.0
    cut_offs: int = 6
    capacity_per_thousand: int = 50          # caseworker contacts a week per 1,000 eligible cases
    train_every_weeks: int = 2               # training snapshots; the test weeks are always included
    trees: int = training.TREES
    bootstrap_reps: int = 200


@dataclass
class TrainingResult:
    booster: lgb.Booster
    card: dict[str, Any]


def _cut_offs(ends_on: date, count: int) -> list[date]:
    """The first Monday of each of the last `count` months whose label window has closed."""
    last = ends_on - LABEL_WINDOW
    found: list[date] = []
    month = date(last.year, last.month, 1)
    while len(found) < count:
        monday = month + timedelta(days=(7 - month.weekday()) % 7)
        if monday <= last:
            found.append(monday)
        month = (month - timedelta(days=1)).replace(day=1)
    return sorted(found)


def train_and_evaluate(config: TrainingConfig, trained_on: date | None = None) -> TrainingResult:
    cases = simulate(config.cases, config.seed, config.ends_on, config.years)
    ledgers = [(case.ledger(), {"payment_method": case.method.removeprefix("METHOD_").lower()}) for case in cases]
    cut_offs = _cut_offs(config.ends_on, config.cut_offs)
    days = training.weekly(config.ends_on - timedelta(days=int(config.years * 365)), config.ends_on)
    days = [d for i, d in enumerate(days) if i % config.train_every_weeks == 0 or d in cut_offs]
    snapshots = training.build_snapshots(ledgers, days, config.ends_on)
    folds = training.backtest(snapshots, cut_offs, config.seed, config.trees)
    names = ["lightgbm", "logistic", "rule"]
    metrics = {name: training.pooled(folds, name, config.capacity_per_thousand) for name in names}
    intervals = training.bootstrap(folds, names, config.capacity_per_thousand, config.bootstrap_reps, config.seed)
    y_all = np.concatenate([f.y for f in folds])
    x, y, _ = snapshots.arrays()
    booster = training.train_lightgbm(x, y, config.seed, config.trees)
    quarter_end = config.ends_on
    shares = quarter_shares([ledger for ledger, _ in ledgers], quarter_end - timedelta(days=90), quarter_end)
    card: dict[str, Any] = {
        "model": "LightGBM binary classifier (no class re-weighting: scores are probabilities)",
        "trained_on": (trained_on or date.today()).isoformat(),
        "intended_use": INTENDED_USE,
        "eligibility": ELIGIBILITY,
        "label": LABEL,
        "data": {
            "source": f"simulated case histories (domain/risk_simulation.py), seed {config.seed}",
            "cases": config.cases, "from": days[0].isoformat(), "to": config.ends_on.isoformat(),
            "snapshots": len(y), "base_rate": float(y.mean()),
            "simulated_quarter_shares": {"paid_something": shares.paid_something, "paid_over_90": shares.paid_over_90,
                                         "paid_nothing": shares.paid_nothing},
            "simulated_first_quarter_paid_over_90": first_quarter_shares(cases).paid_over_90,
        },
        "features": [{"name": name, "monotone": direction, "reason": text} for name, direction, text in FEATURES],
        "parameters": {**training.LGBM_PARAMS, "trees": config.trees, "seed": config.seed},
        "backtest": {
            "method": (f"rolling origin, {len(cut_offs)} monthly cut-offs; each trained only on snapshots whose "
                       f"{LABEL_WINDOW.days // 7}-week label window had closed by the cut-off (a gap of one label "
                       "window) and tested on that week's eligible cases; 95% intervals from "
                       f"{config.bootstrap_reps} bootstrap resamples of each week's cases"),
            "cut_offs": [c.isoformat() for c in cut_offs],
            "capacity": f"{config.capacity_per_thousand} contacts a week per 1,000 eligible cases",
            "test_cases": int(len(y_all)), "test_base_rate": float(y_all.mean()),
            "folds": [{"cut_off": f.cut_off.isoformat(), "train_rows": f.train_rows, "test_rows": len(f.y),
                       "test_base_rate": float(f.y.mean()),
                       "roc_auc": {n: training.roc_auc(f.y, f.scores[n]) for n in names}} for f in folds],
            "metrics": metrics,
            "intervals": {n: {m: list(v) for m, v in iv.items()} for n, iv in intervals.items()},
        },
        "calibration": training.calibration_table(y_all, np.concatenate([f.scores["lightgbm"] for f in folds])),
        "group_error_rates": training.group_error_rates(folds, "lightgbm", config.capacity_per_thousand),
        "accuracy_note": ACCURACY_NOTE.format(never=1 - float(y_all.mean())),
        "limitations": [
            "Trained on simulated histories calibrated to published GB quarterly figures, not on real cases.",
            "Payment method is not in the payments read API, so it is not a feature; it is monitored as a group.",
            "Cases contacted early have their outcomes changed by the contact: retrain on the no-contact "
            "holdout and untreated cases only.",
        ],
    }
    return TrainingResult(booster, card)


def version_of(model_text: str, trained_on: str) -> str:
    return f"lgbm-{trained_on.replace('-', '')}-{hashlib.sha256(model_text.encode()).hexdigest()[:10]}"


def write(result: TrainingResult, models_dir: Path) -> str:
    """Writes the model and its card under a new version directory; returns the version."""
    text = result.booster.model_to_string()
    version = version_of(text, result.card["trained_on"])
    result.card["version"] = version
    target = models_dir / version
    staging = models_dir / f".{version}.tmp-{random.randrange(1 << 30)}"
    staging.mkdir(parents=True)
    (staging / "model.txt").write_text(text)
    (staging / "card.json").write_text(json.dumps(result.card, indent=2, default=str))
    (staging / "card.md").write_text(render_card(result.card))
    if target.exists():
        for item in staging.iterdir():
            item.unlink()
        staging.rmdir()
    else:
        staging.rename(target)      # atomic: a reader never sees half a version
    return version


def _interval(card: dict[str, Any], name: str, metric: str) -> str:
    low, high = card["backtest"]["intervals"][name][metric]
    return f"[{low:.3f}, {high:.3f}]"


def render_card(card: dict[str, Any]) -> str:
    backtest = card["backtest"]
    lines = [f"# Model card: payment-risk model {card.get('version', '')}", "",
             f"Trained on {card['trained_on']}. {card['model']}.", "",
             "## Intended use", card["intended_use"], "",
             "## Eligibility and label", f"- Eligible: {card['eligibility']}", f"- {card['label']}", "",
             "## Data", *(f"- {k}: {v}" for k, v in card["data"].items()), "",
             "## Features (monotone: +1 risk only rises, -1 only falls)",
             *(f"- `{f['name']}` ({f['monotone']:+d}): {f['reason']}" for f in card["features"]), "",
             "## Backtest", backtest["method"] + ".", f"Capacity: {backtest['capacity']}. "
             f"Test cases: {backtest['test_cases']}, base rate {backtest['test_base_rate']:.3f}.", "",
             "| model | ROC AUC | precision at capacity | recall at capacity | accuracy at capacity | Brier |",
             "|---|---|---|---|---|---|"]
    for name, m in backtest["metrics"].items():
        lines.append(f"| {name} | {m['roc_auc']:.3f} {_interval(card, name, 'roc_auc')} "
                     f"| {m['precision_at_capacity']:.3f} {_interval(card, name, 'precision_at_capacity')} "
                     f"| {m['recall_at_capacity']:.3f} {_interval(card, name, 'recall_at_capacity')} "
                     f"| {m['accuracy_at_capacity']:.3f} | {m.get('brier', float('nan')):.3f} |")
    for name in ("logistic", "rule"):
        lines.append(f"- LightGBM minus {name}, precision at capacity: "
                     f"{_interval(card, name, 'lightgbm_minus_precision_at_capacity')}; ROC AUC: "
                     f"{_interval(card, name, 'lightgbm_minus_roc_auc')}")
    lines += ["", "## Calibration (deciles of predicted probability)", "| n | mean predicted | observed |", "|---|---|---|",
              *(f"| {row['n']} | {row['mean_predicted']:.3f} | {row['observed']:.3f} |" for row in card["calibration"]),
              "", "## Error rates by group (at capacity)",
              "| group | value | n | base rate | flag rate | TPR | FPR |", "|---|---|---|---|---|---|---|"]
    for attribute, values in card["group_error_rates"].items():
        for value, r in values.items():
            lines.append(f"| {attribute} | {value} | {r['n']} | {r['base_rate']:.3f} | {r['flag_rate']:.3f} "
                         f"| {r['true_positive_rate']:.3f} | {r['false_positive_rate']:.3f} |")
    lines += ["", "## What accuracy means here", card["accuracy_note"], "", "## Limitations",
              *(f"- {item}" for item in card["limitations"]), ""]
    return "\n".join(lines)
