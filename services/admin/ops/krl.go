package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/internal/egress"
)

// Bounds and defaults of KRL work.
const (
	// DefaultKRLMinEvery is the shortest --every of revocations import --url, unless the operator
	// sets another (PORTICO_KRL_MIN_EVERY).
	DefaultKRLMinEvery = time.Minute
	// MaxKRLEvery is the longest --every.
	MaxKRLEvery = 7 * 24 * time.Hour
	// MaxKRLWork is how many KRL imports, fetches and exports one gateway runs at once: each
	// may hold a KRL of auth.MaxKRLBytes and MaxKRLEntries revocations in memory. Others wait,
	// an account's own for at most maxKRLWait, and an account runs one at a time. (The
	// refresher's downloads wait outside, bounded by krlRefreshWorkers; reading a changed KRL
	// takes a slot.)
	MaxKRLWork = 2
	// maxKRLWait is how long an import or export waits for its turn before it says the server
	// is busy.
	maxKRLWait = 30 * time.Second
	// krlRefreshPoll is the longest wait between two looks for sources due.
	krlRefreshPoll = 10 * time.Second
	// krlRefreshBatch bounds the sources one look fetches.
	krlRefreshBatch = 20
	// krlRefreshWorkers is how many scheduled KRL fetches one gateway runs at once. Each
	// account has at most one of them (the store passes over an account with a source held),
	// so one account's slow sources hold at most one, and the others go on. The download
	// happens outside the MaxKRLWork slots, which a slow server would otherwise hold for a
	// whole timeout: fetches hold at most krlRefreshWorkers * auth.MaxKRLBytes.
	krlRefreshWorkers = 4
)

// KRLConfig is how KRLs are fetched from URLs.
type KRLConfig struct {
	// AllowInternal lets revocations import --url fetch from loopback, private, link-local and
	// other internal addresses (PORTICO_KRL_ALLOW_INTERNAL). Off by default.
	AllowInternal bool
	// MinEvery is the shortest --every (PORTICO_KRL_MIN_EVERY); 0: DefaultKRLMinEvery.
	MinEvery time.Duration
	// FetchTimeout bounds one fetch; 0: egress.DefaultTimeout.
	FetchTimeout time.Duration
}

func (c KRLConfig) minEvery() time.Duration {
	if c.MinEvery <= 0 {
		return DefaultKRLMinEvery
	}
	return c.MinEvery
}

// KRLSource is a URL the account imports a KRL from (`revocations sources --json`).
type KRLSource struct {
	ID            int64  `json:"id"`
	URL           string `json:"url"`
	CAName        string `json:"ca_name"`        // the CA sections for any CA are for (--ca); empty: none
	CAFingerprint string `json:"ca_fingerprint"` //
	Every         string `json:"every"`          // how often it is fetched again, as a Go duration; empty: never
	NextFetchAt   *Time  `json:"next_fetch_at"`
	FetchedAt     Time   `json:"fetched_at"` // when its revocations were last imported
	Entries       int    `json:"entries"`    // its revocations
	LastError     string `json:"last_error"` // why the last scheduled fetch failed; empty after a success
	LastErrorAt   *Time  `json:"last_error_at"`
	Failures      int    `json:"failures"` // scheduled fetches failed in a row: each doubles the wait (up to a day)
}

// KRLImport is what an import did (`revocations import --json`).
type KRLImport struct {
	Entries int        `json:"entries"` // what the KRL revokes
	Added   int        `json:"added"`   // new revocations (an import from stdin leaves out those the account has, other than its KRL sources')
	Source  *KRLSource `json:"source"`  // the URL imported from; null for stdin
}

// KRLExport is what an export wrote.
type KRLExport struct {
	Revocations int // written to the KRL
	Skipped     int // left out: serial 0 (OpenSSH refuses it), or of a CA since removed
}

