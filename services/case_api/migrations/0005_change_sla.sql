-- The SLA view of changes is computed in SQL (activities.changes.load_sla_report). Two facts it
-- relies on, enforced here rather than assumed:
-- * a change is cleared exactly when it has a clearance time (open = cleared_at IS NULL);
-- * a case-calendar day is never longer than a real day, so "cleared in the last 4 weeks of its
--   calendar" is bounded by "cleared in the last 4 real weeks", which the cleared_at index serves.
ALTER TABLE change_records
    ADD CONSTRAINT change_records_cleared_has_time CHECK ((status = 'cleared') = (cleared_at IS NOT NULL)),
    ADD CONSTRAINT change_records_day_at_most_real CHECK (seconds_per_day <= 86400);

-- Each branch of the SLA counts, and the ranking of the oldest open changes, reads only its
-- partial index (index-only once vacuumed); these replace the plain ones of 0002.
DROP INDEX change_records_open_idx;
DROP INDEX change_records_cleared_idx;
CREATE INDEX change_records_open_sla_idx ON change_records (received_at)
    INCLUDE (seconds_per_day, case_id, change_no) WHERE status <> 'cleared';
CREATE INDEX change_records_cleared_sla_idx ON change_records (cleared_at) INCLUDE (received_at, seconds_per_day)
    WHERE status = 'cleared';
