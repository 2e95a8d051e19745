-- Unscored tests, and a record of the backfill's finish.
--
-- Unscored tests: the 2026 AI tester posts a test it must not count (the orchestrator was
-- busy, the outcome indeterminate) with neither `success_rate` nor `round_trip_time`. Such
-- a row is stored and returned by raw_stats, and counted nowhere else: not in the
-- leaderboard's averages, the AI median or the pipeline list. The original service counts
-- it as a failure (success 0); this is deliberate. Rows written by anyone (the original
-- service during a cut-over, an operator's SQL) are judged by the same rule.
--
-- The rollups counted such rows until now, so they are counted again from `events`: the
-- same online backfill as V4's (bounded steps, newest first, reads exact meanwhile by
-- taking the uncounted events from `events`). This migration itself only swaps functions
-- and empties the rollups, holding inserts off for milliseconds.

-- Waits for the inserts in flight and holds new ones off until this commits, so every
-- row up to the maximum id below is stored, and every later one is counted by the new
-- trigger function.
-- First of all: a writer's trigger reads leaderboard_backfill, which is altered below.
LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE;

-- Whether a stored payload is a scored test: it has a success rate or a round trip
-- (absent and JSON null alike are neither).
CREATE FUNCTION leaderboard_scored(payload jsonb) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$
SELECT payload ->> 'success_rate' IS NOT NULL OR payload ->> 'round_trip_time' IS NOT NULL
$$;

-- When the finish after the last count (the raw_stats index, fresh statistics) was done,
-- by whichever process did it: the others see it is done and need not repeat it.
ALTER TABLE leaderboard_backfill ADD COLUMN finished_at timestamptz;

-- A statement of 10,000 rows or more that gets the compaction's lock at once (no compaction
-- or backfill step in progress) writes its sums straight into the buckets of every span, as
-- leaderboard_compact() would move them, instead of appending them: an import of a million
-- events appended about a million rows and compacted them with DELETE … RETURNING, leaving
-- the appended tables (which every read scans whole) full of dead rows until a VACUUM. The
-- lock, as the compaction's, is held until the transaction ends. Such a statement also
-- refreshes the planner's statistics it made stale, so the reads right after it get the
-- plans they get after a VACUUM ANALYZE: the rollups and `ai_round_trips` when it wrote
-- 20,000 bucket rows or more (as a large compaction does), and `events` (only the columns
-- the reads' plans filter on: id, time, region, orchestrator; autovacuum analyzes the rest
-- later) when it changed a tenth of its rows or more. Tables another session is analyzing or
-- vacuuming right then are skipped rather than waited for.
CREATE OR REPLACE FUNCTION leaderboard_events_changed() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    pending  integer;
    touches  boolean := false;
    appended bigint  := 0;
    groups   bigint;
    large    boolean;
    side     text;
    changed  bigint  := 0;
    moved    bigint  := 0;
    rows     bigint;
    known    float8;
