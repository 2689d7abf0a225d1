"""The evidence an assessment and an annual review need from outside: where the paying parent
lives (their address verified) and what HMRC says they earn. A permanent failure of either goes
to a caseworker rather than failing the case; transient ones are retried (HMRC_RETRY).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.case_messages import PERMANENT_FAILURE_TYPE, AddressCheck, IncomeAnswer, IncomeRequest
    from activities.hmrc import HmrcActivities
    from workflows.case_messages import CaseState
    from workflows.case_record import RECORD_TIMEOUT, CaseRecorder

HMRC_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                         maximum_interval=timedelta(seconds=30), maximum_attempts=5,
                         non_retryable_error_types=[PERMANENT_FAILURE_TYPE])


class CaseEvidence:
    """Address and income checks for a case, over its state and recorder."""

    def __init__(self, state: CaseState, recorder: CaseRecorder) -> None:
        self._s = state
        self._record = recorder

    async def locate_paying_parent(self) -> None:
        s = self._s
        try:
            await workflow.execute_activity_method(
                HmrcActivities.verify_paying_parent_address, AddressCheck(s.case_id, s.paying_parent_id),
                start_to_close_timeout=RECORD_TIMEOUT, retry_policy=HMRC_RETRY,
            )
            s.address_verified = True
            self._record.log("address_verified", "Paying parent located; address verified")
        except ActivityError:
            await self._record.route_to_caseworker("Paying parent's address could not be verified")
            await workflow.wait_condition(lambda: not s.needs_caseworker or s.close_requested is not None)
            s.address_verified = True

    async def request_income(self, for_review: bool = False) -> None:
        """Asks HMRC for the paying parent's income. `for_review`: the answer is for the coming
        annual review, held in review_hmrc_annual_pence until the review date."""
        s = self._s
        record = self._record
        today = record.today()
        s.hmrc_requested_on = today.isoformat()
        record.log("hmrc_requested", "HMRC income figure requested")
        try:
            answer: IncomeAnswer = await workflow.execute_activity_method(
                HmrcActivities.request_hmrc_income, IncomeRequest(s.case_id, s.paying_parent_id, today.isoformat()),
                start_to_close_timeout=RECORD_TIMEOUT, retry_policy=HMRC_RETRY,
            )
        except ActivityError:
            await record.route_to_caseworker("HMRC income request failed permanently")
            s.awaiting_income = s.hmrc_annual_pence is None
            return
        if answer.found and for_review:
            s.review_hmrc_annual_pence = answer.annual_pence
            record.log("hmrc_received", f"HMRC figure received for tax year {answer.tax_year}; "
                                        "it counts from the annual review date")
        elif answer.found:
            s.hmrc_annual_pence = answer.annual_pence
            record.log("hmrc_received", f"HMRC figure received for tax year {answer.tax_year}")
        elif s.hmrc_annual_pence is None:
            s.awaiting_income = True
            record.log("information_missing", "No HMRC figure; waiting up to 28 days for income information")
        else:
            record.log("information_missing", "No new HMRC figure; the previous figure stays")

