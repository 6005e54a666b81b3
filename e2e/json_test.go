package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// decodeJSON decodes text keeping numbers as written, so that serials compare exactly.
func decodeJSON(text string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

// stdoutJSON is the last command's stdout, decoded.
func stdoutJSON(ts *testscript.TestScript) any {
	v, err := decodeJSON(ts.ReadFile("stdout"))
	if err != nil {
		ts.Fatalf("stdout is not JSON: %v", err)
	}
	return v
}

// lookup follows a dot-separated path of field names and array indexes.
func lookup(v any, path string) (any, bool) {
	if path == "" || path == "." {
		return v, true
	}
	for _, step := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			next, ok := x[step]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(step)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// contains reports whether got contains want: the listed fields of an object, the listed
// elements of an array (in any order), an equal scalar. A number and a string with the same
// text are equal, so that "value=42" matches both 42 and "42".
func contains(got, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok || !contains(gv, wv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok {
			return false
		}
		for _, wv := range w {
			found := false
			for _, gv := range g {
				if contains(gv, wv) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	case nil:
		return got == nil
	default:
		gs, gok := scalarText(got)
		ws, wok := scalarText(w)
		return gok && wok && gs == ws
	}
}

func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// candidates are the values json-has tries: the value itself and, for an array, each element.
func candidates(v any) []any {
	if a, ok := v.([]any); ok {
		return append([]any{v}, a...)
	}
	return []any{v}
}

// elements are the values json-fields checks: an array's elements, or the value itself.
func elements(v any) []any {
	if a, ok := v.([]any); ok {
		return a
	}
	return []any{v}
}

// expectation is one PATH=VALUE or PATH~REGEXP argument of json-has. A regular expression
// matches a string's or a number's text, or the JSON of an object or array; never null.
type expectation struct {
	path string
	want any            // for =
	re   *regexp.Regexp // for ~
}

func (e expectation) holds(v any) bool {
	got, found := lookup(v, e.path)
	if !found {
		return false
	}
	if e.re != nil {
		text, ok := scalarText(got)
		if !ok && got != nil {
			b, err := json.Marshal(got)
			text, ok = string(b), err == nil
		}
		return ok && e.re.MatchString(text)
	}
	return contains(got, e.want)
}

func parseExpectations(ts *testscript.TestScript, args []string) []expectation {
	var exps []expectation
	for _, arg := range args {
		i := strings.IndexAny(arg, "=~")
		if i < 0 {
			ts.Fatalf("want PATH=VALUE or PATH~REGEXP, got %q", arg)
		}
		path, value := arg[:i], arg[i+1:]
		if arg[i] == '~' {
			re, err := regexp.Compile(value)
			ts.Check(err)
			exps = append(exps, expectation{path: path, re: re})
			continue
		}
		want, err := decodeJSON(value)
		if err != nil || value == "" {
			want = value // a bare string
		}
		exps = append(exps, expectation{path: path, want: want})
	}
	return exps
}

func cmdJSONHas(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: json-has PATH=VALUE...")
	}
	exps := parseExpectations(ts, args)
	matched := 0
	for _, c := range candidates(stdoutJSON(ts)) {
		if !slices.ContainsFunc(exps, func(e expectation) bool { return !e.holds(c) }) {
			matched++
		}
	}
	switch {
	case matched == 0 && !neg:
		ts.Fatalf("no JSON value in stdout has %s", strings.Join(args, " "))
	case matched > 0 && neg:
		ts.Fatalf("%d JSON value(s) in stdout have %s", matched, strings.Join(args, " "))
	}
}

func cmdJSONFields(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "json-fields")
	if len(args) == 0 {
		ts.Fatalf("usage: json-fields PATH...")
	}
	cs := elements(stdoutJSON(ts))
	if len(cs) == 0 {
		ts.Fatalf("stdout is an empty JSON array")
	}
	for i, c := range cs {
		for _, path := range args {
			if _, ok := lookup(c, path); !ok {
				ts.Fatalf("JSON value %d in stdout has no field %s", i, path)
			}
		}
	}
}

func cmdJSONLen(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "json-len")
	if len(args) != 1 && len(args) != 2 {
		ts.Fatalf("usage: json-len N [PATH]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	path := ""
	if len(args) == 2 {
		path = args[1]
	}
	v, ok := lookup(stdoutJSON(ts), path)
	a, isArray := v.([]any)
	if !ok || !isArray {
		ts.Fatalf("no JSON array at %q in stdout", path)
	}
	if len(a) != want {
		ts.Fatalf("JSON array at %q has %d elements, want %d", path, len(a), want)
	}
}

func cmdJSONVar(ts *testscript.TestScript, neg bool, args []string) {
	commandArgs(ts, neg, args, "json-var VAR PATH")
	v, ok := lookup(stdoutJSON(ts), args[1])
	if !ok {
		ts.Fatalf("no value at %q in stdout", args[1])
	}
	text, ok := scalarText(v)
	if !ok {
		b, err := json.Marshal(v)
		ts.Check(err)
		text = string(b)
	}
	ts.Setenv(args[0], text)
	ts.Logf("%s=%s", args[0], text)
}
