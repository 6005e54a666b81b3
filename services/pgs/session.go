package pgs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"time"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services/pgs/blob"
	"github.com/portico-sh/portico/services/pgs/sitepath"
)

// finishTimeout bounds publishing at the end of a session, which runs after the client may
// have gone (an sftp session ends when its channel closes).
const finishTimeout = 2 * time.Minute

// lockPoll is how soon a deploy waiting for another one first asks for the lock again; the
// interval doubles up to maxLockPoll. Each ask is a write to the database: many sessions
// waiting on one project must not keep its single writer busy.
const (
	lockPoll    = 200 * time.Millisecond
	maxLockPoll = 2 * time.Second
)

// session is one SSH session's view of its account's sites. It reads live deploys, each
// pinned at its first use so that a download sees one deploy throughout, and changes projects
// through deploys of its own: a deploy holds the project's lock and works on a copy of the
// live files, published when the session ends well.
type session struct {
	svc    *Service
	ctx    context.Context
	cancel context.CancelCauseFunc
	grant  auth.Grant
	tool   string    // rsync, scp or sftp
	lazy   bool      // the first write to a project begins its deploy (scp, sftp)
	notice io.Writer // the client's stderr, for waits and failures

	beginMu sync.Mutex // one deploy begins at a time (it may wait for another's lock)
	flushMu sync.Mutex // one batch of blobs is recorded at a time

	mu           sync.Mutex
	snaps        map[string]*tree
	deploys      map[string]*deploy
	order        []string // projects in the order their deploys began
	failure      *Error
	pending      map[blob.Hash]*pendingBlob // written, not yet recorded and committed
	pendingBytes int64
	known        map[blob.Hash]bool // recorded and committed for the account
	stored       int64              // the account's stored bytes, as last counted
	reserved     int64              // bytes of this session's unrecorded data counted in svc.inflight
	finished     bool
}

// deploy is a session's deploy of one project.
type deploy struct {
	project    string
	holder     string
	base       *tree // the live files when the deploy began
	work       *tree // the working copy
	newProject bool
	stop       chan struct{} // closing it ends the lock's renewal
	renewed    chan struct{} // closed when the renewal has ended
}

// pendingBlob is a blob written in this session and not yet committed; readers keep it open.
type pendingBlob struct {
	w        blob.Writer
	size     int64
	reserved int64  // its bytes counted as in flight until recorded
	path     string // the first file with this content, for messages
	readers  int
	release  bool // close once the last reader is done
}

func (s *Service) newSession(parent context.Context, grant auth.Grant, tool string, lazy bool, notice io.Writer) *session {
	ctx, cancel := context.WithCancelCause(parent)
	return &session{
		svc: s, ctx: ctx, cancel: cancel, grant: grant, tool: tool, lazy: lazy, notice: notice,
		snaps: map[string]*tree{}, deploys: map[string]*deploy{},
		pending: map[blob.Hash]*pendingBlob{}, known: map[blob.Hash]bool{}, stored: -1,
	}
}

func (s *session) accountID() int64 { return s.grant.AccountID }

// fail marks the session failed: nothing it changed will be published. The first failure is
// told to the client and stops the transfer; fail returns it.
func (s *session) fail(err error) *Error {
	ue := asError(err)
	s.mu.Lock()
	first := s.failure == nil
	if first {
		s.failure = ue
	}
	got := s.failure
	s.mu.Unlock()
	if first {
		if ue.Kind == Failed && ue.Err != nil {
			s.svc.log.Warn("pgs: deploy failed", "account", s.grant.Account, "identity", s.grant.Identity, "err", ue.Err)
		}
		s.cancel(ue)
	}
	return got
}

// failed returns the session's failure, or nil.
func (s *session) failed() *Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failure
}

