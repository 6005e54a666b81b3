package cliargs

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestParseLetsFlagsFollowArguments(t *testing.T) {
	cases := []struct {
		args    []string
		wantPos []string
		wantK   bool
		wantA   string
		wantErr bool
	}{
		{[]string{"topic"}, []string{"topic"}, false, "", false},
		{[]string{"topic", "-k"}, []string{"topic"}, true, "", false},
		{[]string{"-a", "bob", "topic", "-k"}, []string{"topic"}, true, "bob", false},
		{[]string{"one", "-a=bob", "two"}, []string{"one", "two"}, false, "bob", false},
		{[]string{"topic", "-x"}, nil, false, "", true},
		{[]string{"topic", "-a"}, nil, false, "", true},
		{nil, nil, false, "", false},
	}
	for _, tc := range cases {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		k := fs.Bool("k", false, "")
		a := fs.String("a", "", "")
		pos, err := Parse(fs, tc.args)
		if (err != nil) != tc.wantErr {
			t.Errorf("Parse(%q) error %v, want error %v", tc.args, err, tc.wantErr)
			continue
		}
		if err == nil && (!slices.Equal(pos, tc.wantPos) || *k != tc.wantK || *a != tc.wantA) {
			t.Errorf("Parse(%q) = %q, -k %v, -a %q; want %q, %v, %q", tc.args, pos, *k, *a, tc.wantPos, tc.wantK, tc.wantA)
		}
	}
}
