package db

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Both stores keep times in UTC with microsecond precision, the finest Postgres stores, so the
// two behave alike and a value read back equals the value written.
func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func now() time.Time { return storedTime(time.Now()) }

// defaultAccessLimit is the number of access-log entries ListAccess returns for limit <= 0.
const defaultAccessLimit = 100

func accessLimit(limit int) int {
	if limit <= 0 {
		return defaultAccessLimit
	}
	return limit
}

func checkKey(k NewKey) error {
	switch {
	case k.Kind != KindLogin && k.Kind != KindCA:
		return fmt.Errorf("key kind %q is neither %q nor %q", k.Kind, KindLogin, KindCA)
	case k.Name == "":
		return errors.New("key name is empty")
	case k.Fingerprint == "":
		return errors.New("key fingerprint is empty")
	case k.PublicKey == "":
		return errors.New("public key is empty")
	}
	return nil
}

// checkFirstKey checks the first key of a new account.
func checkFirstKey(name string, first NewKey) error {
	if err := checkKey(first); err != nil {
		return fmt.Errorf("create account %q: %w", name, err)
	}
	if first.Kind != KindLogin {
		return fmt.Errorf("create account %q: the first key must be a login key, not %q", name, first.Kind)
	}
	return nil
}

// checkRevocation validates r and returns it in stored form: a serial in canonical decimal, so
// that it matches CertRef.Serial formatted the same way; a range as canonical "FROM-TO".
func checkRevocation(r NewRevocation) (NewRevocation, error) {
	switch r.Origin {
	case "":
		r.Origin = OriginRevoke
	case OriginRevoke, OriginKRL:
	default:
		return r, fmt.Errorf("revocation origin %q is not %q or %q", r.Origin, OriginRevoke, OriginKRL)
	}
	if !utf8.ValidString(r.Value) || strings.ContainsRune(r.Value, 0) ||
		!utf8.ValidString(r.CAFingerprint) || strings.ContainsRune(r.CAFingerprint, 0) {
		return r, fmt.Errorf("%s revocation is not text", r.Kind)
	}
	if r.Value == "" {
		return r, fmt.Errorf("%s revocation has an empty value", r.Kind)
	}
	switch r.Kind {
	case RevokeSerial:
		n, err := strconv.ParseUint(r.Value, 10, 64)
		if err != nil {
			return r, fmt.Errorf("serial %q is not a decimal number from 0 to %d", r.Value, uint64(1<<64-1))
		}
		r.Value = strconv.FormatUint(n, 10)
	case RevokeSerialRange:
		from, to, err := ParseSerialRange(r.Value)
		if err != nil {
			return r, err
		}
		r.Value = SerialRange(from, to)
	case RevokeKeyID:
	case RevokeKey, RevokeKeyHash:
		if r.CAFingerprint != "" {
			return r, fmt.Errorf("a %s revocation applies to every CA of the account and takes no CA fingerprint", r.Kind)
		}
	default:
		return r, fmt.Errorf("revocation kind %q is not %q, %q, %q, %q or %q", r.Kind,
			RevokeSerial, RevokeSerialRange, RevokeKeyID, RevokeKey, RevokeKeyHash)
	}
	return r, nil
}

func formatSerial(s *uint64) *string {
	if s == nil {
		return nil
	}
	v := strconv.FormatUint(*s, 10)
	return &v
}

func parseSerial(s *string) (*uint64, error) {
	if s == nil {
		return nil, nil
	}
	n, err := strconv.ParseUint(*s, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("stored serial %q: %w", *s, err)
	}
	return &n, nil
}
