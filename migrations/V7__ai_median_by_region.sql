-- The AI median of one region reads only that region's round trips.
--
-- The median's index `idx_ai_round_trips_pipeline (pipeline, model, event_time)` leads with
-- the time, so one region's median read every AI region's round trips of the window and
-- kept a few (at 1 M events over 24 h: 101,000 index entries read for 25,700 kept). This
-- index has the region before the time: one region's window is one range of it, and the
-- round trip is in the index, so the median reads no table page once a VACUUM has set the
-- visibility map. The old index stays: it still serves the medians over every AI region.
--
-- Online: on a table of 10,000 round trips or more, CREATE INDEX here would hold every
-- writer of `ai_round_trips` (each post with a successful AI test) up for the whole build,
-- so it is left to the backfill's finish, which builds it with CREATE INDEX CONCURRENTLY
-- (one process at a time, an invalid leftover rebuilt) and reports it in `/api/health`'s
-- `index_ready`. Until then the reads are the same SQL, only planned on the old index.
DO
$$
BEGIN
    IF (SELECT count(*) FROM (SELECT 1 FROM ai_round_trips LIMIT 10000) AS few) < 10000 THEN
        CREATE INDEX idx_ai_round_trips_region
            ON ai_round_trips (pipeline, model, region_id, event_time) INCLUDE (round_trip_time);
    ELSE
        -- A database whose finish ran already gets the index from the next one.
        UPDATE leaderboard_backfill SET finished_at = NULL;
    END IF;
END
$$;
