-- Private sites list accounts by id, not by name: acl_accounts becomes the ids of the listed
-- accounts (decimal, comma-separated). A name outlives its account (it can be registered again
-- after the hold), an id never comes back. Names that no account holds any more are dropped;
-- an ACL left with none still keeps the site to its owner.

-- +goose Up
UPDATE pgs_projects p SET acl_accounts = COALESCE((
    SELECT string_agg(a.id::text, ',' ORDER BY s.pos)
    FROM unnest(string_to_array(p.acl_accounts, ',')) WITH ORDINALITY AS s (name, pos)
    JOIN accounts a ON a.name = s.name
), '')
WHERE p.acl_accounts <> '';

-- +goose Down
UPDATE pgs_projects p SET acl_accounts = COALESCE((
    SELECT string_agg(a.name, ',' ORDER BY s.pos)
    FROM unnest(string_to_array(p.acl_accounts, ',')) WITH ORDINALITY AS s (item, pos)
    JOIN accounts a ON a.id::text = s.item
), '')
WHERE p.acl_accounts <> '';
