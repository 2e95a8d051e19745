-- Reverts V4: the read-path rollups, the triggers that keep them and the backfill's state.
-- The original tables, their rows and the event_details view are untouched. Dropping the
-- triggers and the index takes a lock on `events` for a moment only.
DROP TRIGGER IF EXISTS leaderboard_events_truncated ON events;
DROP TRIGGER IF EXISTS leaderboard_events_deleted ON events;
DROP TRIGGER IF EXISTS leaderboard_events_updated ON events;
DROP TRIGGER IF EXISTS leaderboard_events_inserted ON events;
DROP FUNCTION IF EXISTS leaderboard_events_truncated();
DROP FUNCTION IF EXISTS leaderboard_events_changed();
DROP FUNCTION IF EXISTS leaderboard_backfill_step(integer);
DROP FUNCTION IF EXISTS leaderboard_compact();
-- The first release's helper, gone since.
DROP FUNCTION IF EXISTS leaderboard_apply(events[], integer);
DROP INDEX IF EXISTS idx_events_orchestrator_region_time;
DROP TABLE IF EXISTS leaderboard_backfill;
DROP TABLE IF EXISTS ai_round_trips;
DROP TABLE IF EXISTS pipeline_bucket_appends;
DROP TABLE IF EXISTS pipeline_buckets;
DROP TABLE IF EXISTS event_bucket_appends;
DROP TABLE IF EXISTS event_buckets;
DROP FUNCTION IF EXISTS leaderboard_number(jsonb);
