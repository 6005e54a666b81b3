package pgs

import (
	"context"
	"net/http"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services/pgs/blob"
	"github.com/portico-sh/portico/services/pgs/sitepath"
)

// StaticFile answers a plain GET or HEAD of a public site's file of at most memFileMax bytes
// (services.StaticSiteServer), with what serveFile sends for it: it loads the deploy, its rules
// and the file (or the compressed copy the client accepts) into the caches as the handler does,
// and answers from memory. Everything else is declined, to the handler Site returns: sites that
// are not public, deploys with _redirects or _headers rules, paths that do not resolve to a file
// with status 200, larger files, and whatever fails (the handler says why).
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
	// What the handler does, in its order (see siteHandler.ServeHTTP and serveFile).
	ctx := context.Background()
	t, err := s.sites.tree(ctx, live.DeployID)
	if err != nil {
		return dst, nil, true, false
	}
	rules, err := s.rulesOf(ctx, t, live.AccountID)
	if err != nil || rules.redirects != nil || rules.headers != nil {
		return dst, nil, true, false
	}
	res := resolve(t, urlPath)
	if res.file == "" || res.status != http.StatusOK {
		return dst, nil, true, false
	}
	f, _ := t.file(res.file)
	if f.Size > memFileMax {
		return dst, nil, true, false // never held in memory
	}
	ctype := contentTypeHeader(res.file)[0]
	vary := s.encoded != nil && compressible(ctype, f.Size)
	ref := blob.Ref{Account: live.AccountID, Hash: f.Hash}
	enc := ""
	if vary {
		enc = acceptedEncoding(acceptEncoding)
	}
	var e *memEntry
	if enc != "" {
		rd, ok := s.encodedBlob(ctx, ref, f.Size, enc)
		if ok {
			m, inMemory := rd.(memReader)
			if !inMemory {
				rd.Close()
				return dst, nil, true, false
			}
			e = m.e
		} else {
			enc = "" // the file as it is, as the handler sends it then
		}
	}
	if e == nil {
		rd, err := s.cached(memKey{account: ref.Account, hash: ref.Hash}, func() (blob.Reader, error) {
			return s.blobs.Open(ctx, ref)
		})
		if err != nil {
			return dst, nil, true, false // the handler says why
		}
		m, inMemory := rd.(memReader)
		if !inMemory {
			rd.Close()
			return dst, nil, true, false
		}
		e = m.e
	}
	// In the order net/http writes a handler's header: sorted by name.
	dst = append(dst, "Accept-Ranges: bytes\r\nCache-Control: "+cacheControl+"\r\n"...)
	if enc != "" {
		dst = append(dst, "Content-Encoding: "...)
		dst = append(dst, enc...)
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
