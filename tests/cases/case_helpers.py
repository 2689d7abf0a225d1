"""Helpers for the case tests: a scripted HMRC adapter."""

from __future__ import annotations

from dataclasses import dataclass, field

from activities.adapters.hmrc import HmrcIncome, HmrcPermanentFailure, HmrcUnavailable


@dataclass
class ScriptedHmrc:
    """HMRC for tests: annual income per paying party, from a request date on (ISO date keys);
    parties in `missing` have no record, parties in `down` fail permanently."""

    incomes: dict[str, dict[str, int]] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    down: set[str] = field(default_factory=set)
    income_calls: list[tuple[str, str]] = field(default_factory=list)
    # Parties whose next N income requests fail transiently (the feed times out).
    flaky: dict[str, int] = field(default_factory=dict)

    async def verify_address(self, party_id: str) -> bool:
        return True

    async def latest_annual_income(self, party_id: str, requested_on: str) -> HmrcIncome:
        self.income_calls.append((party_id, requested_on))
        if self.flaky.get(party_id, 0) > 0:
            self.flaky[party_id] -= 1
            raise HmrcUnavailable("HMRC feed timed out")
        if party_id in self.down:
            raise HmrcPermanentFailure("identity not matched")
        if party_id in self.missing or party_id not in self.incomes:
            return HmrcIncome(found=False)
        known = sorted((since, pence) for since, pence in self.incomes[party_id].items() if since <= requested_on)
        return HmrcIncome(True, known[-1][1], requested_on[:4]) if known else HmrcIncome(found=False)


