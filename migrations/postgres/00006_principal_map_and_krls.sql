-- Trust rules (issue 9, part A): the principal map, KRL imports and the sources they are fetched
-- from on a schedule.
--
-- revocations gains the kinds a KRL holds (serial ranges and key hashes), an origin (revoke or a
-- KRL import), the KRL source its row came from (whose refreshes replace its rows), and the columns
-- that find a serial range without reading the others: range_key is "L:B", where L is the number of
-- bits of (to - from) and B = from >> L in hex, so a serial x can only be in ranges whose key is
-- "L:x>>L" or "L:(x>>L)-1" for L = 0..64: at most 130 index lookups, however many ranges there are.
-- range_lo and range_hi are the range's ends with the top bit flipped, so that BIGINT compares
-- them as the unsigned serials they are.

-- +goose Up

-- Where revocations import --url fetched a KRL, and when it fetches it again. every_seconds 0: it
-- was imported once; run the import again to refresh it. lease_until keeps two gateways sharing
-- the database from fetching the same source at once. failures counts the fetches that failed in
-- a row: each doubles the wait before the next (up to a day), so a dead or slow URL costs little.
CREATE TABLE krl_sources (
    id             BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id     BIGINT      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    url            TEXT        NOT NULL,
    ca_fingerprint TEXT        NOT NULL DEFAULT '',
    every_seconds  BIGINT      NOT NULL DEFAULT 0,
    next_fetch_at  TIMESTAMPTZ,
    lease_until    TIMESTAMPTZ,
    fetched_at     TIMESTAMPTZ NOT NULL,
    content_sha256 TEXT        NOT NULL DEFAULT '',
    entries        INTEGER     NOT NULL DEFAULT 0,
    last_error     TEXT        NOT NULL DEFAULT '',
    failures       INTEGER     NOT NULL DEFAULT 0,
    last_error_at  TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT krl_sources_account_id_url_key UNIQUE (account_id, url)
);
CREATE INDEX krl_sources_next_fetch_at_idx ON krl_sources (next_fetch_at);

ALTER TABLE revocations DROP CONSTRAINT revocations_kind_check;
ALTER TABLE revocations ADD CONSTRAINT revocations_kind_check
    CHECK (kind IN ('serial', 'serial_range', 'key_id', 'key', 'key_hash'));
ALTER TABLE revocations
    ADD COLUMN origin    TEXT   NOT NULL DEFAULT 'revoke' CHECK (origin IN ('revoke', 'krl')),
    ADD COLUMN source_id BIGINT REFERENCES krl_sources (id) ON DELETE CASCADE,
    ADD COLUMN range_key TEXT,
    ADD COLUMN range_lo  BIGINT,
    ADD COLUMN range_hi  BIGINT;
CREATE INDEX revocations_range_idx ON revocations (account_id, range_key);
CREATE INDEX revocations_source_idx ON revocations (source_id);
-- Listing an account's revocations page by page, oldest first.
CREATE INDEX revocations_account_id_idx ON revocations (account_id, id);

-- The principal map: certificates of the account's CAs (or of ca_fingerprint's only) that list
-- principal get services (a comma list), from client addresses matching from_patterns (a comma
-- list of authorized_keys from= patterns; empty: any address).
CREATE TABLE principal_map (
    id             BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id     BIGINT      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    principal      TEXT        NOT NULL,
    services       TEXT        NOT NULL,
    from_patterns  TEXT        NOT NULL DEFAULT '',
    ca_fingerprint TEXT        NOT NULL DEFAULT '',
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT principal_map_account_id_principal_key UNIQUE (account_id, principal)
);

-- +goose Down
DROP TABLE principal_map;
DELETE FROM revocations WHERE kind IN ('serial_range', 'key_hash');
DROP INDEX revocations_source_idx;
DROP INDEX revocations_range_idx;
ALTER TABLE revocations DROP COLUMN range_hi, DROP COLUMN range_lo, DROP COLUMN range_key,
    DROP COLUMN source_id, DROP COLUMN origin;
ALTER TABLE revocations DROP CONSTRAINT revocations_kind_check;
ALTER TABLE revocations ADD CONSTRAINT revocations_kind_check CHECK (kind IN ('serial', 'key_id', 'key'));
DROP TABLE krl_sources;
