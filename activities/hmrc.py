"""Activities against the HMRC feed: locate the paying parent, request the income figure.

Transient failures are raised as ordinary exceptions, so Temporal retries them with backoff;
a permanent failure is non-retryable (type PERMANENT_FAILURE_TYPE) and the workflow routes the
case to a caseworker.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.adapters.hmrc import HmrcAdapter, HmrcPermanentFailure
from activities.case_messages import PERMANENT_FAILURE_TYPE, AddressCheck, IncomeAnswer, IncomeRequest


def _permanent(error: HmrcPermanentFailure) -> ApplicationError:
    return ApplicationError(str(error), type=PERMANENT_FAILURE_TYPE, non_retryable=True)


class HmrcActivities:
    def __init__(self, adapter: HmrcAdapter):
        self._adapter = adapter

    @activity.defn(name="verify_paying_parent_address")
    async def verify_paying_parent_address(self, check: AddressCheck) -> bool:
        try:
            return await self._adapter.verify_address(check.party_id)
        except HmrcPermanentFailure as error:
            raise _permanent(error) from None

    @activity.defn(name="request_hmrc_income")
    async def request_hmrc_income(self, request: IncomeRequest) -> IncomeAnswer:
        try:
            income = await self._adapter.latest_annual_income(request.party_id, request.requested_on)
        except HmrcPermanentFailure as error:
            raise _permanent(error) from None
        return IncomeAnswer(income.found, income.annual_pence, income.tax_year)
