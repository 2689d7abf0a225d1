"""The HMRC (and DWP address) feed behind an interface, with a local fake for dev and tests.

A real feed replaces `FakeHmrc` by implementing `HmrcAdapter`: `activities.hmrc.HmrcActivities`
only sees the interface, and the worker (cms/worker_catalog.py) chooses the implementation. The
fake behaves like the real thing in the ways the workflow must cope with: answers take a while,
some calls fail transiently, some paying parents have no HMRC record (information missing), and
some requests fail permanently. The worker tunes it from Settings (CMS_HMRC_MAX_DELAY,
CMS_HMRC_FAILURE_RATE).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Protocol


class HmrcUnavailable(Exception):
    """Transient: the feed timed out or is down. The activity retries with backoff."""


class HmrcPermanentFailure(Exception):
    """The request can never succeed (e.g. identity cannot be matched); a caseworker must act."""


@dataclass(frozen=True)
class HmrcIncome:
    found: bool
    annual_pence: int | None = None
    tax_year: str = ""


class HmrcAdapter(Protocol):
    async def verify_address(self, party_id: str) -> bool: ...

    async def latest_annual_income(self, party_id: str, requested_on: str) -> HmrcIncome: ...


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts (no randomness: tests repeat exactly)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class FakeHmrc:
    """Deterministic fake. Conventions for demo data: a paying party id starting `nohmrc-` has no
    HMRC record; one starting `hmrcdown-` fails permanently. Explicit maps win over conventions."""

    min_delay_seconds: float = 0.05
    max_delay_seconds: float = 0.4
    transient_failure_rate: float = 0.1
    incomes: dict[str, int] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    permanent_failures: set[str] = field(default_factory=set)
    calls: dict[str, int] = field(default_factory=dict)

    async def _behave(self, kind: str, party_id: str) -> None:
        attempt = self.calls[f"{kind}:{party_id}"] = self.calls.get(f"{kind}:{party_id}", 0) + 1
        span = self.max_delay_seconds - self.min_delay_seconds
        delay = self.min_delay_seconds + span * _unit("delay", kind, party_id, attempt)
        if delay > 0:
            await asyncio.sleep(delay)
        if party_id in self.permanent_failures or party_id.startswith("hmrcdown-"):
            raise HmrcPermanentFailure("HMRC could not match the paying parent's identity")
        if _unit("fail", kind, party_id, attempt) < self.transient_failure_rate:
            raise HmrcUnavailable("HMRC feed timed out")

    async def verify_address(self, party_id: str) -> bool:
        await self._behave("address", party_id)
        return True

    async def latest_annual_income(self, party_id: str, requested_on: str) -> HmrcIncome:
        await self._behave("income", party_id)
        tax_year = f"{int(requested_on[:4]) - 1}-{requested_on[2:4]}"
        if party_id in self.missing or party_id.startswith("nohmrc-"):
            return HmrcIncome(found=False, tax_year=tax_year)
        if party_id in self.incomes:
            return HmrcIncome(True, self.incomes[party_id], tax_year)
        # £8k-£60k a year, in whole pounds, stable per party and tax year.
        pounds = 8_000 + int(52_000 * _unit("income", party_id, tax_year))
        return HmrcIncome(True, pounds * 100, tax_year)
