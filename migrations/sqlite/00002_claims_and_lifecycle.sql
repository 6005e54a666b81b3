-- Proof of possession (pending keys and their claim codes), sign-up rate, account deletion
-- (names held after it), and ids that are never reused.
--
-- SQLite reuses the largest rowid of an INTEGER PRIMARY KEY once that row is deleted, so a stale
-- `revocations rm 6` could lift a newer revocation, and an open connection of a deleted account
-- could reach the next account created. AUTOINCREMENT never reuses an id, but it can only be
-- declared when a table is created: accounts, keys and revocations are rebuilt, with foreign keys
-- off (the documented way to change a table's definition), so that dropping the old accounts table
-- does not cascade into keys, revocations and the access log. It runs in one transaction of its
-- own, so it is applied whole or not at all.

-- +goose NO TRANSACTION
-- +goose Up
PRAGMA foreign_keys = OFF;

BEGIN IMMEDIATE;

CREATE TABLE accounts_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    CONSTRAINT accounts_name_key UNIQUE (name)
);
INSERT INTO accounts_new (id, name, created_at) SELECT id, name, created_at FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_new RENAME TO accounts;

CREATE TABLE keys_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
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
INSERT INTO keys_new (id, account_id, name, kind, algorithm, fingerprint, public_key, options, created_at, last_used_at)
    SELECT id, account_id, name, kind, algorithm, fingerprint, public_key, options, created_at, last_used_at FROM keys;
DROP TABLE keys;
ALTER TABLE keys_new RENAME TO keys;

CREATE TABLE revocations_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL CHECK (kind IN ('serial', 'key_id', 'key')),
    value          TEXT    NOT NULL,
    ca_fingerprint TEXT    NOT NULL DEFAULT '',
    created_at     TEXT    NOT NULL
);
INSERT INTO revocations_new (id, account_id, kind, value, ca_fingerprint, created_at)
    SELECT id, account_id, kind, value, ca_fingerprint, created_at FROM revocations;
DROP TABLE revocations;
ALTER TABLE revocations_new RENAME TO revocations;
CREATE INDEX revocations_lookup_idx ON revocations (account_id, kind, value);

-- A key added by keys add waits here until its holder proves possession: a login key by running
-- keys claim CODE on a connection it authenticated, a CA by signing a certificate for CODE. It
-- grants nothing and blocks nobody: the same fingerprint may wait in several accounts and be
-- active in one. Expired rows are never read and are deleted when keys are next added.
CREATE TABLE pending_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('login', 'ca')),
    algorithm   TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    public_key  TEXT    NOT NULL,
    options     TEXT    NOT NULL DEFAULT '',
    code        TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT    NOT NULL,
    expires_at  TEXT    NOT NULL,
    CONSTRAINT pending_keys_code_key UNIQUE (code),
    CONSTRAINT pending_keys_account_id_fingerprint_key UNIQUE (account_id, fingerprint),
    CONSTRAINT pending_keys_account_id_name_key UNIQUE (account_id, name)
);
CREATE INDEX pending_keys_fingerprint_idx ON pending_keys (fingerprint);
CREATE INDEX pending_keys_expires_at_idx ON pending_keys (expires_at);

-- The names of deleted accounts, which nobody may register until held_until.
CREATE TABLE held_names (
    name       TEXT NOT NULL PRIMARY KEY,
    held_until TEXT NOT NULL
);

-- Sign-ups by source address (an IPv4 address or an IPv6 /64), for the sign-up rate. Rows older
-- than the rate's window are deleted at the next sign-up.
CREATE TABLE signups (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT    NOT NULL,
    time   TEXT    NOT NULL
);
CREATE INDEX signups_source_time_idx ON signups (source, time);
CREATE INDEX signups_time_idx ON signups (time);

COMMIT;

PRAGMA foreign_keys = ON;

-- +goose Down
DROP TABLE signups;
DROP TABLE held_names;
DROP TABLE pending_keys;
