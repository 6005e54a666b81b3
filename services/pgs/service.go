package pgs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services"
	"github.com/portico-sh/portico/services/pgs/blob"
)

// Exit statuses of the commands (as the admin service's).
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// Store is what pgs keeps in the database.
type Store interface {
	db.PGS
	// AccountByName: an ACL may list only accounts that exist.
	AccountByName(ctx context.Context, name string) (db.Account, error)
	// AccountNames: an ACL stores account ids; acl and ls show their names.
	AccountNames(ctx context.Context, ids []int64) (map[int64]string, error)
}

// Tunnels tells whether a tunnel holds a name (the tuns service). Project and tunnel names
// share one namespace per account.
type Tunnels interface {
	TunnelLive(account, name string) bool
}

// Limits bound what one account may store and one deploy may hold. Zero means no limit,
// except KeepDeploys.
type Limits struct {
	KeepDeploys int   // deploys kept per project for rollback, the live one included (default 10)
	Quota       int64 // bytes stored per account, each distinct file once (default 1 GiB)
	MaxFile     int64 // bytes in one file (default 100 MiB)
	MaxFiles    int   // files in one deploy (default 50,000)
}

// Defaults of Limits (the settings' defaults).
const (
	DefaultKeepDeploys = 10
	DefaultQuota       = 1 << 30
	DefaultMaxFile     = 100 << 20
	DefaultMaxFiles    = 50_000
)

// maxFile is the most one file may hold: MaxFile, or without it the quota (a file larger than
// the quota can never be stored, and a sparse write far out must not cost reading it back).
func (l Limits) maxFile() int64 {
	if l.MaxFile > 0 {
		return l.MaxFile
	}
	return l.Quota
}

// keptFilesFactor: the kept deploys of all an account's projects hold at most this many times
// PORTICO_PGS_MAX_FILES files together (1,000,000 at the default). Each is a manifest row
// (with a path of up to 1 KiB) that the quota, which counts distinct contents, does not see:
// without it, 500 projects keeping 10 deploys of 50,000 empty files would be 250 million rows.
const keptFilesFactor = 20

// maxKeptFiles bounds the files of all an account's kept deploys together (0: no limit).
func (l Limits) maxKeptFiles() int64 {
	if l.MaxFiles <= 0 {
		return 0
	}
	return keptFilesFactor * int64(l.MaxFiles)
}

// DefaultLimits are the limits of the settings' defaults.
func DefaultLimits() Limits {
	return Limits{KeepDeploys: DefaultKeepDeploys, Quota: DefaultQuota, MaxFile: DefaultMaxFile, MaxFiles: DefaultMaxFiles}
}

// Bounds on what one session or request can make the server hold; not settings.
const (
	// defaultLockWait is how long a deploy waits for another deploy of the same project.
	defaultLockWait = 60 * time.Second
	// defaultLockTTL is how long a deploy lock lasts without renewal (it is renewed four times
	// as often): a gateway that dies holding one blocks that project this long on a shared
	// Postgres (a gateway on SQLite drops its stale locks when it starts).
	defaultLockTTL = 10 * time.Second
	// maxSessionProjects bounds the projects one session may change (each holds a lock and
	// a working copy).
	maxSessionProjects = 8
	// maxPendingBlobs and maxPendingBytes bound the blobs a session holds written but not yet
	// recorded; past either, they are recorded and committed.
	maxPendingBlobs = 64
	maxPendingBytes = 64 << 20
	// collectBatch is how many blobs one collection pass deletes.
	collectBatch = 1000
	// maxProjects bounds the projects (and links) of one account.
	maxProjects = 500
)

// Options configure the service.
type Options struct {
	Store Store
	Blobs blob.Store
	// Encoded keeps compressed copies of blobs (nil: files are sent uncompressed).
	Encoded blob.Encoded
	Public  services.Public
	Limits  Limits
	Tunnels Tunnels // nil: no tunnels
	Logger  *slog.Logger
	// CacheFiles bounds the files of deploy manifests kept in memory for serving
	// (default 500,000).
	CacheFiles int
	// LockWait and LockTTL override the deploy lock's defaults (tests).
	LockWait, LockTTL time.Duration
}

// Service is the pgs service.
type Service struct {
	store    Store
	blobs    blob.Store
	public   services.Public
	limits   Limits
	tunnels  Tunnels
	log      *slog.Logger
	sites    *siteCache
	lockWait time.Duration
	lockTTL  time.Duration
	inflight inflight

	encoded       blob.Encoded
	compressing   singleflight.Group
	compressSlots chan struct{}
	passwords     *passwordChecker
	mem           *memCache
}

// inflight counts, per account, the bytes its sessions have written and not yet recorded
// (temporary files of uploads, pending blobs).
type inflight struct {
	mu    sync.Mutex
	bytes map[int64]int64
}

// add adds n to the account's bytes in flight, unless that would take them past limit (0: no
// limit, as for giving bytes back); it reports whether it did.
func (f *inflight) add(accountID, n, limit int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.bytes[accountID] + n
	if limit > 0 && n > 0 && v > limit {
		return false
	}
	if v <= 0 {
		delete(f.bytes, accountID)
		return true
	}
	if f.bytes == nil {
		f.bytes = map[int64]int64{}
	}
	f.bytes[accountID] = v
	return true
}

