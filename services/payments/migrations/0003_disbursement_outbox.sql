-- Disbursement on arrival: a transactional outbox of money that has just become the receiving
-- parent's, so it is passed on within 2 working days of arriving rather than at the next due date.
--
-- The row is written by a trigger on `transactions`, in the same database transaction as the
-- payment's postings: if the payment commits, its outbox row commits; if it rolls back, neither
-- exists. A crash can therefore never lose a disbursement. The dispatcher
-- (services/payments/disbursements.py) claims unstarted rows with FOR UPDATE SKIP LOCKED, starts
-- one DisbursementWorkflow per row (workflow ID case-<case_id>/disbursement-<bank_reference>,
-- duplicate IDs rejected) and then stamps started_at. Rows are bookkeeping, not money: they are
-- updated, unlike the ledger tables.

CREATE TABLE disbursement_outbox (
    outbox_id      bigserial PRIMARY KEY,
    bank_reference text NOT NULL UNIQUE,   -- one disbursement per bank movement, however often notified
    case_id        text NOT NULL,
    received_on    date NOT NULL,          -- the money's value date: the 2 working days count from here
    transaction_id bigint NOT NULL REFERENCES transactions(transaction_id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,            -- NULL: no workflow started yet
    workflow_id    text
);
-- The dispatcher's queue: only the pending rows, oldest first.
CREATE INDEX disbursement_outbox_pending_idx ON disbursement_outbox (outbox_id) WHERE started_at IS NULL;

CREATE FUNCTION enqueue_disbursement() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    -- The bank reference identifies the money: an incoming payment is keyed by it; a suspense
    -- assignment has a key of its own and points (`reverses`) at the unidentified payment, which
    -- is keyed by the bank reference.
    INSERT INTO disbursement_outbox (bank_reference, case_id, received_on, transaction_id)
    VALUES (coalesce(NEW.detail->>'bank_reference',
                     (SELECT t.idempotency_key FROM transactions t WHERE t.transaction_id = NEW.reverses),
                     NEW.idempotency_key),
            NEW.case_id, NEW.value_date, NEW.transaction_id)
    ON CONFLICT (bank_reference) DO NOTHING;
    RETURN NULL;
END $$;

-- Which ledger transactions put money in a case's hands: a payment, and money moved to the case out
-- of suspense. To add a kind, a later migration runs this statement again with the longer list
-- (CREATE OR REPLACE TRIGGER, PostgreSQL 14+). The WHEN clause keeps every other posting free of
-- any trigger call.
CREATE OR REPLACE TRIGGER transactions_enqueue_disbursement AFTER INSERT ON transactions
    FOR EACH ROW WHEN (NEW.case_id IS NOT NULL AND NEW.kind IN ('incoming_payment', 'suspense_assignment'))
    EXECUTE FUNCTION enqueue_disbursement();
