"""Payment-risk features and bands (early intervention: which paying parents are likely to stop paying).

The score is the probability that the paying parent misses a payment in the next collection
period. It only ever puts a case on a caseworker's early-contact worklist: never an automatic
enforcement step. Probabilities travel as integer parts per million so that nothing downstream
compares floats.
"""

from __future__ import annotations

from dataclasses import dataclass

METHODS = ("direct_debit", "standing_order", "deduction_from_earnings", "card")
FREQUENCIES = ("weekly", "fortnightly", "four_weekly", "monthly")

FEATURE_NAMES = (
    "payments_due_last_12", "payments_missed_last_12", "payments_part_last_12",
    "missed_share", "days_since_last_payment", "arrears_weeks", "weekly_liability_pounds",
    "method", "frequency", "income_changes_last_12", "changes_reported_last_12",
    "case_age_days", "collect_and_pay",
)
# +1: risk may only rise with this feature (keeps reason codes intuitive); 0: unconstrained.
MONOTONE = (0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
CATEGORICAL = ("method", "frequency")

EARLY_INTERVENTION_THRESHOLD_PPM = 350_000
BANDS = ((EARLY_INTERVENTION_THRESHOLD_PPM, "high"), (150_000, "medium"), (0, "low"))


@dataclass(frozen=True)
class PaymentFeatures:
    case_id: str
    payments_due_last_12: int = 0
    payments_missed_last_12: int = 0
    payments_part_last_12: int = 0
    days_since_last_payment: int = 0
    arrears_pence: int = 0
    weekly_liability_pence: int = 0
    method: str = "direct_debit"
    frequency: str = "monthly"
    income_changes_last_12: int = 0
    changes_reported_last_12: int = 0
    case_age_days: int = 0
    collect_and_pay: bool = True


def validate(features: PaymentFeatures) -> list[tuple[str, str]]:
    problems = []
    for name in ("payments_due_last_12", "payments_missed_last_12", "payments_part_last_12",
                 "days_since_last_payment", "arrears_pence", "weekly_liability_pence",
                 "income_changes_last_12", "changes_reported_last_12", "case_age_days"):
        if getattr(features, name) < 0:
            problems.append((f"features.{name}", "must not be negative"))
    if features.payments_missed_last_12 + features.payments_part_last_12 > features.payments_due_last_12:
        problems.append(("features.payments_missed_last_12", "missed and part payments exceed payments due"))
    if features.method not in METHODS:
        problems.append(("features.method", f"must be one of {', '.join(METHODS)}"))
    if features.frequency not in FREQUENCIES:
        problems.append(("features.frequency", f"must be one of {', '.join(FREQUENCIES)}"))
    if not features.case_id:
        problems.append(("features.case_id", "is required"))
    return problems


def to_vector(features: PaymentFeatures) -> list[float]:
    """Model inputs. Ratios here are model features, not money: floats are fine."""
    due = features.payments_due_last_12
    weekly = features.weekly_liability_pence
    return [
        float(due), float(features.payments_missed_last_12), float(features.payments_part_last_12),
        features.payments_missed_last_12 / due if due else 0.0,
        float(features.days_since_last_payment),
        features.arrears_pence / weekly if weekly else 0.0,
        weekly / 100,
        float(METHODS.index(features.method)), float(FREQUENCIES.index(features.frequency)),
        float(features.income_changes_last_12), float(features.changes_reported_last_12),
        float(features.case_age_days), 1.0 if features.collect_and_pay else 0.0,
    ]


def band_of(probability_ppm: int) -> str:
    return next(name for floor, name in BANDS if probability_ppm >= floor)


def starts_early_intervention(probability_ppm: int, collect_and_pay: bool) -> bool:
    return collect_and_pay and probability_ppm >= EARLY_INTERVENTION_THRESHOLD_PPM
