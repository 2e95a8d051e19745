-- Reverts V6: the receipts go (posts are then stored again each time they come, as before);
-- `events` and every stored row are untouched.
DROP TABLE IF EXISTS post_receipts;
