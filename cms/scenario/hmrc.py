"""The scenario's `hmrc` table as the HMRC adapter (activities.adapters.hmrc.HmrcAdapter) answers it.

HMRC answers with the latest tax year that has ended: a tax year ends on 5 April, so a request on
2025-06-02 reads "2024-25", and so does one on 2026-02-01. A year missing from the table is a
paying parent HMRC has no record for. Scenarios run one after another, so the table in use is
swapped before each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from activities.adapters.hmrc import HmrcIncome


def latest_ended_tax_year(requested_on: date) -> str:
    """The latest tax year (6 April to 5 April) that ended before `requested_on`."""
    ends_this_year = date(requested_on.year, 4, 5)
    last_year_end = requested_on.year if requested_on > ends_this_year else requested_on.year - 1
    start = last_year_end - 1
    return f"{start}-{last_year_end % 100:02d}"


@dataclass
class ScenarioHmrc:
    incomes: dict[str, int] = field(default_factory=dict)   # tax year -> annual income in pence

    def use(self, incomes: dict[str, int]) -> None:
        self.incomes = dict(incomes)

    async def verify_address(self, party_id: str) -> bool:
        return True

    async def latest_annual_income(self, party_id: str, requested_on: str) -> HmrcIncome:
        tax_year = latest_ended_tax_year(date.fromisoformat(requested_on))
        if tax_year not in self.incomes:
            return HmrcIncome(found=False, tax_year=tax_year)
        return HmrcIncome(True, self.incomes[tax_year], tax_year)
