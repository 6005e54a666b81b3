package db_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/db/dbtest"
)

// BenchmarkFindRevocation measures the revocation check every certificate login runs, for an
// account with a few point revocations and for one that also has serial ranges.
//
//	go test -run '^$' -bench FindRevocation ./db/
func BenchmarkFindRevocation(b *testing.B) {
	for _, ranges := range []bool{false, true} {
		b.Run(fmt.Sprintf("ranges=%v", ranges), func(b *testing.B) {
			s := dbtest.SQLite(b)
			a, _, err := s.CreateAccount(ctx, "alice", newKey("first", db.KindLogin))
			if err != nil {
				b.Fatal(err)
			}
			for i := range 20 {
				if _, err := s.AddRevocation(ctx, a.ID, db.NewRevocation{Kind: db.RevokeSerial, Value: fmt.Sprint(1000 + i)}); err != nil {
					b.Fatal(err)
				}
				if ranges {
					if _, err := s.AddRevocation(ctx, a.ID, db.NewRevocation{Kind: db.RevokeSerialRange, Value: db.SerialRange(uint64(5000+100*i), uint64(5050+100*i))}); err != nil {
						b.Fatal(err)
					}
				}
			}
			ref := db.CertRef{Serial: 42, KeyID: "bob@laptop", KeyFingerprint: "SHA256:k", CAFingerprint: "SHA256:ca"}
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.FindRevocation(ctx, a.ID, ref); !errors.Is(err, db.ErrNotFound) {
					b.Fatal(err)
				}
			}
		})
	}
}
