-- Read path at scale. The leaderboard averages, the AI median and the pipeline list are
-- answered from small tables that the database itself keeps in step with `events`
-- (statement triggers with transition tables), so rows written by any client — this
-- service, the original Go service during a cut-over, an operator's SQL — are counted.
-- Everything here is additive: `events`, `regions`, `job_types` and `event_details` are
-- unchanged.
--
-- Online: this migration is quick schema work only, so it never holds up writers of a live
-- database for more than a moment (creating the triggers waits for the inserts in flight and
-- holds inserts off until it commits, milliseconds). The events already stored are counted
-- afterwards, outside any long transaction, by `leaderboard_backfill_step()` in bounded
-- steps (driven by `leaderboard migrate up`, or in the background by the service); until a
-- row is counted, the reads take it from `events` directly. On a large table the raw_stats
-- index is built with CREATE INDEX CONCURRENTLY by the same driver.

-- A payload field as a number, as CAST(payload->>'x' AS FLOAT) reads it, but NULL
-- instead of an error for a value that is not numeric.
CREATE FUNCTION leaderboard_number(value jsonb) RETURNS float8
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$
SELECT CASE
           WHEN jsonb_typeof(value) = 'number' THEN (value #>> '{}')::float8
           WHEN jsonb_typeof(value) = 'string'
               AND (value #>> '{}') ~ '^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$'
               THEN (value #>> '{}')::float8
       END
$$;

-- Sums of the scored fields per time bucket (`span` 600, 3600 or 21600 s; `bucket` =
-- Unix seconds of its start) and group. A window is answered from whole buckets, largest
-- first, plus the raw events of its ragged edges.
CREATE TABLE event_buckets
(
    span            integer     NOT NULL,
    bucket          bigint      NOT NULL,
    region_id       integer     NOT NULL,
    orchestrator    varchar(56) NOT NULL,
    model           text        NOT NULL,
    pipeline        text        NOT NULL,
    events          bigint      NOT NULL,
    success_rate    float8      NOT NULL,
    round_trip_time float8      NOT NULL,
    seg_duration    float8      NOT NULL,
    PRIMARY KEY (span, model, pipeline, bucket, region_id, orchestrator)
) PARTITION BY LIST (span);
CREATE TABLE event_buckets_10m PARTITION OF event_buckets FOR VALUES IN (600);
CREATE TABLE event_buckets_1h PARTITION OF event_buckets FOR VALUES IN (3600);
CREATE TABLE event_buckets_6h PARTITION OF event_buckets FOR VALUES IN (21600);
CREATE INDEX idx_event_buckets_orchestrator ON event_buckets (orchestrator, span, bucket);

-- What the triggers append: one 600 s row per statement, bucket and group, with no index
-- to maintain and no row shared with another writer, so concurrent posts never wait on
-- one another. `leaderboard_compact()` moves them into `event_buckets` (every span) now
-- and then; readers add up both.
CREATE TABLE event_bucket_appends
(
    bucket          bigint      NOT NULL,
    region_id       integer     NOT NULL,
    orchestrator    varchar(56) NOT NULL,
    model           text        NOT NULL,
    pipeline        text        NOT NULL,
    events          bigint      NOT NULL,
    success_rate    float8      NOT NULL,
    round_trip_time float8      NOT NULL,
    seg_duration    float8      NOT NULL
);

-- AI events per bucket without the orchestrator: what /api/pipelines lists.
CREATE TABLE pipeline_buckets
(
    span      integer NOT NULL,
    bucket    bigint  NOT NULL,
    region_id integer NOT NULL,
    model     text    NOT NULL,
    pipeline  text    NOT NULL,
    events    bigint  NOT NULL,
    PRIMARY KEY (span, bucket, region_id, model, pipeline)
);
CREATE TABLE pipeline_bucket_appends
(
    bucket    bigint  NOT NULL,
    region_id integer NOT NULL,
    model     text    NOT NULL,
    pipeline  text    NOT NULL,
    events    bigint  NOT NULL
);

-- The round trips the AI median is taken over: events with a model and a pipeline,
-- success_rate 1 and a round trip other than 0.
CREATE TABLE ai_round_trips
(
    event_id        integer     PRIMARY KEY,
    event_time      timestamptz NOT NULL,
    region_id       integer     NOT NULL,
    model           text        NOT NULL,
    pipeline        text        NOT NULL,
    round_trip_time float8      NOT NULL
);
CREATE INDEX idx_ai_round_trips_pipeline ON ai_round_trips (pipeline, model, event_time)
    INCLUDE (region_id, round_trip_time);


-- How far the counting of the events stored before this migration has got. Events with
-- `id <= pending_through` are not in the rollups yet (the reads take them from `events`);
-- NULL: every event is counted. Steps count from the highest id down, so the recent events
-- that most windows cover are counted first.
CREATE TABLE leaderboard_backfill
(
    singleton       boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    pending_through integer,
    -- The ids left to count run from floor_id (exclusive) to pending_through; at the start
    -- they ran up to high_id. Progress is reported in ids of that range.
    floor_id        bigint      NOT NULL,
    high_id         bigint      NOT NULL,
    rows_done       bigint      NOT NULL DEFAULT 0,
    started_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz
);

-- Moves the appended rows into the buckets of their group, for each span
-- (every span is a multiple of 600 s, so a 600 s bucket lies within one bucket of each;
-- bucket starts are positive, so integer division floors). One compaction
-- at a time (others skip); rows of transactions not yet committed wait for the next one.
-- The sums do not change, only how many rows hold them. A large compaction (a bulk load,
-- the backfill's last steps) refreshes the planner's statistics of the rollups at once,
-- so the first reads after it already get the plan the new sizes call for.
CREATE FUNCTION leaderboard_compact() RETURNS void
    LANGUAGE plpgsql AS
$$
DECLARE
    moved bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(5497451852596) THEN
        RETURN;
    END IF;
    WITH appended AS (DELETE FROM event_bucket_appends RETURNING *)
    INSERT INTO event_buckets AS b (span, bucket, region_id, orchestrator, model, pipeline,
                                    events, success_rate, round_trip_time, seg_duration)
    SELECT s.span, a.bucket / s.span * s.span, a.region_id, a.orchestrator, a.model, a.pipeline,
           sum(a.events), sum(a.success_rate), sum(a.round_trip_time), sum(a.seg_duration)
    FROM appended a
             CROSS JOIN (VALUES (600), (3600), (21600)) AS s(span)
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 1, 5, 6, 2, 3, 4
    ON CONFLICT (span, model, pipeline, bucket, region_id, orchestrator) DO UPDATE
        SET events          = b.events + EXCLUDED.events,
            success_rate    = b.success_rate + EXCLUDED.success_rate,
            round_trip_time = b.round_trip_time + EXCLUDED.round_trip_time,
            seg_duration    = b.seg_duration + EXCLUDED.seg_duration;
    GET DIAGNOSTICS moved = ROW_COUNT;

    WITH appended AS (DELETE FROM pipeline_bucket_appends RETURNING *)
    INSERT INTO pipeline_buckets AS b (span, bucket, region_id, model, pipeline, events)
    SELECT s.span, a.bucket / s.span * s.span, a.region_id, a.model, a.pipeline, sum(a.events)
    FROM appended a
             CROSS JOIN (VALUES (600), (3600), (21600)) AS s(span)
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (span, bucket, region_id, model, pipeline) DO UPDATE
        SET events = b.events + EXCLUDED.events;

    IF moved >= 20000 THEN
        ANALYZE event_buckets, pipeline_buckets, ai_round_trips;
    END IF;
END
$$;

-- Keeps the rollups in step with every statement on `events`. It reads the statement's
-- transition tables directly (no arrays: statements of any size, spilling to disk as
-- needed) and appends one 600 s row per bucket and group; rows the backfill has not
-- counted yet are left to it.
CREATE FUNCTION leaderboard_events_changed() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    pending  integer;
    touches  boolean := false;
    appended bigint  := 0;
    groups   bigint;
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

    IF TG_OP <> 'INSERT' THEN
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
        GROUP BY 1, 2, 3, 4, 5;
        GET DIAGNOSTICS groups = ROW_COUNT;
        appended := appended + groups;

        INSERT INTO pipeline_bucket_appends (bucket, region_id, model, pipeline, events)
        SELECT (floor(extract(epoch FROM c.event_time) / 600) * 600)::bigint,
               c.region_id, c.payload ->> 'model', c.payload ->> 'pipeline', -count(*)
        FROM old_rows AS c
        WHERE c.region_id IS NOT NULL AND (pending IS NULL OR c.id > pending)
          AND c.payload ->> 'model' IS NOT NULL
          AND c.payload ->> 'pipeline' IS NOT NULL
        GROUP BY 1, 2, 3, 4;

        DELETE FROM ai_round_trips
        WHERE event_id IN (SELECT c.id FROM old_rows AS c WHERE pending IS NULL OR c.id > pending);
    END IF;

    IF TG_OP <> 'DELETE' THEN
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
        GROUP BY 1, 2, 3, 4, 5;
        GET DIAGNOSTICS groups = ROW_COUNT;
        appended := appended + groups;

        INSERT INTO pipeline_bucket_appends (bucket, region_id, model, pipeline, events)
        SELECT (floor(extract(epoch FROM c.event_time) / 600) * 600)::bigint,
               c.region_id, c.payload ->> 'model', c.payload ->> 'pipeline', count(*)
        FROM new_rows AS c
        WHERE c.region_id IS NOT NULL AND (pending IS NULL OR c.id > pending)
          AND c.payload ->> 'model' IS NOT NULL
          AND c.payload ->> 'pipeline' IS NOT NULL
        GROUP BY 1, 2, 3, 4;

        INSERT INTO ai_round_trips (event_id, event_time, region_id, model, pipeline, round_trip_time)
        SELECT c.id, c.event_time, c.region_id, c.payload ->> 'model', c.payload ->> 'pipeline',
               leaderboard_number(c.payload -> 'round_trip_time')
        FROM new_rows AS c
        WHERE c.region_id IS NOT NULL AND (pending IS NULL OR c.id > pending)
          AND c.payload ->> 'model' IS NOT NULL
          AND c.payload ->> 'pipeline' IS NOT NULL
          AND leaderboard_number(c.payload -> 'success_rate') = 1
          AND leaderboard_number(c.payload -> 'round_trip_time') <> 0;
    END IF;

    -- About once per 500 single-row posts, and after every statement that appended many
    -- groups.
    IF appended >= 500 OR random() < 0.002 THEN
        PERFORM leaderboard_compact();
    END IF;
    RETURN NULL;
END
$$;

-- One bounded step of the backfill: counts the not yet counted events with the highest
-- ids, at most `batch` ids of them, straight into the buckets of every span (no appended
-- rows to compact later: a step holds the compaction's lock instead, so it never races
-- one). One statement, so it commits on its own and a dropped connection loses only the
-- step in flight; the state row's lock makes steps one at a time. Returns the ids left to
-- count (0: done), or NULL when another step or a writer deciding on uncounted rows holds
-- the state (try again later).
CREATE FUNCTION leaderboard_backfill_step(batch integer) RETURNS bigint
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
               AND e.region_id IS NOT NULL),
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

CREATE TRIGGER leaderboard_events_inserted
    AFTER INSERT ON events REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leaderboard_events_changed();
CREATE TRIGGER leaderboard_events_updated
    AFTER UPDATE ON events REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leaderboard_events_changed();
CREATE TRIGGER leaderboard_events_deleted
    AFTER DELETE ON events REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leaderboard_events_changed();

CREATE FUNCTION leaderboard_events_truncated() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    TRUNCATE event_buckets, event_bucket_appends, pipeline_buckets, pipeline_bucket_appends,
        ai_round_trips;
    UPDATE leaderboard_backfill SET pending_through = NULL, completed_at = now();
    RETURN NULL;
END
$$;
CREATE TRIGGER leaderboard_events_truncated
    AFTER TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION leaderboard_events_truncated();

-- raw_stats reads one orchestrator's newest events of some regions. On a small table the
-- index is built here (milliseconds); on a large one CREATE INDEX would hold writers up
-- for the whole build, so the backfill's driver builds it concurrently afterwards.
DO
$$
BEGIN
    IF (SELECT count(*) FROM (SELECT 1 FROM events LIMIT 10000) AS few) < 10000 THEN
        CREATE INDEX idx_events_orchestrator_region_time ON events (orchestrator, region_id, event_time);
    END IF;
END
$$;

-- What is stored now is left to the backfill. Creating the triggers above waited for every
-- insert in flight and holds new ones off until this commits, so every row with an id up
-- to this maximum is already stored, and every row after it is counted by the triggers.
INSERT INTO leaderboard_backfill (pending_through, floor_id, high_id, completed_at)
SELECT max(id), COALESCE(min(id) - 1, 0), COALESCE(max(id), 0),
       CASE WHEN max(id) IS NULL THEN now() END
FROM events;
