-- Live access: each account's access version goes up whenever what grounds its access changes
-- (a login key or CA removed or changed, a revocation added); triggers do it, whatever code made
-- the change. Every gateway polls the versions of the accounts it has open connections for and
-- re-judges those connections when one moved; a deleted account's row goes with it. The
-- statement-level triggers bump each account once per statement (an import of many revocations
-- is one update); an UPDATE OF a column list cannot see transition tables, so key changes, which
-- are rare, go row by row.

-- +goose Up
CREATE TABLE access_versions (
    account_id BIGINT NOT NULL PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    version    BIGINT NOT NULL DEFAULT 0
);
INSERT INTO access_versions (account_id) SELECT id FROM accounts;

-- +goose StatementBegin
CREATE FUNCTION access_version_create() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO access_versions (account_id) VALUES (NEW.id);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION access_version_bump_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE access_versions SET version = version + 1
    WHERE account_id IN (SELECT DISTINCT account_id FROM old_rows);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION access_version_bump_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE access_versions SET version = version + 1
    WHERE account_id IN (SELECT DISTINCT account_id FROM new_rows);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION access_version_bump_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE access_versions SET version = version + 1 WHERE account_id IN (OLD.account_id, NEW.account_id);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER accounts_access_version AFTER INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION access_version_create();
CREATE TRIGGER keys_removed_access AFTER DELETE ON keys
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION access_version_bump_old();
CREATE TRIGGER keys_changed_access AFTER UPDATE OF account_id, kind, fingerprint, public_key, options ON keys
    FOR EACH ROW EXECUTE FUNCTION access_version_bump_row();
CREATE TRIGGER revocations_added_access AFTER INSERT ON revocations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION access_version_bump_new();

-- +goose Down
DROP TRIGGER revocations_added_access ON revocations;
DROP TRIGGER keys_changed_access ON keys;
DROP TRIGGER keys_removed_access ON keys;
DROP TRIGGER accounts_access_version ON accounts;
DROP FUNCTION access_version_bump_row();
DROP FUNCTION access_version_bump_new();
DROP FUNCTION access_version_bump_old();
DROP FUNCTION access_version_create();
DROP TABLE access_versions;