// begin starts the session's deploy of a project, waiting for another deploy of it to end.
func (s *session) begin(project string) (*deploy, error) {
	s.mu.Lock()
	d, failure := s.deploys[project], s.failure
	s.mu.Unlock()
	if failure != nil {
		return nil, failure
	}
	if d != nil {
		return d, nil
	}
	s.beginMu.Lock()
	defer s.beginMu.Unlock()
	s.mu.Lock()
	d, n := s.deploys[project], len(s.deploys)
	s.mu.Unlock()
	if d != nil {
		return d, nil
	}
	if n >= maxSessionProjects {
		return nil, errorf(Refused, "one session may change at most %d projects", maxSessionProjects)
	}
	holder := newHolder()
	if err := s.svc.acquire(s.ctx, s.accountID(), project, holder, s.notice); err != nil {
		return nil, s.hide(err)
	}
	d, err := s.startDeploy(project, holder)
	if err != nil {
		s.svc.release(s.grant.AccountID, project, holder)
		return nil, s.hide(err)
	}
	go s.renew(d)
	s.mu.Lock()
	s.deploys[project] = d
	s.order = append(s.order, project)
	delete(s.snaps, project)
	s.mu.Unlock()
	return d, nil
}

// startDeploy loads the project's live files once its lock is held.
func (s *session) startDeploy(project, holder string) (*deploy, error) {
	p, err := s.svc.store.PGSProject(s.ctx, s.accountID(), project)
	newProject := errors.Is(err, db.ErrNotFound)
	switch {
	case err != nil && !newProject:
		return nil, err
	case p.LinkTo != "":
		return nil, errorf(Refused, "%s serves the deploys of %s (a link): deploy to %s, or run `unlink %s` first", project, p.LinkTo, p.LinkTo, project)
	case newProject && s.svc.tunnels != nil && s.svc.tunnels.TunnelLive(s.grant.Account, project):
		return nil, errorf(Refused, "%s is the name of a live tunnel of %s: a project cannot take it", project, s.grant.Account)
	}
	base, err := s.svc.sites.tree(s.ctx, p.LiveDeployID)
	if err != nil {
		return nil, err
	}
	return &deploy{project: project, holder: holder, base: base, work: base.clone(), newProject: newProject,
		stop: make(chan struct{}), renewed: make(chan struct{})}, nil
}

// acquire takes the deploy lock of a project, waiting up to the lock wait for another deploy
// of it to end.
func (s *Service) acquire(ctx context.Context, accountID int64, project, holder string, notice io.Writer) error {
	deadline := time.Now().Add(s.lockWait)
	told := false
	poll := lockPoll
	for {
		ok, err := s.store.LockPGSProject(ctx, accountID, project, holder, s.lockTTL)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errorf(Refused, "another deploy of %s is still running after %s; nothing was changed, try again later", project, s.lockWait)
		}
		if !told && notice != nil {
			fmt.Fprintf(notice, "portico: waiting for another deploy of %s to finish\n", project)
			told = true
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(min(poll, max(time.Until(deadline), time.Millisecond))):
		}
		poll = min(2*poll, maxLockPoll)
	}
}

// release gives a deploy lock back.
func (s *Service) release(accountID int64, project, holder string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.store.UnlockPGSProject(ctx, accountID, project, holder); err != nil {
		s.log.Warn("pgs: releasing a deploy lock failed; it expires on its own", "project", project, "err", err)
	}
}

// renew keeps the deploy's lock until the deploy ends. A lock found taken by another holder
// fails the session; a store that does not answer is tried again (the publish checks the
// lock).
func (s *session) renew(d *deploy) {
	defer close(d.renewed)
	t := time.NewTicker(s.svc.lockTTL / 4)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.svc.lockTTL/4)
		ok, err := s.svc.store.LockPGSProject(ctx, s.accountID(), d.project, d.holder, s.svc.lockTTL)
		cancel()
		switch {
		case err != nil:
			s.svc.log.Warn("pgs: renewing a deploy lock failed", "project", d.project, "err", err)
		case !ok:
			s.fail(db.ErrLockLost)
			return
		}
	}
}

// end stops a deploy's lock renewal and releases the lock.
func (s *session) end(d *deploy) {
	close(d.stop)
	<-d.renewed
	s.svc.release(s.accountID(), d.project, d.holder)
}

