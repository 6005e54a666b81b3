package db

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/bits"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestRangeKeys: a serial's buckets include the bucket of every range that holds it.
func TestRangeKeys(t *testing.T) {
	tests := []struct{ from, to, x uint64 }{
		{1, 1, 1},
		{5, 6, 6},
		{7, 8, 8}, // one bucket apart at level 1
		{100, 199, 150},
		{100, 199, 199},
		{1, 1<<64 - 1, 1<<64 - 1},
		{1<<64 - 6, 1<<64 - 1, 1<<64 - 2},
		{1 << 63, 1<<63 + 1<<62, 1<<63 + 1<<61},
	}
	for _, tt := range tests {
		key := rangeKey(tt.from, tt.to)
		keys := rangeKeysOf(tt.x)
		if len(keys) != rangeKeyCount {
			t.Fatalf("rangeKeysOf(%d) has %d keys, want %d", tt.x, len(keys), rangeKeyCount)
		}
		found := false
		for _, k := range keys {
			found = found || k == key
		}
		if !found {
			t.Errorf("range %d-%d (key %s) is not among the buckets of %d", tt.from, tt.to, key, tt.x)
		}
	}
	if got := rangeKey(100, 199); got != fmt.Sprintf("%d:%x", bits.Len64(99), 100>>bits.Len64(99)) {
		t.Errorf("rangeKey(100, 199) = %s", got)
	}
	if ordered(0) >= ordered(1) || ordered(1<<63-1) >= ordered(1<<63) || ordered(1<<64-2) >= ordered(1<<64-1) {
		t.Error("ordered does not keep the order of serials")
	}
}

func TestRetryAfter(t *testing.T) {
	for _, c := range []struct {
		every    time.Duration
		failures int
		want     time.Duration
	}{
		{time.Minute, 1, time.Minute},
		{time.Minute, 2, 2 * time.Minute},
		{time.Minute, 11, 1024 * time.Minute},
		{time.Minute, 12, 24 * time.Hour},
		{time.Minute, 1000, 24 * time.Hour},
		{48 * time.Hour, 5, 48 * time.Hour},
		{time.Second, 0, time.Second},
	} {
		if got := retryAfter(c.every, c.failures); got != c.want {
			t.Errorf("retryAfter(%v, %d) = %v, want %v", c.every, c.failures, got, c.want)
		}
	}
}

// TestFindRevocationUsesIndexes: on both databases, FindRevocation reads revocations through
// indexes only, whatever the number of revocations (rule 10 must stay cheap with big KRLs).
func TestFindRevocationUsesIndexes(t *testing.T) {
	ctx := context.Background()
	t.Run("sqlite", func(t *testing.T) {
		st, err := Open(ctx, "", t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		s := st.(*sqliteStore)
		// SQLite's planner does not weigh table sizes (no ANALYZE): a few rows show its plan.
		seedRevocations(t, st, 20)
		rows, err := s.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+sqliteFindRevocation, sqliteFindRevocationArgs(1, CertRef{Serial: 5})...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var line string
			if err := rows.Scan(&id, &parent, &unused, &line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		checkPlan(t, plan, "SCAN revocations", "USING INDEX")
	})
	t.Run("postgres", func(t *testing.T) {
		dbURL := planPostgresURL(t)
		st, err := Open(ctx, dbURL, "")
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		s := st.(*postgresStore)
		seedRevocations(t, st, 1000)
		if _, err := s.pool.Exec(ctx, "ANALYZE revocations"); err != nil {
			t.Fatal(err)
		}
		c := CertRef{Serial: 5}
		rows, err := s.pool.Query(ctx, "EXPLAIN "+postgresFindRevocation, postgresFindRevocationArgs(1, c)...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		checkPlan(t, plan, "Seq Scan on revocations", "Index")
	})
}

// seedRevocations gives account 1 n revocations of every kind.
func seedRevocations(t *testing.T, s Store, n int) {
	t.Helper()
	ctx := context.Background()
	a, _, err := s.CreateAccount(ctx, "alice", NewKey{Name: "k", Kind: KindLogin, Algorithm: "ssh-ed25519", Fingerprint: "SHA256:k", PublicKey: "ssh-ed25519 AAAA"})
	if err != nil || a.ID != 1 {
		t.Fatalf("CreateAccount = %+v, %v", a, err)
	}
	var rs []NewRevocation
	for i := range n {
		rs = append(rs,
			NewRevocation{Kind: RevokeSerial, Value: fmt.Sprint(i + 1), CAFingerprint: "SHA256:ca", Origin: OriginKRL},
			NewRevocation{Kind: RevokeSerialRange, Value: SerialRange(uint64(i)*1000+1, uint64(i)*1000+500), CAFingerprint: "SHA256:ca", Origin: OriginKRL},
			NewRevocation{Kind: RevokeKeyID, Value: fmt.Sprintf("user%d", i), CAFingerprint: "SHA256:ca", Origin: OriginKRL},
			NewRevocation{Kind: RevokeKeyHash, Value: fmt.Sprintf("SHA256:%d", i), Origin: OriginKRL},
		)
	}
	if _, err := s.ImportRevocations(ctx, a.ID, rs); err != nil {
		t.Fatal(err)
	}
}

func checkPlan(t *testing.T, plan []string, forbidden, wanted string) {
	t.Helper()
	text := strings.Join(plan, "\n")
	if strings.Contains(text, forbidden) || !strings.Contains(text, wanted) {
		t.Errorf("FindRevocation's plan reads revocations without an index:\n%s", text)
	}
}

// planPostgresURL creates a database for the test on PORTICO_TEST_DATABASE_URL's server (as
// dbtest does; this internal test cannot import it).
func planPostgresURL(t *testing.T) string {
	server := os.Getenv("PORTICO_TEST_DATABASE_URL")
	if server == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("PORTICO_TEST_DATABASE_URL is not set: Postgres tests must run in CI")
		}
		t.Skip("PORTICO_TEST_DATABASE_URL is not set")
	}
	var b [8]byte
	rand.Read(b[:])
	name := "portico_plan_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, server); err == nil {
			conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(ctx)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
