"""Training and evaluating the payment-risk model on case histories.

Rows are weekly as-of snapshots of eligible cases (Collect & Pay, compliant today; see
domain/risk_features.py), labelled by whether the case breaks down in the next 8 weeks. The
model is LightGBM with monotone constraints, trained without class re-weighting so that its
scores can be read as probabilities.

The backtest is rolling-origin: for each monthly cut-off, the model is trained only on snapshots
whose 8-week label window had closed by the cut-off (a gap of one label window), then scores
the cut-off week's eligible cases, as a caseworker's worklist would be drawn that week. It is
compared with the rule caseworkers use today (a missed or part payment in the last 3 periods,
most recent first) and with a regularised logistic regression on the same features.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import lightgbm as lgb
import numpy as np

from domain.risk_features import (
    FEATURE_NAMES,
    LABEL_WINDOW,
    MONOTONE,
    CaseLedger,
    breaks_down,
    features_as_of,
    is_eligible,
    vector,
)

LGBM_PARAMS: dict[str, Any] = {
    "objective": "binary", "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 40,
    "feature_fraction": 0.9, "lambda_l2": 1.0, "monotone_constraints": list(MONOTONE),
    "monotone_constraints_method": "intermediate", "verbose": -1, "num_threads": 2,
    "deterministic": True, "force_row_wise": True,
}
TREES = 150
RULE_FEATURE = FEATURE_NAMES.index("shortfall_recency_3")
RULE_TIE_BREAK = FEATURE_NAMES.index("days_late_latest")


@dataclass
class Snapshots:
    """Eligible case-weeks: features, labels, and the groups used for fairness monitoring."""
    case_ids: list[str] = field(default_factory=list)
    as_of: list[date] = field(default_factory=list)
    rows: list[list[float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    groups: list[dict[str, str]] = field(default_factory=list)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (np.asarray(self.rows, dtype=np.float64), np.asarray(self.labels, dtype=np.int32),
                np.asarray(self.as_of, dtype="datetime64[D]"))


def _group_of(features: dict[str, float], extra: dict[str, str]) -> dict[str, str]:
    age = features["case_age_days"]
    return {
        "case_age": "under 6 months" if age < 182 else "6-24 months" if age < 730 else "over 2 years",
        "frequency": {7: "weekly", 14: "fortnightly", 28: "four-weekly"}.get(int(features["period_days"]), "monthly"),
        **extra,
    }


def build_snapshots(ledgers: Iterable[tuple[CaseLedger, dict[str, str]]], as_of_days: list[date],
                    labels_known_until: date) -> Snapshots:
    """Snapshots of each eligible case on each day whose label window has closed by `labels_known_until`."""
    found = Snapshots()
    days = [d for d in as_of_days if d + LABEL_WINDOW <= labels_known_until]
    for ledger, extra in ledgers:
        for day in days:
            if not is_eligible(ledger, day):
                continue
            features = features_as_of(ledger, day)
            found.case_ids.append(ledger.case_id)
            found.as_of.append(day)
            found.rows.append(vector(features))
            found.labels.append(int(breaks_down(ledger, day)))
            found.groups.append(_group_of(features, extra))
    return found


def weekly(first: date, last: date) -> list[date]:
    start = first + timedelta(days=(7 - first.weekday()) % 7)   # Mondays
    return [start + timedelta(weeks=i) for i in range((last - start).days // 7 + 1)]


def train_lightgbm(x: np.ndarray, y: np.ndarray, seed: int = 7, trees: int = TREES) -> lgb.Booster:
    data = lgb.Dataset(x, y, feature_name=list(FEATURE_NAMES), free_raw_data=False)
    return lgb.train({**LGBM_PARAMS, "seed": seed}, data, num_boost_round=trees)


@dataclass
class LogisticRegression:
    """L2-regularised logistic regression on standardised features (scipy's L-BFGS)."""
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 25) -> LogisticRegression:
        """Newton's method (iteratively reweighted least squares); the penalty spares the intercept."""
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale == 0] = 1.0
        z = np.column_stack([(x - mean) / scale, np.ones(len(x))])
        penalty = np.full(z.shape[1], l2)
        penalty[-1] = 0.0
        w = np.zeros(z.shape[1])
        for _ in range(steps):
            p = 1 / (1 + np.exp(-(z @ w)))
            gradient = z.T @ (p - y) + penalty * w
            hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
            step = np.linalg.solve(hessian, gradient)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        return cls(mean, scale, w)

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = np.column_stack([(x - self.mean) / self.scale, np.ones(len(x))])
        return 1 / (1 + np.exp(-(z @ self.weights)))