// krlWork takes one of the gateway's MaxKRLWork slots; release gives it back. For an account
// (accountID not 0) it refuses a second at once, so that no account holds every slot, and waits
// at most maxKRLWait; the refresher (0) waits as long as ctx lets it.
func (o *Ops) krlWork(ctx context.Context, accountID int64) (release func(), err error) {
	done := func() {}
	if accountID != 0 {
		o.krlMu.Lock()
		if o.krlBusy[accountID] {
			o.krlMu.Unlock()
			return nil, errorf(Refused, "another KRL import or export of this account is running on this server; nothing was changed, try again once it is done")
		}
		o.krlBusy[accountID] = true
		o.krlMu.Unlock()
		done = func() {
			o.krlMu.Lock()
			delete(o.krlBusy, accountID)
			o.krlMu.Unlock()
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, maxKRLWait)
		defer cancel()
	}
	select {
	case o.krlSlots <- struct{}{}:
		return func() { <-o.krlSlots; done() }, nil
	case <-ctx.Done():
		done()
		return nil, &Error{Kind: Failed, Message: "the server is busy with other KRLs; nothing was changed, try again", Err: ctx.Err()}
	}
}

// ImportKRL adds the revocations of an OpenSSH KRL to the account, whole or not at all. Its
// certificate sections must name active CAs of the account, or, with ca (a CA's name or
// fingerprint), that CA or any CA. A KRL signed by a key that is not one of the account's CAs is
// refused. Revocations the account already has are not added again.
func (o *Ops) ImportKRL(ctx context.Context, g auth.Grant, data []byte, ca string) (KRLImport, error) {
	if err := o.requireAdmin(g); err != nil {
		return KRLImport{}, err
	}
	release, err := o.krlWork(ctx, g.AccountID)
	if err != nil {
		return KRLImport{}, err
	}
	defer release()
	forced, err := o.krlCA(ctx, g, ca)
	if err != nil {
		return KRLImport{}, err
	}
	revs, err := o.krlRevocations(ctx, g.AccountID, data, forced)
	if err != nil {
		return KRLImport{}, err
	}
	added, err := o.store.ImportRevocations(ctx, g.AccountID, revs)
	if err != nil {
		return KRLImport{}, o.importError(ctx, err)
	}
	o.log.InfoContext(ctx, "KRL imported", "account", g.Account, "entries", len(revs), "added", added)
	return KRLImport{Entries: len(revs), Added: added}, nil
}

// ImportKRLFromURL fetches the KRL at url now and imports it as ImportKRL does, replacing what
// the account imported from that URL before. With every, portico serve (any gateway on the
// database) fetches it again on that schedule, replacing that source's revocations each time;
// without, it is not fetched again (run the import again to refresh it).
func (o *Ops) ImportKRLFromURL(ctx context.Context, g auth.Grant, url, ca string, every time.Duration) (KRLImport, error) {
	// Standing: a new KRL from a URL imported before replaces what it revoked, and may lift it.
	if err := o.requireStanding(ctx, g); err != nil {
		return KRLImport{}, err
	}
	if _, err := egress.CheckURL(url); err != nil {
		return KRLImport{}, &Error{Kind: Invalid, Message: err.Error(), Err: err}
	}
	if every != 0 && (every < o.cfg.KRL.minEvery() || every > MaxKRLEvery) {
		return KRLImport{}, errorf(Invalid, fmt.Sprintf("--every %v: want a duration from %v to %v", every, o.cfg.KRL.minEvery(), MaxKRLEvery))
	}
	every = every.Truncate(time.Second)
	forced, err := o.krlCA(ctx, g, ca)
	if err != nil {
		return KRLImport{}, err
	}
	release, err := o.krlWork(ctx, g.AccountID)
	if err != nil {
		return KRLImport{}, err
	}
	defer release()
	data, err := o.fetcher.Get(ctx, url)
	if err != nil {
		return KRLImport{}, &Error{Kind: Failed, Message: fmt.Sprintf("could not fetch %s: %v; nothing was changed", Printable(url), err), Err: err}
	}
	revs, err := o.krlRevocations(ctx, g.AccountID, data, forced)
	if err != nil {
		return KRLImport{}, err
	}
	src := db.NewKRLSource{URL: url, Every: every}
	if forced != nil {
		src.CAFingerprint = auth.Fingerprint(forced)
	}
	stored, err := o.store.SetKRLSource(ctx, g.AccountID, src, contentHash(data), revs, o.now())
	if err != nil {
		return KRLImport{}, o.importError(ctx, err)
	}
	names, err := o.caNames(ctx, g)
	if err != nil {
		return KRLImport{}, err
	}
	o.log.InfoContext(ctx, "KRL imported from a URL", "account", g.Account, "source", stored.ID, "entries", len(revs), "every", every)
	view := sourceView(stored, names)
	return KRLImport{Entries: len(revs), Added: stored.Entries, Source: &view}, nil
}

