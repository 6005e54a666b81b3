-- Live access: changing or removing a principal mapping may take a service from open
-- connections, so it raises the account's access version, as removing a key does (00007).
-- Adding one only gives more, and raises nothing.

-- +goose Up
CREATE TRIGGER principal_map_changed_access AFTER UPDATE ON principal_map
    FOR EACH ROW EXECUTE FUNCTION access_version_bump_row();
CREATE TRIGGER principal_map_removed_access AFTER DELETE ON principal_map
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION access_version_bump_old();

-- +goose Down
DROP TRIGGER principal_map_removed_access ON principal_map;
DROP TRIGGER principal_map_changed_access ON principal_map;
