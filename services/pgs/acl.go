package pgs

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/sync/singleflight"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
)

// Argon2id parameters of site passwords (OWASP's first recommendation: 19 MiB, 2 passes, 1
// lane), and the bounds on checking them: at most maxPasswordChecks at once on a gateway
// (each holds 19 MiB), a request waits passwordWait for a turn; checks that succeeded are
// remembered (by a hash of the stored hash and the password), up to maxPasswordsKnown.
const (
	argonTime         = 2
	argonMemory       = 19 * 1024
	argonThreads      = 1
	argonKeyLen       = 32
	minPassword       = 8
	maxPassword       = 1024
	maxPasswordChecks = 2
	passwordWait      = 2 * time.Second
	maxPasswordsKnown = 10_000
	maxACLAccounts    = 100
)

// hashPassword returns an Argon2id hash of password in PHC form.
func hashPassword(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// checkPassword reports whether password matches a hash made by hashPassword.
func checkPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 256*1024 || t == 0 || t > 10 || p == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(key) == 0 || len(key) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1
}

// passwordChecker checks site passwords within its bounds.
type passwordChecker struct {
	slots    chan struct{}
	mu       sync.Mutex
	known    map[[32]byte]struct{}
	sources  map[string]bool // sources with a check waiting or running
	inflight singleflight.Group
}

func newPasswordChecker() *passwordChecker {
	return &passwordChecker{slots: make(chan struct{}, maxPasswordChecks), known: map[[32]byte]struct{}{},
		sources: map[string]bool{}}
}

var errPasswordBusy = errors.New("too many password checks at once")

// check reports whether password matches hash. source is the client (an HTTP RemoteAddr, or
// a key naming the SSH connection): a source has at most one distinct check waiting or running,
// so that one client guessing in parallel cannot hold every slot; requests with the same
// password at once (a browser fetching a page's assets) share one check.
func (c *passwordChecker) check(ctx context.Context, source, hash, password string) (bool, error) {
	if len(password) > maxPassword {
		return false, nil
	}
	k := sha256.Sum256([]byte(hash + "\x00" + password))
	c.mu.Lock()
	_, ok := c.known[k]
	c.mu.Unlock()
	if ok {
		return true, nil
	}
	if ap, err := netip.ParseAddrPort(source); err == nil {
		source = auth.SourceOf(net.TCPAddrFromAddrPort(ap))
	}
	v, err, _ := c.inflight.Do(string(k[:]), func() (any, error) {
		c.mu.Lock()
		if c.sources[source] {
			c.mu.Unlock()
			return false, errPasswordBusy
		}
		c.sources[source] = true
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			delete(c.sources, source)
			c.mu.Unlock()
		}()
		t := time.NewTimer(passwordWait)
		defer t.Stop()
		select {
		case c.slots <- struct{}{}:
		case <-t.C:
			return false, errPasswordBusy
		}
		ok := checkPassword(hash, password)
		<-c.slots
		if ok {
			c.mu.Lock()
			if len(c.known) >= maxPasswordsKnown {
				clear(c.known)
			}
			c.known[k] = struct{}{}
			c.mu.Unlock()
		}
		return ok, nil
	})
	if err != nil {
		return false, err
	}
	return v.(bool), nil
}

// privateCacheControl is what a private site (behind a password, or for listed accounts)
// sends by default: only the visitor's own cache may keep it.
var privateCacheControl = []string{"private, max-age=0, must-revalidate"}

// keepPrivate makes the caching headers of a private site's response say that no shared cache
// (a CDN, a proxy) may keep it, whatever the site's _headers rules set: their directives for
// the visitor's own cache stay (max-age, immutable, no-store, ...), those that let a shared
// cache keep it (public, s-maxage, proxy-revalidate) and a private limited to some fields go,
// and private comes first. With no directive left (or none set, or removed by a rule) it is
// privateCacheControl. Headers for CDNs alone (CDN-Cache-Control, Akamai-Cache-Control and the
// like, Surrogate-Control, Edge-Control) go: a CDN would follow them instead.
func keepPrivate(hdr http.Header) {
	for name := range hdr {
		if (name != "Cache-Control" && strings.HasSuffix(name, "Cache-Control")) || name == "Surrogate-Control" || name == "Edge-Control" {
			delete(hdr, name)
		}
	}
	cc := hdr["Cache-Control"]
	if len(cc) == 1 && cc[0] == privateCacheControl[0] {
		return
	}
	kept := []string{"private"}
	for _, d := range cacheDirectives(cc) {
		name, _, _ := strings.Cut(d, "=")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "public", "private", "s-maxage", "proxy-revalidate":
			continue
		}
		kept = append(kept, d)
	}
	if len(kept) == 1 {
		hdr["Cache-Control"] = privateCacheControl
		return
	}
	hdr["Cache-Control"] = []string{strings.Join(kept, ", ")}
}