// writable returns the deploy that may change p's project: in a lazy session the first write
// begins it; otherwise only projects the session began are writable.
func (s *session) writable(p sitepath.Path) (*deploy, error) {
	if p.IsRoot() {
		return nil, errorf(Invalid, "the root holds projects only: write into a project, e.g. /blog/index.html")
	}
	if s.lazy {
		return s.begin(p.Project)
	}
	s.mu.Lock()
	d, failure := s.deploys[p.Project], s.failure
	s.mu.Unlock()
	switch {
	case failure != nil:
		return nil, failure
	case d == nil:
		return nil, errorf(Refused, "%s: this session deploys another project", shown(p.String()))
	}
	return d, nil
}

// view runs fn on the files of a project as this session sees them: its working copy, or the
// live deploy pinned at first use. fn runs with the session locked.
func (s *session) view(project string, fn func(t *tree) error) error {
	s.mu.Lock()
	t := s.treeLocked(project)
	if t != nil {
		defer s.mu.Unlock()
		return fn(t)
	}
	s.mu.Unlock()
	live, found, err := s.svc.sites.liveOf(s.ctx, s.grant.Account, project, false)
	if err != nil {
		return s.hide(err)
	}
	var snap *tree
	if found {
		if snap, err = s.svc.sites.tree(s.ctx, live.DeployID); err != nil {
			return s.hide(err)
		}
	} else {
		snap = newTree(time.Time{})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t = s.treeLocked(project); t == nil {
		s.snaps[project] = snap
		t = snap
	}
	return fn(t)
}

func (s *session) treeLocked(project string) *tree {
	if d := s.deploys[project]; d != nil {
		return d.work
	}
	return s.snaps[project]
}

// stat describes p.
func (s *session) stat(p sitepath.Path) (fs.FileInfo, error) {
	if p.IsRoot() {
		return dirInfo{name: "/", mtime: time.Now()}, nil
	}
	var fi fs.FileInfo
	err := s.view(p.Project, func(t *tree) error {
		n := t.lookup(p.Rel)
		switch {
		case n == nil:
			return fs.ErrNotExist
		case n.isDir():
			fi = dirInfo{name: p.Base(), mtime: t.mtime}
		default:
			fi = fileInfo{name: p.Base(), f: *n.file}
		}
		return nil
	})
	return fi, err
}

// readDir lists a directory: the account's projects at the root.
func (s *session) readDir(p sitepath.Path) ([]fs.FileInfo, error) {
	if p.IsRoot() {
		return s.projects()
	}
	var list []fs.FileInfo
	err := s.view(p.Project, func(t *tree) error {
		n := t.lookup(p.Rel)
		switch {
		case n == nil:
			return fs.ErrNotExist
		case !n.isDir():
			return errNotDir
		}
		for _, name := range n.names() {
			c := n.children[name]
			if c.isDir() {
				list = append(list, dirInfo{name: name, mtime: t.mtime})
			} else {
				list = append(list, fileInfo{name: name, f: *c.file})
			}
		}
		return nil
	})
	return list, err
}

// projects lists the account's projects, and those this session is creating.
func (s *session) projects() ([]fs.FileInfo, error) {
	list, err := s.svc.store.PGSProjects(s.ctx, s.accountID())
	if err != nil {
		return nil, s.hide(err)
	}
	seen := map[string]bool{}
	var out []fs.FileInfo
	for _, p := range list {
		seen[p.Name] = true
		out = append(out, dirInfo{name: p.Name, mtime: p.UpdatedAt})
	}
	s.mu.Lock()
	for _, name := range s.order {
		if !seen[name] {
			out = append(out, dirInfo{name: name, mtime: time.Now()})
		}
	}
	s.mu.Unlock()
	sortInfos(out)
	return out, nil
}

// open opens a file for reading.
func (s *session) open(p sitepath.Path) (blob.Reader, File, error) {
	if p.IsRoot() || p.Rel == "" {
		return nil, File{}, errIsDir
	}
	var f File
	err := s.view(p.Project, func(t *tree) error {
		n := t.lookup(p.Rel)
		switch {
		case n == nil:
			return fs.ErrNotExist
		case n.isDir():
			return errIsDir
		}
		f = *n.file
		return nil
	})
	if err != nil {
		return nil, File{}, err
	}
	s.mu.Lock()
	pb := s.pending[f.Hash]
	if pb != nil {
		pb.readers++
	}
	s.mu.Unlock()
	if pb != nil {
		return &pendingReader{s: s, pb: pb}, f, nil
	}
	r, err := s.svc.blobs.Open(s.ctx, blob.Ref{Account: s.accountID(), Hash: f.Hash})
	if err != nil {
		return nil, File{}, s.hide(err)
	}
	return r, f, nil
}

// hide turns a failure of the server's own (the database, the blob store), whose text may
// name hosts, files or queries, into a message that names none; the cause goes to the log.
// The protocols pass an error's text to the client as it is.
func (s *session) hide(err error) error {
	var e *Error
	var pe *sitepath.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e), errors.As(err, &pe), errors.Is(err, fs.ErrNotExist), errors.Is(err, context.Canceled):
		return err
	}
	s.svc.log.Warn("pgs: a session's read or deploy failed", "account", s.grant.Account, "identity", s.grant.Identity, "err", err)
	return &Error{Kind: Failed, Message: "the server failed (its log says why); nothing was changed", Err: err}
}

