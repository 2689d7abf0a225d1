-- Case lifecycle (issue 5): what the case workflow's activities record, so the API and reports
-- never replay workflows; and the audit of protected reads. Amounts are integer pence.
ALTER TABLE cases
    ADD COLUMN application_date            date,
    ADD COLUMN paying_parent_pays_pence    bigint CHECK (paying_parent_pays_pence >= 0),
    ADD COLUMN receiving_parent_receives_pence bigint CHECK (receiving_parent_receives_pence >= 0),
    ADD COLUMN rule_set_id                 text,
    ADD COLUMN sla_due_at                  timestamptz,
    ADD COLUMN caseworker_reason           text NOT NULL DEFAULT '',
    ADD COLUMN hold_reason                 text NOT NULL DEFAULT '',
    ADD COLUMN closure_reason              text,
    ADD COLUMN closed_on                   date,
    ADD COLUMN case_day                    date,
    ADD COLUMN reviews_done                integer NOT NULL DEFAULT 0,
    ADD COLUMN synced_seq                  integer NOT NULL DEFAULT 0;

ALTER TABLE children ADD COLUMN stopped_qualifying_on date;

-- Requests handed to the payments service (schedules, stops). The idempotency key is derived
-- from the workflow ID and a business key, so an activity retry records nothing twice.
CREATE TABLE payment_requests (
    idempotency_key text PRIMARY KEY,
    case_id         text NOT NULL REFERENCES cases(case_id),
    kind            text NOT NULL CHECK (kind IN ('create_schedule', 'stop_schedule')),
    body            jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Letters/messages handed to the notifications service.
CREATE TABLE notices (
    idempotency_key   text PRIMARY KEY,
    case_id           text NOT NULL REFERENCES cases(case_id),
    recipient_party_id text NOT NULL,
    template          text NOT NULL,
    body              jsonb NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- Every read that returned protected fields to staff: who, when, why.
CREATE TABLE audit (
    id         bigserial PRIMARY KEY,
    case_id    text NOT NULL,
    staff_id   text NOT NULL,
    reason     text NOT NULL,
    action     text NOT NULL,
    fields     text[] NOT NULL DEFAULT '{}',
    at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payment_requests_case_idx ON payment_requests (case_id);
CREATE INDEX notices_case_idx ON notices (case_id);
CREATE INDEX audit_case_idx ON audit (case_id);
