-- Read model of cases, maintained by workflow activities so that APIs and reports never replay
-- workflows. Personal data lives here (PostgreSQL is the system of record for people), never in
-- Temporal IDs, search attributes or memos.
CREATE TABLE cases (
    case_id              text PRIMARY KEY,
    idempotency_key      text UNIQUE,
    stage                text NOT NULL,
    service_type         text NOT NULL,
    safeguarded          boolean NOT NULL DEFAULT false,
    initial_effective_date date,
    next_review_date     date,
    rate                 text,
    weekly_liability_pence bigint CHECK (weekly_liability_pence >= 0),
    liability_effective_date date,
    needs_caseworker     boolean NOT NULL DEFAULT false,
    on_hold              boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE parties (
    case_id        text NOT NULL REFERENCES cases(case_id),
    party_id       text NOT NULL,
    role           text NOT NULL CHECK (role IN ('receiving_parent', 'paying_parent')),
    full_name      text NOT NULL,
    address        text NOT NULL DEFAULT '',
    phone          text NOT NULL DEFAULT '',
    email          text NOT NULL DEFAULT '',
    employer       text NOT NULL DEFAULT '',
    bank_sort_code text NOT NULL DEFAULT '',
    PRIMARY KEY (case_id, party_id)
);

CREATE TABLE children (
    case_id            text NOT NULL REFERENCES cases(case_id),
    child_id           text NOT NULL,
    date_of_birth      date NOT NULL,
    shared_care_nights integer NOT NULL DEFAULT 0 CHECK (shared_care_nights BETWEEN 0 AND 366),
    in_full_time_education boolean NOT NULL DEFAULT false,
    PRIMARY KEY (case_id, child_id)
);

CREATE TABLE timeline (
    case_id   text NOT NULL REFERENCES cases(case_id),
    seq       integer NOT NULL,
    at        timestamptz NOT NULL,
    day       date,
    kind      text NOT NULL,
    text      text NOT NULL,
    PRIMARY KEY (case_id, seq)
);

CREATE INDEX cases_stage_idx ON cases (stage);