// New returns the pgs service.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Limits.KeepDeploys <= 0 {
		o.Limits.KeepDeploys = DefaultKeepDeploys
	}
	if o.CacheFiles <= 0 {
		o.CacheFiles = 500_000
	}
	if o.LockWait <= 0 {
		o.LockWait = defaultLockWait
	}
	if o.LockTTL <= 0 {
		o.LockTTL = defaultLockTTL
	}
	s := &Service{
		store: o.Store, blobs: o.Blobs, public: o.Public, limits: o.Limits, tunnels: o.Tunnels,
		log: o.Logger, lockWait: o.LockWait, lockTTL: o.LockTTL,
		encoded: o.Encoded, compressSlots: make(chan struct{}, maxCompressing), passwords: newPasswordChecker(), mem: newMemCache(memCacheBytes),
	}
	s.sites = newSiteCache(o.Store, o.CacheFiles)
	return s
}

// Name is the service's name and principal.
func (s *Service) Name() auth.Service { return auth.PGS }

// Serve runs one pgs session: the sftp subsystem, rsync, legacy scp or a command.
func (s *Service) Serve(sess *services.Session) int {
	if sess.Grant.AccountID == 0 {
		fmt.Fprintln(sess.Stderr(), "portico: this key is not registered")
		return exitFailed
	}
	switch {
	case sess.Subsystem == "sftp":
		return s.serveSFTP(sess)
	case sess.Subsystem != "":
		fmt.Fprintf(sess.Stderr(), "portico: the pgs service has no subsystem %q\n", sess.Subsystem)
		return exitFailed
	case len(sess.Command) > 0 && (sess.Command[0] == "rsync" || hasSuffix(sess.Command[0], "/rsync")):
		return s.serveRsync(sess)
	case len(sess.Command) > 0 && sess.Command[0] == "scp":
		return s.serveSCP(sess)
	}
	return s.runCommand(sess)
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}

// ProjectExists reports whether the account has the project, or a first deploy of it is under
// way: the tuns service refuses such a name for a tunnel.
func (s *Service) ProjectExists(ctx context.Context, account, name string) (bool, error) {
	return s.store.PGSProjectExists(ctx, account, name)
}

// newHolder returns a deploy lock holder name, unique to one deploy.
func newHolder() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// collect deletes the account's blobs that no kept deploy uses, unless a deploy of the
// account is under way (then the last one to finish collects). Failures are logged: a blob
// left behind is collected next time.
func (s *Service) collect(ctx context.Context, accountID int64, force bool) {
	for {
		n, err := s.store.CollectPGSBlobs(ctx, accountID, collectBatch, force, s.deleter(ctx, accountID))
		if err != nil {
			if !isBusy(err) {
				s.log.Warn("pgs: collecting unused blobs failed", "account_id", accountID, "err", err)
			}
			return
		}
		if n < collectBatch {
			return
		}
	}
}

// sweepBatch is how many accounts one sweep looks at.
const sweepBatch = 1000

// Sweep collects unused blobs of every account now and then every interval until ctx is done:
// what a deploy cut by a crash, or a deleted account whose hook failed, left behind (deploys
// collect their own account's when they end).
func (s *Service) Sweep(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweep is one pass of Sweep.
func (s *Service) sweep(ctx context.Context) {
	ids, err := s.store.PGSAccountsWithGarbage(ctx, sweepBatch)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("pgs: looking for unused blobs failed", "err", err)
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		s.collect(ctx, id, false)
	}
}

// deleter deletes blobs of the account from the blob store, for CollectPGSBlobs.
func (s *Service) deleter(ctx context.Context, accountID int64) func(hashes []string) ([]string, error) {
	return func(hashes []string) ([]string, error) {
		var removed []string
		for _, hs := range hashes {
			h, err := blob.ParseHash(hs)
			if err != nil {
				return removed, err
			}
			ref := blob.Ref{Account: accountID, Hash: h}
			// The blob goes first, then its copies: a compression that finds the blob still
			// there after writing its copy (compress) then knows this deletion comes after.
			if err := s.blobs.Delete(ctx, ref); err != nil {
				return removed, err
			}
			if s.encoded != nil {
				if err := s.encoded.DeleteEncoded(ctx, ref); err != nil {
					return removed, err
				}
			}
			removed = append(removed, hs)
		}
		return removed, nil
	}
}

func isBusy(err error) bool { return errors.Is(err, db.ErrBusy) }

// DeleteAccountData deletes every project, deploy and blob of an account (ops.AccountHook):
// account deletion calls it once the account is gone from the database, whose records of the
// account's blobs outlive it for this. Deploys of the account still running fail to publish.
func (s *Service) DeleteAccountData(ctx context.Context, account db.Account) error {
	accountID := account.ID
	if err := s.store.DeletePGSAccountData(ctx, accountID); err != nil {
		return err
	}
	for {
		n, err := s.store.CollectPGSBlobs(ctx, accountID, collectBatch, true, s.deleter(ctx, accountID))
		if err != nil {
			return fmt.Errorf("delete the blobs of account %d: %w", accountID, err)
		}
		if n == 0 {
			s.sites.forget(account.Name, "")
			return nil
		}
	}
}
