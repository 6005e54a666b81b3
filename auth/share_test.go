package auth

import (
	"strings"
	"testing"
)

const shareFP = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"

func TestParseShareList(t *testing.T) {
	cases := []struct {
		in      string
		want    string // the list joined by ","
		wantErr string
	}{
		{"", "", ""},
		{"bob", "bob", ""},
		{"bob, carol,,bob", "bob,carol", ""},
		{"bob," + shareFP, "bob," + shareFP, ""},
		{"Bob", "", "neither an account name nor a key fingerprint"},
		{"bob;rm", "", "neither"},
		{"SHA256:short", "", "not a key fingerprint"},
		{"MD5:aa:bb", "", "neither"},
	}
	for _, tc := range cases {
		got, err := ParseShareList(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseShareList(%q) error %v, want one containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseShareList(%q): %v", tc.in, err)
			continue
		}
		if tc.want != "" && strings.Join(got, ",") != tc.want {
			t.Errorf("ParseShareList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	var many []string
	for i := range maxShares + 1 {
		many = append(many, "user"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	if _, err := ParseShareList(strings.Join(many, ",")); err == nil {
		t.Errorf("a list of %d entries was accepted", len(many))
	}
	// A long list is refused at its 65th entry, before the rest is read: what follows it
	// (here an entry that is not a name) is never looked at.
	if _, err := ParseShareList(strings.Join(many, ",") + ",NotAName" + strings.Repeat(",x1", 50000)); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Errorf("a long list: %v, want the bound of 64 entries", err)
	}
}

func TestMayUse(t *testing.T) {
	bob := Grant{Account: "bob", Method: MethodCert, KeyFingerprint: shareFP}
	carol := Grant{Account: "carol", Method: MethodKey, KeyFingerprint: "SHA256:other"}
	signup := Grant{Method: MethodSignup, KeyFingerprint: shareFP}
	cases := []struct {
		name   string
		g      Grant
		owner  string
		public bool
		lists  []ShareList
		want   bool
	}{
		{"owner", bob, "bob", false, nil, true},
		{"public", carol, "public", true, nil, true},
		{"not shared", carol, "alice", false, []ShareList{{"bob"}}, false},
		{"shared by account", bob, "alice", false, []ShareList{{"dave"}, {"bob"}}, true},
		{"shared by key", bob, "alice", false, []ShareList{{shareFP}}, true},
		{"nothing open", bob, "alice", false, nil, false},
		{"signup owns nothing", signup, "", false, nil, false},
		{"signup not even public", signup, "public", true, nil, false},
		{"signup not by key", signup, "alice", false, []ShareList{{shareFP}}, false},
	}
	for _, tc := range cases {
		if got := MayUse(tc.g, tc.owner, tc.public, tc.lists...); got != tc.want {
			t.Errorf("%s: MayUse = %v, want %v", tc.name, got, tc.want)
		}
	}
}
