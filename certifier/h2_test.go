package certifier

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// tlsFiles writes a self-signed TLS certificate for 127.0.0.1 and its key, and returns their
// paths and a pool that trusts the certificate.
func tlsFiles(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "certifier"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// With --tls-cert, one address's share of connections is its share of requests: HTTP/2 would
// carry 250 requests on each connection (each holding a handler and up to a body's bound while
// its body trickles in), so 16 connections would be 4000 requests. The certifier speaks
// HTTP/1.1, where a request in progress holds its connection.
func TestOneAddressHoldsAtMostItsConnectionsOfRequests(t *testing.T) {
	const perSource, requests = 2, 20
	f := newFixture(t, func(c *Config) { c.Limits.PerSourceConnections = perSource })
	certFile, keyFile, pool := tlsFiles(t)
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	addrs := make(chan net.Addr, 1)
	go func() {
		served <- f.server.ListenAndServe(ctx, "127.0.0.1:0", certFile, keyFile, func(a net.Addr) { addrs <- a })
	}()
	t.Cleanup(func() { cancel(); <-served })
	url := "https://" + (<-addrs).String() + "/sign"

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	t.Cleanup(client.CloseIdleConnections)
	type outcome struct {
		proto string
		err   error
	}
	outcomes := make(chan outcome, requests)
	var writers []*io.PipeWriter
	var wg sync.WaitGroup
	for range requests {
		body, w := io.Pipe()
		writers = append(writers, w)
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, body)
		wg.Go(func() {
			resp, err := client.Do(req)
			if err != nil {
				outcomes <- outcome{err: err}
				return
			}
			resp.Body.Close()
			outcomes <- outcome{proto: resp.Proto}
		})
		go w.Write([]byte(`{"public_key": `)) // a body that trickles, never ends
	}
	// The requests beyond the address's connections are turned away at once; the others wait
	// for their bodies.
	refused := 0
	for deadline := time.After(10 * time.Second); refused < requests-perSource; {
		select {
		case o := <-outcomes:
			if o.err == nil {
				t.Fatalf("a request was answered (%s) while its body was still coming", o.proto)
			}
			refused++
		case <-deadline:
			t.Fatalf("%d requests from one address in progress at once, want at most %d", requests-refused, perSource)
		}
	}
	for _, w := range writers {
		w.CloseWithError(io.ErrUnexpectedEOF)
	}
	wg.Wait()
	close(outcomes)
	for o := range outcomes {
		if o.proto == "HTTP/2.0" {
			t.Errorf("answered over %s", o.proto)
		}
	}
}
