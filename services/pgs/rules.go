package pgs

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/portico-sh/portico/services/pgs/blob"
	"github.com/portico-sh/portico/services/pgs/siterules"
)

// siteRules are a deploy's _redirects and _headers, parsed (nil when the deploy has none).
type siteRules struct {
	redirects *siterules.Redirects
	headers   *siterules.Headers
}

// noRules is what a deploy without rule files has.
var noRules = &siteRules{}

// rulesOf returns the rules of a stored deploy, read and parsed at its first request and kept
// with its manifest. A deploy published before rules were checked may hold bad lines: those are
// logged and skipped.
func (s *Service) rulesOf(ctx context.Context, t *tree, accountID int64) (*siteRules, error) {
	if r := t.rules.Load(); r != nil {
		return r, nil
	}
	t.rulesMu.Lock()
	defer t.rulesMu.Unlock()
	if r := t.rules.Load(); r != nil {
		return r, nil
	}
	read := func(f File) ([]byte, error) {
		rd, err := s.blobs.Open(ctx, blob.Ref{Account: accountID, Hash: f.Hash})
		if err != nil {
			return nil, err
		}
		defer rd.Close()
		return readRulesFile(rd)
	}
	r, errs, err := parseRules(t, read)
	if err != nil {
		return nil, err
	}
	for _, e := range errs {
		s.log.Warn("pgs: a site rule was skipped", "account_id", accountID, "err", e)
	}
	t.rules.Store(r)
	return r, nil
}

// readRulesFile reads a rule file, up to one byte more than the parsers accept (so that they
// report the size).
func readRulesFile(r io.ReaderAt) ([]byte, error) {
	buf := make([]byte, siterules.MaxFileSize+1)
	n, err := r.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	return buf[:n], nil
}

// parseRules reads and parses the rule files at the root of t.
func parseRules(t *tree, read func(File) ([]byte, error)) (*siteRules, siterules.Errors, error) {
	var out siteRules
	var errs siterules.Errors
	if f, ok := t.file(siterules.RedirectsFile); ok {
		data, err := read(f)
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", siterules.RedirectsFile, err)
		}
		var es siterules.Errors
		out.redirects, es = siterules.ParseRedirects(data)
		errs = append(errs, es...)
	}
	if f, ok := t.file(siterules.HeadersFile); ok {
		data, err := read(f)
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", siterules.HeadersFile, err)
		}
		var es siterules.Errors
		out.headers, es = siterules.ParseHeaders(data)
		errs = append(errs, es...)
	}
	if out.redirects == nil && out.headers == nil {
		return noRules, errs, nil
	}
	return &out, errs, nil
}

// checkRules refuses a deploy whose rule files have errors, listing every one with its file
// and line.
func (s *session) checkRules(ctx context.Context, d *deploy) error {
	read := func(f File) ([]byte, error) {
		s.mu.Lock()
		pb := s.pending[f.Hash]
		if pb != nil {
			pb.readers++
		}
		s.mu.Unlock()
		var r blob.Reader
		if pb != nil {
			r = &pendingReader{s: s, pb: pb}
		} else {
			var err error
			if r, err = s.svc.blobs.Open(ctx, blob.Ref{Account: s.accountID(), Hash: f.Hash}); err != nil {
				return nil, err
			}
		}
		defer r.Close()
		return readRulesFile(r)
	}
	s.mu.Lock()
	work := d.work
	s.mu.Unlock()
	_, errs, err := parseRules(work, read)
	if err != nil {
		return err
	}
	if len(errs) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: the site's rules have errors; nothing was published and the previous deploy stays live:", d.project)
	for _, e := range errs {
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	return &Error{Kind: Invalid, Message: b.String()}
}

// rewrite resolves what a 200 or 404 rule serves: the file at the rule's path (with the
// serving rules for index.html and .html, one hop: no rule applies again), with the rule's
// status; without such a file, the request's not-found page.
func rewrite(t *tree, a siterules.Action, requestPath string) resolution {
	res := resolve(t, a.Path)
	if res.redirect != "" {
		res = resolution{file: strings.TrimPrefix(res.redirect, "/") + "index.html", status: http.StatusOK}
	}
	if res.status != http.StatusOK {
		// Not found: the nearest 404.html going up from the request's folder.
		folder := strings.TrimPrefix(requestPath, "/")
		if strings.HasSuffix(folder, "/") {
			folder = strings.TrimSuffix(folder, "/")
		} else {
			folder = parentOf(folder)
		}
		return notFound(t, folder)
	}
	res.status = a.Status
	return res
}

// setSiteHeaders applies what _headers says to a response: its headers replace the server's
// defaults of the same name, and those it removes are not sent.
func setSiteHeaders(hdr http.Header, set siterules.HeaderSet) {
	for _, name := range set.Removed {
		hdr[name] = []string{} // present and empty: setDefault leaves it, net/http sends nothing
	}
	for _, f := range set.Set {
		hdr.Set(f.Name, f.Value)
	}
}

// setDefault sets a header the site's rules did not set or remove.
func setDefault(hdr http.Header, name, value string) {
	if _, ok := hdr[name]; !ok {
		hdr.Set(name, value)
	}
}

// setDefaultValues is setDefault with the values made already; name is canonical.
func setDefaultValues(hdr http.Header, name string, values []string) {
	if _, ok := hdr[name]; !ok {
		hdr[name] = values
	}
}

// weight is what a stored deploy counts for in the cache of manifests: its cost (files and
// paths), and for each rule file as many as the rules it may hold (they are parsed and kept
// with it).
func (t *tree) weight() int {
	w := t.cost
	for _, name := range []string{siterules.RedirectsFile, siterules.HeadersFile} {
		if _, ok := t.file(name); ok {
			w += siterules.MaxRules
		}
	}
	return w
}
