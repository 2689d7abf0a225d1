"""The statutory maintenance calculation (docs/rules.md sections 1-5).

Public API::

    from domain.calculation import calculate, parse_request, default_decision, ValidationError
    result = calculate(parse_request(json_object), effective_date=date(2025, 4, 1))
    result.to_json()  # the docs/design.md, Contracts result, with the explanation
"""

from .engine import CalculationResult, ReceivingParentAmount, calculate, default_decision, select_rules
from .explanation import Step
from .request import (
    CalculationRequest,
    Child,
    IncomeEvidence,
    PayingParent,
    ReceivingParent,
    ValidationError,
    as_service_type,
    parse_request,
)

__all__ = [
    "CalculationRequest",
    "CalculationResult",
    "Child",
    "IncomeEvidence",
    "PayingParent",
    "ReceivingParent",
    "ReceivingParentAmount",
    "Step",
    "ValidationError",
    "as_service_type",
    "calculate",
    "default_decision",
    "parse_request",
    "select_rules",
]
