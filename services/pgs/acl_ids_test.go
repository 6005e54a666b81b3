package pgs

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPrivateSiteListsAccountsNotNames: an ACL keeps the accounts it lists, not their names.
// When a listed account is deleted and someone registers its name again (after the hold), the
// newcomer does not see the site; acl and ls show the names of the accounts that exist.
func TestPrivateSiteListsAccountsNotNames(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": "secret home"})
	h.mustRsync("-r", src+"/", remote+"/blog/")
	bob := h.accountClient("bob")
	carol := h.accountClient("carol")
	out, stderr, code := h.ssh("acl", "blog", "accounts", "bob,carol")
	if code != 0 || !strings.Contains(out, "you and bob, carol see it") {
		t.Fatalf("acl accounts: exit %d, %q %q", code, out, stderr)
	}
	if code, body, err := forwardGet(t, bob, "alice-blog:80", "/"); err != nil || code != 200 || body != "secret home" {
		t.Fatalf("bob through a forward: %d %q %v", code, body, err)
	}

	ctx := context.Background()
	old, err := h.store.AccountByName(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.DeleteAccount(ctx, old.ID, time.Now()); err != nil { // no hold: the name is free at once
		t.Fatal(err)
	}
	newcomer := h.accountClient("bob")
	if code, body, err := forwardGet(t, newcomer, "alice-blog:80", "/"); err == nil {
		t.Errorf("a new account named bob sees the site: %d %q", code, body)
	}
	if code, body, err := forwardGet(t, carol, "alice-blog:80", "/"); err != nil || code != 200 || body != "secret home" {
		t.Errorf("carol, still listed: %d %q %v", code, body, err)
	}
	out, _, _ = h.ssh("ls", "--json")
	var list []ProjectView
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].ACL != "accounts" ||
		!slices.Equal(list[0].ACLAccounts, []string{"carol"}) {
		t.Fatalf("ls after bob's account was deleted: %s %v; want carol only", out, err)
	}
}
