package pgs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/portico-sh/portico/services"
	"github.com/portico-sh/portico/services/pgs/blob"
	"github.com/portico-sh/portico/services/pgs/rsync"
	"github.com/portico-sh/portico/services/pgs/sitepath"
)

// serveRsync runs rsync's server side: an upload deploys the destination's project when the
// transfer ends with exit status 0, all or nothing; a download reads live deploys.
func (s *Service) serveRsync(sess *services.Session) int {
	ss := s.newSession(sess.Context(), sess.Grant, "rsync", false, sess.Stderr())
	defer ss.close()
	fsys := &rsyncFS{s: ss}
	stdin, stdinDone := cancelableReader(ss.ctx, sess)
	code := rsync.Serve(ss.ctx, sess.RawCommand, stdin, sess, sess.Stderr(), fsys)
	if code != 0 && ss.failed() != nil {
		select {
		case <-stdinDone:
		case <-time.After(failureGrace):
		}
	}
	if !fsys.receiving {
		ss.finish(false)
		return code
	}
	pubs, err := ss.finish(code == 0)
	if err != nil {
		// A failure during the transfer reached the client in rsync's own messages; one at
		// the end (publishing) is told here.
		if code == 0 {
			fmt.Fprintf(sess.Stderr(), "portico: %s\n", err.Message)
			code = 11 // rsync's file I/O error
		}
		return code
	}
	s.reportPublished(sess.Stderr(), sess.Grant.Account, pubs)
	return code
}

// cancelableReader reads r until ctx ends: a session that fails (a limit, a store failure)
// must not stay blocked reading from a client that waits for an answer. Reads then return
// the failure; what the client still sends is read and dropped, so that it is not stopped by
// a full window before it has read the failure's message. done is closed when r has ended.
func cancelableReader(ctx context.Context, r io.Reader) (_ io.Reader, done <-chan struct{}) {
	pr, pw := io.Pipe()
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		_, err := io.Copy(pw, r)
		pw.CloseWithError(err)
		if err == nil || errors.Is(err, io.ErrClosedPipe) {
			io.Copy(io.Discard, r)
		}
	}()
	context.AfterFunc(ctx, func() { pw.CloseWithError(context.Cause(ctx)) })
	return pr, ended
}

// failureGrace is how long a failed upload waits for its client to read the failure and hang
// up before the session ends.
const failureGrace = time.Second

// reportPublished tells the client what went live, ending with the site's URL.
func (s *Service) reportPublished(w io.Writer, account string, pubs []published) {
	for _, p := range pubs {
		url := s.public.SiteURL(account, p.project)
		if p.deploy.Seq == 0 {
			fmt.Fprintf(w, "portico: %s: nothing changed, no new deploy: %s\n", p.project, url)
			continue
		}
		d := p.deploy
		fmt.Fprintf(w, "portico: %s: deploy d%d is live (%d added, %d changed, %d removed; %d files, %s): %s\n",
			p.project, d.Seq, d.Added, d.Changed, d.Removed, d.Files, humanBytes(d.Bytes), url)
	}
}

// rsyncFS is the account's sites as an rsync.FS: the first path segment names the project.
// Uploads write only into the project the destination names.
type rsyncFS struct {
	s         *session
	receiving bool
}

var _ rsync.ListLimiter = (*rsyncFS)(nil)

// MaxListEntries bounds the file list an uploading client may send, before it is held in
// memory: a deploy holds at most PORTICO_PGS_MAX_FILES files, so a list may have as many
// entries again for directories (and some to spare); a longer one ends the session.
func (f *rsyncFS) MaxListEntries() int {
	if n := f.s.svc.limits.MaxFiles; n > 0 {
		return 2*n + 1024
	}
	return 0
}

// path checks a name the rsync library passes ("." or a clean relative path).
func (f *rsyncFS) path(name string) (sitepath.Path, error) {
	return sitepath.Parse(name)
}

// StartReceive begins the deploy of the destination's project before the transfer starts.
func (f *rsyncFS) StartReceive(dest string) error {
	p, err := sitepath.Parse(dest)
	if err != nil {
		return userError(err)
	}
	if p.IsRoot() {
		return errorf(Invalid, "rsync to / is refused: the destination's first segment names the project, e.g. pgs@HOST:/blog/")
	}
	f.receiving = true
	if _, err := f.s.begin(p.Project); err != nil {
		return userError(err)
	}
	return nil
}

func (f *rsyncFS) Lstat(name string) (fs.FileInfo, error) {
	p, err := f.path(name)
	if err != nil {
		return nil, pathError("lstat", name, err)
	}
	fi, err := f.s.stat(p)
	return fi, pathError("lstat", name, err)
}

