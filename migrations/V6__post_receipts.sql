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
-- Online: a new, empty table and two functions; `events` is not touched.
CREATE TABLE post_receipts
(
    digest   bytea   PRIMARY KEY CHECK (octet_length(digest) = 16),
    event_id integer NOT NULL,
    key_id   text    NOT NULL
);

-- Stores one post unless its digest was received before; returns the rows stored (1 or 0).
-- A copy of the same body in flight in another transaction is waited for: this one stores
-- nothing if that one commits. In PL/pgSQL so that its two statements are planned once per
-- connection, not once per post.
CREATE FUNCTION leaderboard_store_post(new_digest bytea, new_key_id text, new_orchestrator text,
                                       new_region_id integer, new_payload jsonb) RETURNS integer
    LANGUAGE plpgsql AS
$$
DECLARE
    claimed integer;
BEGIN
    INSERT INTO post_receipts (digest, event_id, key_id)
    VALUES (new_digest, nextval('events_id_seq'), new_key_id)
    ON CONFLICT (digest) DO NOTHING
    RETURNING event_id INTO claimed;
    IF claimed IS NULL THEN
        RETURN 0;
    END IF;
    INSERT INTO events (id, orchestrator, region_id, payload)
    VALUES (claimed, new_orchestrator, new_region_id, new_payload);
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
