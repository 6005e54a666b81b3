package egress

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
	"unicode/utf8"
)

// Defaults for Options.
const (
	DefaultTimeout      = 15 * time.Second
	DefaultMaxRedirects = 3
	maxHeaderBytes      = 64 << 10
)

// Options configure a Fetcher.
type Options struct {
	// AllowInternal lets fetches reach internal addresses (Internal). Off by default: a user
	// who may name a URL must not make the server read its own network.
	AllowInternal bool
	Timeout       time.Duration // the whole fetch, body included; 0: DefaultTimeout
	MaxBytes      int64         // the largest body taken
	MaxRedirects  int           // 0: DefaultMaxRedirects
}

// Fetcher gets documents over HTTP(S) within its Options' bounds.
type Fetcher struct {
	client  *http.Client
	opts    Options
	timeout time.Duration
}

// Error is a fetch's failure, in words fit for the user who named the URL.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

func errorf(format string, args ...any) *Error { return &Error{msg: fmt.Sprintf(format, args...)} }

// errInternal is what the dialer returns for an internal address.
var errInternal = errors.New("internal address")

// New returns a Fetcher with the given options.
func New(o Options) *Fetcher {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxRedirects <= 0 {
		o.MaxRedirects = DefaultMaxRedirects
	}
	dialer := &net.Dialer{
		Timeout: o.Timeout,
		// Control sees the address each connection is about to be made to, after name
		// resolution: a host name that resolves (or rebinds) to an internal address is refused
		// here, whatever the URL said.
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return errInternal
			}
			if !o.AllowInternal && Internal(ap.Addr()) {
				return errInternal
			}
			return nil
		},
	}
	transport := &http.Transport{
		Proxy:                  nil, // a proxy would dial for us, past the check
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    o.Timeout,
		ResponseHeaderTimeout:  o.Timeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
		DisableKeepAlives:      true,
		DisableCompression:     true,
	}
	client := &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > o.MaxRedirects {
				return errorf("it redirects more than %d times", o.MaxRedirects)
			}
			if _, err := CheckURL(req.URL.String()); err != nil {
				return errorf("it redirects to a URL portico does not fetch: %v", err)
			}
			// An https URL was chosen so that no one on the path can change what comes back
			// (a KRL whose entries lapse is a revocation lifted): a redirect to plain http would
			// throw that away unseen.
			if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
				return errorf("it redirects from https to plain http, where anyone on the path could change the answer")
			}
			return nil
		},
	}
	return &Fetcher{client: client, opts: o, timeout: o.Timeout}
}

// CheckURL parses a URL a user gave: http or https, with a host, without user name or password
// (they would be kept and shown with the URL).
func CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !utf8.ValidString(raw):
		return nil, errorf("%q is not a URL", raw)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errorf("%q: portico fetches only http:// and https:// URLs", raw)
	case u.Host == "" || u.Hostname() == "":
		return nil, errorf("%q has no host", raw)
	case u.User != nil:
		return nil, errorf("%q has a user name or password in it, which portico would keep and show; use a URL without", u.Redacted())
	}
	return u, nil
}

// Get fetches the URL raw and returns its body, of at most MaxBytes. Its errors are *Error.
func (f *Fetcher) Get(ctx context.Context, raw string) ([]byte, error) {
	u, err := CheckURL(raw)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, errorf("%q is not a URL portico can fetch", raw)
	}
	req.Header.Set("User-Agent", "portico")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, f.describe(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errorf("the server answered HTTP %d, not 200", resp.StatusCode)
	}
	if resp.ContentLength > f.opts.MaxBytes {
		return nil, errorf("the server sends more than %d bytes", f.opts.MaxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.opts.MaxBytes+1))
	if err != nil {
		return nil, f.describe(ctx, err)
	}
	if int64(len(body)) > f.opts.MaxBytes {
		return nil, errorf("the server sends more than %d bytes", f.opts.MaxBytes)
	}
	return body, nil
}

// describe says why a fetch failed, from what the client knows about the connection only: the
// errors of net/http may quote what the server sent (a malformed status line, say), and that is
// not for the user to read.
func (f *Fetcher) describe(ctx context.Context, err error) error {
	var (
		own       *Error
		dnsErr    *net.DNSError
		unknown   x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		recordErr tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &own):
		return own
	case errors.Is(err, errInternal):
		return errorf("its address is internal (loopback, private, link-local or reserved); portico fetches from such addresses only when the operator allows it (PORTICO_KRL_ALLOW_INTERNAL)")
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT):
		return errorf("the fetch took longer than %v", f.timeout)
	case errors.As(err, &dnsErr):
		return errorf("its host name does not resolve")
	case errors.Is(err, syscall.ECONNREFUSED):
		return errorf("the connection was refused")
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid):
		return errorf("its TLS certificate is not valid for it")
	case errors.As(err, &recordErr):
		return errorf("it does not speak TLS")
	}
	return errorf("the fetch failed: the server's answer is not a well-formed HTTP or HTTPS response")
}

// internalPrefixes are special-purpose blocks (RFC 6890 and later) that netip's predicates do
// not cover and that are no public internet host's.
var internalPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: reaches IPv4 addresses, internal ones too
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments (Teredo among them)
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4: reaches IPv4 addresses
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

// Internal reports whether ip is an address a user-chosen URL may not reach by default:
// loopback, private (RFC 1918, unique local), link-local, unspecified, multicast, and the
// special-purpose blocks above. IPv4-mapped IPv6 addresses count as their IPv4 address.
func Internal(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsMulticast() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || !ip.IsGlobalUnicast() {
		return true
	}
	for _, p := range internalPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
