-- Reverts V6: the receipts and the functions that write them go (posts are then stored again
-- each time they come, as before); `events` and every stored row are untouched.
DROP FUNCTION IF EXISTS leaderboard_store_posts(bytea[], text[], text[], integer[], jsonb[]);
DROP FUNCTION IF EXISTS leaderboard_store_post(bytea, text, text, integer, jsonb);
DROP TABLE IF EXISTS post_receipts;
-- The insert trigger as V4 made it: every statement counted by it.
CREATE OR REPLACE TRIGGER leaderboard_events_inserted
    AFTER INSERT ON events REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leaderboard_events_changed();
