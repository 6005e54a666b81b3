-- Live access: each account's access version goes up whenever what grounds its access changes
-- (a login key or CA removed or changed, a revocation added); triggers do it, whatever code made
-- the change. Every gateway polls the versions of the accounts it has open connections for and
-- re-judges those connections when one moved; a deleted account's row goes with it.

-- +goose Up
CREATE TABLE access_versions (
    account_id INTEGER NOT NULL PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO access_versions (account_id) SELECT id FROM accounts;

-- +goose StatementBegin
CREATE TRIGGER accounts_access_version AFTER INSERT ON accounts BEGIN
    INSERT INTO access_versions (account_id) VALUES (NEW.id);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER keys_removed_access AFTER DELETE ON keys BEGIN
    UPDATE access_versions SET version = version + 1 WHERE account_id = OLD.account_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER keys_changed_access AFTER UPDATE OF account_id, kind, fingerprint, public_key, options ON keys BEGIN
    UPDATE access_versions SET version = version + 1 WHERE account_id IN (OLD.account_id, NEW.account_id);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER revocations_added_access AFTER INSERT ON revocations BEGIN
    UPDATE access_versions SET version = version + 1 WHERE account_id = NEW.account_id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER revocations_added_access;
DROP TRIGGER keys_changed_access;
DROP TRIGGER keys_removed_access;
DROP TRIGGER accounts_access_version;
DROP TABLE access_versions;