// cacheDirectives splits Cache-Control values into their directives, at the commas outside
// quoted strings (no-cache="Set-Cookie, X-Id" is one). A directive with an unterminated quoted
// string is left out: where it ends is anyone's guess.
func cacheDirectives(values []string) []string {
	var out []string
	add := func(d string) {
		if d = strings.TrimSpace(d); d != "" {
			out = append(out, d)
		}
	}
	for _, v := range values {
		start, quoted := 0, false
		for i := 0; i < len(v); i++ {
			switch c := v[i]; {
			case quoted && c == '\\':
				i++
			case c == '"':
				quoted = !quoted
			case c == ',' && !quoted:
				add(v[start:i])
				start = i + 1
			}
		}
		if !quoted {
			add(v[start:])
		}
	}
	return out
}

// basicAuth asks for a site's password (any user name) before the site.
type basicAuth struct {
	svc    *Service
	hash   string
	realm  string
	source string // the client, when not the request's RemoteAddr (a forward: its connection)
	next   http.Handler
}

func (b *basicAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, password, ok := r.BasicAuth()
	if ok {
		source := b.source
		if source == "" {
			source = r.RemoteAddr
		}
		good, err := b.svc.passwords.check(r.Context(), source, b.hash, password)
		if err != nil {
			w.Header().Set("Retry-After", "2")
			http.Error(w, "busy, try again", http.StatusServiceUnavailable)
			return
		}
		if good {
			// next is the site's handler made private: it says Cache-Control private.
			b.next.ServeHTTP(w, r)
			return
		}
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="`+b.realm+`", charset="UTF-8"`)
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "this site asks for a password", http.StatusUnauthorized)
}

// SetACL sets who may see a project's site: db.PGSPublic, db.PGSAccounts with the accounts
// (besides the owner), or db.PGSPassword with a password read from stdin (its first line). It
// returns the ACL and, for db.PGSAccounts, the names of the accounts it lists. The ACL keeps
// the accounts' ids: a listed account that is deleted sees nothing, nor does whoever registers
// its name again.
func (s *Service) SetACL(ctx context.Context, g auth.Grant, project, kind string, list []string, stdin io.Reader) (db.PGSACL, []string, error) {
	if _, err := s.project(ctx, g, project); err != nil {
		return db.PGSACL{}, nil, err
	}
	acl := db.PGSACL{Kind: kind}
	var names []string
	switch kind {
	case db.PGSPublic:
	case db.PGSAccounts:
		for _, item := range list {
			for name := range strings.SplitSeq(item, ",") {
				name = strings.TrimSpace(name)
				if name == "" || name == g.Account || slices.Contains(names, name) {
					continue
				}
				if err := auth.ValidAccountName(name); err != nil {
					return acl, nil, errorf(Invalid, "%q is not an account name: %v", shown(name), err)
				}
				if len(names) >= maxACLAccounts {
					return acl, nil, errorf(Invalid, "an ACL lists at most %d accounts", maxACLAccounts)
				}
				// A name no account holds would let whoever signs up under it first see the
				// site.
				a, err := s.store.AccountByName(ctx, name)
				if errors.Is(err, db.ErrNotFound) {
					return acl, nil, errorf(NotFound, "there is no account %s: an ACL lists accounts that exist", name)
				} else if err != nil {
					return acl, nil, userError(err)
				}
				names = append(names, name)
				acl.AccountIDs = append(acl.AccountIDs, a.ID)
			}
		}
		if len(names) == 0 {
			return acl, nil, errorf(Invalid, "list the accounts that may see %s besides you: acl %s accounts bob,carol", project, project)
		}
	case db.PGSPassword:
		password, err := readPassword(stdin)
		if err != nil {
			return acl, nil, err
		}
		acl.PasswordHash = hashPassword(password)
	default:
		return acl, nil, errorf(Invalid, "acl %s: want public, accounts LIST or password", shown(kind))
	}
	if err := s.store.SetPGSACL(ctx, g.AccountID, project, acl); err != nil {
		if errors.Is(err, db.ErrNotFound) {
			return acl, nil, errorf(NotFound, "no project %s", project)
		}
		return acl, nil, userError(err)
	}
	s.sites.forget(g.Account, project)
	s.log.Info("pgs: site ACL set", "account", g.Account, "project", project, "acl", kind, "identity", g.Identity)
	return acl, names, nil
}

// readPassword reads a password: the first line of stdin, without its line break.
func readPassword(stdin io.Reader) (string, error) {
	if stdin == nil {
		return "", errorf(Invalid, "send the password on stdin")
	}
	line, err := bufio.NewReaderSize(io.LimitReader(stdin, maxPassword+2), maxPassword+2).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", errorf(Invalid, "reading the password from stdin: %v", err)
	}
	if err == io.EOF && len(line) > maxPassword {
		return "", errorf(Invalid, "the password is longer than %d bytes", maxPassword)
	}
	password := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	switch {
	case len(password) > maxPassword:
		return "", errorf(Invalid, "the password is longer than %d bytes", maxPassword)
	case len(password) < minPassword:
		return "", errorf(Invalid, "send a password of at least %d bytes on stdin, e.g. ssh pgs@HOST acl PROJECT password < secret.txt", minPassword)
	}
	return password, nil
}
