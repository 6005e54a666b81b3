-- pgs: projects, their deploys and manifests, the blobs each account stores, deploy locks.
-- Hashes are SHA-256 in lower-case hex. A manifest row names a blob of its account (foreign
-- key), so a blob that a kept deploy uses cannot be forgotten. pgs_blobs has no foreign key to
-- accounts: when an account is deleted, its blob records stay until the pgs service has deleted
-- the blobs themselves (the blob store cannot list what an account has). Deploy ids are never
-- reused (AUTOINCREMENT): gateways cache a deploy's manifest by its id.

-- +goose Up
CREATE TABLE pgs_projects (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name           TEXT    NOT NULL,
    link_to        TEXT    NOT NULL DEFAULT '',
    live_deploy_id INTEGER,
    next_seq       INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    updated_by     TEXT    NOT NULL DEFAULT '',
    CONSTRAINT pgs_projects_account_name_key UNIQUE (account_id, name)
);

CREATE TABLE pgs_deploys (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES pgs_projects (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    created_at      TEXT    NOT NULL,
    identity        TEXT    NOT NULL DEFAULT '',
    method          TEXT    NOT NULL DEFAULT '',
    serial          TEXT,
    key_fingerprint TEXT    NOT NULL DEFAULT '',
    tool            TEXT    NOT NULL DEFAULT '',
    added           INTEGER NOT NULL DEFAULT 0,
    changed         INTEGER NOT NULL DEFAULT 0,
    removed         INTEGER NOT NULL DEFAULT 0,
    files           INTEGER NOT NULL DEFAULT 0,
    bytes           INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT pgs_deploys_project_seq_key UNIQUE (project_id, seq)
);

CREATE TABLE pgs_blobs (
    account_id INTEGER NOT NULL,
    hash       TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    created_at TEXT    NOT NULL,
    PRIMARY KEY (account_id, hash)
);

CREATE TABLE pgs_files (
    deploy_id  INTEGER NOT NULL REFERENCES pgs_deploys (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL,
    path       TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    mode       INTEGER NOT NULL,
    mtime      INTEGER NOT NULL,
    PRIMARY KEY (deploy_id, path),
    FOREIGN KEY (account_id, hash) REFERENCES pgs_blobs (account_id, hash)
);

CREATE INDEX pgs_files_blob_idx ON pgs_files (account_id, hash);

CREATE TABLE pgs_locks (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    project    TEXT    NOT NULL,
    holder     TEXT    NOT NULL,
    expires_at TEXT    NOT NULL,
    PRIMARY KEY (account_id, project)
);

-- +goose Down
DROP TABLE pgs_locks;
DROP TABLE pgs_files;
DROP TABLE pgs_blobs;
DROP TABLE pgs_deploys;
DROP TABLE pgs_projects;
