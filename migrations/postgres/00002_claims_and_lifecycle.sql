-- Proof of possession (pending keys and their claim codes), sign-up rate, and account deletion
-- (names held after it). Postgres identity columns never reuse an id, so the existing tables
-- stay as they are.

-- +goose Up

-- A key added by keys add waits here until its holder proves possession: a login key by running
-- keys claim CODE on a connection it authenticated, a CA by signing a certificate for CODE. It
-- grants nothing and blocks nobody: the same fingerprint may wait in several accounts and be
-- active in one. Expired rows are never read and are deleted when keys are next added.
CREATE TABLE pending_keys (
    id          BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  BIGINT      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        TEXT        NOT NULL,
    kind        TEXT        NOT NULL CHECK (kind IN ('login', 'ca')),
    algorithm   TEXT        NOT NULL,
    fingerprint TEXT        NOT NULL,
    public_key  TEXT        NOT NULL,
    options     TEXT        NOT NULL DEFAULT '',
    code        TEXT        NOT NULL,
    attempts    INTEGER     NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT pending_keys_code_key UNIQUE (code),
    CONSTRAINT pending_keys_account_id_fingerprint_key UNIQUE (account_id, fingerprint),
    CONSTRAINT pending_keys_account_id_name_key UNIQUE (account_id, name)
);
CREATE INDEX pending_keys_fingerprint_idx ON pending_keys (fingerprint);
CREATE INDEX pending_keys_expires_at_idx ON pending_keys (expires_at);

-- The names of deleted accounts, which nobody may register until held_until.
CREATE TABLE held_names (
    name       TEXT        NOT NULL PRIMARY KEY,
    held_until TIMESTAMPTZ NOT NULL
);

-- Sign-ups by source address (an IPv4 address or an IPv6 /64), for the sign-up rate. Rows older
-- than the rate's window are deleted at the next sign-up.
CREATE TABLE signups (
    id     BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source TEXT        NOT NULL,
    time   TIMESTAMPTZ NOT NULL
);
CREATE INDEX signups_source_time_idx ON signups (source, time);
CREATE INDEX signups_time_idx ON signups (time);

-- +goose Down
DROP TABLE signups;
DROP TABLE held_names;
DROP TABLE pending_keys;
