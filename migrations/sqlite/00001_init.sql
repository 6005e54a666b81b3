-- Times are TEXT in UTC, fixed width with microseconds ("2006-01-02T15:04:05.000000Z"), so that
-- text order is time order. Certificate serials are TEXT holding the decimal uint64: SQLite's
-- INTEGER is signed 64-bit and a NUMERIC column would turn large serials into lossy REALs.

-- +goose Up
CREATE TABLE accounts (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    CONSTRAINT accounts_name_key UNIQUE (name)
);

CREATE TABLE keys (
    id           INTEGER PRIMARY KEY,
    account_id   INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('login', 'ca')),
    algorithm    TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    public_key   TEXT    NOT NULL,
    options      TEXT    NOT NULL DEFAULT '',
    created_at   TEXT    NOT NULL,
    last_used_at TEXT,
    CONSTRAINT keys_fingerprint_key UNIQUE (fingerprint),
    CONSTRAINT keys_account_id_name_key UNIQUE (account_id, name)
);

CREATE TABLE revocations (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL CHECK (kind IN ('serial', 'key_id', 'key')),
    value          TEXT    NOT NULL,
    ca_fingerprint TEXT    NOT NULL DEFAULT '',
    created_at     TEXT    NOT NULL
);

CREATE INDEX revocations_lookup_idx ON revocations (account_id, kind, value);

CREATE TABLE access_log (
    id              INTEGER PRIMARY KEY,
    time            TEXT    NOT NULL,
    account_id      INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    account         TEXT    NOT NULL DEFAULT '',
    service         TEXT    NOT NULL DEFAULT '',
    method          TEXT    NOT NULL DEFAULT '',
    identity        TEXT    NOT NULL DEFAULT '',
    serial          TEXT,
    key_fingerprint TEXT    NOT NULL DEFAULT '',
    ca_fingerprint  TEXT    NOT NULL DEFAULT '',
    remote_addr     TEXT    NOT NULL DEFAULT '',
    outcome         TEXT    NOT NULL,
    reason          TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX access_log_account_time_idx ON access_log (account_id, time DESC, id DESC);
CREATE INDEX access_log_time_idx ON access_log (time);

-- +goose Down
DROP TABLE access_log;
DROP TABLE revocations;
DROP TABLE keys;
DROP TABLE accounts;