// pendingReader reads a blob written in this session before it is committed.
type pendingReader struct {
	s    *session
	pb   *pendingBlob
	once sync.Once
}

func (r *pendingReader) ReadAt(p []byte, off int64) (int, error) { return r.pb.w.ReadAt(p, off) }
func (r *pendingReader) Size() int64                             { return r.pb.size }
func (r *pendingReader) Close() error {
	r.once.Do(func() {
		r.s.mu.Lock()
		r.pb.readers--
		closeIt := r.pb.readers == 0 && r.pb.release
		r.s.mu.Unlock()
		if closeIt {
			r.pb.w.Close()
		}
	})
	return nil
}

// parentsOK checks that no file stands where p needs a directory.
func parentsOK(t *tree, rel string) error {
	_, _, err := t.dirOf(rel, false)
	if errors.Is(err, errNotDir) {
		return errNotDir
	}
	return nil
}

// create starts writing the file p.
func (s *session) create(p sitepath.Path) (*upload, error) {
	if p.Rel == "" {
		return nil, errorf(Invalid, "/%s: a project is a directory: write files into it, e.g. /%s/index.html", p.Project, p.Project)
	}
	d, err := s.writable(p)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	err = parentsOK(d.work, p.Rel)
	if n := d.work.lookup(p.Rel); err == nil && n != nil && n.isDir() {
		err = errIsDir
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	w, err := s.svc.blobs.Create(s.ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	return &upload{s: s, path: p, w: w, max: s.svc.limits.maxFile()}, nil
}

// upload is a file being written in a deploy.
type upload struct {
	s    *session
	path sitepath.Path
	w    blob.Writer
	max  int64 // 0: no limit

	mu       sync.Mutex
	end      int64 // the end of the data written so far
	reserved int64 // bytes counted as in flight for it (the furthest end asked for)
	done     bool
}

// checkSize fails the session when data would reach past the file size limit.
func (u *upload) checkSize(end int64) error {
	if u.max > 0 && end > u.max {
		limit := "PORTICO_PGS_MAX_FILE"
		if u.s.svc.limits.MaxFile <= 0 {
			limit = "PORTICO_PGS_QUOTA"
		}
		return u.s.fail(errorf(Refused, "%s is larger than the %s limit on one file (%s); nothing was published",
			shown(u.path.String()), humanBytes(u.max), limit))
	}
	return nil
}

// reserve counts the data up to end as in flight for the account: what uploads hold written
// but not yet recorded is bounded by the quota as stored data is, or one client could fill the
// disk with files it never finishes (64 open at once per SFTP session, each up to the file
// size limit, over many sessions).
func (u *upload) reserve(end int64) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if end <= u.reserved {
		return nil
	}
	if err := u.s.reserve(u.path, end-u.reserved); err != nil {
		return err
	}
	u.reserved = end
	return nil
}

func (u *upload) Write(p []byte) (int, error) {
	u.mu.Lock()
	end := u.end + int64(len(p))
	u.mu.Unlock()
	if err := u.checkSize(end); err != nil {
		return 0, err
	}
	if err := u.reserve(end); err != nil {
		return 0, err
	}
	n, err := u.w.Write(p)
	u.mu.Lock()
	u.end += int64(n)
	u.mu.Unlock()
	if err != nil {
		return n, u.s.fail(err)
	}
	return n, nil
}

func (u *upload) WriteAt(p []byte, off int64) (int, error) {
	end := off + int64(len(p))
	if off < 0 || end < off {
		return 0, errorf(Invalid, "%s: bad offset", shown(u.path.String()))
	}
	if err := u.checkSize(end); err != nil {
		return 0, err
	}
	if err := u.reserve(end); err != nil {
		return 0, err
	}
	n, err := u.w.WriteAt(p, off)
	if err != nil {
		return n, u.s.fail(err)
	}
	u.mu.Lock()
	u.end = max(u.end, off+int64(n))
	u.mu.Unlock()
	return n, nil
}

// truncate sets the file's size (an SFTP client writing in place cuts the file at its new end).
func (u *upload) truncate(size int64) error {
	if size < 0 {
		return errorf(Invalid, "%s: bad size", shown(u.path.String()))
	}
	if err := u.checkSize(size); err != nil {
		return err
	}
	if err := u.w.Truncate(size); err != nil {
		return u.s.fail(err)
	}
	u.mu.Lock()
	u.end = size
	u.mu.Unlock()
	return nil
}

// Commit puts the file into the working copy with the given permission bits and
// modification time (whole seconds).
func (u *upload) commit(mode fs.FileMode, mtime int64) error { return u.commitNsec(mode, mtime, 0) }

// commitNsec is commit with the nanoseconds of the modification time.
func (u *upload) commitNsec(mode fs.FileMode, mtime int64, nsec int32) error {
	u.mu.Lock()
	if u.done {
		u.mu.Unlock()
		return errors.New("upload already finished")
	}
	u.done = true
	reserved := u.reserved
	u.mu.Unlock()
	return u.s.commit(u.path, u.w, reserved, mode, mtime, nsec)
}

// Abort discards the data.
func (u *upload) Abort() error {
	u.mu.Lock()
	done := u.done
	u.done = true
	reserved := u.reserved
	u.mu.Unlock()
	if done {
		return nil
	}
	u.s.unreserve(reserved)
	return u.w.Close()
}

// commit adds a written file to its project's working copy, once its hash is known. New
// content is held as a pending blob; pending blobs are recorded for the account and committed
// to the blob store in batches, and all of them before the deploy is published.
func (s *session) commit(p sitepath.Path, w blob.Writer, reserved int64, mode fs.FileMode, mtime int64, nsec int32) error {
	h, size, err := w.Sum()
	if err != nil {
		s.unreserve(reserved)
		w.Close()
		return s.fail(err)
	}
	kept := false // the data became a pending blob, which keeps the reservation
	defer func() {
		if !kept {
			s.unreserve(reserved)
		}
	}()
	limits := s.svc.limits
	s.mu.Lock()
	d := s.deploys[p.Project]
	var ferr error
	switch {
	case s.failure != nil:
		ferr = s.failure
	case d == nil:
		ferr = errorf(Refused, "%s: this session does not deploy %s", shown(p.String()), p.Project)
	}
	if ferr != nil {
		s.mu.Unlock()
		w.Close()
		return ferr
	}
	if n := d.work.lookup(p.Rel); n != nil && n.isDir() {
		s.mu.Unlock()
		w.Close()
		return errIsDir
	}
	if _, exists := d.work.file(p.Rel); !exists && limits.MaxFiles > 0 && d.work.files >= limits.MaxFiles {
		s.mu.Unlock()
		w.Close()
		return s.fail(errorf(Refused, "%s would hold more than %d files (PORTICO_PGS_MAX_FILES), at %s; nothing was published",
			p.Project, limits.MaxFiles, shown(p.String())))
	}
	if err := parentsOK(d.work, p.Rel); err != nil {
		s.mu.Unlock()
		w.Close()
		return err
	}
	if s.known[h] || s.pending[h] != nil || d.base.hasHash(h) {
		w.Close() // the same content is stored already
	} else {
		s.pending[h] = &pendingBlob{w: w, size: size, reserved: reserved, path: p.String()}
		s.pendingBytes += size
		kept = true
	}
	if err := d.work.put(p.Rel, File{Hash: h, Size: size, Mode: mode.Perm(), MTime: mtime, MTimeNsec: nsec}); err != nil {
		s.mu.Unlock()
		return err
	}
	flush := len(s.pending) >= maxPendingBlobs || s.pendingBytes >= maxPendingBytes ||
		(limits.Quota > 0 && s.stored >= 0 && s.stored+s.pendingBytes > limits.Quota) ||
		(limits.Quota > 0 && s.pendingBytes > limits.Quota)
	s.mu.Unlock()
	if flush {
		return s.flush(s.ctx, p.String())
	}
	return nil
}

// flush records the pending blobs for the account and commits them to the blob store. The
// record comes first: a blob in the store is always one the account's records name, so that a
// crash leaves nothing that cannot be collected. trigger names the file that caused the flush.
func (s *session) flush(ctx context.Context, trigger string) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	batch := make([]blob.Hash, 0, len(s.pending))
	rows := make([]db.PGSBlob, 0, len(s.pending))
	for h, pb := range s.pending {
		batch = append(batch, h)
		rows = append(rows, db.PGSBlob{Hash: h.String(), Size: pb.size})
	}
	s.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	total, err := s.svc.store.RecordPGSBlobs(ctx, s.accountID(), rows)
	if err != nil {
		return s.fail(err)
	}
	for _, h := range batch {
		s.mu.Lock()
		pb := s.pending[h]
		s.mu.Unlock()
		if err := pb.w.Commit(ctx, blob.Ref{Account: s.accountID(), Hash: h}); err != nil {
			return s.fail(err)
		}
		s.mu.Lock()
		delete(s.pending, h)
		s.pendingBytes -= pb.size
		s.known[h] = true
		closeIt := pb.readers == 0
		pb.release = true
		s.mu.Unlock()
		s.unreserve(pb.reserved)
		if closeIt {
			pb.w.Close()
		}
	}
	s.mu.Lock()
	s.stored = total
	s.mu.Unlock()
	if q := s.svc.limits.Quota; q > 0 && total > q {
		return s.fail(errorf(Refused, "storing %s takes %s past its %s storage quota (PORTICO_PGS_QUOTA); nothing was published",
			shown(trigger), s.grant.Account, humanBytes(q)))
	}
	return nil
}

