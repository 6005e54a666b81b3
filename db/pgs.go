package db

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Errors of the pgs store.
var (
	// ErrLockLost: the caller does not hold the project's deploy lock (it expired or another
	// session took it over), so nothing was changed.
	ErrLockLost = errors.New("the deploy lock was lost")
	// ErrLinked: the project serves another project's deploys and has none of its own to change.
	ErrLinked = errors.New("the project is a link")
	// ErrLinkedTo: other projects link to the project.
	ErrLinkedTo = errors.New("other projects link to the project")
	// ErrLinkChain: the link would make a chain (the target is a link, or the project is a target).
	ErrLinkChain = errors.New("links cannot be chained")
	// ErrBlobMissing: a file of a manifest names a blob the account does not have.
	ErrBlobMissing = errors.New("a file's blob is not stored")
	// ErrOverQuota: the account's stored bytes would exceed its quota.
	ErrOverQuota = errors.New("over the storage quota")
	// ErrBusy: a deploy of the account is in progress, so its blobs cannot be collected now.
	ErrBusy = errors.New("a deploy is in progress")
	// ErrTooManyProjects: the account has as many projects as it may.
	ErrTooManyProjects = errors.New("too many projects")
	// ErrTooManyKeptFiles: the account's kept deploys would hold more files than it may.
	ErrTooManyKeptFiles = errors.New("too many files in kept deploys")
)

// PGSProject is a site of an account, with the facts of the deploy it serves.
type PGSProject struct {
	ID        int64
	AccountID int64
	Name      string
	LinkTo    string // the project whose live deploy this one serves, or ""
	// LiveSeq and LiveDeployID name the project's own live deploy (0: none).
	LiveSeq      int64
	LiveDeployID int64
	Files, Bytes int64 // of the live deploy
	CreatedAt    time.Time
	UpdatedAt    time.Time // the last publish, rollback, link or unlink
	UpdatedBy    string    // who did it: a login key's name or a certificate's key ID
	ACL          PGSACL
}

// ACL kinds of a project: who may see its site.
const (
	PGSPublic   = "public"   // anyone
	PGSAccounts = "accounts" // the owner and the listed accounts, over an SSH forward
	PGSPassword = "password" // anyone with the password (HTTP Basic)
)

// PGSACL says who may see a project's site.
type PGSACL struct {
	Kind string // PGSPublic, PGSAccounts or PGSPassword
	// AccountIDs (PGSAccounts) are the ids of the accounts besides the owner. Ids, not names:
	// ids are never reused, so a listed account that is deleted lets nobody in, even one who
	// registers its name again later. Ids of deleted accounts may stay listed, and are ignored.
	AccountIDs   []int64
	PasswordHash string // PGSPassword: an Argon2id hash in PHC form
}

// PGSDeploy is one deploy of a project. Seq numbers a project's deploys from 1 (shown d1, d2...).
type PGSDeploy struct {
	ID             int64
	ProjectID      int64
	Seq            int64
	CreatedAt      time.Time
	Identity       string
	Method         string  // key or cert
	Serial         *uint64 // certificates only
	KeyFingerprint string
	Tool           string // rsync, scp or sftp
	Added          int64
	Changed        int64
	Removed        int64
	Files          int64
	Bytes          int64
}

// PGSFile is one file of a deploy's manifest.
type PGSFile struct {
	Path  string // below the project, e.g. "assets/app.js"
	Hash  string // SHA-256 of the content, lower-case hex; a blob of the account
	Size  int64
	Mode  uint32 // permission bits
	MTime int64  // Unix seconds
	// MTimeNsec is the sub-second part of the modification time (0 to 999,999,999); 0 for files
	// stored before it was kept and for uploads that carry whole seconds.
	MTimeNsec int32
}

// PGSBlob is a stored blob of an account.
type PGSBlob struct {
	Hash string
	Size int64
}

// PGSLive is what a project serves: its own live deploy, or its link target's.
type PGSLive struct {
	AccountID int64
	ProjectID int64
	LinkTo    string
	DeployID  int64  // 0: nothing is live
	ACL       PGSACL // the project's own (a link's, not its target's)
}

// PGSPublish is a new deploy to make live.
type PGSPublish struct {
	AccountID int64
	Project   string
	Holder    string // the caller's deploy lock on the project
	Deploy    PGSDeploy
	Files     []PGSFile // every blob among them must be recorded (RecordPGSBlobs)
	Keep      int       // deploys kept per project, the new one included (at least 1)
	Quota     int64     // the account's stored bytes may not exceed this; 0: no limit
	// MaxProjects bounds the account's projects when this deploy creates one; 0: no limit.
	MaxProjects int
	// MaxKeptFiles bounds the files of all the account's kept deploys together (the rows of
	// their manifests), the new one included; 0: no limit.
	MaxKeptFiles int64
}

// PGSUsage is what an account stores.
type PGSUsage struct {
	Bytes    int64 // of its distinct blobs
	Blobs    int64
	Projects int64
}

