package certifier

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/stripe/krl"
	gossh "golang.org/x/crypto/ssh"
)

// The files under the state directory.
const (
	AuditFile       = "audit.log"        // one JSON line per request, signed or refused
	IssuedFile      = "issued.log"       // one JSON line per certificate signed
	RevocationsFile = "revocations.json" // what `portico certifier revoke` revoked
	lockFile        = ".lock"            // taken by revoke while it rewrites revocations.json
)

// maxRevocationsFile bounds the revocations file the service reads.
const maxRevocationsFile = 16 << 20

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	Time           time.Time  `json:"time"`
	Event          string     `json:"event"`   // "sign", "revoke" or "suppressed"
	Outcome        string     `json:"outcome"` // "signed", "refused" or "revoked"
	Reason         string     `json:"reason"`  // why it was refused (the message the client got)
	Subject        string     `json:"subject"`
	Email          string     `json:"email"`
	KeyID          string     `json:"key_id"`
	Groups         []string   `json:"groups"`
	Principals     []string   `json:"principals"`
	KeyFingerprint string     `json:"key_fingerprint"`
	Serial         *uint64    `json:"serial"`
	ValidAfter     *time.Time `json:"valid_after"`
	ValidBefore    *time.Time `json:"valid_before"`
	TTLClamped     bool       `json:"ttl_clamped,omitempty"`
	RemoteAddr     string     `json:"remote_addr"`
	RequestReason  string     `json:"request_reason,omitempty"` // the reason the client gave
	Count          int        `json:"count,omitempty"`          // suppressed: how many refusals this line stands for
}

// Issued is the record of one signed certificate.
type Issued struct {
	Time           time.Time `json:"time"`
	Serial         uint64    `json:"serial"`
	KeyID          string    `json:"key_id"`
	Subject        string    `json:"subject"`
	Principals     []string  `json:"principals"`
	KeyFingerprint string    `json:"key_fingerprint"`
	ValidAfter     time.Time `json:"valid_after"`
	ValidBefore    time.Time `json:"valid_before"`
}

// Revocations are what the certifier revoked; GET /krl serves them as a KRL.
type Revocations struct {
	Version uint64          `json:"version"` // one more at each change
	Updated time.Time       `json:"updated"`
	KeyIDs  []RevokedKeyID  `json:"key_ids"`
	Serials []RevokedSerial `json:"serials"`
	// Subjects are the provider subjects seen with a revoked key ID: the certifier signs
	// nothing more for them, even under another email. They are not in the KRL.
	Subjects []string `json:"subjects,omitempty"`
}

// RevokedKeyID revokes every certificate with that key ID, past and future.
type RevokedKeyID struct {
	KeyID string    `json:"key_id"`
	Time  time.Time `json:"time"`
}

// RevokedSerial revokes the certificate with that serial.
type RevokedSerial struct {
	Serial uint64    `json:"serial"`
	Time   time.Time `json:"time"`
}

// KeyIDRevoked reports whether id is revoked.
func (r Revocations) KeyIDRevoked(id string) bool {
	return slices.ContainsFunc(r.KeyIDs, func(k RevokedKeyID) bool { return k.KeyID == id })
}

// IdentityRevoked reports whether the certifier may sign nothing more for id: its key ID, its
// email (verified or not) or its subject is revoked, in any case (providers let people change
// the case of their email), or its subject was seen with a revoked key ID. So a revoked person
// cannot get certificates back by changing their email at the provider.
func (r Revocations) IdentityRevoked(id Identity) bool {
	revoked := func(s string) bool {
		return s != "" && slices.ContainsFunc(r.KeyIDs, func(k RevokedKeyID) bool { return strings.EqualFold(k.KeyID, s) })
	}
	return revoked(id.KeyID()) || revoked(id.Subject) || revoked(id.Email) || slices.Contains(r.Subjects, id.Subject)
}

// State is the certifier's state directory, as the service uses it.
type State struct {
	dir string

	mu     sync.Mutex // one line at a time to each log
	audit  *os.File
	issued *os.File

	revMu     sync.Mutex
	revLoaded bool
	revStamp  fileStamp
	rev       Revocations
	krl       []byte // the KRL of rev, once made
}

// fileStamp tells whether a file changed since it was read.
type fileStamp struct {
	size    int64
	modTime time.Time
	exists  bool
}

