package tuns

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkHTTPTunnel is small requests through one HTTP tunnel whose client is
// golang.org/x/crypto/ssh in this process, for profiles of the proxy path (tunsbench compares
// with OpenSSH and wrk).
func BenchmarkHTTPTunnel(b *testing.B) {
	h := newHarness(b, harnessOptions{})
	c := h.dial(h.alice)
	body := make([]byte, 512)
	c.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	c.mustBind("bench", 80)
	visitor := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, "http://"+h.httpAddr+"/", nil)
			req.Host = "alice-bench.localhost"
			resp, err := visitor.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
