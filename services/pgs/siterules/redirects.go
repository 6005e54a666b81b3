package siterules

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Redirect is one rule of a _redirects file: `FROM [KEY=VALUE ...] TO [STATUS][!]`.
type Redirect struct {
	Line   int
	Status int  // 301, 302, 303, 307, 308 redirect; 200 rewrite; 404 not-found page
	Force  bool // applies even when a file matches the path

	from  pattern
	query []queryCond
	to    target
}

// queryCond is a query parameter a rule requires: `KEY=VALUE`, or `KEY=:name` (any value,
// bound to the placeholder name).
type queryCond struct {
	key, value, bind string
}

// target is a rule's TO, split so that placeholders are filled in with the right escaping.
type target struct {
	origin   string // "https://host" for an absolute URL, else ""
	path     string // as written (URL-escaped form)
	query    string // without "?"; hasQuery tells an empty one from none
	hasQuery bool
	fragment string
}

// Redirects are the rules of a _redirects file, in order.
type Redirects struct {
	rules []Redirect
}

// Len is the number of rules.
func (r *Redirects) Len() int {
	if r == nil {
		return 0
	}
	return len(r.rules)
}

// redirectStatus says what each allowed status does.
var redirectStatus = map[int]bool{200: true, 301: true, 302: true, 303: true, 307: true, 308: true, 404: true}

// conditionKeys are Netlify's conditions other than query parameters, which portico does not
// evaluate.
var conditionKeys = map[string]bool{"country": true, "language": true, "role": true, "cookie": true}

// ParseRedirects reads a _redirects file. With errors it also returns the rules that parsed
// (a deploy with errors is refused at upload; a stored one serves the good rules).
func ParseRedirects(data []byte) (*Redirects, Errors) {
	errs := &errorList{file: RedirectsFile}
	r := &Redirects{}
	for _, ln := range splitLines(data, errs) {
		if isBlankOrComment(ln.text) {
			continue
		}
		if len(r.rules) >= MaxRules {
			errs.add(ln.no, "more than %d rules", MaxRules)
			break
		}
		rule, err := parseRedirect(ln.text)
		if err != nil {
			errs.add(ln.no, "%v", err)
			continue
		}
		rule.Line = ln.no
		r.rules = append(r.rules, rule)
	}
	return r, errs.result()
}

func parseRedirect(text string) (Redirect, error) {
	f := strings.Fields(text)
	for i, tok := range f {
		if i >= 2 && strings.HasPrefix(tok, "#") {
			f = f[:i] // a comment after the rule
			break
		}
	}
	var rule Redirect
	from, err := parsePattern(f[0])
	if err != nil {
		return rule, err
	}
	rule.from = from
	i := 1
	for ; i < len(f) && isCondition(f[i]); i++ {
		key, value, _ := strings.Cut(f[i], "=")
		if conditionKeys[strings.ToLower(key)] {
			return rule, fmt.Errorf("conditions on %s are not supported (only query parameters, before TO)", key)
		}
		c := queryCond{key: key, value: value}
		if strings.HasPrefix(value, ":") {
			c.bind = value[1:]
			if !isName(c.bind) || c.bind == "splat" || from.has(c.bind) || hasBind(rule.query, c.bind) {
				return rule, fmt.Errorf("query parameter %s=%s: a placeholder is :name, letters, digits and _, used once", key, value)
			}
		}
		rule.query = append(rule.query, c)
	}
	if i >= len(f) {
		return rule, fmt.Errorf("a rule is FROM TO [STATUS]: %q has no TO", f[0])
	}
	rule.Status = 301
	toText := f[i]
	i++
	if i < len(f) {
		st := f[i]
		i++
		if before, ok := strings.CutSuffix(st, "!"); ok {
			rule.Force, st = true, before
		}
		n, err := strconv.Atoi(st)
		switch {
		case err != nil || len(st) != 3:
			return rule, fmt.Errorf("%q is not a status (301, 302, 303, 307, 308, 200 or 404, then ! to force)", f[i-1])
		case !redirectStatus[n]:
			return rule, fmt.Errorf("status %d is not a redirect status: use 301, 302, 303, 307 or 308 to redirect, 200 to rewrite, 404 for a not-found page", n)
		}
		rule.Status = n
	}
	if i < len(f) {
		if key, _, ok := strings.Cut(f[i], "="); ok && conditionKeys[strings.ToLower(key)] {
			return rule, fmt.Errorf("conditions on %s are not supported", key)
		}
		return rule, fmt.Errorf("unexpected %q after the status", f[i])
	}
	to, err := parseTarget(toText, rule.Status)
	if err != nil {
		return rule, err
	}
	if err := checkPlaceholders(toText, &rule); err != nil {
		return rule, err
	}
	rule.to = to
	return rule, nil
}

