package certifier

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Bounds on the certifier's own requests to the identity provider (discovery and JWKS).
const (
	maxIdPResponse = 1 << 20         // bytes of a discovery document or key set
	minRefetch     = 5 * time.Second // between two fetches of the same URL
)

// CheckServiceURL refuses a URL that a token would be sent to, or trusted from, in clear
// over a network: it must be https, or http on a loopback address (127.0.0.1, ::1, localhost).
func CheckServiceURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	switch {
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q: want https://HOST[:PORT][/PATH]", raw)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("%q: plain http is only for loopback addresses; use https", raw)
	default:
		return fmt.Errorf("%q: want an https URL", raw)
	}
}

// maxRedirects is how many redirects a request follows, as Go's default.
const maxRedirects = 10

// CheckRedirect is an http.Client's CheckRedirect that follows a redirect only to https (or
// http on a loopback address). Go's client keeps the Authorization header (and a 307's body)
// on a redirect to the same host name whatever the scheme, so an https server answering with
// a redirect to http, as a proxy set up for http does, would send a token in clear.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if err := checkSecure(req.URL); err != nil {
		return fmt.Errorf("refusing a redirect: %w", err)
	}
	return nil
}

// checkSecure refuses a URL that is not https, or http on a loopback address.
func checkSecure(u *url.URL) error {
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return fmt.Errorf("%s://%s: plain http is only for loopback addresses", u.Scheme, u.Host)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IssuerClient is the HTTP client the certifier reaches the identity provider with: each
// request has a timeout, each response a size bound, and one URL is fetched at most once every
// few seconds. go-oidc fetches the key set again for every token whose key it does not know,
// so without that a stream of forged tokens would become a stream of requests to the provider.
func IssuerClient() *http.Client {
	return issuerClient(http.DefaultTransport)
}

func issuerClient(next http.RoundTripper) *http.Client {
	return &http.Client{
		Timeout:       idpTimeout,
		Transport:     &boundedTransport{next: next, last: map[string]time.Time{}},
		CheckRedirect: CheckRedirect,
	}
}

type boundedTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	last map[string]time.Time // by URL without query
}

var errTooSoon = errors.New("fetched moments ago; not again so soon")

func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	key := req.URL.Scheme + "://" + req.URL.Host + req.URL.Path
	t.mu.Lock()
	if last, ok := t.last[key]; ok && time.Since(last) < minRefetch {
		t.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", key, errTooSoon)
	}
	t.last[key] = time.Now()
	t.mu.Unlock()
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &boundedBody{r: resp.Body, left: maxIdPResponse}
	return resp, nil
}

// boundedBody fails a response body that runs past its bound.
type boundedBody struct {
	r    io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("the identity provider's response has more than %d bytes", maxIdPResponse)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.r.Close() }
