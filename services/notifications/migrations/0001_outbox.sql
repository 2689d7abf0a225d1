-- Notifications schema: parties' delivery details and contact preferences, the case's
-- safeguarding profile, the transactional outbox and the audit log of protected reads.

-- Delivery details of a party of a case (name, address, postcode, email, phone, employer, ...).
-- Protected fields in `details` are only ever read through the redaction + audit in the service.
CREATE TABLE parties (
    case_id        text NOT NULL,
    party_id       text NOT NULL,
    role           text NOT NULL DEFAULT '',
    details        jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, party_id)
);

CREATE TABLE contact_preferences (
    case_id        text NOT NULL,
    party_id       text NOT NULL,
    channel        text NOT NULL DEFAULT '' CHECK (channel IN ('', 'email', 'sms', 'letter')),
    no_phone       boolean NOT NULL DEFAULT false,
    safe_from      time,
    safe_until     time,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, party_id),
    CHECK ((safe_from IS NULL) = (safe_until IS NULL))
);

CREATE TABLE safeguarding_profiles (
    case_id              text PRIMARY KEY,
    active               boolean NOT NULL,
    protected_party_ids  text[] NOT NULL DEFAULT '{}',
    reason               text NOT NULL DEFAULT '',
    safe_channel         text NOT NULL DEFAULT '' CHECK (safe_channel IN ('', 'email', 'sms', 'letter')),
    no_phone             boolean NOT NULL DEFAULT false,
    set_by               text NOT NULL DEFAULT '',
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox: a request is stored with its idempotency key in the same transaction as
-- its cause (already rendered, so a missing variable fails before anything is queued), then a
-- dispatcher delivers it with retries. The notification_id is the provider's reference, so a
-- crash between the provider accepting and this row being updated cannot deliver twice.
CREATE TABLE outbox (
    notification_id    uuid PRIMARY KEY,
    idempotency_key    text NOT NULL UNIQUE,
    case_id            text NOT NULL,
    recipient_party_id text NOT NULL,
    template           text NOT NULL,
    channel            text NOT NULL CHECK (channel IN ('email', 'sms', 'letter')),
    variables          jsonb NOT NULL,
    subject            text NOT NULL,
    body               text NOT NULL,
    status             text NOT NULL DEFAULT 'queued'
                       CHECK (status IN ('queued', 'sent', 'delivered', 'failed')),
    attempts           integer NOT NULL DEFAULT 0,
    failure_reason     text NOT NULL DEFAULT '',
    deliver_after      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status = 'queued';
CREATE INDEX outbox_case_idx ON outbox (case_id, created_at);

-- Every read of protected data: whose, by whom, why, which fields (never the values).
CREATE TABLE audit_log (
    audit_id           bigserial PRIMARY KEY,
    case_id            text NOT NULL,
    subject_party_id   text NOT NULL,
    actor              text NOT NULL,
    reason             text NOT NULL,
    fields_read        text[] NOT NULL,
    read_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_case_idx ON audit_log (case_id, read_at);
