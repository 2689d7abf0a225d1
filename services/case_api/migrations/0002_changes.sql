-- Changes of circumstances (docs/rules.md section 9): one row per change workflow (`case-<id>/change-<n>`),
-- kept current by its activities, so the SLA view (open by age, on-time share, breaches, oldest)
-- is a query here and never a replay of workflows. Ages are in case-calendar days: each row
-- carries the length of its calendar day (86,400 s in production, seconds on a demo calendar).
CREATE TABLE change_records (
    case_id          text NOT NULL,
    change_no        integer NOT NULL CHECK (change_no > 0),
    workflow_id      text NOT NULL UNIQUE,
    idempotency_key  text UNIQUE,
    kind             text NOT NULL,
    status           text NOT NULL CHECK (status IN ('open', 'awaiting_review', 'escalated', 'cleared')),
    outcome          text,
    assigned_team    text NOT NULL DEFAULT 'changes',
    needs_caseworker boolean NOT NULL DEFAULT false,
    review_reason    text,
    reported_date    date NOT NULL,
    effective_date   date,
    received_at      timestamptz NOT NULL,
    sla_due_at       timestamptz NOT NULL,
    seconds_per_day  double precision NOT NULL CHECK (seconds_per_day > 0),
    escalated_at     timestamptz,
    breached_at      timestamptz,
    cleared_at       timestamptz,
    on_time          boolean,
    cleared_day      date,
    reason           text,
    reviewer         text,
    review_note      text,
    weekly_liability_pence bigint CHECK (weekly_liability_pence >= 0),
    adjustment_pence bigint,
    payment_change   jsonb,
    notice           jsonb,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, change_no)
);

-- The SLA view reads open changes by age and clearances of the last four weeks.
CREATE INDEX change_records_open_idx ON change_records (received_at) WHERE status <> 'cleared';
CREATE INDEX change_records_cleared_idx ON change_records (cleared_at) WHERE status = 'cleared';
