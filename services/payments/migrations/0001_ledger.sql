-- Double-entry ledger in integer pence. Rows are never updated or deleted: corrections are
-- reversing transactions. Every transaction carries an idempotency key (unique), so a retried
-- request finds the first result instead of posting twice.
CREATE TABLE transactions (
    transaction_id  bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    case_id         text,
    kind            text NOT NULL,
    decision_ref    text,
    posted_at       timestamptz NOT NULL DEFAULT now(),
    value_date      date NOT NULL
);

CREATE TABLE postings (
    posting_id     bigserial PRIMARY KEY,
    transaction_id bigint NOT NULL REFERENCES transactions(transaction_id),
    account        text NOT NULL,
    amount_pence   bigint NOT NULL CHECK (amount_pence <> 0)
);
CREATE INDEX postings_account_idx ON postings (account);
CREATE INDEX postings_transaction_idx ON postings (transaction_id);
CREATE INDEX transactions_case_idx ON transactions (case_id);

CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: post a reversing transaction instead';
END $$;
CREATE TRIGGER transactions_append_only BEFORE UPDATE OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