// importError says why the store refused an import.
func (o *Ops) importError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, db.ErrTooManyRevocations):
		return &Error{Kind: Refused, Message: fmt.Sprintf("the account would hold more than %d revocations; remove some (revocations rm, revocations sources rm) or import a smaller KRL; nothing was changed", db.MaxRevocations), Err: err}
	case errors.Is(err, db.ErrTooManySources):
		return &Error{Kind: Refused, Message: fmt.Sprintf("the account already imports from %d URLs, the most it may; remove one first (revocations sources rm)", db.MaxKRLSources), Err: err}
	case errors.Is(err, db.ErrNotFound):
		return &Error{Kind: NotFound, Message: "this account no longer exists", Err: err}
	}
	return o.failed(ctx, "import the KRL", err)
}

func contentHash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// krlCA resolves --ca: nil when ref is empty, else the account's active CA it names.
func (o *Ops) krlCA(ctx context.Context, g auth.Grant, ref string) (gossh.PublicKey, error) {
	if ref == "" {
		return nil, nil
	}
	ca, err := o.activeCA(ctx, g, ref)
	if err != nil {
		return nil, err
	}
	keys, err := o.store.ListKeys(ctx, g.AccountID)
	if err != nil {
		return nil, o.failed(ctx, "list keys", err)
	}
	for _, k := range keys {
		if k.ID == ca.ID {
			return parseStoredKey(k)
		}
	}
	return nil, errorf(NotFound, fmt.Sprintf("certificate authority %q was just removed", ca.Name))
}

func parseStoredKey(k db.Key) (gossh.PublicKey, error) {
	pub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(k.PublicKey))
	if err != nil {
		return nil, fmt.Errorf("stored key %s: %w", k.Fingerprint, err)
	}
	return pub, nil
}

// krlRevocations reads a KRL and returns the revocations it makes in the account: what it
// revokes by certificate, for the CA its section names (which must be an active CA of the
// account: never another account's, never an unknown one) or, in a section for any CA, for
// forced (--ca); keys and key hashes for every CA of the account. A KRL that is signed must be
// signed by the account's CAs.
func (o *Ops) krlRevocations(ctx context.Context, accountID int64, data []byte, forced gossh.PublicKey) ([]db.NewRevocation, error) {
	refuse := func(format string, args ...any) error {
		return errorf(Invalid, "the KRL is refused: "+fmt.Sprintf(format, args...)+"; nothing was changed")
	}
	k, err := auth.ParseKRL(data)
	if err != nil {
		return nil, refuse("%v", err)
	}
	keys, err := o.store.ListKeys(ctx, accountID)
	if err != nil {
		return nil, o.failed(ctx, "list keys", err)
	}
	cas := map[string]bool{}
	for _, key := range keys {
		if key.Kind == db.KindCA {
			cas[key.Fingerprint] = true
		}
	}
	for _, s := range k.Signers {
		if fp := auth.Fingerprint(s); !cas[fp] {
			return nil, refuse("it is signed by %s, which is not one of this account's certificate authorities", fp)
		}
	}
	forcedFP := ""
	if forced != nil {
		forcedFP = auth.Fingerprint(forced)
	}
	revs := make([]db.NewRevocation, 0, len(k.Entries))
	for _, e := range k.Entries {
		r := db.NewRevocation{Kind: e.Kind, Value: e.Value, Origin: db.OriginKRL}
		if e.Certificate {
			switch {
			case e.CA == nil && forced == nil:
				return nil, refuse("it revokes certificates of any certificate authority; say which of this account's it is for with --ca NAME")
			case e.CA == nil:
				r.CAFingerprint = forcedFP
			default:
				r.CAFingerprint = auth.Fingerprint(e.CA)
				if forced != nil && r.CAFingerprint != forcedFP {
					return nil, refuse("it revokes certificates of certificate authority %s, not of %s (--ca)", r.CAFingerprint, forcedFP)
				}
				if !cas[r.CAFingerprint] {
					return nil, refuse("it revokes certificates of certificate authority %s, which is not one of this account's", r.CAFingerprint)
				}
			}
		}
		revs = append(revs, r)
	}
	return revs, nil
}

