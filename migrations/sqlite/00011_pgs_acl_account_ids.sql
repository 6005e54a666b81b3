-- Private sites list accounts by id, not by name: acl_accounts becomes the ids of the listed
-- accounts (decimal, comma-separated). A name outlives its account (it can be registered again
-- after the hold), an id never comes back. Names that no account holds any more are dropped;
-- an ACL left with none still keeps the site to its owner.

-- +goose Up
WITH RECURSIVE split (project_id, pos, name, rest) AS (
    SELECT id, 0, '', acl_accounts || ',' FROM pgs_projects WHERE acl_accounts <> ''
    UNION ALL
    SELECT project_id, pos + 1, substr(rest, 1, instr(rest, ',') - 1), substr(rest, instr(rest, ',') + 1)
    FROM split WHERE rest <> ''
)
UPDATE pgs_projects SET acl_accounts = COALESCE((
    SELECT group_concat(id, ',') FROM (
        SELECT a.id AS id FROM split s JOIN accounts a ON a.name = s.name
        WHERE s.project_id = pgs_projects.id AND s.pos > 0 ORDER BY s.pos)
), '')
WHERE acl_accounts <> '';

-- +goose Down
WITH RECURSIVE split (project_id, pos, item, rest) AS (
    SELECT id, 0, '', acl_accounts || ',' FROM pgs_projects WHERE acl_accounts <> ''
    UNION ALL
    SELECT project_id, pos + 1, substr(rest, 1, instr(rest, ',') - 1), substr(rest, instr(rest, ',') + 1)
    FROM split WHERE rest <> ''
)
UPDATE pgs_projects SET acl_accounts = COALESCE((
    SELECT group_concat(name, ',') FROM (
        SELECT a.name AS name FROM split s JOIN accounts a ON CAST(a.id AS TEXT) = s.item
        WHERE s.project_id = pgs_projects.id AND s.pos > 0 ORDER BY s.pos)
), '')
WHERE acl_accounts <> '';
