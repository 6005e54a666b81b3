package egress

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestInternal(t *testing.T) {
	internal := []string{
		"127.0.0.1", "127.1.2.3", "::1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "fe80::1",
		"fc00::1", "fd12:3456::1", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "100.64.0.1", "192.0.0.8", "192.0.2.1",
		"198.18.0.1", "198.51.100.7", "203.0.113.9", "240.0.0.1", "255.255.255.255", "::ffff:127.0.0.1",
		"::ffff:10.0.0.1", "64:ff9b::7f00:1", "64:ff9b:1::1", "2001::1", "2001:db8::1", "2002:7f00:1::", "fec0::1", "100::1",
		"0.1.2.3",
	}
	for _, s := range internal {
		if !Internal(netip.MustParseAddr(s)) {
			t.Errorf("Internal(%s) = false, want true", s)
		}
	}
	public := []string{"1.1.1.1", "8.8.8.8", "93.184.216.34", "2606:4700::1111", "2a00:1450:4001::200e", "::ffff:8.8.8.8", "100.128.0.1", "172.32.0.1"}
	for _, s := range public {
		if Internal(netip.MustParseAddr(s)) {
			t.Errorf("Internal(%s) = true, want false", s)
		}
	}
	if !Internal(netip.Addr{}) {
		t.Error("the zero address is not internal")
	}
}

func TestCheckURL(t *testing.T) {
	for _, ok := range []string{"https://cert.example.com/krl", "http://127.0.0.1:8443/krl", "https://[2001:db8::1]/krl?x=1"} {
		if _, err := CheckURL(ok); err != nil {
			t.Errorf("CheckURL(%q): %v", ok, err)
		}
	}
	bad := []struct{ url, want string }{
		{"file:///etc/passwd", "only http:// and https://"},
		{"gopher://x/", "only http:// and https://"},
		{"ftp://x/krl", "only http:// and https://"},
		{"https://", "no host"},
		{"https:///krl", "no host"},
		{"//example.com/krl", "only http"},
		{"https://user:secret@example.com/krl", "user name or password"},
		{"https://example.com/\x00", "not a URL"},
		{"https://example.com/\xff", "not a URL"},
		{"", "only http"},
	}
	for _, c := range bad {
		_, err := CheckURL(c.url)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CheckURL(%q) = %v, want an error saying %q", c.url, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("CheckURL(%q) error %q shows the password", c.url, err)
		}
	}
}

// TestGet: fetches of loopback servers, allowed by the option, within every bound; and refused
// without it, at the address dialed.
func TestGet(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/krl", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("SSHKRL")) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) { w.Write(make([]byte, 2000)) })
	mux.HandleFunc("/big-unannounced", func(w http.ResponseWriter, _ *http.Request) {
		w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		w.Write(make([]byte, 1000))
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "SECRET internal page", 404) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/to-file", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
	})
	mux.HandleFunc("/to-krl", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/krl", http.StatusFound) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	// A server that answers with something that is not HTTP, and a secret in it.
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	go func() {
		for {
			c, err := raw.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("+OK SECRET redis-like banner\r\n\r\n"))
			c.Close()
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()

	allowed := New(Options{AllowInternal: true, MaxBytes: 1500, Timeout: time.Second})
	guarded := New(Options{MaxBytes: 1500, Timeout: time.Second})
	ctx := context.Background()
	cases := []struct {
		name string
		f    *Fetcher
		url  string
		want string // "" for success
	}{
		{"allowed", allowed, srv.URL + "/krl", ""},
		{"after a redirect", allowed, srv.URL + "/to-krl", ""},
		{"loopback refused", guarded, srv.URL + "/krl", "its address is internal"},
		{"localhost refused", guarded, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/krl", "its address is internal"},
		{"IPv6 loopback refused", guarded, "http://[::1]:1/krl", "its address is internal"},
		{"mapped loopback refused", guarded, "http://[::ffff:127.0.0.1]:1/krl", "its address is internal"},
		{"metadata service refused", guarded, "http://169.254.169.254/latest/meta-data/", "its address is internal"},
		{"decimal loopback refused", guarded, "http://2130706433:80/", ""},
		{"too large", allowed, srv.URL + "/big", "more than 1500 bytes"},
		{"too large, unannounced", allowed, srv.URL + "/big-unannounced", "more than 1500 bytes"},
		{"not found", allowed, srv.URL + "/missing", "HTTP 404"},
		{"slow", allowed, srv.URL + "/slow", "longer than 1s"},
		{"redirect loop", allowed, srv.URL + "/loop", "redirects more than 3 times"},
		{"redirect to a file", allowed, srv.URL + "/to-file", "only http:// and https://"},
		{"not HTTP", allowed, "http://" + raw.Addr().String() + "/", "not a well-formed HTTP or HTTPS response"},
		{"not TLS", allowed, "https://" + strings.TrimPrefix(srv.URL, "http://") + "/krl", "not a well-formed HTTP or HTTPS response"},
		{"refused", allowed, "http://" + closedAddr + "/", "connection was refused"},
		{"bad host", allowed, "http://no-such-host.invalid/krl", "does not resolve"},
		{"scheme", allowed, "ftp://127.0.0.1/krl", "only http"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "decimal loopback refused" {
				// Go's URL parser takes 2130706433 as a host name, which does not resolve
				// to 127.0.0.1: either way nothing internal is reached.
				_, err := c.f.Get(ctx, c.url)
				if err == nil {
					t.Fatal("fetched")
				}
				return
			}
			body, err := c.f.Get(ctx, c.url)
			if c.want == "" {
				if err != nil || string(body) != "SSHKRL" {
					t.Fatalf("Get = %q, %v", body, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Get = %q, want an error saying %q", body, c.want)
			}
			if _, ok := err.(*Error); !ok {
				t.Errorf("error %T, want *Error", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error %q quotes the response", err)
			}
		})
	}
}

// TestNoRedirectToPlainHTTP: an https URL that redirects to plain http is not followed: what
// comes back over http anyone on the path may change, and a KRL source's answer replaces the
// revocations it made (an empty one lifts them).
func TestNoRedirectToPlainHTTP(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("SSHKRL forged")) }))
	defer plain.Close()
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/same" {
			w.Write([]byte("SSHKRL"))
			return
		}
		if r.URL.Path == "/to-https" {
			http.Redirect(w, r, "/same", http.StatusFound)
			return
		}
		http.Redirect(w, r, plain.URL+"/krl", http.StatusFound)
	}))
	defer secure.Close()
	f := New(Options{AllowInternal: true, MaxBytes: 1 << 10})
	f.client.Transport.(*http.Transport).TLSClientConfig = secure.Client().Transport.(*http.Transport).TLSClientConfig
	if b, err := f.Get(context.Background(), secure.URL+"/to-https"); err != nil || string(b) != "SSHKRL" {
		t.Fatalf("https to https: %q, %v", b, err)
	}
	b, err := f.Get(context.Background(), secure.URL+"/krl")
	if err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Errorf("https redirecting to http: %q, %v; want refused", b, err)
	}
	// A URL that was plain http from the start may redirect within http.
	if b, err := f.Get(context.Background(), plain.URL+"/krl"); err != nil || string(b) != "SSHKRL forged" {
		t.Errorf("plain http: %q, %v", b, err)
	}
}