// ExportKRL writes the account's revocations to w as an OpenSSH KRL, for sshd's RevokedKeys on
// other hosts (ssh-keygen -Q reads it). Revocations OpenSSH cannot hold (serial 0) or of a CA
// the account no longer has are left out, and counted.
func (o *Ops) ExportKRL(ctx context.Context, g auth.Grant, w io.Writer) (KRLExport, error) {
	if err := o.requireAdmin(g); err != nil {
		return KRLExport{}, err
	}
	release, err := o.krlWork(ctx, g.AccountID)
	if err != nil {
		return KRLExport{}, err
	}
	defer release()
	revs, err := o.store.ListRevocations(ctx, g.AccountID)
	if err != nil {
		return KRLExport{}, o.failed(ctx, "list revocations", err)
	}
	keys, err := o.store.ListKeys(ctx, g.AccountID)
	if err != nil {
		return KRLExport{}, o.failed(ctx, "list keys", err)
	}
	cas := map[string]gossh.PublicKey{}
	for _, k := range keys {
		if k.Kind == db.KindCA {
			if pub, err := parseStoredKey(k); err == nil {
				cas[k.Fingerprint] = pub
			}
		}
	}
	var out []auth.ExportedRevocation
	skipped := 0
	for _, r := range revs {
		er := auth.ExportedRevocation{Revocation: r}
		if r.CAFingerprint != "" {
			if er.CA = cas[r.CAFingerprint]; er.CA == nil {
				skipped++
				continue
			}
		}
		out = append(out, er)
	}
	now := o.now()
	n, err := auth.MarshalKRL(w, out, uint64(max(now.Unix(), 1)), uint64(max(now.Unix(), 0)), "portico account "+g.Account)
	if err != nil {
		return KRLExport{}, &Error{Kind: Failed, Message: "could not write the KRL", Err: err}
	}
	return KRLExport{Revocations: len(out) - n, Skipped: skipped + n}, nil
}

// ListKRLSources returns the URLs the account imports KRLs from.
func (o *Ops) ListKRLSources(ctx context.Context, g auth.Grant) ([]KRLSource, error) {
	if err := o.requireAdmin(g); err != nil {
		return nil, err
	}
	srcs, err := o.store.ListKRLSources(ctx, g.AccountID)
	if err != nil {
		return nil, o.failed(ctx, "list KRL sources", err)
	}
	names, err := o.caNames(ctx, g)
	if err != nil {
		return nil, err
	}
	out := make([]KRLSource, 0, len(srcs))
	for _, s := range srcs {
		out = append(out, sourceView(s, names))
	}
	return out, nil
}

