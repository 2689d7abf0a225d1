-- Retention of the disbursement outbox (migration 0003): the dispatcher deletes rows whose
-- workflow started more than CMS_DISBURSEMENT_OUTBOX_RETENTION_DAYS ago (default 35), a small
-- batch at a time, oldest first (services/payments/disbursements.py, purge_dispatched). This index
-- finds them without reading the table; like the pending index, it covers only the rows it serves.
-- Rows not yet started are never purged: they are money still to be passed on.
CREATE INDEX disbursement_outbox_started_idx ON disbursement_outbox (started_at) WHERE started_at IS NOT NULL;
