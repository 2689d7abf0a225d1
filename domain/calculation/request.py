"""The calculation request of docs/design.md, Contracts, parsed into frozen dataclasses.

Parsing is strict because a wrong figure here becomes a wrong legal decision: unknown
fields are rejected (a typo such as ``special_expense_weekly_pence`` must not silently
count as nil), money must be a non-negative whole number of pence, and every error names
the field by its path, e.g. ``receiving_parents[1].children[0].shared_care_nights``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

NIL_RATE_REASONS = frozenset({"prisoner", "child", "care_home", "work_based_training", "under_18_on_benefits"})
SERVICE_TYPES = ("direct_pay", "collect_and_pay")
MAX_NIGHTS = 366  # a leap year

ServiceType = Literal["direct_pay", "collect_and_pay"]


def as_service_type(value: str) -> ServiceType:
    """`value` as a ServiceType (a case keeps it as plain text in its state); ValueError otherwise."""
    if value not in SERVICE_TYPES:
        raise ValueError(f"service type must be one of {', '.join(SERVICE_TYPES)}, not {value!r}")
    return cast(ServiceType, value)  # checked against SERVICE_TYPES just above

_REQUEST_FIELDS = frozenset({"paying_parent", "receiving_parents", "service_type"})
_PAYING_PARENT_FIELDS = frozenset({
    "gross_weekly_income_pence", "income", "flat_rate_benefit", "nil_rate_reason",
    "relevant_other_children", "special_expenses_weekly_pence", "additional_income_weekly_pence",
})
_INCOME_FIELDS = frozenset({"hmrc_annual_pence", "current_weekly_pence"})
_RECEIVING_PARENT_FIELDS = frozenset({"id", "children"})
_CHILD_FIELDS = frozenset({"id", "shared_care_nights"})


class ValidationError(ValueError):
    """Bad request input. ``field`` is the path of the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass(frozen=True)
class IncomeEvidence:
    """HMRC historic figure (annual) and, optionally, current weekly income (reg 34-35)."""

    hmrc_annual_pence: int | None
    current_weekly_pence: int | None = None


@dataclass(frozen=True)
class PayingParent:
    gross_weekly_income_pence: int | None = None
    income: IncomeEvidence | None = None
    flat_rate_benefit: bool = False
    nil_rate_reason: str | None = None
    relevant_other_children: int = 0
    special_expenses_weekly_pence: int = 0
    additional_income_weekly_pence: int = 0


@dataclass(frozen=True)
class Child:
    id: str
    shared_care_nights: int = 0


@dataclass(frozen=True)
class ReceivingParent:
    id: str
    children: tuple[Child, ...]


@dataclass(frozen=True)
class CalculationRequest:
    paying_parent: PayingParent
    receiving_parents: tuple[ReceivingParent, ...]
    service_type: ServiceType = "direct_pay"

    @property
    def qualifying_children(self) -> int:
        return sum(len(rp.children) for rp in self.receiving_parents)


# --- field checks -------------------------------------------------------------------

def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(path or "request", "must be a JSON object")
    return value