// discard drops the pending blobs of a failed session.
func (s *session) discard() {
	s.mu.Lock()
	pending := s.pending
	s.pending = map[blob.Hash]*pendingBlob{}
	s.pendingBytes = 0
	s.mu.Unlock()
	for _, pb := range pending {
		s.mu.Lock()
		closeIt := pb.readers == 0
		pb.release = true
		s.mu.Unlock()
		s.unreserve(pb.reserved)
		if closeIt {
			pb.w.Close()
		}
	}
}

// reserve counts n more bytes of unrecorded data of this session as in flight for its
// account, failing the session when the account's data in flight would exceed the quota.
func (s *session) reserve(p sitepath.Path, n int64) error {
	q := s.svc.limits.Quota
	if q <= 0 || n <= 0 {
		return nil
	}
	if !s.svc.inflight.add(s.accountID(), n, q) {
		return s.fail(errorf(Refused, "storing %s, with the uploads in progress, takes %s past its %s storage quota (PORTICO_PGS_QUOTA); nothing was published",
			shown(p.String()), s.grant.Account, humanBytes(q)))
	}
	s.mu.Lock()
	s.reserved += n
	s.mu.Unlock()
	return nil
}

// unreserve gives back n bytes counted by reserve.
func (s *session) unreserve(n int64) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	n = min(n, s.reserved)
	s.reserved -= n
	s.mu.Unlock()
	s.svc.inflight.add(s.accountID(), -n, 0)
}

