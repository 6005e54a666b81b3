-- Private sites: who may see a project. acl is 'public', 'accounts' (acl_accounts: the
-- account names besides the owner, comma-separated) or 'password' (acl_password: an Argon2id
-- hash in PHC form; the password itself is never stored).

-- +goose Up
ALTER TABLE pgs_projects ADD COLUMN acl TEXT NOT NULL DEFAULT 'public';
ALTER TABLE pgs_projects ADD COLUMN acl_accounts TEXT NOT NULL DEFAULT '';
ALTER TABLE pgs_projects ADD COLUMN acl_password TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE pgs_projects DROP COLUMN acl_password;
ALTER TABLE pgs_projects DROP COLUMN acl_accounts;
ALTER TABLE pgs_projects DROP COLUMN acl;
