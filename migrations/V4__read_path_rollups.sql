-- Read path at scale. The leaderboard averages, the AI median and the pipeline list are
-- answered from small tables that the database itself keeps in step with `events`
-- (statement triggers with transition tables), so rows written by any client — this
-- service, the original Go service during a cut-over, an operator's SQL — are counted.
-- Everything here is additive: `events`, `regions`, `job_types` and `event_details` are
-- unchanged.

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

-- raw_stats reads one orchestrator's newest events of some regions.
CREATE INDEX idx_events_orchestrator_region_time ON events (orchestrator, region_id, event_time);

-- Adds (sign 1) or removes (sign -1) events: appends their sums, one 600 s row per
-- bucket and group.
CREATE FUNCTION leaderboard_apply(changed events[], sign integer) RETURNS void
    LANGUAGE plpgsql AS
$$
BEGIN
    INSERT INTO event_bucket_appends (bucket, region_id, orchestrator, model, pipeline,
                                      events, success_rate, round_trip_time, seg_duration)
    SELECT (floor(extract(epoch FROM c.event_time) / 600) * 600)::bigint,
           c.region_id, c.orchestrator,
           COALESCE(c.payload ->> 'model', ''), COALESCE(c.payload ->> 'pipeline', ''),
           sign * count(*),
           sign * sum(COALESCE(leaderboard_number(c.payload -> 'success_rate'), 0)),
           sign * sum(COALESCE(leaderboard_number(c.payload -> 'round_trip_time'), 0)),
           sign * sum(COALESCE(leaderboard_number(c.payload -> 'seg_duration'), 0))
    FROM unnest(changed) AS c
    WHERE c.region_id IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5;

    INSERT INTO pipeline_bucket_appends (bucket, region_id, model, pipeline, events)
    SELECT (floor(extract(epoch FROM c.event_time) / 600) * 600)::bigint,
           c.region_id, c.payload ->> 'model', c.payload ->> 'pipeline', sign * count(*)
    FROM unnest(changed) AS c
    WHERE c.region_id IS NOT NULL
      AND c.payload ->> 'model' IS NOT NULL
      AND c.payload ->> 'pipeline' IS NOT NULL
    GROUP BY 1, 2, 3, 4;

    IF sign < 0 THEN
        DELETE FROM ai_round_trips WHERE event_id IN (SELECT c.id FROM unnest(changed) AS c);
    ELSE
        INSERT INTO ai_round_trips (event_id, event_time, region_id, model, pipeline, round_trip_time)
        SELECT c.id, c.event_time, c.region_id, c.payload ->> 'model', c.payload ->> 'pipeline',
               leaderboard_number(c.payload -> 'round_trip_time')
        FROM unnest(changed) AS c
        WHERE c.region_id IS NOT NULL
          AND c.payload ->> 'model' IS NOT NULL
          AND c.payload ->> 'pipeline' IS NOT NULL
          AND leaderboard_number(c.payload -> 'success_rate') = 1
          AND leaderboard_number(c.payload -> 'round_trip_time') <> 0;
    END IF;
END
$$;

-- Moves the appended rows into the buckets of their group, for each span
-- (every span is a multiple of 600 s, so a 600 s bucket lies within one bucket of each;
-- bucket starts are positive, so integer division floors). One compaction
-- at a time (others skip); rows of transactions not yet committed wait for the next one.
-- The sums do not change, only how many rows hold them.
CREATE FUNCTION leaderboard_compact() RETURNS void
    LANGUAGE plpgsql AS
$$
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

    WITH appended AS (DELETE FROM pipeline_bucket_appends RETURNING *)
    INSERT INTO pipeline_buckets AS b (span, bucket, region_id, model, pipeline, events)
    SELECT s.span, a.bucket / s.span * s.span, a.region_id, a.model, a.pipeline, sum(a.events)
    FROM appended a
             CROSS JOIN (VALUES (600), (3600), (21600)) AS s(span)
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (span, bucket, region_id, model, pipeline) DO UPDATE
        SET events = b.events + EXCLUDED.events;
END
$$;

CREATE FUNCTION leaderboard_events_changed() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    changed events[];
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM leaderboard_apply(ARRAY(SELECT o::events FROM old_rows AS o), -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        changed := ARRAY(SELECT n::events FROM new_rows AS n);
        PERFORM leaderboard_apply(changed, 1);
    END IF;
    -- About once per 500 single-row posts, and after every bulk statement.
    IF cardinality(changed) >= 500 OR random() < 0.002 THEN
        PERFORM leaderboard_compact();
    END IF;
    RETURN NULL;
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
    RETURN NULL;
END
$$;
CREATE TRIGGER leaderboard_events_truncated
    AFTER TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION leaderboard_events_truncated();

-- The events stored before this migration, counted in batches.
DO
$$
DECLARE
    low  integer := 0;
    high integer := (SELECT COALESCE(MAX(id), 0) FROM events);
BEGIN
    WHILE low < high LOOP
        PERFORM leaderboard_apply(
                ARRAY(SELECT e FROM events AS e WHERE e.id > low AND e.id <= low + 50000), 1);
        low := low + 50000;
    END LOOP;
    PERFORM leaderboard_compact();
END
$$;