// unreserveAll gives back whatever the session still counts in flight (uploads it never
// finished nor aborted).
func (s *session) unreserveAll() {
	s.mu.Lock()
	n := s.reserved
	s.reserved = 0
	s.mu.Unlock()
	s.svc.inflight.add(s.accountID(), -n, 0)
}

// published is the outcome of one project's deploy at the end of a session.
type published struct {
	project string
	deploy  db.PGSDeploy // zero when nothing changed
}

// finish ends the session. With ok (the transfer ended well and nothing failed) each project
// the session changed gets a new live deploy; otherwise nothing is published. Every lock is
// released, and the account's unused blobs are collected.
func (s *session) finish(ok bool) ([]published, *Error) {
	s.mu.Lock()
	done := s.finished
	s.finished = true
	s.mu.Unlock()
	if done {
		return nil, errorf(Failed, "the session is over")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), finishTimeout)
	defer cancel()
	s.mu.Lock()
	order := append([]string(nil), s.order...)
	s.mu.Unlock()
	defer s.unreserveAll()
	if len(order) == 0 {
		s.discard()
		return nil, s.failed()
	}
	var out []published
	var ferr *Error
	if !ok && s.failed() == nil {
		ferr = errorf(Failed, "the transfer did not end cleanly; nothing was published")
	}
	for _, project := range order {
		s.mu.Lock()
		d := s.deploys[project]
		s.mu.Unlock()
		if ferr == nil && s.failed() == nil {
			pub, err := s.publish(ctx, d)
			if err != nil {
				ferr = s.fail(err)
			} else {
				out = append(out, pub)
			}
		}
		s.end(d)
	}
	if f := s.failed(); f != nil {
		ferr = f
	}
	s.discard()
	s.svc.collect(ctx, s.accountID(), false)
	return out, ferr
}