// OpenState opens (creating it, mode 0700) the state directory.
func OpenState(dir string) (*State, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	s := &State{dir: dir}
	var err error
	if s.audit, err = openLog(filepath.Join(dir, AuditFile)); err != nil {
		return nil, err
	}
	if s.issued, err = openLog(filepath.Join(dir, IssuedFile)); err != nil {
		s.audit.Close()
		return nil, err
	}
	return s, nil
}

func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return f, nil
}

// Close closes the logs.
func (s *State) Close() error {
	return errors.Join(s.audit.Close(), s.issued.Close())
}

// Audit appends one line to the audit log.
func (s *State) Audit(e AuditEntry) error { return s.appendLine(s.audit, e) }

// RecordIssued appends the record of a signed certificate.
func (s *State) RecordIssued(r Issued) error { return s.appendLine(s.issued, r) }

func (s *State) appendLine(f *os.File, v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// One write per line: O_APPEND keeps lines whole when revoke appends at the same time.
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("state: writing %s: %w", filepath.Base(f.Name()), err)
	}
	return nil
}

// Revocations returns the revocations, reading the file again when revoke changed it.
func (s *State) Revocations() (Revocations, error) {
	s.revMu.Lock()
	defer s.revMu.Unlock()
	if err := s.refreshLocked(); err != nil {
		return Revocations{}, err
	}
	return s.rev, nil
}

func (s *State) refreshLocked() error {
	path := filepath.Join(s.dir, RevocationsFile)
	var stamp fileStamp
	if info, err := os.Stat(path); err == nil {
		stamp = fileStamp{size: info.Size(), modTime: info.ModTime(), exists: true}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state: %w", err)
	}
	if s.revLoaded && stamp == s.revStamp {
		return nil
	}
	rev, err := readRevocations(path)
	if err != nil {
		return err
	}
	s.rev, s.revStamp, s.revLoaded, s.krl = rev, stamp, true, nil
	return nil
}

// KRL returns the OpenSSH KRL of the revocations for ca, signed by ca. It is made again only
// when the revocations change.
func (s *State) KRL(ca gossh.Signer) ([]byte, error) {
	s.revMu.Lock()
	defer s.revMu.Unlock()
	if err := s.refreshLocked(); err != nil {
		return nil, err
	}
	if s.krl != nil {
		return s.krl, nil
	}
	b, err := MarshalKRL(s.rev, ca)
	if err != nil {
		return nil, err
	}
	s.krl = b
	return b, nil
}