def _reject_unknown(obj: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
    for key in obj:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            expected = ", ".join(sorted(allowed))
            raise ValidationError(where, f"unknown field (expected one of: {expected})")


def _whole_number(value: Any, path: str, what: str) -> int:
    # bool is a subclass of int in Python; true/false is never a count or an amount.
    if type(value) is not int:
        if isinstance(value, float):
            raise ValidationError(path, f"must be a whole number of {what}, got {value!r}")
        raise ValidationError(path, f"must be a whole number of {what}, got {_json_type(value)}")
    if value < 0:
        raise ValidationError(path, f"must not be negative, got {value}")
    return value


def _pence(obj: Mapping[str, Any], key: str, path: str, default: int | None = 0) -> int | None:
    if key not in obj or (obj[key] is None and default is None):
        return default
    return _whole_number(obj[key], f"{path}.{key}", "pence (integer)")


def _bool(obj: Mapping[str, Any], key: str, path: str) -> bool:
    value = obj.get(key, False)
    if value is None:
        return False
    if type(value) is not bool:
        raise ValidationError(f"{path}.{key}", f"must be true or false, got {_json_type(value)}")
    return value


def _identifier(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(path, "must be a non-empty string")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


# --- parts --------------------------------------------------------------------------

def _parse_income(value: Any, path: str) -> IncomeEvidence:
    obj = _object(value, path)
    _reject_unknown(obj, _INCOME_FIELDS, path)
    if "hmrc_annual_pence" not in obj:
        raise ValidationError(f"{path}.hmrc_annual_pence", "is required (null if HMRC holds no figure)")
    historic = _pence(obj, "hmrc_annual_pence", path, default=None)
    current = _pence(obj, "current_weekly_pence", path, default=None)
    if historic is None and current is None:
        # reg 34(2)(b): with no historic income the current income must be known.
        raise ValidationError(f"{path}.current_weekly_pence", "is required when hmrc_annual_pence is null")
    return IncomeEvidence(hmrc_annual_pence=historic, current_weekly_pence=current)


def _parse_nil_reason(obj: Mapping[str, Any], path: str) -> str | None:
    reason = obj.get("nil_rate_reason")
    if reason is None:
        return None
    if not isinstance(reason, str) or reason not in NIL_RATE_REASONS:
        allowed = ", ".join(sorted(NIL_RATE_REASONS))
        raise ValidationError(f"{path}.nil_rate_reason", f"must be null or one of: {allowed}; got {reason!r}")
    return reason


def _parse_paying_parent(value: Any) -> PayingParent:
    path = "paying_parent"
    obj = _object(value, path)
    _reject_unknown(obj, _PAYING_PARENT_FIELDS, path)
    has_weekly = obj.get("gross_weekly_income_pence") is not None
    has_evidence = obj.get("income") is not None
    if has_weekly == has_evidence:
        which = "both were given" if has_weekly else "neither was given"
        raise ValidationError(path, f"give exactly one of gross_weekly_income_pence or income ({which})")
    roc = obj.get("relevant_other_children", 0)
    return PayingParent(
        gross_weekly_income_pence=_pence(obj, "gross_weekly_income_pence", path, default=None),
        income=_parse_income(obj["income"], f"{path}.income") if has_evidence else None,
        flat_rate_benefit=_bool(obj, "flat_rate_benefit", path),
        nil_rate_reason=_parse_nil_reason(obj, path),
        relevant_other_children=0 if roc is None else _whole_number(
            roc, f"{path}.relevant_other_children", "children"
        ),
        special_expenses_weekly_pence=_pence(obj, "special_expenses_weekly_pence", path) or 0,
        additional_income_weekly_pence=_pence(obj, "additional_income_weekly_pence", path) or 0,
    )


def _parse_child(value: Any, path: str) -> Child:
    obj = _object(value, path)
    _reject_unknown(obj, _CHILD_FIELDS, path)
    if "id" not in obj:
        raise ValidationError(f"{path}.id", "is required")
    nights = obj.get("shared_care_nights", 0)
    nights = 0 if nights is None else _whole_number(nights, f"{path}.shared_care_nights", "nights")
    if nights > MAX_NIGHTS:
        raise ValidationError(f"{path}.shared_care_nights", f"must be between 0 and {MAX_NIGHTS}, got {nights}")
    return Child(id=_identifier(obj["id"], f"{path}.id"), shared_care_nights=nights)


def _parse_receiving_parent(value: Any, path: str) -> ReceivingParent:
    obj = _object(value, path)
    _reject_unknown(obj, _RECEIVING_PARENT_FIELDS, path)
    if "id" not in obj:
        raise ValidationError(f"{path}.id", "is required")
    children = obj.get("children")
    if not isinstance(children, list) or not children:
        raise ValidationError(f"{path}.children", "a receiving parent needs at least one qualifying child")
    return ReceivingParent(
        id=_identifier(obj["id"], f"{path}.id"),
        children=tuple(_parse_child(c, f"{path}.children[{i}]") for i, c in enumerate(children)),
    )


def _parse_receiving_parents(value: Any) -> tuple[ReceivingParent, ...]:
    if not isinstance(value, list) or not value:
        raise ValidationError("receiving_parents", "must be a non-empty list of receiving parents")
    parents = tuple(_parse_receiving_parent(rp, f"receiving_parents[{i}]") for i, rp in enumerate(value))
    seen: set[str] = set()
    for i, rp in enumerate(parents):
        if rp.id in seen:
            raise ValidationError(f"receiving_parents[{i}].id", f"duplicate receiving parent id {rp.id!r}")
        seen.add(rp.id)
    return parents


def _parse_service_type(obj: Mapping[str, Any]) -> ServiceType:
    service = obj.get("service_type")
    if service is None:
        return "direct_pay"
    if service not in SERVICE_TYPES:
        raise ValidationError("service_type", f"must be direct_pay or collect_and_pay, got {service!r}")
    return service


def parse_request(obj: Any) -> CalculationRequest:
    """Validate a decoded JSON request; raises :class:`ValidationError` naming the field."""
    request = _object(obj, "")
    _reject_unknown(request, _REQUEST_FIELDS, "")
    if "paying_parent" not in request:
        raise ValidationError("paying_parent", "is required")
    if "receiving_parents" not in request:
        raise ValidationError("receiving_parents", "is required")
    return CalculationRequest(
        paying_parent=_parse_paying_parent(request["paying_parent"]),
        receiving_parents=_parse_receiving_parents(request["receiving_parents"]),
        service_type=_parse_service_type(request),
    )