def rule_scores(x: np.ndarray) -> np.ndarray:
    """Today's rule as a ranking: most recent shortfall in the last 3 periods first; ties by lateness."""
    return x[:, RULE_FEATURE] * 1000 + np.minimum(x[:, RULE_TIE_BREAK], 999)


# --- metrics -------------------------------------------------------------------------------------

def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (as the Mann-Whitney statistic needs)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    return ((upper - counts + 1 + upper) / 2)[inverse]


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    positives = int(y.sum())
    negatives = len(y) - positives
    if not positives or not negatives:
        return float("nan")
    ranks = _average_ranks(score)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def top_k(score: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores; ties broken by position (stable, deterministic)."""
    return np.argsort(-score, kind="stable")[:k]


def capacity_of(eligible: int, per_thousand: int) -> int:
    return max(1, round(eligible * per_thousand / 1000))


@dataclass
class Fold:
    cut_off: date
    y: np.ndarray
    scores: dict[str, np.ndarray]      # model name -> score (probabilities for the two models)
    groups: list[dict[str, str]]
    train_rows: int
    train_base_rate: float


def _fold_metrics(fold: Fold, name: str, per_thousand: int, index: np.ndarray | None = None) -> dict[str, int]:
    y = fold.y if index is None else fold.y[index]
    score = fold.scores[name] if index is None else fold.scores[name][index]
    k = capacity_of(len(y), per_thousand)
    flagged = top_k(score, k)
    hits = int(y[flagged].sum())
    flags = np.zeros(len(y), dtype=bool)
    flags[flagged] = True
    return {"k": k, "hits": hits, "positives": int(y.sum()), "n": len(y),
            "correct_at_capacity": int((flags == (y == 1)).sum())}


def pooled(folds: list[Fold], name: str, per_thousand: int,
           resample: dict[date, np.ndarray] | None = None) -> dict[str, float]:
    """Metrics pooled over folds (precision/recall at capacity summed over the weekly worklists)."""
    k = hits = positives = n = correct = 0
    ys, scores, aucs = [], [], []
    for fold in folds:
        index = resample[fold.cut_off] if resample else None
        m = _fold_metrics(fold, name, per_thousand, index)
        k, hits, positives, n = k + m["k"], hits + m["hits"], positives + m["positives"], n + m["n"]
        correct += m["correct_at_capacity"]
        ys.append(fold.y if index is None else fold.y[index])
        scores.append(fold.scores[name] if index is None else fold.scores[name][index])
        aucs.append(roc_auc(ys[-1], scores[-1]))
    y, s = np.concatenate(ys), np.concatenate(scores)
    result = {
        "precision_at_capacity": hits / k if k else float("nan"),
        "recall_at_capacity": hits / positives if positives else float("nan"),
        "roc_auc": float(np.nanmean(aucs)),     # within each week's worklist, averaged over cut-offs
        "accuracy_at_capacity": correct / n,
    }
    if name != "rule":
        result["brier"] = float(np.mean((s - y) ** 2))
        result["accuracy_at_half"] = float(np.mean((s >= 0.5) == (y == 1)))
        result["mean_predicted"] = float(s.mean())
    result["base_rate"] = float(y.mean())
    return result


def bootstrap(folds: list[Fold], names: list[str], per_thousand: int, reps: int = 200,
              seed: int = 7) -> dict[str, dict[str, tuple[float, float]]]:
    """95% intervals by resampling each cut-off's cases; differences to the model are paired."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for _ in range(reps):
        picks = {fold.cut_off: rng.integers(0, len(fold.y), len(fold.y)) for fold in folds}
        for name in names:
            draws[name].append(pooled(folds, name, per_thousand, resample=picks))
    intervals: dict[str, dict[str, tuple[float, float]]] = {}
    for name in names:
        intervals[name] = {}
        for metric in draws[name][0]:
            values = np.array([d[metric] for d in draws[name]])
            intervals[name][metric] = (float(np.nanpercentile(values, 2.5)), float(np.nanpercentile(values, 97.5)))
        if name != "lightgbm":
            for metric in ("precision_at_capacity", "roc_auc"):
                diff = np.array([a[metric] - b[metric] for a, b in zip(draws["lightgbm"], draws[name])])
                intervals[name][f"lightgbm_minus_{metric}"] = (float(np.nanpercentile(diff, 2.5)),
                                                               float(np.nanpercentile(diff, 97.5)))
    return intervals


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Reliability by decile of predicted probability: mean predicted vs observed rate."""
    order = np.argsort(p, kind="stable")
    table = []
    for chunk in np.array_split(order, bins):
        if len(chunk):
            table.append({"n": len(chunk), "mean_predicted": float(p[chunk].mean()), "observed": float(y[chunk].mean())})
    return table


def group_error_rates(folds: list[Fold], name: str, per_thousand: int) -> dict[str, dict[str, dict[str, float]]]:
    """Flag rate, true and false positive rates at capacity, by group (fairness monitoring)."""
    rows: dict[tuple[str, str], list[tuple[int, bool]]] = {}
    for fold in folds:
        flags = np.zeros(len(fold.y), dtype=bool)
        flags[top_k(fold.scores[name], capacity_of(len(fold.y), per_thousand))] = True
        for label, flagged, group in zip(fold.y, flags, fold.groups):
            for attribute, value in group.items():
                rows.setdefault((attribute, value), []).append((int(label), bool(flagged)))
    result: dict[str, dict[str, dict[str, float]]] = {}
    for (attribute, value), pairs in sorted(rows.items()):
        labels = np.array([p[0] for p in pairs])
        flags = np.array([p[1] for p in pairs])
        positives, negatives = labels.sum(), (1 - labels).sum()
        result.setdefault(attribute, {})[value] = {
            "n": len(pairs), "base_rate": float(labels.mean()), "flag_rate": float(flags.mean()),
            "true_positive_rate": float((flags & (labels == 1)).sum() / positives) if positives else float("nan"),
            "false_positive_rate": float((flags & (labels == 0)).sum() / negatives) if negatives else float("nan"),
        }
    return result


def backtest(snapshots: Snapshots, cut_offs: list[date], seed: int = 7, trees: int = TREES) -> list[Fold]:
    """Rolling origin: train on snapshots labelled by the cut-off (as_of + 8 weeks <= cut-off),
    test on the cut-off week's eligible cases."""
    x, y, as_of = snapshots.arrays()
    folds = []
    for cut_off in cut_offs:
        train = as_of <= np.datetime64(cut_off - LABEL_WINDOW)
        test = as_of == np.datetime64(cut_off)
        if not train.any() or not test.any():
            raise ValueError(f"cut-off {cut_off} has no training or no test snapshots")
        model = train_lightgbm(x[train], y[train], seed, trees)
        logistic = LogisticRegression.fit(x[train], y[train])
        folds.append(Fold(cut_off, y[test], {
            "lightgbm": np.asarray(model.predict(x[test], num_threads=2)),
            "logistic": logistic.predict(x[test]),
            "rule": rule_scores(x[test]),
        }, [g for g, t in zip(snapshots.groups, test) if t], int(train.sum()), float(y[train].mean())))
    return folds
