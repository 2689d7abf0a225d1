"""Training and the backtest on a fixed-seed simulation: the model beats the caseworkers' rule
and a logistic regression on precision at capacity, keeps its monotone promises, and writes a
versioned model with a model card that states label, eligibility, metrics and group error rates."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cms.cli.main import app
from domain.risk_features import FEATURE_NAMES, MONOTONE
from services.risk import artefact, training

CONFIG = artefact.TrainingConfig(cases=800, seed=7, years=2.5, train_every_weeks=4, trees=100, bootstrap_reps=10)


@pytest.fixture(scope="module")
def result() -> artefact.TrainingResult:
    return artefact.train_and_evaluate(CONFIG, trained_on=date(2026, 10, 1))


def test_model_beats_both_baselines_on_precision_at_capacity(result) -> None:
    backtest = result.card["backtest"]
    assert len(backtest["cut_offs"]) >= 6
    metrics = backtest["metrics"]
    model = metrics["lightgbm"]["precision_at_capacity"]
    assert model > metrics["logistic"]["precision_at_capacity"], metrics
    assert model > metrics["rule"]["precision_at_capacity"], metrics
    assert metrics["lightgbm"]["roc_auc"] > 0.75
    # Probabilities, not re-weighted scores: on average they match the breakdown rate.
    assert abs(metrics["lightgbm"]["mean_predicted"] - metrics["lightgbm"]["base_rate"]) < 0.05


def test_the_backtest_never_trains_on_labels_it_could_not_have_seen(result) -> None:
    for fold in result.card["backtest"]["folds"]:
        assert fold["train_rows"] > 0 and fold["test_rows"] > 0
    # Snapshots of 12 and 19 January are labelled only after 2 March (8 weeks on): a cut-off of
    # 2 March has nothing it may train on.
    snapshots = training.Snapshots(as_of=[date(2026, 3, 2), date(2026, 1, 12), date(2026, 1, 19)],
                                   rows=[[0.0] * len(FEATURE_NAMES)] * 3, labels=[0, 1, 0], groups=[{}] * 3)
    with pytest.raises(ValueError, match="no training"):
        training.backtest(snapshots, [date(2026, 3, 2)])


def test_no_class_reweighting_and_monotone_features_hold(result) -> None:
    params = result.card["parameters"]
    assert "is_unbalance" not in params and "scale_pos_weight" not in params
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 3, size=(200, len(FEATURE_NAMES)))
    for index, direction in enumerate(MONOTONE):
        if direction == 0:
            continue
        more = base.copy()
        more[:, index] += 2.0
        change = result.booster.predict(more) - result.booster.predict(base)
        assert (direction * change >= -1e-12).all(), FEATURE_NAMES[index]


def test_model_card_states_what_it_predicts_and_for_whom(result, tmp_path: Path) -> None:
    version = artefact.write(result, tmp_path)
    assert version.startswith("lgbm-20261001-")
    card = json.loads((tmp_path / version / "card.json").read_text())
    assert "90%" in card["eligibility"] and "8 weeks" in card["label"]
    assert {"payment_method", "case_age", "frequency"} <= set(card["group_error_rates"])
    assert len(card["calibration"]) == 10
    assert "90% accuracy" in card["accuracy_note"]
    text = (tmp_path / version / "card.md").read_text()
    assert "| lightgbm |" in text and "| rule |" in text and "What accuracy means here" in text
    assert artefact.write(result, tmp_path) == version     # same model, same version


def test_cms_risk_train_writes_a_version(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(app, ["risk", "train", "--cases", "300", "--years", "2", "--bootstrap", "10",
                                       "--models-dir", str(tmp_path)])
    assert outcome.exit_code == 0, outcome.output
    assert "precision@k" in outcome.output
    (written,) = [p for p in tmp_path.iterdir()]
    assert (written / "model.txt").exists() and (written / "card.md").exists()
    refused = CliRunner().invoke(app, ["risk", "train", "--ends-on", "last week", "--models-dir", str(tmp_path)])
    assert refused.exit_code == 2
