"""Activities against the HMRC adapter: locate the paying parent, request the income figure.

Transient failures are raised as ordinary exceptions, so Temporal retries them with backoff;
a permanent failure is non-retryable and the workflow routes the case to a caseworker.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.adapters.hmrc import HmrcAdapter, HmrcPermanentFailure, fake_from_environment

PERMANENT_FAILURE_TYPE = "HmrcPermanentFailure"

_adapter: HmrcAdapter | None = None


def set_hmrc_adapter(adapter: HmrcAdapter | None) -> None:
    global _adapter
    _adapter = adapter


def hmrc_adapter() -> HmrcAdapter:
    global _adapter
    if _adapter is None:
        _adapter = fake_from_environment()
    return _adapter


@dataclass
class AddressCheck:
    case_id: str
    party_id: str


@dataclass
class IncomeRequest:
    case_id: str
    party_id: str
    requested_on: str    # case-calendar date (ISO)


@dataclass
class IncomeAnswer:
    found: bool
    annual_pence: int | None
    tax_year: str


def _permanent(error: HmrcPermanentFailure) -> ApplicationError:
    return ApplicationError(str(error), type=PERMANENT_FAILURE_TYPE, non_retryable=True)


@activity.defn
async def verify_paying_parent_address(check: AddressCheck) -> bool:
    try:
        return await hmrc_adapter().verify_address(check.party_id)
    except HmrcPermanentFailure as error:
        raise _permanent(error) from None


@activity.defn
async def request_hmrc_income(request: IncomeRequest) -> IncomeAnswer:
    try:
        income = await hmrc_adapter().latest_annual_income(request.party_id, request.requested_on)
    except HmrcPermanentFailure as error:
        raise _permanent(error) from None
    return IncomeAnswer(income.found, income.annual_pence, income.tax_year)
