-- Trust rules (issue 9, part A): the principal map, KRL imports and the sources they are fetched
-- from on a schedule.
--
-- revocations gains the kinds a KRL holds (serial ranges and key hashes), an origin (revoke or a
-- KRL import), the KRL source its row came from (whose refreshes replace its rows), and the columns
-- that find a serial range without reading the others: range_key is "L:B", where L is the number of
-- bits of (to - from) and B = from >> L in hex, so a serial x can only be in ranges whose key is
-- "L:x>>L" or "L:(x>>L)-1" for L = 0..64: at most 130 index lookups, however many ranges there are.
-- range_lo and range_hi are the range's ends with the top bit flipped, so that SQLite's signed
-- INTEGER compares them as the unsigned serials they are.
--
-- The CHECK on kind can only change by rebuilding the table, as migration 00002 did. The rebuild
-- carries the AUTOINCREMENT counter over before copying the rows, so that the id of a revocation
-- removed earlier is never given again.

-- +goose NO TRANSACTION
-- +goose Up
PRAGMA foreign_keys = OFF;

BEGIN IMMEDIATE;

-- Where revocations import --url fetched a KRL, and when it fetches it again. every_seconds 0: it
-- was imported once; run the import again to refresh it. lease_until keeps two gateways sharing
-- the database from fetching the same source at once. failures counts the fetches that failed in
-- a row: each doubles the wait before the next (up to a day), so a dead or slow URL costs little.
CREATE TABLE krl_sources (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    url            TEXT    NOT NULL,
    ca_fingerprint TEXT    NOT NULL DEFAULT '',
    every_seconds  INTEGER NOT NULL DEFAULT 0,
    next_fetch_at  TEXT,
    lease_until    TEXT,
    fetched_at     TEXT    NOT NULL,
    content_sha256 TEXT    NOT NULL DEFAULT '',
    entries        INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT    NOT NULL DEFAULT '',
    failures       INTEGER NOT NULL DEFAULT 0,
    last_error_at  TEXT,
    created_at     TEXT    NOT NULL,
    CONSTRAINT krl_sources_account_id_url_key UNIQUE (account_id, url)
);
CREATE INDEX krl_sources_next_fetch_at_idx ON krl_sources (next_fetch_at);

CREATE TABLE revocations_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL CHECK (kind IN ('serial', 'serial_range', 'key_id', 'key', 'key_hash')),
    value          TEXT    NOT NULL,
    ca_fingerprint TEXT    NOT NULL DEFAULT '',
    origin         TEXT    NOT NULL DEFAULT 'revoke' CHECK (origin IN ('revoke', 'krl')),
    source_id      INTEGER REFERENCES krl_sources (id) ON DELETE CASCADE,
    range_key      TEXT,
    range_lo       INTEGER,
    range_hi       INTEGER,
    created_at     TEXT    NOT NULL
);
INSERT INTO sqlite_sequence (name, seq) SELECT 'revocations_new', seq FROM sqlite_sequence WHERE name = 'revocations';
INSERT INTO revocations_new (id, account_id, kind, value, ca_fingerprint, created_at)
    SELECT id, account_id, kind, value, ca_fingerprint, created_at FROM revocations;
DROP TABLE revocations;
ALTER TABLE revocations_new RENAME TO revocations;
CREATE INDEX revocations_lookup_idx ON revocations (account_id, kind, value);
CREATE INDEX revocations_range_idx ON revocations (account_id, range_key);
CREATE INDEX revocations_source_idx ON revocations (source_id);
-- Listing an account's revocations page by page, oldest first.
CREATE INDEX revocations_account_id_idx ON revocations (account_id, id);

-- The principal map: certificates of the account's CAs (or of ca_fingerprint's only) that list
-- principal get services (a comma list), from client addresses matching from_patterns (a comma
-- list of authorized_keys from= patterns; empty: any address).
CREATE TABLE principal_map (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    principal      TEXT    NOT NULL,
    services       TEXT    NOT NULL,
    from_patterns  TEXT    NOT NULL DEFAULT '',
    ca_fingerprint TEXT    NOT NULL DEFAULT '',
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    CONSTRAINT principal_map_account_id_principal_key UNIQUE (account_id, principal)
);

COMMIT;

PRAGMA foreign_keys = ON;

-- +goose Down
PRAGMA foreign_keys = OFF;
DROP TABLE principal_map;
DELETE FROM revocations WHERE kind IN ('serial_range', 'key_hash');
CREATE TABLE revocations_old (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL CHECK (kind IN ('serial', 'key_id', 'key')),
    value          TEXT    NOT NULL,
    ca_fingerprint TEXT    NOT NULL DEFAULT '',
    created_at     TEXT    NOT NULL
);
INSERT INTO sqlite_sequence (name, seq) SELECT 'revocations_old', seq FROM sqlite_sequence WHERE name = 'revocations';
INSERT INTO revocations_old (id, account_id, kind, value, ca_fingerprint, created_at)
    SELECT id, account_id, kind, value, ca_fingerprint, created_at FROM revocations;
DROP TABLE revocations;
ALTER TABLE revocations_old RENAME TO revocations;
CREATE INDEX revocations_lookup_idx ON revocations (account_id, kind, value);
DROP TABLE krl_sources;
PRAGMA foreign_keys = ON;
