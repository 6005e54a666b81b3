package pgs

import (
	"context"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services/pgs/blob"
	"github.com/portico-sh/portico/services/pgs/sitepath"
)

// StaticFile answers a plain GET or HEAD of a public site's file of at most memFileMax bytes,
// or one whose only condition is If-None-Match (services.StaticSiteServer), with what
// serveFile sends for it: it loads the deploy, its rules and the file (or the compressed copy
// the client accepts) into the caches as the handler does, and answers from memory: a 304
// when ifNoneMatch names the ETag of what would be sent, as http.ServeContent decides it, else
// the 200 (http.ServeContent sends the same header as serveFile's plain answer then).
// Everything else is declined, to the handler Site returns: sites that are not public,
// deploys with _redirects or _headers rules, paths that do not resolve to a file with status
// 200, larger files, an If-None-Match net/http stops reading before it finds the ETag, and
// whatever fails (the handler says why).
func (s *Service) StaticFile(dst []byte, account, name, urlPath, acceptEncoding, ifNoneMatch string) (head, body []byte, found, ok bool) {
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
	var rd blob.Reader
	if enc != "" {
		if r, ok := s.encodedBlob(ctx, ref, f.Size, enc); ok {
			rd = r
		} else {
			enc = "" // the file as it is, as the handler sends it then
		}
	}
	if rd == nil {
		if rd, err = s.cached(memKey{account: ref.Account, hash: ref.Hash}, func() (blob.Reader, error) {
			return s.blobs.Open(ctx, ref)
		}); err != nil {
			return dst, nil, true, false // the handler says why
		}
	}
	m, inMemory := rd.(memReader)
	if !inMemory {
		rd.Close()
		return dst, nil, true, false
	}
	e := m.e
	if ifNoneMatch != "" {
		match, read := etagListed(ifNoneMatch, e.etag[0])
		if !read {
			return dst, nil, true, false
		}
		if match {
			// What writeNotModified leaves of serveFile's header: no Content-Type,
			// Content-Length, Content-Encoding, nor Last-Modified (there is an ETag), and no
			// Accept-Ranges (set after the conditions); sorted by name.
			dst = append(dst, "HTTP/1.1 304 Not Modified\r\nCache-Control: "+cacheControl+"\r\nEtag: "...)
			dst = append(dst, e.etag[0]...)
			dst = append(dst, "\r\n"...)
			if vary {
				dst = append(dst, "Vary: Accept-Encoding\r\n"...)
			}
			dst = append(dst, "X-Content-Type-Options: nosniff\r\n"...)
			return dst, nil, true, true
		}
	}
	// In the order net/http writes a handler's header: sorted by name.
	dst = append(dst, "HTTP/1.1 200 OK\r\nAccept-Ranges: bytes\r\nCache-Control: "+cacheControl+"\r\n"...)
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

// etagListed reports whether http.ServeContent finds etag in list, a request's If-None-Match
// value, as its checkIfNoneMatch does for a GET or HEAD (and then answers 304): list is read
// from the start, parts separated by commas and optional white space; "*" matches anything;
// an entity tag, W/ or not, matches etag when the two are the same without their W/ (the weak
// comparison). read is false when the list has a part net/http cannot read before a match:
// net/http stops there and answers 200; StaticFile leaves such a request to it.
func etagListed(list, etag string) (match, read bool) {
	etag = strings.TrimPrefix(etag, "W/")
	rest := list
	for range len(list) + 1 { // each turn reads at least one byte
		rest = textproto.TrimString(rest)
		switch {
		case rest == "":
			return false, true
		case rest[0] == ',':
			rest = rest[1:]
			continue
		case rest[0] == '*':
			return true, true
		}
		tag, after, ok := cutETag(rest)
		if !ok {
			return false, false
		}
		if strings.TrimPrefix(tag, "W/") == etag {
			return true, true
		}
		rest = after
	}
	return false, false
}

// cutETag splits the entity tag at the start of s (W/"…" or "…", of the characters RFC 9110
// allows in one) from what follows it, as net/http's scanETag.
func cutETag(s string) (tag, rest string, ok bool) {
	i := 0
	if strings.HasPrefix(s, "W/") {
		i = 2
	}
	if i >= len(s) || s[i] != '"' {
		return "", "", false
	}
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return s[:j+1], s[j+1:], true
		case c == 0x21 || (0x23 <= c && c <= 0x7e) || c >= 0x80:
		default:
			return "", "", false
		}
	}
	return "", "", false
}