func (f *rsyncFS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := f.path(name)
	if err != nil {
		return nil, pathError("readdir", name, err)
	}
	infos, err := f.s.readDir(p)
	if err != nil {
		return nil, pathError("readdir", name, err)
	}
	ents := make([]fs.DirEntry, len(infos))
	for i, fi := range infos {
		ents[i] = fs.FileInfoToDirEntry(fi)
	}
	return ents, nil
}

func (f *rsyncFS) Open(name string) (rsync.File, error) {
	p, err := f.path(name)
	if err != nil {
		return nil, pathError("open", name, err)
	}
	r, _, err := f.s.open(p)
	if err != nil {
		return nil, pathError("open", name, err)
	}
	return &blobFile{Reader: r, sr: io.NewSectionReader(r, 0, r.Size())}, nil
}

// blobFile reads a blob in order and at offsets.
type blobFile struct {
	blob.Reader
	sr *io.SectionReader
}

func (b *blobFile) Read(p []byte) (int, error) { return b.sr.Read(p) }

func (f *rsyncFS) Readlink(name string) (string, error) {
	return "", &fs.PathError{Op: "readlink", Path: name, Err: errors.New("sites hold no symbolic links")}
}

func (f *rsyncFS) Mkdir(name string, _ fs.FileMode) error { return f.mkdir(name, false) }

// MkdirAll makes a directory and its missing parents (the rsync library uses it when present).
func (f *rsyncFS) MkdirAll(name string, _ fs.FileMode) error { return f.mkdir(name, true) }

func (f *rsyncFS) mkdir(name string, parents bool) error {
	p, err := f.path(name)
	if err != nil {
		return pathError("mkdir", name, f.s.fail(err))
	}
	d, err := f.s.writable(p)
	if err != nil {
		return pathError("mkdir", name, err)
	}
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	return pathError("mkdir", name, d.work.mkdir(p.Rel, parents))
}

func (f *rsyncFS) Create(name string) (rsync.Upload, error) {
	p, err := f.path(name)
	if err != nil {
		// A name the client may send but a site may not hold fails the whole deploy.
		return nil, pathError("create", name, f.s.fail(err))
	}
	u, err := f.s.create(p)
	if err != nil {
		return nil, pathError("create", name, err)
	}
	return rsyncUpload{u}, nil
}

// rsyncUpload is an upload as the rsync library commits it.
type rsyncUpload struct{ *upload }

func (u rsyncUpload) Commit(mtime time.Time, perm fs.FileMode) error {
	return u.upload.commitNsec(perm, mtime.Unix(), int32(mtime.Nanosecond()))
}

// Chtimes keeps the client's full time: the quick check compares nanoseconds where both
// sides have them.
func (f *rsyncFS) Chtimes(name string, mtime time.Time) error {
	t := mtime.Unix()
	return f.setAttrs("chtimes", name, nil, &t, int32(mtime.Nanosecond()))
}

// KeptTime is the time a file keeps when the client sends t: within years 1 and 9999
// (rsync.TimeKeeper), so that a file sent with a time outside them is not sent again by every
// upload.
func (f *rsyncFS) KeptTime(t time.Time) time.Time {
	sec, nsec := clampTime(t.Unix(), int32(t.Nanosecond()))
	return time.Unix(sec, int64(nsec))
}

func (f *rsyncFS) Chmod(name string, perm fs.FileMode) error {
	return f.setAttrs("chmod", name, &perm, nil, 0)
}

func (f *rsyncFS) setAttrs(op, name string, mode *fs.FileMode, mtime *int64, nsec int32) error {
	p, err := f.path(name)
	if err != nil {
		return pathError(op, name, err)
	}
	if p.Rel == "" {
		return nil // the root and projects keep no attributes
	}
	d, err := f.s.writable(p)
	if err != nil {
		return pathError(op, name, err)
	}
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	return pathError(op, name, d.work.setAttrs(p.Rel, mode, mtime, nsec))
}

func (f *rsyncFS) Remove(name string) error {
	p, err := f.path(name)
	if err != nil {
		return pathError("remove", name, err)
	}
	if p.Rel == "" {
		return pathError("remove", name, errorf(Refused, "projects are removed with `rm PROJECT --yes`, not by rsync"))
	}
	d, err := f.s.writable(p)
	if err != nil {
		return pathError("remove", name, err)
	}
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	return pathError("remove", name, d.work.remove(p.Rel))
}

// pathError wraps err for the rsync library's messages, keeping our own messages whole.
func pathError(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var pe *sitepath.Error
	if errors.As(err, &pe) {
		return pe
	}
	if strings.HasPrefix(err.Error(), op+" ") {
		return err
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}
