-- Payments: double-entry ledger in integer pence, schedules, bank movements, Direct Pay reports.
--
-- Rules the database itself enforces (so no code path can break them):
--   * every transaction balances (postings sum to zero, at least two legs): deferred constraint
--     trigger checked at COMMIT, so a transaction is all-or-nothing;
--   * postings can only be added in the database transaction that created their ledger
--     transaction (no legs bolted on later);
--   * nothing money-related is ever updated, deleted or truncated: corrections are reversing
--     transactions;
--   * every ledger transaction has a unique idempotency key: a retried request finds the first.
-- Sign convention: amount_pence > 0 is a debit, < 0 a credit.

CREATE TABLE transactions (
    transaction_id  bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE CHECK (idempotency_key <> ''),
    fingerprint     text NOT NULL,          -- hash of the request: same key + other request = conflict
    case_id         text,
    kind            text NOT NULL CHECK (kind IN ('period_charge', 'schedule_adjustment',
                        'enforcement_charge', 'incoming_payment', 'unidentified_payment',
                        'reversal', 'disbursement', 'disbursement_settled', 'credit_applied')),
    decision_ref    text,                   -- calculation / rule-set version that caused it
    reverses        bigint REFERENCES transactions(transaction_id),
    value_date      date NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}',
    posted_at       timestamptz NOT NULL DEFAULT now(),
    created_xact    xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX transactions_case_idx ON transactions (case_id, transaction_id);
CREATE UNIQUE INDEX transactions_reversed_once ON transactions (reverses) WHERE reverses IS NOT NULL;

CREATE TABLE postings (
    posting_id     bigserial PRIMARY KEY,
    transaction_id bigint NOT NULL REFERENCES transactions(transaction_id),
    account        text NOT NULL CHECK (account IN ('pp_maintenance', 'pp_fee', 'pp_enforcement',
                       'pp_credit', 'rp_entitled', 'rp_payable', 'agency_fees', 'agency_enforcement',
                       'suspense', 'client_funds', 'bank_clearing')),
    case_id        text,                    -- NULL for pooled accounts (suspense, client funds, ...)
    amount_pence   bigint NOT NULL CHECK (amount_pence <> 0)
);
CREATE INDEX postings_transaction_idx ON postings (transaction_id);
CREATE INDEX postings_case_account_idx ON postings (case_id, account);

-- What the paying parent owes, per period and component, so money can be allocated oldest first.
CREATE TABLE charges (
    charge_id      bigserial PRIMARY KEY,
    transaction_id bigint NOT NULL REFERENCES transactions(transaction_id),
    case_id        text NOT NULL,
    charge_kind    text NOT NULL CHECK (charge_kind IN ('period', 'adjustment', 'enforcement')),
    period_index   integer,
    due_date       date NOT NULL,
    component      text NOT NULL CHECK (component IN ('maintenance', 'fee', 'enforcement')),
    amount_pence   bigint NOT NULL CHECK (amount_pence <> 0)
);
CREATE INDEX charges_case_idx ON charges (case_id, due_date);
-- A period is charged once, whoever asks.
CREATE UNIQUE INDEX charges_period_once ON charges (case_id, period_index, component) WHERE charge_kind = 'period';

CREATE TABLE allocations (
    allocation_id  bigserial PRIMARY KEY,
    transaction_id bigint NOT NULL REFERENCES transactions(transaction_id),
    charge_id      bigint NOT NULL REFERENCES charges(charge_id),
    amount_pence   bigint NOT NULL CHECK (amount_pence <> 0)   -- negative when a payment is returned
);
CREATE INDEX allocations_charge_idx ON allocations (charge_id);
CREATE INDEX allocations_transaction_idx ON allocations (transaction_id);

-- Schedules are versioned: a liability change appends a version; the latest is in force.
CREATE TABLE schedules (
    schedule_id     bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    fingerprint     text NOT NULL,
    case_id         text NOT NULL,
    version         integer NOT NULL,
    service_type    text NOT NULL CHECK (service_type IN ('direct_pay', 'collect_and_pay')),
    frequency       text NOT NULL,
    method          text NOT NULL,
    first_start     date NOT NULL,
    due_offset_days integer NOT NULL DEFAULT 0,
    rates           jsonb NOT NULL,         -- [{effective_from, weekly_pence, weekly_fee_pence}]
    rule_set_id     text NOT NULL,
    decision_ref    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (case_id, version)
);

-- The bank's side: every movement on the client funds account, by bank reference.
CREATE TABLE bank_movements (
    movement_id    bigserial PRIMARY KEY,
    bank_reference text NOT NULL UNIQUE,
    amount_pence   bigint NOT NULL CHECK (amount_pence <> 0),   -- in > 0, out < 0
    value_date     date NOT NULL,
    transaction_id bigint NOT NULL REFERENCES transactions(transaction_id)
);

CREATE TABLE direct_pay_reports (
    report_id       bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    fingerprint     text NOT NULL,
    case_id         text NOT NULL,
    due_date        date NOT NULL,
    received        boolean NOT NULL,
    due_pence       bigint NOT NULL CHECK (due_pence >= 0),
    amount_pence    bigint NOT NULL CHECK (amount_pence >= 0),
    reported_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX direct_pay_reports_case_idx ON direct_pay_reports (case_id, due_date);

CREATE TABLE reconciliation_runs (
    run_id  bigserial PRIMARY KEY,
    as_of   date NOT NULL,
    ran_at  timestamptz NOT NULL DEFAULT now(),
    ok      boolean NOT NULL,
    report  jsonb NOT NULL
);

-- Balance: checked when the database transaction commits (deferred), once per ledger transaction.
CREATE FUNCTION check_transaction_balances() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
DECLARE
    total bigint;
    legs  integer;
BEGIN
    SELECT coalesce(sum(amount_pence), 0), count(*) INTO total, legs
      FROM postings WHERE transaction_id = NEW.transaction_id;
    IF legs < 2 OR total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % does not balance (% legs, sum % pence)',
            NEW.idempotency_key, legs, total USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER transactions_balance AFTER INSERT ON transactions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_transaction_balances();

CREATE FUNCTION check_postings_join_new_transaction() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_postings n JOIN transactions t USING (transaction_id)
                WHERE t.created_xact <> pg_current_xact_id()) THEN
        RAISE EXCEPTION 'postings can only be added together with their transaction'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER postings_only_with_transaction AFTER INSERT ON postings
    REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT
    EXECUTE FUNCTION check_postings_join_new_transaction();

CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: post a reversing transaction instead', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['transactions', 'postings', 'charges', 'allocations', 'schedules',
                                'bank_movements', 'direct_pay_reports'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW '
                       'EXECUTE FUNCTION forbid_change()', name || '_append_only', name);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT '
                       'EXECUTE FUNCTION forbid_change()', name || '_no_truncate', name);
    END LOOP;
END $$;
