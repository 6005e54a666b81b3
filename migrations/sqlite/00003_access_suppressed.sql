-- Denied attempts by keys of no account beyond a few per source address and minute are not
-- logged one by one: one row per source and minute, outcome 'suppressed', counts them.
-- Every other row stands for one attempt.

-- +goose Up
ALTER TABLE access_log ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX access_log_suppressed_idx ON access_log (remote_addr, time) WHERE outcome = 'suppressed';

-- +goose Down
DROP INDEX access_log_suppressed_idx;
ALTER TABLE access_log DROP COLUMN count;