// RemoveKRLSource stops importing from a source, named by its id or URL, and lifts its
// revocations.
func (o *Ops) RemoveKRLSource(ctx context.Context, g auth.Grant, ref string) (KRLSource, error) {
	if err := o.requireStanding(ctx, g); err != nil {
		return KRLSource{}, err
	}
	srcs, err := o.ListKRLSources(ctx, g)
	if err != nil {
		return KRLSource{}, err
	}
	for _, s := range srcs {
		if s.URL == ref || strconv.FormatInt(s.ID, 10) == ref {
			err := o.store.RemoveKRLSource(ctx, g.AccountID, s.ID)
			switch {
			case errors.Is(err, db.ErrNotFound):
				return KRLSource{}, &Error{Kind: NotFound, Message: fmt.Sprintf("no KRL source %d in this account", s.ID), Err: err}
			case err != nil:
				return KRLSource{}, o.failed(ctx, "remove the KRL source", err)
			}
			return s, nil
		}
	}
	return KRLSource{}, errorf(NotFound, fmt.Sprintf("no KRL source %q in this account (see: revocations sources)", ref))
}

// RunKRLRefresher fetches the KRL sources that are due, of every account, until ctx ends: it
// looks every few seconds (no longer apart than the shortest --every), takes each due source
// with a lease so that other gateways on the database leave it alone, and replaces its
// revocations when the KRL changed. A fetch or KRL that fails keeps the revocations the source
// had and is recorded for revocations sources to show. krlRefreshWorkers fetch at once, each
// looking on its own, and an account has one fetch at a time: a slow source delays only the
// other sources of its account.
func (o *Ops) RunKRLRefresher(ctx context.Context) {
	poll := min(krlRefreshPoll, o.cfg.KRL.minEvery())
	var wg sync.WaitGroup
	for range krlRefreshWorkers {
		wg.Go(func() {
			timer := time.NewTimer(0)
			defer timer.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
				// Fetch while sources are due; look again after poll once none is.
				for n := 0; n < krlRefreshBatch && ctx.Err() == nil; n++ {
					src, ok := o.claimDueKRLSource(ctx)
					if !ok {
						break
					}
					o.refreshKRLSource(ctx, src)
				}
				timer.Reset(poll)
			}
		})
	}
	wg.Wait()
}

// RefreshKRLSources fetches the sources due now (at most krlRefreshBatch), krlRefreshWorkers
// at a time and one per account at a time, and returns how many it fetched.
func (o *Ops) RefreshKRLSources(ctx context.Context) int {
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		n  int
	)
	next := func() (db.KRLSource, bool) {
		mu.Lock()
		defer mu.Unlock()
		if n >= krlRefreshBatch {
			return db.KRLSource{}, false
		}
		src, ok := o.claimDueKRLSource(ctx)
		if ok {
			n++
		}
		return src, ok
	}
	for range krlRefreshWorkers {
		wg.Go(func() {
			for {
				src, ok := next()
				if !ok {
					return
				}
				o.refreshKRLSource(ctx, src)
			}
		})
	}
	wg.Wait()
	return n
}

// krlLease is how long a scheduled fetch holds its source: longer than the fetch may take,
// which is its download (the configured fetch timeout), its wait for a KRL work slot (at most
// maxKRLWait) and recording what came of it. A lease that ran out while its fetch still ran
// would let another look take the same source again, and one more worker with it.
func (o *Ops) krlLease() time.Duration {
	timeout := o.cfg.KRL.FetchTimeout
	if timeout <= 0 {
		timeout = egress.DefaultTimeout
	}
	return 2*timeout + maxKRLWait
}

