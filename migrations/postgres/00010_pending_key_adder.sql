-- A pending key records the key or certificate of the connection that added it (added_by, an
-- authorized_keys line) and that connection's IP address (added_from, empty when it had
-- none): a login key is claimed only while those grounds still manage the account, so a key
-- added with a certificate revoked since, or by a login key or CA removed since, cannot be
-- claimed. Rows from before carry neither and cannot be claimed (they expire within minutes).

-- +goose Up
ALTER TABLE pending_keys ADD COLUMN added_by TEXT NOT NULL DEFAULT '';
ALTER TABLE pending_keys ADD COLUMN added_from TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE pending_keys DROP COLUMN added_from;
ALTER TABLE pending_keys DROP COLUMN added_by;
