-- A post counts once, and every row says which key let it in.
--
-- One receipt per stored post: the digest of the body's exact bytes (the first 16 bytes of
-- its SHA-256), the `events` row it stored, and the identifier of the key whose signature
-- verified it (never the key). The post path claims the digest and stores the row in one
-- call, so a body posted again (replayed by anyone who saw it, or sent twice by a tester
-- whose answer was lost) finds its receipt and stores nothing, however late or concurrent
-- the repeat. A receipt outlives its row: a row removed after a key leaked stays removed
-- when its body is replayed.
--
-- Rows written by anyone else (the original service during a cut-over, an operator's SQL,
-- rows stored before this migration) have no receipt: they are never refused as repeats and
-- belong to no key.
--
-- 16 bytes of SHA-256 are plenty to tell bodies apart (two distinct bodies share them with a
-- chance of 2^-128; a collision on purpose takes about 2^64 tries and a valid signature) and
-- keep the receipt at about 120 bytes with its index. There is no index on the key: finding
-- a key's rows is an operator's rare clean-up (one scan), while every post would pay for it.
--
-- Online: a new, empty table and two functions; `events` keeps its rows and columns, and
-- its insert trigger gains a condition (replacing it holds inserts off for a moment).
CREATE TABLE post_receipts
(
    digest   bytea   PRIMARY KEY CHECK (octet_length(digest) = 16),
    event_id integer NOT NULL,
    key_id   text    NOT NULL
);

-- A lone post counts its own row into the rollups. The statement trigger of V4/V5 reads
-- every statement's rows back from its transition table, about 75 us of a lone post's 140
-- in the database; for one row whose values are at hand that is a few single-row inserts.
-- The trigger is told through a transaction-local setting and is then not called for that
-- statement; every other statement on `events` (this service's batches, the original
-- service, an operator's SQL) is counted by the trigger as before.
CREATE OR REPLACE TRIGGER leaderboard_events_inserted
    AFTER INSERT ON events REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    WHEN (current_setting('leaderboard.counted_by_caller', true) IS DISTINCT FROM 'on')
EXECUTE FUNCTION leaderboard_events_changed();

-- Stores one post unless its digest was received before; returns the rows stored (1 or 0).
-- A copy of the same body in flight in another transaction is waited for: this one stores
-- nothing if that one commits. The row is counted as leaderboard_events_changed() (V5)
-- counts one: after the insert, so that no recount can begin in between; not at all when
-- the backfill has its id still to count (deciding under a share lock on the backfill's
-- state, as the trigger does); its sums appended to the 600 s bucket of its time when it
-- is scored, to the pipelines when it has a model and a pipeline, its round trip to the AI
-- median's when it is a success with one; a compaction about once in 500 posts. In
-- PL/pgSQL so that its statements are planned once per connection, not once per post.
CREATE FUNCTION leaderboard_store_post(new_digest bytea, new_key_id text, new_orchestrator text,
                                       new_region_id integer, new_payload jsonb) RETURNS integer
    LANGUAGE plpgsql AS
$$
DECLARE
    claimed      integer;
    pending      integer;
    bucket       bigint;
    new_model    text := new_payload ->> 'model';
    new_pipeline text := new_payload ->> 'pipeline';
BEGIN
    INSERT INTO post_receipts (digest, event_id, key_id)
    VALUES (new_digest, nextval('events_id_seq'), new_key_id)
    ON CONFLICT (digest) DO NOTHING
    RETURNING event_id INTO claimed;
    IF claimed IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM set_config('leaderboard.counted_by_caller', 'on', true);
    INSERT INTO events (id, orchestrator, region_id, payload)
    VALUES (claimed, new_orchestrator, new_region_id, new_payload);
    PERFORM set_config('leaderboard.counted_by_caller', 'off', true);

    SELECT b.pending_through INTO pending FROM leaderboard_backfill b;
    IF pending IS NOT NULL AND claimed <= pending THEN
        SELECT b.pending_through INTO pending FROM leaderboard_backfill b FOR SHARE;
        IF pending IS NOT NULL AND claimed <= pending THEN
            RETURN 1;
        END IF;
    END IF;
    IF new_region_id IS NULL THEN
        RETURN 1;
    END IF;
    bucket := (floor(extract(epoch FROM now()) / 600) * 600)::bigint;
    IF leaderboard_scored(new_payload) THEN
        INSERT INTO event_bucket_appends (bucket, region_id, orchestrator, model, pipeline,
                                          events, success_rate, round_trip_time, seg_duration)
        VALUES (bucket, new_region_id, new_orchestrator, COALESCE(new_model, ''),
                COALESCE(new_pipeline, ''), 1,
                COALESCE(leaderboard_number(new_payload -> 'success_rate'), 0),
                COALESCE(leaderboard_number(new_payload -> 'round_trip_time'), 0),
                COALESCE(leaderboard_number(new_payload -> 'seg_duration'), 0));
        IF new_model IS NOT NULL AND new_pipeline IS NOT NULL THEN
            INSERT INTO pipeline_bucket_appends (bucket, region_id, model, pipeline, events)
            VALUES (bucket, new_region_id, new_model, new_pipeline, 1);
        END IF;
    END IF;
    IF new_model IS NOT NULL AND new_pipeline IS NOT NULL
        AND leaderboard_number(new_payload -> 'success_rate') = 1
        AND leaderboard_number(new_payload -> 'round_trip_time') <> 0 THEN
        INSERT INTO ai_round_trips (event_id, event_time, region_id, model, pipeline, round_trip_time)
        VALUES (claimed, now(), new_region_id, new_model, new_pipeline,
                leaderboard_number(new_payload -> 'round_trip_time'));
    END IF;
    IF random() < 0.002 THEN
        PERFORM leaderboard_compact();
    END IF;
    RETURN 1;
END
$$;

-- The same for a batch of posts with distinct digests, in one statement (one run of the
-- rollups' statement trigger); returns the rows stored. Digests are claimed in their
-- order, so two batches sharing digests wait for each other instead of deadlocking.
CREATE FUNCTION leaderboard_store_posts(new_digests bytea[], new_key_ids text[],
                                        new_orchestrators text[], new_region_ids integer[],
                                        new_payloads jsonb[]) RETURNS bigint
    LANGUAGE plpgsql AS
$$
DECLARE
    stored bigint;
BEGIN
    WITH posted AS (
             SELECT *
             FROM unnest(new_digests, new_key_ids, new_orchestrators, new_region_ids, new_payloads)
                      AS p(digest, key_id, orchestrator, region_id, payload)),
         claimed AS (
             INSERT INTO post_receipts (digest, event_id, key_id)
             SELECT p.digest, nextval('events_id_seq'), p.key_id FROM posted p ORDER BY p.digest
             ON CONFLICT (digest) DO NOTHING
             RETURNING digest, event_id)
    INSERT INTO events (id, orchestrator, region_id, payload)
    SELECT c.event_id, p.orchestrator, p.region_id, p.payload
    FROM claimed c
             JOIN posted p ON p.digest = c.digest
    ORDER BY c.event_id;
    GET DIAGNOSTICS stored = ROW_COUNT;
    RETURN stored;
END
$$;
