-- Ledger operations (issue 6 follow-up): suspense assignment, overpayments to the receiving
-- parent, released allocations after a backdated decrease, and frequency changes.
--
--   * suspense_assignment: money held in suspense moved to a case (links to the unidentified
--     payment through `reverses`, so an item is assigned at most once: transactions_reversed_once);
--   * rp_overpayment: maintenance already passed to the receiving parent that was then returned
--     by the bank (or reduced by a backdated decrease), recorded on rp_overpaid (debit);
--   * overpayment_recovery: each recovery of that overpayment from later collections;
--   * allocation_released: money allocated to a period whose amount a backdated decrease reduced,
--     given back to the paying parent as credit.
-- Later migrations that widen these lists must keep every value listed here.

ALTER TABLE transactions DROP CONSTRAINT IF EXISTS transactions_kind_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check CHECK (kind IN (
    'period_charge', 'schedule_adjustment', 'enforcement_charge', 'incoming_payment', 'unidentified_payment',
    'reversal', 'disbursement', 'disbursement_settled', 'credit_applied',
    'suspense_assignment', 'rp_overpayment', 'overpayment_recovery', 'allocation_released'));

ALTER TABLE postings DROP CONSTRAINT IF EXISTS postings_account_check;
ALTER TABLE postings ADD CONSTRAINT postings_account_check CHECK (account IN (
    'pp_maintenance', 'pp_fee', 'pp_enforcement', 'pp_credit', 'rp_entitled', 'rp_payable', 'agency_fees',
    'agency_enforcement', 'suspense', 'client_funds', 'bank_clearing',
    'rp_overpaid'));

-- A frequency change starts a new segment of periods: its first period has global index
-- index_base, so period indices stay unique and increasing across frequencies.
ALTER TABLE schedules ADD COLUMN index_base integer NOT NULL DEFAULT 0 CHECK (index_base >= 0);