// MarshalKRL writes revocations as an OpenSSH KRL (ssh-keygen -k format) with one section for
// ca's certificates, signed by ca. Its version is one more than the revocations' version.
func MarshalKRL(rev Revocations, ca gossh.Signer) ([]byte, error) {
	var subs []krl.KRLCertificateSubsection
	if len(rev.Serials) > 0 {
		serials := make(krl.KRLCertificateSerialList, 0, len(rev.Serials))
		for _, r := range rev.Serials {
			serials = append(serials, r.Serial)
		}
		slices.Sort(serials)
		serials = slices.Compact(serials)
		subs = append(subs, &serials)
	}
	if len(rev.KeyIDs) > 0 {
		ids := make(krl.KRLCertificateKeyID, 0, len(rev.KeyIDs))
		for _, r := range rev.KeyIDs {
			ids = append(ids, r.KeyID)
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		subs = append(subs, &ids)
	}
	k := &krl.KRL{Version: rev.Version + 1, Comment: "portico certifier"}
	if !rev.Updated.IsZero() {
		k.GeneratedDate = uint64(rev.Updated.Unix())
	}
	if len(subs) > 0 {
		k.Sections = []krl.KRLSection{&krl.KRLCertificateSection{CA: ca.PublicKey(), Sections: subs}}
	}
	b, err := k.Marshal(rand.Reader, sha2Signer{ca})
	if err != nil {
		return nil, fmt.Errorf("signing the KRL: %w", err)
	}
	return b, nil
}

func readRevocations(path string) (Revocations, error) {
	var rev Revocations
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return rev, nil
	}
	if err != nil {
		return rev, fmt.Errorf("state: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReader(&limitedFile{f: f, left: maxRevocationsFile}))
	if err := dec.Decode(&rev); err != nil {
		return Revocations{}, fmt.Errorf("state: %s: %w", path, err)
	}
	return rev, nil
}

// limitedFile reads at most left bytes, then fails (a plain LimitReader would end the JSON
// early and hide that the file is too big).
type limitedFile struct {
	f    *os.File
	left int64
}

func (l *limitedFile) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, fmt.Errorf("larger than %d bytes", int64(maxRevocationsFile))
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.f.Read(p)
	l.left -= int64(n)
	return n, err
}

// Revoke adds a key ID or a serial to the revocations in dir (the operator's command; the
// running service picks the change up). It reports whether it was new.
func Revoke(dir, keyID string, serial uint64, now time.Time) (bool, error) {
	if (keyID == "") == (serial == 0) {
		return false, errors.New("revoke exactly one key ID or one serial (not 0)")
	}
	if keyID != "" {
		if err := checkKeyID(keyID); err != nil {
			return false, fmt.Errorf("key ID %q: %w", keyID, err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("state directory: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return false, err
	}
	defer unlock()
	path := filepath.Join(dir, RevocationsFile)
	rev, err := readRevocations(path)
	if err != nil {
		return false, err
	}
	switch {
	case keyID != "" && rev.KeyIDRevoked(keyID),
		serial != 0 && slices.ContainsFunc(rev.Serials, func(r RevokedSerial) bool { return r.Serial == serial }):
		return false, nil
	case keyID != "":
		rev.KeyIDs = append(rev.KeyIDs, RevokedKeyID{KeyID: keyID, Time: now.UTC()})
		if err := revokeThePerson(dir, &rev, keyID, now); err != nil {
			return false, err
		}
	default:
		rev.Serials = append(rev.Serials, RevokedSerial{Serial: serial, Time: now.UTC()})
	}
	rev.Version++
	rev.Updated = now.UTC()
	if err := writeFileAtomic(path, rev); err != nil {
		return false, err
	}
	return true, nil
}

// revokeThePerson adds to rev, for a revoked key ID, the subjects it was issued to (in any case
// of it), so that the certifier signs nothing more for them under another email, and the
// serials of their certificates still valid under another key ID (an older email, another
// case of it), which the KRL's key ID, compared exactly, does not cover.
func revokeThePerson(dir string, rev *Revocations, keyID string, now time.Time) error {
	var subjects []string
	err := scanIssued(dir, func(r Issued) {
		if strings.EqualFold(r.KeyID, keyID) && r.Subject != "" && !slices.Contains(subjects, r.Subject) {
			subjects = append(subjects, r.Subject)
		}
	})
	if err != nil || len(subjects) == 0 {
		return err
	}
	for _, sub := range subjects {
		if !slices.Contains(rev.Subjects, sub) {
			rev.Subjects = append(rev.Subjects, sub)
		}
	}
	return scanIssued(dir, func(r Issued) {
		if r.KeyID != keyID && slices.Contains(subjects, r.Subject) && r.ValidBefore.After(now) &&
			!slices.ContainsFunc(rev.Serials, func(s RevokedSerial) bool { return s.Serial == r.Serial }) {
			rev.Serials = append(rev.Serials, RevokedSerial{Serial: r.Serial, Time: now.UTC()})
		}
	})
}

// lockDir takes the state directory's lock (flock), so two revokes do not lose one another.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("state lock: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// writeFileAtomic writes v as JSON to a temporary file and renames it over path, so that a
// reader sees the old file or the new one, never half of one.
func writeFileAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// FindIssued returns the issued-certificate records in dir that match keyID or serial.
func FindIssued(dir, keyID string, serial uint64) ([]Issued, error) {
	var out []Issued
	err := scanIssued(dir, func(r Issued) {
		if keyID != "" && r.KeyID == keyID || serial != 0 && r.Serial == serial {
			out = append(out, r)
		}
	})
	return out, err
}

// scanIssued calls f with each issued-certificate record in dir.
func scanIssued(dir string, f func(Issued)) error {
	file, err := os.Open(filepath.Join(dir, IssuedFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r Issued
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			f(r)
		}
	}
	return sc.Err()
}

// AppendAudit appends one audit line to dir's audit log (for the operator's commands).
func AppendAudit(dir string, e AuditEntry) error {
	f, err := openLog(filepath.Join(dir, AuditFile))
	if err != nil {
		return err
	}
	line, err := json.Marshal(e)
	if err == nil {
		_, err = f.Write(append(line, '\n'))
	}
	return errors.Join(err, f.Close())
}
