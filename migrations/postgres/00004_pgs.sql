-- pgs: projects, their deploys and manifests, the blobs each account stores, deploy locks.
-- Hashes are SHA-256 in lower-case hex. A manifest row names a blob of its account (foreign
-- key), so a blob that a kept deploy uses cannot be forgotten. pgs_blobs has no foreign key to
-- accounts: when an account is deleted, its blob records stay until the pgs service has deleted
-- the blobs themselves (the blob store cannot list what an account has). Lock expiry uses the
-- database's clock, which every gateway shares.

-- +goose Up
CREATE TABLE pgs_projects (
    id             BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id     BIGINT      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name           TEXT        NOT NULL,
    link_to        TEXT        NOT NULL DEFAULT '',
    live_deploy_id BIGINT,
    next_seq       BIGINT      NOT NULL DEFAULT 1,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    updated_by     TEXT        NOT NULL DEFAULT '',
    CONSTRAINT pgs_projects_account_name_key UNIQUE (account_id, name)
);

CREATE TABLE pgs_deploys (
    id              BIGINT         GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id      BIGINT         NOT NULL REFERENCES pgs_projects (id) ON DELETE CASCADE,
    seq             BIGINT         NOT NULL,
    created_at      TIMESTAMPTZ    NOT NULL,
    identity        TEXT           NOT NULL DEFAULT '',
    method          TEXT           NOT NULL DEFAULT '',
    serial          NUMERIC(20, 0) CHECK (serial BETWEEN 0 AND 18446744073709551615),
    key_fingerprint TEXT           NOT NULL DEFAULT '',
    tool            TEXT           NOT NULL DEFAULT '',
    added           BIGINT         NOT NULL DEFAULT 0,
    changed         BIGINT         NOT NULL DEFAULT 0,
    removed         BIGINT         NOT NULL DEFAULT 0,
    files           BIGINT         NOT NULL DEFAULT 0,
    bytes           BIGINT         NOT NULL DEFAULT 0,
    CONSTRAINT pgs_deploys_project_seq_key UNIQUE (project_id, seq)
);

CREATE TABLE pgs_blobs (
    account_id BIGINT      NOT NULL,
    hash       TEXT        NOT NULL,
    size       BIGINT      NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, hash)
);

CREATE TABLE pgs_files (
    deploy_id  BIGINT NOT NULL REFERENCES pgs_deploys (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL,
    path       TEXT   NOT NULL,
    hash       TEXT   NOT NULL,
    size       BIGINT NOT NULL,
    mode       BIGINT NOT NULL,
    mtime      BIGINT NOT NULL,
    PRIMARY KEY (deploy_id, path),
    CONSTRAINT pgs_files_blob_fkey FOREIGN KEY (account_id, hash) REFERENCES pgs_blobs (account_id, hash)
);

CREATE INDEX pgs_files_blob_idx ON pgs_files (account_id, hash);

CREATE TABLE pgs_locks (
    account_id BIGINT      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    project    TEXT        NOT NULL,
    holder     TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, project)
);

-- +goose Down
DROP TABLE pgs_locks;
DROP TABLE pgs_files;
DROP TABLE pgs_blobs;
DROP TABLE pgs_deploys;
DROP TABLE pgs_projects;
