package pgs

import (
	"context"
	"net/http"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services/pgs/sitepath"
)

// StaticFile answers a plain GET or HEAD of a public site's file held in memory
// (services.StaticSiteServer), with the headers serveFile sends for it. Everything else is
// declined, to the handler Site returns: sites that are not public, deploys with _redirects or
// _headers rules (or whose rules are not read yet), paths that do not resolve to a file with
// status 200, files (or the compressed copies the client accepts) not in the memory cache yet,
// and compressed copies no smaller than their file.
func (s *Service) StaticFile(dst []byte, account, name, urlPath, acceptEncoding string) (head, body []byte, found, ok bool) {
	if sitepath.CheckProject(name) != nil {
		return dst, nil, false, false
	}
	live, found, err := s.sites.liveOf(context.Background(), account, name, true)
	if err != nil {
		return dst, nil, true, false // Site answers it (503)
	}
	if !found {
		return dst, nil, false, false
	}
	if live.ACL.Kind != db.PGSPublic && live.ACL.Kind != "" {
		return dst, nil, true, false
	}
	t, ok := s.sites.cachedTree(live.DeployID)
	if !ok {
		return dst, nil, true, false
	}
	rules := t.rules.Load()
	if rules == nil || rules.redirects != nil || rules.headers != nil {
		return dst, nil, true, false
	}
	res := resolve(t, urlPath)
	if res.file == "" || res.status != http.StatusOK {
		return dst, nil, true, false
	}
	f, _ := t.file(res.file)
	ctype := contentTypeHeader(res.file)[0]
	vary := s.encoded != nil && compressible(ctype, f.Size)
	key := memKey{account: live.AccountID, hash: f.Hash}
	if vary {
		key.enc = acceptedEncoding(acceptEncoding)
	}
	e, ok := s.mem.get(key)
	if !ok || (key.enc != "" && int64(len(e.data)) >= f.Size) {
		// Not in memory, or a compressed copy no smaller than the file (the handler sends the
		// file then).
		return dst, nil, true, false
	}
	// In the order net/http writes a handler's header: sorted by name.
	dst = append(dst, "Accept-Ranges: bytes\r\nCache-Control: "+cacheControl+"\r\n"...)
	if key.enc != "" {
		dst = append(dst, "Content-Encoding: "...)
		dst = append(dst, key.enc...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Content-Length: "...)
	dst = append(dst, e.length[0]...)
	dst = append(dst, "\r\nContent-Type: "...)
	dst = append(dst, ctype...)
	dst = append(dst, "\r\nEtag: "...)
	dst = append(dst, e.etag[0]...)
	dst = append(dst, "\r\n"...)
	if f.MTime != 0 {
		dst = append(dst, "Last-Modified: "...)
		dst = append(dst, e.lastModifiedOf(f.MTime)[0]...)
		dst = append(dst, "\r\n"...)
	}
	if vary {
		dst = append(dst, "Vary: Accept-Encoding\r\n"...)
	}
	dst = append(dst, "X-Content-Type-Options: nosniff\r\n"...)
	return dst, e.data, true, true
}
