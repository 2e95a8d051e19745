-- Reverts V1 (the schema), as the original service's golang-migrate down script did:
-- the views, the five indexes and the three tables, with every event and region in them.
-- No CASCADE: anything else built on these tables (a later migration that was not
-- reverted first, a hand-made view) makes this fail, and the whole revert rolls back.

DROP VIEW IF EXISTS pipelines;
DROP VIEW IF EXISTS event_details;

DROP INDEX IF EXISTS idx_events_payload_model;
DROP INDEX IF EXISTS idx_events_payload_pipeline;
DROP INDEX IF EXISTS idx_events_timestamp;
DROP INDEX IF EXISTS idx_events_orchestrator;
DROP INDEX IF EXISTS idx_events_region_id;

DROP TABLE IF EXISTS events;
DROP TABLE IF EXISTS regions;
DROP TABLE IF EXISTS job_types;