// close ends a session that did not finish (a panic in its protocol): nothing is published,
// and its locks are released. The serve functions defer it.
func (s *session) close() {
	s.mu.Lock()
	done := s.finished
	s.mu.Unlock()
	if !done {
		s.finish(false)
	}
}

// publish makes a deploy's working copy live, unless it changed nothing.
func (s *session) publish(ctx context.Context, d *deploy) (published, error) {
	s.mu.Lock()
	added, changed, removed := changes(d.base, d.work)
	files := d.work.manifest()
	bytes := d.work.bytes
	s.mu.Unlock()
	if added+changed+removed == 0 {
		return published{project: d.project}, nil
	}
	if err := s.checkRules(ctx, d); err != nil {
		return published{}, err
	}
	if err := s.flush(ctx, d.project); err != nil {
		return published{}, err
	}
	if err := s.svc.blobs.Sync(ctx); err != nil {
		return published{}, err
	}
	g := s.grant
	dep := db.PGSDeploy{Identity: g.Identity, Method: string(g.Method), KeyFingerprint: g.KeyFingerprint, Tool: s.tool,
		Added: added, Changed: changed, Removed: removed, Files: int64(len(files)), Bytes: bytes}
	if g.Cert != nil {
		serial := g.Cert.Serial
		dep.Serial = &serial
	}
	out, err := s.svc.store.PublishPGSDeploy(ctx, db.PGSPublish{
		AccountID: s.accountID(), Project: d.project, Holder: d.holder, Deploy: dep, Files: files,
		Keep: s.svc.limits.KeepDeploys, Quota: s.svc.limits.Quota, MaxProjects: maxProjects,
		MaxKeptFiles: s.svc.limits.maxKeptFiles(),
	})
	if errors.Is(err, db.ErrTooManyProjects) {
		return published{}, tooManyProjects()
	}
	if errors.Is(err, db.ErrTooManyKeptFiles) {
		return published{}, errorf(Refused, "the kept deploys of all of %s's projects would hold more than %d files (%d × PORTICO_PGS_MAX_FILES); remove a project (rm PROJECT --yes) first; nothing was published",
			g.Account, s.svc.limits.maxKeptFiles(), keptFilesFactor)
	}
	if errors.Is(err, db.ErrOverQuota) {
		return published{}, errorf(Refused, "deploying %s takes %s past its %s storage quota (PORTICO_PGS_QUOTA); nothing was published",
			d.project, g.Account, humanBytes(s.svc.limits.Quota))
	}
	if err != nil {
		return published{}, err
	}
	s.svc.sites.forget(g.Account, d.project)
	s.svc.log.Info("pgs: deploy published", "account", g.Account, "project", d.project, "deploy", out.Seq,
		"identity", g.Identity, "tool", s.tool, "added", added, "changed", changed, "removed", removed)
	return published{project: d.project, deploy: out}, nil
}
