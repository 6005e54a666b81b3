package db_test

import (
	"slices"
	"testing"

	"github.com/portico-sh/portico/db"
)

// TestSQLiteACLUpgradeListsIDs and TestPostgresACLUpgradeListsIDs: migration 00011 turns the
// account names of private sites' ACLs into account ids, in order, and drops the names no
// account holds (a deleted account's), so that whoever registers such a name later sees nothing.
func TestSQLiteACLUpgradeListsIDs(t *testing.T) { testACLUpgrade(t, sqliteUpgradeDB(t)) }

func TestPostgresACLUpgradeListsIDs(t *testing.T) { testACLUpgrade(t, postgresUpgradeDB(t)) }

func testACLUpgrade(t *testing.T, u upgradeDB) {
	raw := u.raw()
	u.migrateBefore(t, raw, "00011")
	ts := "2026-01-02T03:04:05.000000Z"
	exec(t, raw,
		`INSERT INTO accounts (name, created_at) VALUES ('alice', '`+ts+`'), ('bob', '`+ts+`'), ('carol', '`+ts+`')`,
		`INSERT INTO pgs_projects (account_id, name, created_at, updated_at, acl, acl_accounts)
		 SELECT id, 'blog', '`+ts+`', '`+ts+`', 'accounts', 'carol,ghost,bob' FROM accounts WHERE name = 'alice'`,
		`INSERT INTO pgs_projects (account_id, name, created_at, updated_at, acl, acl_accounts)
		 SELECT id, 'gone', '`+ts+`', '`+ts+`', 'accounts', 'ghost' FROM accounts WHERE name = 'alice'`,
		`INSERT INTO pgs_projects (account_id, name, created_at, updated_at)
		 SELECT id, 'open', '`+ts+`', '`+ts+`' FROM accounts WHERE name = 'alice'`,
	)
	raw.Close()

	s := u.open()
	alice, err := s.AccountByName(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := s.AccountByName(ctx, "bob")
	carol, _ := s.AccountByName(ctx, "carol")
	projects, err := s.PGSProjects(ctx, alice.ID)
	if err != nil || len(projects) != 3 {
		t.Fatalf("projects after the upgrade: %+v, %v", projects, err)
	}
	byName := map[string]db.PGSProject{}
	for _, p := range projects {
		byName[p.Name] = p
	}
	if acl := byName["blog"].ACL; acl.Kind != db.PGSAccounts || !slices.Equal(acl.AccountIDs, []int64{carol.ID, bob.ID}) {
		t.Errorf("blog's ACL after the upgrade: %+v, want the ids of carol and bob (%d, %d)", acl, carol.ID, bob.ID)
	}
	if acl := byName["gone"].ACL; acl.Kind != db.PGSAccounts || len(acl.AccountIDs) != 0 {
		t.Errorf("an ACL of deleted accounts only, after the upgrade: %+v, want accounts with none (the owner only)", acl)
	}
	if acl := byName["open"].ACL; acl.Kind != db.PGSPublic || acl.AccountIDs != nil {
		t.Errorf("a public site after the upgrade: %+v", acl)
	}
	// Someone registers the deleted account's name: still nothing.
	ghost, _ := createAccount(t, s, "ghost")
	if live, err := s.PGSLive(ctx, "alice", "blog"); err != nil || slices.Contains(live.ACL.AccountIDs, ghost.ID) {
		t.Errorf("after ghost was registered: %+v, %v", live.ACL, err)
	}
	s.Close()

	// Down to 00010 again: the ids of the accounts that exist become their names.
	raw = u.raw()
	defer raw.Close()
	p := u.provider(t, raw)
	if _, err := p.DownTo(ctx, 10); err != nil {
		t.Fatal(err)
	}
	var names string
	if err := raw.QueryRowContext(ctx, `SELECT acl_accounts FROM pgs_projects WHERE name = 'blog'`).Scan(&names); err != nil || names != "carol,bob" {
		t.Errorf("blog's ACL after migrating down: %q, %v; want carol,bob", names, err)
	}
}
