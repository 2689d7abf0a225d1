-- Two different amounts for a backdated change, named apart (issue 7):
-- adjustment_pence: the change's own measure, the weekly difference for each day from the
--   effective date to the day the change cleared (liability only);
-- arrears_pence: what the backdating adds (+) or takes off (-) for payments already due when the
--   case applied it, period by period with the collection fee, as payments charges them. On
--   Collect & Pay the ledger posts it as schedule adjustments (the ledger is the source of truth
--   for money); on Direct Pay there is no ledger, and the parents' letter states it.
ALTER TABLE change_records ADD COLUMN arrears_pence bigint;
COMMENT ON COLUMN change_records.adjustment_pence IS
    'Weekly liability difference x days from the effective date to the day the change cleared, /7';
COMMENT ON COLUMN change_records.arrears_pence IS
    'Owed (+) or overpaid (-) for payments already due when the case applied the change: per period, fee included';
