-- Collect & Pay: the first collection falls due no earlier than 10 working days after the payment
-- schedule letter. What fell due from the schedule's start until then is initial arrears, spread
-- over the instalments of the first 52-week period (domain/payments/schedule.py,
-- with_initial_arrears). NULL: every period falls due on its own (Direct Pay, and schedules
-- created before this column).
ALTER TABLE schedules ADD COLUMN first_collection date;