BEGIN
    -- While the backfill runs, a statement touching rows it has not passed yet decides
    -- which of them are counted under a share lock on its state: a step in progress
    -- finishes first, and no step starts until this transaction ends.
    SELECT b.pending_through INTO pending FROM leaderboard_backfill b;
    IF pending IS NOT NULL THEN
        IF TG_OP <> 'INSERT' THEN
            touches := EXISTS (SELECT 1 FROM old_rows o WHERE o.id <= pending);
        END IF;
        IF NOT touches AND TG_OP <> 'DELETE' THEN
            touches := EXISTS (SELECT 1 FROM new_rows n WHERE n.id <= pending);
        END IF;
        IF touches THEN
            SELECT b.pending_through INTO pending FROM leaderboard_backfill b FOR SHARE;
        END IF;
    END IF;

    IF TG_OP = 'INSERT' THEN
        large := EXISTS (SELECT 1 FROM new_rows OFFSET 9999);
    ELSE
        large := EXISTS (SELECT 1 FROM old_rows OFFSET 9999);
    END IF;
    large := large AND pg_try_advisory_xact_lock(5497451852596);

    IF large THEN
        FOREACH side IN ARRAY CASE TG_OP WHEN 'INSERT' THEN ARRAY['new_rows']
                                         WHEN 'DELETE' THEN ARRAY['old_rows']
                                         ELSE ARRAY['old_rows', 'new_rows'] END
        LOOP
            EXECUTE format($sql$
                WITH g AS MATERIALIZED (
                         SELECT (floor(extract(epoch FROM c.event_time) / 600) * 600)::bigint AS bucket,
                                c.region_id, c.orchestrator,
                                COALESCE(c.payload ->> 'model', '') AS model,
                                COALESCE(c.payload ->> 'pipeline', '') AS pipeline,
                                $2 * count(*) AS events,
                                $3 * sum(COALESCE(leaderboard_number(c.payload -> 'success_rate'), 0)) AS success_rate,
                                $3 * sum(COALESCE(leaderboard_number(c.payload -> 'round_trip_time'), 0)) AS round_trip_time,
                                $3 * sum(COALESCE(leaderboard_number(c.payload -> 'seg_duration'), 0)) AS seg_duration
                         FROM %1$I AS c
                         WHERE c.region_id IS NOT NULL AND ($1::integer IS NULL OR c.id > $1)
                           AND leaderboard_scored(c.payload)
                         GROUP BY 1, 2, 3, 4, 5),
                     sums AS (
                         INSERT INTO event_buckets AS b (span, bucket, region_id, orchestrator, model,
                                                         pipeline, events, success_rate,
                                                         round_trip_time, seg_duration)
                         SELECT s.span, g.bucket / s.span * s.span, g.region_id, g.orchestrator,
                                g.model, g.pipeline, sum(g.events), sum(g.success_rate),
                                sum(g.round_trip_time), sum(g.seg_duration)
                         FROM g
                                  CROSS JOIN (VALUES (600), (3600), (21600)) AS s(span)
                         GROUP BY 1, 2, 3, 4, 5, 6
                         ORDER BY 1, 5, 6, 2, 3, 4
                         ON CONFLICT (span, model, pipeline, bucket, region_id, orchestrator) DO UPDATE
                             SET events          = b.events + EXCLUDED.events,
                                 success_rate    = b.success_rate + EXCLUDED.success_rate,
                                 round_trip_time = b.round_trip_time + EXCLUDED.round_trip_time,
                                 seg_duration    = b.seg_duration + EXCLUDED.seg_duration
                         RETURNING 1),
                     pipelines AS (
                         INSERT INTO pipeline_buckets AS b (span, bucket, region_id, model, pipeline,
                                                            events)
                         SELECT s.span, p.bucket / s.span * s.span, p.region_id, p.model, p.pipeline,
                                sum(p.events)
                         FROM (SELECT (floor(extract(epoch FROM c.event_time) / 600) * 600)::bigint AS bucket,
                                      c.region_id, c.payload ->> 'model' AS model,
                                      c.payload ->> 'pipeline' AS pipeline, $2 * count(*) AS events
                               FROM %1$I AS c
                               WHERE c.region_id IS NOT NULL AND ($1::integer IS NULL OR c.id > $1)
                                 AND leaderboard_scored(c.payload)
                                 AND c.payload ->> 'model' IS NOT NULL
                                 AND c.payload ->> 'pipeline' IS NOT NULL
                               GROUP BY 1, 2, 3, 4) AS p
                                  CROSS JOIN (VALUES (600), (3600), (21600)) AS s(span)
                         GROUP BY 1, 2, 3, 4, 5
                         ORDER BY 1, 2, 3, 4, 5
                         ON CONFLICT (span, bucket, region_id, model, pipeline) DO UPDATE
                             SET events = b.events + EXCLUDED.events)
                SELECT (SELECT count(*) FROM sums), (SELECT count(*) FROM %1$I)
                $sql$, side)
                INTO groups, rows
                USING pending, CASE side WHEN 'old_rows' THEN -1 ELSE 1 END::bigint,
                      CASE side WHEN 'old_rows' THEN -1 ELSE 1 END::float8;
            moved := moved + groups;
            changed := greatest(changed, rows);
        END LOOP;
    END IF;

    IF TG_OP <> 'INSERT' THEN
        IF NOT large THEN
            INSERT INTO event_bucket_appends (bucket, region_id, orchestrator, model, pipeline,
                                              events, success_rate, round_trip_time, seg_duration)
            SELECT (floor(extract(epoch FROM c.event_time) / 600) * 600)::bigint,
                   c.region_id, c.orchestrator,
                   COALESCE(c.payload ->> 'model', ''), COALESCE(c.payload ->> 'pipeline', ''),
                   -count(*),
                   -sum(COALESCE(leaderboard_number(c.payload -> 'success_rate'), 0)),
                   -sum(COALESCE(leaderboard_number(c.payload -> 'round_trip_time'), 0)),
                   -sum(COALESCE(leaderboard_number(c.payload -> 'seg_duration'), 0))
            FROM old_rows AS c
            WHERE c.region_id IS NOT NULL AND (pending IS NULL OR c.id > pending)
              AND leaderboard_scored(c.payload)
            GROUP BY 1, 2, 3, 4, 5;
            GET DIAGNOSTICS groups = ROW_COUNT;
            appended := appended + groups;

            INSERT INTO pipeline_bucket_appends (bucket, region_id, model, pipeline, events)
            SELECT (floor(extract(epoch FROM c.event_time) / 600) * 600)::bigint,
                   c.region_id, c.payload ->> 'model', c.payload ->> 'pipeline', -count(*)
            FROM old_rows AS c
            WHERE c.region_id IS NOT NULL AND (pending IS NULL OR c.id > pending)
              AND leaderboard_scored(c.payload)
              AND c.payload ->> 'model' IS NOT NULL
              AND c.payload ->> 'pipeline' IS NOT NULL
            GROUP BY 1, 2, 3, 4;
        END IF;

        DELETE FROM ai_round_trips
        WHERE event_id IN (SELECT c.id FROM old_rows AS c WHERE pending IS NULL OR c.id > pending);
    END IF;

    IF TG_OP <> 'DELETE' THEN
        IF NOT large THEN
            INSERT INTO event_bucket_appends (bucket, region_id, orchestrator, model, pipeline,
                                              events, success_rate, round_trip_time, seg_duration)
            SELECT (floor(extract(epoch FROM c.event_time) / 600) * 600)::bigint,
                   c.region_id, c.orchestrator,
                   COALESCE(c.payload ->> 'model', ''), COALESCE(c.payload ->> 'pipeline', ''),
                   count(*),
                   sum(COALESCE(leaderboard_number(c.payload -> 'success_rate'), 0)),
                   sum(COALESCE(leaderboard_number(c.payload -> 'round_trip_time'), 0)),
                   sum(COALESCE(leaderboard_number(c.payload -> 'seg_duration'), 0))
            FROM new_rows AS c
            WHERE c.region_id IS NOT NULL AND (pending IS NULL OR c.id > pending)
              AND leaderboard_scored(c.payload)
            GROUP BY 1, 2, 3, 4, 5;
            GET DIAGNOSTICS groups = ROW_COUNT;
            appended := appended + groups;

            INSERT INTO pipeline_bucket_appends (bucket, region_id, model, pipeline, events)
            SELECT (floor(extract(epoch FROM c.event_time) / 600) * 600)::bigint,
                   c.region_id, c.payload ->> 'model', c.payload ->> 'pipeline', count(*)
            FROM new_rows AS c
            WHERE c.region_id IS NOT NULL AND (pending IS NULL OR c.id > pending)
              AND leaderboard_scored(c.payload)
              AND c.payload ->> 'model' IS NOT NULL
              AND c.payload ->> 'pipeline' IS NOT NULL
            GROUP BY 1, 2, 3, 4;
        END IF;

        INSERT INTO ai_round_trips (event_id, event_time, region_id, model, pipeline, round_trip_time)
        SELECT c.id, c.event_time, c.region_id, c.payload ->> 'model', c.payload ->> 'pipeline',
               leaderboard_number(c.payload -> 'round_trip_time')
        FROM new_rows AS c
        WHERE c.region_id IS NOT NULL AND (pending IS NULL OR c.id > pending)
          AND c.payload ->> 'model' IS NOT NULL
          AND c.payload ->> 'pipeline' IS NOT NULL
          AND leaderboard_number(c.payload -> 'success_rate') = 1
          AND leaderboard_number(c.payload -> 'round_trip_time') <> 0
        -- In the order of the median's index: after a large statement, until a VACUUM sets
        -- the visibility map, the median reads these rows from the heap, and then one
        -- model's window is a few neighbouring pages instead of pages all over the table.
        ORDER BY 4, 5, 2;
    END IF;

    IF large THEN
        IF moved >= 20000 THEN
            ANALYZE (SKIP_LOCKED) event_buckets, pipeline_buckets, ai_round_trips;
        END IF;
        SELECT c.reltuples INTO known FROM pg_class c WHERE c.oid = 'events'::regclass;
        IF changed >= 0.1 * known THEN
            ANALYZE (SKIP_LOCKED) events (id, event_time, region_id, orchestrator);
        END IF;
    -- About once per 500 single-row posts, and after every statement that appended many
    -- groups.
    ELSIF appended >= 500 OR random() < 0.002 THEN
        PERFORM leaderboard_compact();
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION leaderboard_backfill_step(batch integer) RETURNS bigint
    LANGUAGE plpgsql AS