// isCondition: a KEY=VALUE token between FROM and TO (TO is a path or a URL).
func isCondition(tok string) bool {
	return strings.Contains(tok, "=") && !strings.HasPrefix(tok, "/") && !isAbsolute(tok)
}

func isAbsolute(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

func hasBind(cs []queryCond, name string) bool {
	for _, c := range cs {
		if c.bind == name {
			return true
		}
	}
	return false
}

func parseTarget(s string, status int) (target, error) {
	var t target
	switch {
	case isAbsolute(s):
		if status == 200 {
			return t, fmt.Errorf("%s: proxying to another host (200 to a URL) is not supported: redirect with 301 or 302", s)
		}
		if status == 404 {
			return t, fmt.Errorf("%s: a 404 rule serves a file of this site: TO must be a path", s)
		}
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || u.User != nil {
			return t, fmt.Errorf("%q is not a URL this site can redirect to", s)
		}
		t.origin = u.Scheme + "://" + u.Host
		s = s[len(t.origin):]
		if s != "" && s[0] != '/' && s[0] != '?' && s[0] != '#' {
			return t, fmt.Errorf("%q is not a URL this site can redirect to", s)
		}
	case strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\"):
		return t, fmt.Errorf("%q names a host: write the URL in full (https://...)", s)
	case !strings.HasPrefix(s, "/"):
		return t, fmt.Errorf("TO %q must be a path starting with / or an http(s) URL", s)
	}
	s, t.fragment, _ = strings.Cut(s, "#")
	t.path, t.query, t.hasQuery = strings.Cut(s, "?")
	if _, err := url.PathUnescape(t.path); err != nil {
		return t, fmt.Errorf("TO %q: bad %%-escape in the path", s)
	}
	if t.path == "" && t.origin == "" {
		t.path = "/"
	}
	return t, nil
}

// checkPlaceholders refuses a TO that uses a placeholder its rule does not bind (in the path or
// the query; an absolute URL's host and port are not looked at).
func checkPlaceholders(to string, rule *Redirect) error {
	if isAbsolute(to) {
		if i := strings.Index(to[len("https://"):], "/"); i >= 0 {
			to = to[len("https://")+i:]
		} else {
			return nil
		}
	}
	var bad string
	eachPlaceholder(to, func(name string) string {
		if bad == "" && !rule.from.has(name) && !hasBind(rule.query, name) {
			bad = name
		}
		return ""
	})
	if bad == "splat" {
		return fmt.Errorf("TO uses :splat but FROM has no *")
	}
	if bad != "" {
		return fmt.Errorf("TO uses :%s, which FROM does not bind", bad)
	}
	return nil
}

// eachPlaceholder calls fn for each `:name` in s and returns s with each replaced by what fn
// returns. A colon not followed by a name is left alone.
func eachPlaceholder(s string, fn func(name string) string) string {
	out, _ := expandPlaceholders(s, -1, fn)
	return out
}

// expandPlaceholders is eachPlaceholder with a bound: false, and the output so far, when the
// result would be longer than max bytes (max < 0: no bound).
func expandPlaceholders(s string, max int, fn func(name string) string) (string, bool) {
	if strings.IndexByte(s, ':') < 0 {
		return s, max < 0 || len(s) <= max
	}
	var b strings.Builder
	write := func(v string) bool {
		if max >= 0 && b.Len()+len(v) > max {
			return false
		}
		b.WriteString(v)
		return true
	}
	for {
		i := strings.IndexByte(s, ':')
		if i < 0 {
			ok := write(s)
			return b.String(), ok
		}
		if !write(s[:i]) {
			return b.String(), false
		}
		j := i + 1
		for j < len(s) && isName(s[j:j+1]) {
			j++
		}
		v := ":"
		if j > i+1 {
			v = fn(s[i+1 : j])
		}
		if !write(v) {
			return b.String(), false
		}
		s = s[j:]
	}
}

// Action is what a matching rule does with a request.
type Action struct {
	// 301, 302, 303, 307, 308: redirect to Location; 200, 404: serve Path; 414: the rule's
	// placeholders would expand to more than MaxExpanded bytes (answer 414 URI Too Long).
	Status int
	// Location is the redirect's target (URL-escaped), with the request's query kept unless
	// TO has its own.
	Location string
	// Path is the decoded path within the site to serve, for 200 and 404.
	Path string
	Line int // the rule's line
}

// Match finds the first rule for a request path (decoded) and raw query. fileExists says
// whether a file of the site matches the path: then only forced rules apply.
func (r *Redirects) Match(path, rawQuery string, fileExists bool) (Action, bool) {
	if r == nil {
		return Action{}, false
	}
	var query url.Values
	for i := range r.rules {
		rule := &r.rules[i]
		if fileExists && !rule.Force {
			continue
		}
		ps, ok := rule.from.match(path, true)
		if !ok {
			continue
		}
		if len(rule.query) > 0 {
			if query == nil {
				query, _ = url.ParseQuery(rawQuery)
			}
			if ps, ok = rule.matchQuery(query, ps); !ok {
				continue
			}
		}
		return rule.action(ps, rawQuery), true
	}
	return Action{}, false
}

func (rule *Redirect) matchQuery(q url.Values, ps params) (params, bool) {
	for _, c := range rule.query {
		vs, ok := q[c.key]
		if !ok || len(vs) == 0 {
			return nil, false
		}
		if c.bind != "" {
			if ps == nil {
				ps = params{}
			}
			ps[c.bind] = vs[0]
		} else if vs[0] != c.value {
			return nil, false
		}
	}
	return ps, true
}

func (rule *Redirect) action(ps params, rawQuery string) Action {
	t := &rule.to
	tooLong := Action{Status: http.StatusRequestURITooLong, Line: rule.Line}
	path, ok := expandPlaceholders(t.path, MaxExpanded, func(name string) string {
		v, ok := ps[name]
		if !ok {
			return ":" + name
		}
		return escapePath(v)
	})
	if !ok {
		return tooLong
	}
	// A value that starts with slashes must not make the path name a host ("//evil.example").
	if strings.HasPrefix(path, "//") {
		path = "/" + strings.TrimLeft(path, "/")
	}
	a := Action{Status: rule.Status, Line: rule.Line}
	if rule.Status == 200 || rule.Status == 404 {
		a.Path, _ = url.PathUnescape(path)
		return a
	}
	var b strings.Builder
	b.WriteString(t.origin)
	b.WriteString(path)
	switch {
	case t.hasQuery:
		q, ok := expandPlaceholders(t.query, MaxExpanded, func(name string) string {
			v, ok := ps[name]
			if !ok {
				return ":" + name
			}
			return url.QueryEscape(v)
		})
		if !ok {
			return tooLong
		}
		b.WriteByte('?')
		b.WriteString(q)
	case rawQuery != "":
		b.WriteByte('?')
		b.WriteString(rawQuery)
	}
	if t.fragment != "" {
		b.WriteByte('#')
		b.WriteString(t.fragment)
	}
	if b.Len() > MaxExpanded {
		return tooLong
	}
	a.Location = b.String()
	return a
}

// escapePath escapes a matched value for a path, keeping its slashes.
func escapePath(v string) string {
	segs := strings.Split(v, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