// PGS stores pgs projects, deploys, manifests, blob records and deploy locks.
type PGS interface {
	// PGSProjects lists the account's projects by name.
	PGSProjects(ctx context.Context, accountID int64) ([]PGSProject, error)
	PGSProject(ctx context.Context, accountID int64, name string) (PGSProject, error)
	// PGSLive is what the project of the named account serves, for the HTTP side.
	PGSLive(ctx context.Context, account, project string) (PGSLive, error)
	// PGSProjectExists reports whether the account has the project, or a deploy of it is
	// under way (its first upload).
	PGSProjectExists(ctx context.Context, account, project string) (bool, error)
	// PGSDeploys lists a project's kept deploys, newest first.
	PGSDeploys(ctx context.Context, projectID int64) ([]PGSDeploy, error)
	// PGSFiles returns a deploy's manifest sorted by path.
	PGSFiles(ctx context.Context, deployID int64) ([]PGSFile, error)

	// LockPGSProject takes or renews the deploy lock on a project for holder, for ttl. It
	// reports false when another holder has it.
	LockPGSProject(ctx context.Context, accountID int64, project, holder string, ttl time.Duration) (bool, error)
	UnlockPGSProject(ctx context.Context, accountID int64, project, holder string) error
	// ResetPGSLocks drops every deploy lock (a single gateway starting over its own database).
	ResetPGSLocks(ctx context.Context) error

	// RecordPGSBlobs records blobs of the account (already recorded ones stay as they are) and
	// returns the account's stored bytes afterwards; ErrNotFound when the account is gone.
	RecordPGSBlobs(ctx context.Context, accountID int64, blobs []PGSBlob) (int64, error)
	PGSUsage(ctx context.Context, accountID int64) (PGSUsage, error)

	// PublishPGSDeploy makes a new deploy live in one transaction, provided the caller holds
	// the lock: creates the project on its first deploy, stores the manifest, and deletes the
	// project's deploys beyond the newest Keep.
	PublishPGSDeploy(ctx context.Context, p PGSPublish) (PGSDeploy, error)
	// SetPGSLive makes the kept deploy seq live (rollback); the caller holds the lock.
	SetPGSLive(ctx context.Context, accountID int64, project, holder string, seq int64, by string) error
	// LinkPGSProject makes project serve target's live deploy, creating project if needed (but
	// not past maxProjects, unless 0); the caller holds project's lock. Chains are refused.
	LinkPGSProject(ctx context.Context, accountID int64, project, target, holder, by string, maxProjects int) error
	// SetPGSACL sets who may see a project's site; ErrNotFound when there is no such project.
	SetPGSACL(ctx context.Context, accountID int64, project string, acl PGSACL) error
	// UnlinkPGSProject makes project serve its own deploys again.
	UnlinkPGSProject(ctx context.Context, accountID int64, project, holder, by string) error
	// DeletePGSProject deletes a project and its deploys; refused while others link to it.
	DeletePGSProject(ctx context.Context, accountID int64, project, holder string) error

	// CollectPGSBlobs deletes up to limit of the account's blobs that no kept deploy uses: it
	// calls remove with their hashes and forgets the ones remove reports removed. Unless force,
	// it refuses with ErrBusy while a deploy of the account holds a lock; while it runs, no
	// deploy of the account can start. It returns how many blobs were forgotten. The account may
	// be deleted already.
	CollectPGSBlobs(ctx context.Context, accountID int64, limit int, force bool,
		remove func(hashes []string) (removed []string, err error)) (int, error)
	// PGSAccountsWithGarbage lists up to limit accounts (deleted ones too) that have blobs no
	// kept deploy uses: what a crashed deploy or a deleted account left to collect. When there
	// are more, each call picks at random among them.
	PGSAccountsWithGarbage(ctx context.Context, limit int) ([]int64, error)
	// DeletePGSAccountData deletes every project, deploy and lock of the account (its blobs
	// are then collected with force). Blob records outlive a deleted account until collected.
	DeletePGSAccountData(ctx context.Context, accountID int64) error
}

// maxACLAccounts bounds the accounts one project's ACL lists.
const maxACLAccounts = 100

// checkPGSACL refuses an ACL the store cannot keep as it is.
func checkPGSACL(acl PGSACL) error {
	switch {
	case acl.Kind != PGSPublic && acl.Kind != PGSAccounts && acl.Kind != PGSPassword:
		return fmt.Errorf("ACL kind %q: want public, accounts or password", acl.Kind)
	case acl.Kind == PGSAccounts && (len(acl.AccountIDs) == 0 || len(acl.AccountIDs) > maxACLAccounts):
		return fmt.Errorf("an accounts ACL lists 1 to %d accounts", maxACLAccounts)
	case acl.Kind != PGSAccounts && len(acl.AccountIDs) > 0:
		return fmt.Errorf("only an accounts ACL lists accounts")
	case (acl.Kind == PGSPassword) != (acl.PasswordHash != ""):
		return fmt.Errorf("a password ACL, and only it, has a password hash")
	}
	for i, id := range acl.AccountIDs {
		if id <= 0 || slices.Contains(acl.AccountIDs[:i], id) {
			return fmt.Errorf("ACL account id %d is not an account id, or listed twice", id)
		}
	}
	return nil
}

// joinACLAccountIDs is how acl_accounts stores ids: decimal, comma-separated.
func joinACLAccountIDs(ids []int64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, ",")
}

// splitACLAccountIDs reads acl_accounts; anything that is no id (none should be) lets nobody in.
func splitACLAccountIDs(s string) []int64 {
	if s == "" {
		return nil
	}
	var ids []int64
	for part := range strings.SplitSeq(s, ",") {
		if id, err := strconv.ParseInt(part, 10, 64); err == nil && id > 0 {
			ids = append(ids, id)
		}
	}
	return ids
}
