package pipe

import (
	"strings"
	"testing"
)

func TestResolveTopic(t *testing.T) {
	cases := []struct {
		name    string
		public  bool
		want    string
		wantErr string
	}{
		{"alerts", false, "alice/alerts", ""},
		{"alerts", true, "public/alerts", ""},
		{"public/alerts", false, "public/alerts", ""},
		{"public/alerts", true, "public/alerts", ""},
		{"alice/alerts", false, "alice/alerts", ""},
		{"alice/logs/app", false, "alice/logs/app", ""},
		{"bob/alerts", false, "bob/alerts", ""},
		{"Logs/app", false, "alice/Logs/app", ""},
		{"a.b_c-D9", false, "alice/a.b_c-D9", ""},
		{"", false, "", "empty"},
		{strings.Repeat("x", 129), false, "", "at most 128"},
		{"a b", false, "", "may contain only"},
		{"a/../b", false, "alice/a/../b", ""},
		{"/abs", false, "", "empty part"},
		{"bob/", false, "", "empty part"},
		{"a//b", false, "", "empty part"},
		{"ünï", false, "", "may contain only"},
	}
	for _, tc := range cases {
		got, err := ResolveTopic("alice", tc.name, tc.public)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ResolveTopic(%q) error %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("ResolveTopic(%q, public=%v) = %q, %v; want %q", tc.name, tc.public, got, err, tc.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"1": 1, "1048576": 1 << 20, "512KiB": 512 << 10, "1MiB": 1 << 20, "2GiB": 2 << 30} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1MB", "MiB", "x", "99999999999GiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}
