-- Reverts V7: the AI median's index by region goes (built by V7 itself or by the backfill's
-- finish; the median is then planned on `idx_ai_round_trips_pipeline` again, same answers).
-- Dropping it takes a lock on `ai_round_trips` for a moment only. A finish interrupted
-- mid-build leaves nothing else behind.
DROP INDEX IF EXISTS idx_ai_round_trips_region;
