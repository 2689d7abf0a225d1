-- Transactional outbox: a request is stored with its idempotency key in the same transaction as
-- its cause, then a dispatcher delivers it with retries.
CREATE TABLE outbox (
    notification_id    bigserial PRIMARY KEY,
    idempotency_key    text NOT NULL UNIQUE,
    case_id            text NOT NULL,
    recipient_party_id text NOT NULL,
    template           text NOT NULL,
    channel            text NOT NULL,
    variables          jsonb NOT NULL,
    status             text NOT NULL DEFAULT 'queued'
                       CHECK (status IN ('queued', 'sent', 'delivered', 'failed')),
    attempts           integer NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status = 'queued';
CREATE INDEX outbox_case_idx ON outbox (case_id);
