"""Activities that keep the case read model (schema `case_api`) current. Idempotent upserts.

The workflow sends a snapshot of the case (no names or addresses: those are written by the
CaseService at application) plus the timeline entries the read model has not seen yet; the
timeline is keyed by (case_id, seq), so a retried activity writes nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import activity

from activities.context import db_pool
from domain.rulesets import packaged_rule_sets

# Load the rule sets once at worker import: workflow code calls the pure calculation and must
# never be the first to read the rule-set files.
packaged_rule_sets()


@dataclass
class TimelineRow:
    seq: int
    at: str
    day: str
    kind: str
    text: str


@dataclass
class ChildRow:
    child_id: str
    date_of_birth: str
    shared_care_nights: int
    in_full_time_education: bool
    stopped_qualifying_on: str | None


@dataclass
class CaseSnapshot:
    case_id: str
    stage: str
    service_type: str
    safeguarded: bool
    application_date: str
    case_day: str
    initial_effective_date: str | None = None
    next_review_date: str | None = None
    rate: str | None = None
    weekly_liability_pence: int | None = None
    paying_parent_pays_pence: int | None = None
    receiving_parent_receives_pence: int | None = None
    liability_effective_date: str | None = None
    rule_set_id: str | None = None
    needs_caseworker: bool = False
    caseworker_reason: str = ""
    on_hold: bool = False
    hold_reason: str = ""
    sla_due_at: str | None = None
    closure_reason: str | None = None
    closed_on: str | None = None
    reviews_done: int = 0
    children: list[ChildRow] = field(default_factory=list)
    timeline: list[TimelineRow] = field(default_factory=list)


_UPSERT_CASE = """
INSERT INTO case_api.cases AS c (
    case_id, stage, service_type, safeguarded, application_date, case_day, initial_effective_date,
    next_review_date, rate, weekly_liability_pence, paying_parent_pays_pence,
    receiving_parent_receives_pence, liability_effective_date, rule_set_id, needs_caseworker,
    caseworker_reason, on_hold, hold_reason, sla_due_at, closure_reason, closed_on, reviews_done,
    synced_seq, updated_at)
VALUES (%(case_id)s, %(stage)s, %(service_type)s, %(safeguarded)s, %(application_date)s, %(case_day)s,
    %(initial_effective_date)s, %(next_review_date)s, %(rate)s, %(weekly_liability_pence)s,
    %(paying_parent_pays_pence)s, %(receiving_parent_receives_pence)s, %(liability_effective_date)s,
    %(rule_set_id)s, %(needs_caseworker)s, %(caseworker_reason)s, %(on_hold)s, %(hold_reason)s,
    %(sla_due_at)s, %(closure_reason)s, %(closed_on)s, %(reviews_done)s, %(synced_seq)s, now())
ON CONFLICT (case_id) DO UPDATE SET
    stage = EXCLUDED.stage, service_type = EXCLUDED.service_type, safeguarded = EXCLUDED.safeguarded,
    application_date = EXCLUDED.application_date, case_day = EXCLUDED.case_day,
    initial_effective_date = EXCLUDED.initial_effective_date, next_review_date = EXCLUDED.next_review_date,
    rate = EXCLUDED.rate, weekly_liability_pence = EXCLUDED.weekly_liability_pence,
    paying_parent_pays_pence = EXCLUDED.paying_parent_pays_pence,
    receiving_parent_receives_pence = EXCLUDED.receiving_parent_receives_pence,
    liability_effective_date = EXCLUDED.liability_effective_date, rule_set_id = EXCLUDED.rule_set_id,
    needs_caseworker = EXCLUDED.needs_caseworker, caseworker_reason = EXCLUDED.caseworker_reason,
    on_hold = EXCLUDED.on_hold, hold_reason = EXCLUDED.hold_reason, sla_due_at = EXCLUDED.sla_due_at,
    closure_reason = EXCLUDED.closure_reason, closed_on = EXCLUDED.closed_on,
    reviews_done = EXCLUDED.reviews_done, synced_seq = EXCLUDED.synced_seq, updated_at = now()
-- A retried (older) snapshot never overwrites a newer one.
WHERE c.synced_seq <= EXCLUDED.synced_seq
"""

_UPSERT_CHILD = """
INSERT INTO case_api.children (case_id, child_id, date_of_birth, shared_care_nights,
    in_full_time_education, stopped_qualifying_on)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (case_id, child_id) DO UPDATE SET shared_care_nights = EXCLUDED.shared_care_nights,
    in_full_time_education = EXCLUDED.in_full_time_education,
    stopped_qualifying_on = EXCLUDED.stopped_qualifying_on
"""


@activity.defn
async def sync_case_record(snapshot: CaseSnapshot) -> None:
    values = {k: v for k, v in vars(snapshot).items() if k not in ("children", "timeline")}
    values["synced_seq"] = max((row.seq for row in snapshot.timeline), default=0)
    async with db_pool().connection() as conn, conn.transaction():
        await conn.execute(_UPSERT_CASE, values)
        for child in snapshot.children:
            await conn.execute(_UPSERT_CHILD, (snapshot.case_id, child.child_id, child.date_of_birth,
                                               child.shared_care_nights, child.in_full_time_education,
                                               child.stopped_qualifying_on))
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO case_api.timeline (case_id, seq, at, day, kind, text) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (case_id, seq) DO NOTHING",
                [(snapshot.case_id, row.seq, row.at, row.day, row.kind, row.text) for row in snapshot.timeline],
            )
