-- A post counts once, and every row says which key let it in.
--
-- One receipt per stored post: the SHA-256 of the body's exact bytes, the `events` row it
-- stored, and the identifier of the key whose signature verified it (never the key). The
-- post path claims the digest and stores the row in one statement, so a body posted again
-- (replayed by anyone who saw it, or sent twice by a tester whose answer was lost) finds its
-- receipt and stores nothing, however late or concurrent the repeat. A receipt outlives its
-- row: a row removed after a key leaked stays removed when its body is replayed.
--
-- Rows written by anyone else (the original service during a cut-over, an operator's SQL,
-- rows stored before this migration) have no receipt: they are never refused as repeats and
-- belong to no key.
--
-- Online: a new, empty table; `events` is not touched.
CREATE TABLE post_receipts
(
    digest   bytea   PRIMARY KEY CHECK (octet_length(digest) = 32),
    event_id integer NOT NULL,
    key_id   text    NOT NULL
);

-- A key's rows in id order: what `leaderboard events remove --key` walks.
CREATE INDEX idx_post_receipts_key ON post_receipts (key_id, event_id);