$$
DECLARE
    state   leaderboard_backfill;
    low     bigint;
    counted bigint;
BEGIN
    SELECT * INTO state FROM leaderboard_backfill FOR NO KEY UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF state.pending_through IS NULL THEN
        RETURN 0;
    END IF;
    -- Never waits for a compaction (whose writer may be waiting for this row): busy instead.
    IF NOT pg_try_advisory_xact_lock(5497451852596) THEN
        RETURN NULL;
    END IF;
    low := state.pending_through::bigint - greatest(batch, 1);
    IF low <= state.floor_id THEN
        -- The last step takes every id below, also rows given explicit low ids meanwhile.
        low := NULL;
    END IF;

    WITH c AS MATERIALIZED (
             SELECT e.id, e.event_time, e.region_id, e.orchestrator,
                    (floor(extract(epoch FROM e.event_time) / 600) * 600)::bigint AS bucket,
                    e.payload ->> 'model' AS model, e.payload ->> 'pipeline' AS pipeline,
                    COALESCE(leaderboard_number(e.payload -> 'success_rate'), 0) AS success_rate,
                    leaderboard_number(e.payload -> 'round_trip_time') AS round_trip_time,
                    COALESCE(leaderboard_number(e.payload -> 'seg_duration'), 0) AS seg_duration
             FROM events e
             WHERE e.id <= state.pending_through
               AND e.id > COALESCE(low, -2147483649)
               AND e.region_id IS NOT NULL
               AND leaderboard_scored(e.payload)),
         sums AS (
             INSERT INTO event_buckets AS b (span, bucket, region_id, orchestrator, model, pipeline,
                                             events, success_rate, round_trip_time, seg_duration)
             SELECT s.span, c.bucket / s.span * s.span, c.region_id, c.orchestrator,
                    COALESCE(c.model, ''), COALESCE(c.pipeline, ''), count(*), sum(c.success_rate),
                    sum(COALESCE(c.round_trip_time, 0)), sum(c.seg_duration)
             FROM c
                      CROSS JOIN (VALUES (600), (3600), (21600)) AS s(span)
             GROUP BY 1, 2, 3, 4, 5, 6
             ORDER BY 1, 5, 6, 2, 3, 4
             ON CONFLICT (span, model, pipeline, bucket, region_id, orchestrator) DO UPDATE
                 SET events          = b.events + EXCLUDED.events,
                     success_rate    = b.success_rate + EXCLUDED.success_rate,
                     round_trip_time = b.round_trip_time + EXCLUDED.round_trip_time,
                     seg_duration    = b.seg_duration + EXCLUDED.seg_duration),
         pipelines AS (
             INSERT INTO pipeline_buckets AS b (span, bucket, region_id, model, pipeline, events)
             SELECT s.span, c.bucket / s.span * s.span, c.region_id, c.model, c.pipeline, count(*)
             FROM c
                      CROSS JOIN (VALUES (600), (3600), (21600)) AS s(span)
             WHERE c.model IS NOT NULL AND c.pipeline IS NOT NULL
             GROUP BY 1, 2, 3, 4, 5
             ORDER BY 1, 2, 3, 4, 5
             ON CONFLICT (span, bucket, region_id, model, pipeline) DO UPDATE
                 SET events = b.events + EXCLUDED.events),
         round_trips AS (
             INSERT INTO ai_round_trips (event_id, event_time, region_id, model, pipeline,
                                         round_trip_time)
             SELECT c.id, c.event_time, c.region_id, c.model, c.pipeline, c.round_trip_time
             FROM c
             WHERE c.model IS NOT NULL AND c.pipeline IS NOT NULL
               AND c.success_rate = 1 AND c.round_trip_time <> 0)
    SELECT count(*) INTO counted FROM c;

    UPDATE leaderboard_backfill
    SET pending_through = low,
        rows_done       = rows_done + counted,
        completed_at    = CASE WHEN low IS NULL THEN now() END;
    RETURN COALESCE(low - state.floor_id, 0);
END
$$;

-- Everything stored is counted again by the backfill, under the rule above.
TRUNCATE event_buckets, event_bucket_appends, pipeline_buckets, pipeline_bucket_appends,
    ai_round_trips;
UPDATE leaderboard_backfill
SET pending_through = e.high,
    floor_id        = COALESCE(e.low - 1, 0),
    high_id         = COALESCE(e.high, 0),
    rows_done       = 0,
    started_at      = now(),
    completed_at    = CASE WHEN e.high IS NULL THEN now() END,
    finished_at     = CASE WHEN e.high IS NULL THEN now() END
FROM (SELECT min(id) AS low, max(id) AS high FROM events) AS e;

-- The reference tables were never analyzed (26 seeded regions stay under autovacuum's
-- threshold of 50 changed rows), so until a manual ANALYZE the planner guessed 180 regions
-- and one row of a region scope, and read the buckets of every region in a loop: 4x the
-- time of the analyzed plan for aggregated_stats right after the first large import.
ANALYZE (SKIP_LOCKED) regions, job_types, leaderboard_backfill;