// claimDueKRLSource takes a due source for a fetch; false when none is due (or ctx is done).
// Claims of this gateway are made one at a time, so that each sees the sources the last one
// took: that is what keeps an account to one fetch at a time.
func (o *Ops) claimDueKRLSource(ctx context.Context) (db.KRLSource, bool) {
	o.krlClaimMu.Lock()
	defer o.krlClaimMu.Unlock()
	if ctx.Err() != nil {
		return db.KRLSource{}, false
	}
	now := o.now()
	src, err := o.store.ClaimDueKRLSource(ctx, now, now.Add(o.krlLease()))
	if err != nil {
		if !errors.Is(err, db.ErrNotFound) && ctx.Err() == nil {
			o.log.ErrorContext(ctx, "looking for KRL sources due", "err", err)
		}
		return db.KRLSource{}, false
	}
	return src, true
}

// refreshKRLSource fetches a claimed source and records what came of it.
func (o *Ops) refreshKRLSource(ctx context.Context, src db.KRLSource) {
	log := o.log.With("account_id", src.AccountID, "source", src.ID)
	fetch := db.KRLFetch{At: o.now()}
	err := o.fetchSource(ctx, src, &fetch)
	if err != nil {
		fetch.Err, fetch.Entries, fetch.ContentHash = err.Error(), nil, ""
		log.WarnContext(ctx, "KRL source not refreshed", "err", err)
	}
	if ctx.Err() != nil {
		return // shutting down: the lease runs out and another look takes the source
	}
	if err := o.store.FinishKRLFetch(ctx, src.ID, *src.LeaseUntil, fetch); err != nil {
		if errors.Is(err, db.ErrLeaseLost) {
			log.InfoContext(ctx, "KRL source changed while it was fetched; left as it is now")
			return
		}
		log.ErrorContext(ctx, "recording a KRL fetch", "err", err)
		return
	}
	if fetch.Entries != nil {
		log.InfoContext(ctx, "KRL source refreshed", "entries", len(fetch.Entries))
	}
}

// fetchSource fetches src and fills in fetch: the hash, and the entries when the KRL changed.
func (o *Ops) fetchSource(ctx context.Context, src db.KRLSource, fetch *db.KRLFetch) error {
	// The download comes first, outside the MaxKRLWork slots: a slow server keeps one of the
	// refresher's workers waiting, not the imports and exports of everyone.
	data, err := o.fetcher.Get(ctx, src.URL)
	if err != nil {
		return fmt.Errorf("could not fetch it: %w", err)
	}
	fetch.ContentHash = contentHash(data)
	if fetch.ContentHash == src.ContentHash {
		return nil
	}
	// The wait for a slot is bounded (krlLease counts on it): imports and exports that keep
	// the slots busy make this fetch fail, recorded, and the source is fetched again later.
	wctx, cancel := context.WithTimeout(ctx, maxKRLWait)
	release, err := o.krlWork(wctx, 0)
	cancel()
	if err != nil {
		return err
	}
	defer release()
	var forced gossh.PublicKey
	if src.CAFingerprint != "" {
		k, err := o.store.KeyByFingerprint(ctx, src.CAFingerprint)
		if err != nil || k.AccountID != src.AccountID || k.Kind != db.KindCA {
			return fmt.Errorf("its certificate authority (--ca %s) is no longer one of the account's", src.CAFingerprint)
		}
		if forced, err = parseStoredKey(k); err != nil {
			return err
		}
	}
	revs, err := o.krlRevocations(ctx, src.AccountID, data, forced)
	if err != nil {
		return err
	}
	if revs == nil {
		revs = []db.NewRevocation{}
	}
	fetch.Entries = revs
	return nil
}

func sourceView(s db.KRLSource, caNames map[string]string) KRLSource {
	v := KRLSource{
		ID:            s.ID,
		URL:           s.URL,
		CAName:        caNames[s.CAFingerprint],
		CAFingerprint: s.CAFingerprint,
		NextFetchAt:   timePtr(s.NextFetchAt),
		FetchedAt:     Time{s.FetchedAt},
		Entries:       s.Entries,
		LastError:     s.LastError,
		LastErrorAt:   timePtr(s.LastErrorAt),
		Failures:      s.Failures,
	}
	if s.Every > 0 {
		v.Every = s.Every.String()
	}
	return v
}
