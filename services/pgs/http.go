package pgs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services/pgs/blob"
	"github.com/portico-sh/portico/services/pgs/sitepath"
)

// cacheControl is sent with every file: caches may keep it but must ask again (the ETag makes
// that a 304).
const cacheControl = "public, max-age=0, must-revalidate"

// maxRequestURI bounds a request's path and query (nginx's default buffer for the request
// line is 8 KiB): longer ones get 414, before any _redirects or _headers rule is matched.
const maxRequestURI = 8 << 10

// Site returns the handler of the account's project called name (services.SiteServer). It
// answers false when the account has no such project, so that the host name may be a tunnel.
func (s *Service) Site(account, name string) (http.Handler, bool) {
	if sitepath.CheckProject(name) != nil {
		return nil, false
	}
	// HTTP tunnels answer before pgs is asked (the tuns service comes first in the router), so
	// a name pgs cannot look up now (a flood of unknown names, or the store failing) gets the
	// same answer whether or not a private tunnel holds it: which names tunnels hold is not
	// for visitors to learn.
	live, found, err := s.sites.liveOf(context.Background(), account, name, true)
	if err != nil {
		if !errors.Is(err, errLookupsBusy) {
			s.log.Warn("pgs: looking up a site failed", "account", account, "project", name, "err", err)
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "site unavailable, try again", http.StatusServiceUnavailable)
		}), true
	}
	if !found {
		return nil, false
	}
	switch live.ACL.Kind {
	case db.PGSAccounts:
		return http.HandlerFunc(http.NotFound), true // seen only over an SSH forward
	case db.PGSPassword:
		return &basicAuth{svc: s, hash: live.ACL.PasswordHash, realm: account + "-" + name,
			next: &siteHandler{svc: s, accountID: live.AccountID, deployID: live.DeployID, private: true}}, true
	}
	return &siteHandler{svc: s, accountID: live.AccountID, deployID: live.DeployID}, true
}

// siteHandler serves one project's live deploy.
type siteHandler struct {
	svc       *Service
	accountID int64
	deployID  int64
	// private: the site is behind a password or for listed accounts, so its answers are for
	// their visitor only (Cache-Control private, see keepPrivate).
	private bool
}

