-- Times are TIMESTAMPTZ (microsecond precision). Certificate serials are NUMERIC(20, 0) limited
-- to the uint64 range: Postgres has no unsigned 64-bit integer and BIGINT stops at 2^63-1.

-- +goose Up
CREATE TABLE accounts (
    id         BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT accounts_name_key UNIQUE (name)
);

CREATE TABLE keys (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   BIGINT      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         TEXT        NOT NULL,
    kind         TEXT        NOT NULL CHECK (kind IN ('login', 'ca')),
    algorithm    TEXT        NOT NULL,
    fingerprint  TEXT        NOT NULL,
    public_key   TEXT        NOT NULL,
    options      TEXT        NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    CONSTRAINT keys_fingerprint_key UNIQUE (fingerprint),
    CONSTRAINT keys_account_id_name_key UNIQUE (account_id, name)
);

CREATE TABLE revocations (
    id             BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id     BIGINT      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind           TEXT        NOT NULL CHECK (kind IN ('serial', 'key_id', 'key')),
    value          TEXT        NOT NULL,
    ca_fingerprint TEXT        NOT NULL DEFAULT '',
    created_at     TIMESTAMPTZ NOT NULL
);

CREATE INDEX revocations_lookup_idx ON revocations (account_id, kind, value);

CREATE TABLE access_log (
    id              BIGINT         GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time            TIMESTAMPTZ    NOT NULL,
    account_id      BIGINT         REFERENCES accounts (id) ON DELETE SET NULL,
    account         TEXT           NOT NULL DEFAULT '',
    service         TEXT           NOT NULL DEFAULT '',
    method          TEXT           NOT NULL DEFAULT '',
    identity        TEXT           NOT NULL DEFAULT '',
    serial          NUMERIC(20, 0) CHECK (serial BETWEEN 0 AND 18446744073709551615),
    key_fingerprint TEXT           NOT NULL DEFAULT '',
    ca_fingerprint  TEXT           NOT NULL DEFAULT '',
    remote_addr     TEXT           NOT NULL DEFAULT '',
    outcome         TEXT           NOT NULL,
    reason          TEXT           NOT NULL DEFAULT ''
);

CREATE INDEX access_log_account_time_idx ON access_log (account_id, time DESC, id DESC);
CREATE INDEX access_log_time_idx ON access_log (time);

-- +goose Down
DROP TABLE access_log;
DROP TABLE revocations;
DROP TABLE keys;
DROP TABLE accounts;
