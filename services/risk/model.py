"""The LightGBM payment-risk model: training on a calibrated synthetic history, loading, scoring.

Until real ledger history exists, the model is trained on a simulator calibrated to the
published figures for Great Britain (about a third of Collect & Pay payers pay nothing
in a quarter; standing orders and new cases miss more; deductions from earnings rarely miss).
The model file is versioned by a hash of its contents and saved so every process scores alike.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np

from domain.risk import CATEGORICAL, FEATURE_NAMES, FREQUENCIES, METHODS, MONOTONE

TREES = 200
REASONS_RETURNED = 3


def synthetic_history(rows: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    method = rng.choice(len(METHODS), rows, p=[0.45, 0.25, 0.2, 0.1])
    frequency = rng.choice(len(FREQUENCIES), rows, p=[0.2, 0.1, 0.2, 0.5])
    case_age = rng.integers(30, 3000, rows)
    propensity = rng.beta(0.7, 1.6, rows)  # each payer's own tendency to miss
    propensity *= np.where(method == METHODS.index("deduction_from_earnings"), 0.3, 1.0)
    propensity *= np.where(method == METHODS.index("standing_order"), 1.4, 1.0)
    propensity *= np.where(case_age < 180, 1.3, 1.0)
    propensity = np.clip(propensity, 0, 0.97)
    due = np.minimum(12, np.maximum(1, case_age // 30)).astype(int)
    missed = rng.binomial(due, propensity)
    part = rng.binomial(due - missed, propensity / 3)
    weekly = rng.integers(700, 30000, rows)
    arrears_weeks = missed * np.array([1, 2, 4, 4.33])[frequency] + part * 0.5
    days_since = np.where(missed == due, case_age.clip(max=365), rng.integers(0, 40, rows) + missed * 5)
    income_changes = rng.poisson(0.4, rows)
    changes = income_changes + rng.poisson(0.6, rows)
    collect_and_pay = rng.random(rows) < 0.6
    x = np.column_stack([
        due, missed, part, missed / due, days_since, arrears_weeks, weekly / 100, method, frequency,
        income_changes, changes, case_age, collect_and_pay,
    ]).astype(np.float64)
    next_period_miss_p = np.clip(propensity * (1 + 0.15 * income_changes), 0, 0.99)
    y = (rng.random(rows) < next_period_miss_p).astype(np.int32)
    return x, y


def train(rows: int = 50_000, seed: int = 7) -> lgb.Booster:
    x, y = synthetic_history(rows, seed)
    data = lgb.Dataset(x, y, feature_name=list(FEATURE_NAMES), categorical_feature=list(CATEGORICAL),
                       free_raw_data=False)
    params = {
        "objective": "binary", "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 50,
        "monotone_constraints": list(MONOTONE), "verbose": -1, "seed": seed,
        "num_threads": 2, "deterministic": True, "force_row_wise": True,
    }
    return lgb.train(params, data, num_boost_round=TREES)


@dataclass
class RiskModel:
    booster: lgb.Booster
    version: str

    @classmethod
    def load_or_train(cls, path: Path) -> RiskModel:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            train().save_model(str(tmp))
            tmp.replace(path)  # atomic: a second process never reads half a model
        text = path.read_text()
        version = "lgbm-" + hashlib.sha256(text.encode()).hexdigest()[:12]
        return cls(lgb.Booster(model_str=text), version)

    def probabilities_ppm(self, rows: list[list[float]]) -> list[int]:
        predicted = self.booster.predict(np.asarray(rows, dtype=np.float64), num_threads=1)
        return [int(round(p * 1_000_000)) for p in predicted]

    def reasons(self, rows: list[list[float]]) -> list[list[str]]:
        """Top features pushing each score up (SHAP-style contributions in log-odds)."""
        contributions = self.booster.predict(np.asarray(rows, dtype=np.float64), pred_contrib=True, num_threads=1)
        reasons = []
        for row in contributions:
            ranked = sorted(zip(row[:-1], FEATURE_NAMES), reverse=True)
            reasons.append([name for value, name in ranked[:REASONS_RETURNED] if value > 0])
        return reasons