func (h *siteHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.private {
		w.Header()["Cache-Control"] = privateCacheControl
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if len(r.URL.EscapedPath())+len(r.URL.RawQuery) > maxRequestURI {
		http.Error(w, "URI too long", http.StatusRequestURITooLong)
		return
	}
	t, err := h.svc.sites.tree(r.Context(), h.deployID)
	if err != nil {
		h.svc.log.Warn("pgs: loading a deploy failed", "deploy_id", h.deployID, "err", err)
		http.Error(w, "site unavailable, try again", http.StatusServiceUnavailable)
		return
	}
	rules, err := h.svc.rulesOf(r.Context(), t, h.accountID)
	if err != nil {
		h.svc.log.Warn("pgs: loading a site's rules failed", "deploy_id", h.deployID, "err", err)
		http.Error(w, "site unavailable, try again", http.StatusServiceUnavailable)
		return
	}
	res := resolve(t, r.URL.Path)
	if rules.redirects != nil {
		matched := res.redirect != "" || res.status == http.StatusOK
		if a, ok := rules.redirects.Match(r.URL.Path, r.URL.RawQuery, matched); ok {
			if a.Status == http.StatusRequestURITooLong {
				http.Error(w, "URI too long", http.StatusRequestURITooLong)
				return
			}
			if a.Location != "" {
				w.Header().Set("Location", a.Location)
				w.WriteHeader(a.Status)
				return
			}
			res = rewrite(t, a, r.URL.Path)
		}
	}
	switch {
	case res.redirect != "":
		u := url.URL{Path: res.redirect, RawQuery: r.URL.RawQuery}
		http.Redirect(w, r, u.String(), http.StatusMovedPermanently)
	case res.file != "":
		f, _ := t.file(res.file)
		if rules.headers != nil {
			setSiteHeaders(w.Header(), rules.headers.For(r.URL.Path))
		}
		if h.private {
			keepPrivate(w.Header())
		}
		h.serveFile(w, r, res.file, f, res.status)
	default:
		http.Error(w, "404 page not found", http.StatusNotFound)
	}
}

// resolution is what a request path resolves to: a file (with the status to serve it with),
// a redirect, or nothing.
type resolution struct {
	file     string
	status   int
	redirect string
}

// resolve applies the serving rules to a request path: the file P; for P ending in "/",
// P/index.html; P.html; a redirect to P/ when P/index.html exists; else the nearest 404.html
// going up from P's folder, with status 404. Paths that sitepath refuses, and hidden ones
// (a segment starting with "." outside /.well-known/), are not found.
func resolve(t *tree, urlPath string) resolution {
	p := strings.TrimPrefix(urlPath, "/")
	dirRequest := p == "" || strings.HasSuffix(p, "/")
	rel := strings.TrimSuffix(p, "/")
	if !strings.HasPrefix(urlPath, "/") || sitepath.CheckRel(rel) != nil || (rel != "" && sitepath.Hidden(rel)) {
		return notFound(t, "")
	}
	isFile := func(q string) bool {
		_, ok := t.file(q)
		return ok
	}
	join := func(dir, name string) string {
		if dir == "" {
			return name
		}
		return dir + "/" + name
	}
	switch {
	case !dirRequest && isFile(rel):
		return resolution{file: rel, status: http.StatusOK}
	case dirRequest && isFile(join(rel, "index.html")):
		return resolution{file: join(rel, "index.html"), status: http.StatusOK}
	case !dirRequest && isFile(rel+".html"):
		return resolution{file: rel + ".html", status: http.StatusOK}
	case !dirRequest && isFile(join(rel, "index.html")):
		return resolution{redirect: "/" + rel + "/"}
	}
	folder := rel
	if !dirRequest {
		folder = parentOf(rel)
	}
	return notFound(t, folder)
}

// notFound is the nearest 404.html at or above folder, with status 404.
func notFound(t *tree, folder string) resolution {
	for {
		name := "404.html"
		if folder != "" {
			name = folder + "/404.html"
		}
		if _, ok := t.file(name); ok && !sitepath.Hidden(name) {
			return resolution{file: name, status: http.StatusNotFound}
		}
		if folder == "" {
			return resolution{}
		}
		folder = parentOf(folder)
	}
}

func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// serveFile sends a file of the deploy: with status 200 through http.ServeContent (ETag,
// Last-Modified, 304, Range, HEAD), or a 404 page as it is.
func (h *siteHandler) serveFile(w http.ResponseWriter, r *http.Request, name string, f File, status int) {
	ctypeHeader := contentTypeHeader(name)
	ctype := ctypeHeader[0]
	ref := blob.Ref{Account: h.accountID, Hash: f.Hash}
	var etag string // a compressed copy's, set by encodedFile
	rd := h.encodedFile(w, r, ctype, ref, f, status, &etag)
	if rd == nil {
		var err error
		rd, err = h.svc.cached(memKey{account: ref.Account, hash: ref.Hash}, func() (blob.Reader, error) {
			return h.svc.blobs.Open(r.Context(), ref)
		})
		if err != nil {
			h.svc.log.Warn("pgs: opening a site's file failed", "deploy_id", h.deployID, "path", name, "err", err)
			http.Error(w, "site unavailable, try again", http.StatusServiceUnavailable)
			return
		}
	}
	defer rd.Close()
	hdr := w.Header()
	if m, ok := rd.(memReader); ok && status == http.StatusOK && plainGet(r) {
		// The common case, without conditions or ranges: the body in one write, with the
		// header values made once per file (the keys are canonical, as Header.Set makes them).
		setDefaultValues(hdr, "Content-Type", ctypeHeader)
		setDefaultValues(hdr, "Cache-Control", cacheControlHeader)
		setDefaultValues(hdr, "X-Content-Type-Options", nosniffHeader)
		hdr["Etag"] = m.e.etag
		if f.MTime != 0 {
			hdr["Last-Modified"] = m.e.lastModifiedOf(f.MTime)
		}
		hdr["Accept-Ranges"] = acceptRangesHeader
		hdr["Content-Length"] = m.e.length
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(m.e.data)
		}
		return
	}
	setDefault(hdr, "Content-Type", ctype)
	setDefault(hdr, "Cache-Control", cacheControl)
	setDefault(hdr, "X-Content-Type-Options", "nosniff")
	var body io.ReadSeeker = io.NewSectionReader(rd, 0, rd.Size())
	switch f := rd.(type) {
	case memReader:
		body = bytes.NewReader(f.e.data)
	case interface{ ReadSeeker() io.ReadSeeker }:
		body = f.ReadSeeker() // a file the kernel can send by itself
	}
	if status == http.StatusOK {
		if etag == "" {
			etag = `"` + f.Hash.String() + `"`
		}
		hdr.Set("ETag", etag)
		if rh := r.Header.Get("Range"); rh != "" {
			if merged, ignore, ok := coalesceRange(rh, rd.Size()); ignore {
				r.Header.Del("Range")
			} else if ok {
				r.Header.Set("Range", merged)
			}
		}
		http.ServeContent(w, r, "", time.Unix(f.MTime, 0), body)
		return
	}
	hdr.Set("Content-Length", strconv.FormatInt(rd.Size(), 10))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		io.Copy(w, body)
	}
}

// Header values shared by every response (never changed in place).
var (
	cacheControlHeader = []string{cacheControl}
	nosniffHeader      = []string{"nosniff"}
	acceptRangesHeader = []string{"bytes"}
)

// plainGet reports whether a request has no conditions and no range: http.ServeContent would
// send the whole file with status 200.
func plainGet(r *http.Request) bool {
	h := r.Header
	return absent(h, "Range") && absent(h, "If-None-Match") && absent(h, "If-Modified-Since") &&
		absent(h, "If-Match") && absent(h, "If-Unmodified-Since")
}

// absent reports whether h.Get(name) would be "", for a canonical name (net/http canonicalises
// the keys of a request's header) without canonicalising it again.
func absent(h http.Header, name string) bool {
	v := h[name]
	return len(v) == 0 || v[0] == ""
}
