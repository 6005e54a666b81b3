-- Live access: changing or removing a principal mapping may take a service from open
-- connections, so it raises the account's access version, as removing a key does (00007).
-- Adding one only gives more, and raises nothing.

-- +goose Up
-- +goose StatementBegin
CREATE TRIGGER principal_map_changed_access AFTER UPDATE ON principal_map BEGIN
    UPDATE access_versions SET version = version + 1 WHERE account_id IN (OLD.account_id, NEW.account_id);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER principal_map_removed_access AFTER DELETE ON principal_map BEGIN
    UPDATE access_versions SET version = version + 1 WHERE account_id = OLD.account_id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER principal_map_removed_access;
DROP TRIGGER principal_map_changed_access;
