package pgs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/ssh"
	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"

	"github.com/portico-sh/portico/services"
	"github.com/portico-sh/portico/services/pgs/sitepath"
)

// maxSFTPHandles bounds the files and directories one SFTP session may hold open, and
// maxSFTPListings the directory listings among them (each holds its entries, up to a
// deploy's files).
const (
	maxSFTPHandles  = 64
	maxSFTPListings = 4
)

// probeTimeout bounds the check that the connection is still up when an SFTP session ends.
const probeTimeout = 10 * time.Second

// serveSFTP serves the sftp subsystem (sftp, and scp in its default SFTP mode) with
// pkg/sftp's request server over the session's view of the account's sites. The session's
// changes are published when the client closes the channel while the connection is up and no
// file is still open for writing; a dropped connection publishes nothing.
func (s *Service) serveSFTP(sess *services.Session) int {
	ss := s.newSession(sess.Context(), sess.Grant, "sftp", true, sess.Stderr())
	defer ss.close()
	h := &sftpHandler{s: ss, writers: map[string]*sftpWriter{}}
	handlers := sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h}
	server := sftp.NewRequestServer(sessionRWC{sess}, handlers)
	serveErr := server.Serve()
	clean := (serveErr == nil || errors.Is(serveErr, io.EOF)) && h.incomplete.Load() == 0 && connectionUp(sess)
	pubs, err := ss.finish(clean)
	if err != nil {
		fmt.Fprintf(sess.Stderr(), "portico: %s\n", err.Message)
		return exitFailed
	}
	s.reportPublished(sess.Stderr(), sess.Grant.Account, pubs)
	return exitOK
}

// sessionRWC is a session as the request server's stream. Closing it does nothing: the
// outcome still goes to stderr, and the gateway closes the channel after the exit status.
type sessionRWC struct{ sess *services.Session }

func (r sessionRWC) Read(p []byte) (int, error)  { return r.sess.Read(p) }
func (r sessionRWC) Write(p []byte) (int, error) { return r.sess.Write(p) }
func (r sessionRWC) Close() error                { return nil }

// connectionUp reports whether the session's connection still answers: a client that closed
// its SFTP channel waits for the exit status; a dropped connection answers nothing.
func connectionUp(sess *services.Session) bool {
	conn, ok := sess.Context().Value(ssh.ContextKeyConn).(*gossh.ServerConn)
	if !ok {
		return false
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := conn.SendRequest("keepalive@openssh.com", true, nil)
		done <- err
	}()
	select {
	case err := <-done:
		return err == nil
	case <-time.After(probeTimeout):
		return false
	}
}

// sftpHandler answers the request server's calls. Paths arrive cleaned and absolute; each one
// goes through sitepath before anything is read or written.
type sftpHandler struct {
	s          *session
	handles    atomic.Int32 // open files and directory listings
	listings   atomic.Int32 // open directory listings
	incomplete atomic.Int32 // files still open for writing when the session ended
	notices    atomic.Int32 // refusals explained on stderr

	mu      sync.Mutex
	writers map[string]*sftpWriter // files open for writing, by path
}

func (h *sftpHandler) path(p string) (sitepath.Path, error) {
	sp, err := sitepath.Parse(p)
	if err != nil {
		return sitepath.Path{}, h.sftpError(err)
	}
	return sp, nil
}

// writePath is path for a path to write (a file, a directory, a rename's ends): a bad one
// fails the session's deploys, as it does an rsync or legacy scp upload, so that an upload with
// a file the site cannot hold never goes live without it.
func (h *sftpHandler) writePath(p string) (sitepath.Path, error) {
	sp, err := sitepath.Parse(p)
	if err != nil {
		return sitepath.Path{}, h.sftpError(h.s.fail(err))
	}
	return sp, nil
}

// takeHandle counts an open handle, refusing one past the limit.
func (h *sftpHandler) takeHandle() error {
	if h.handles.Add(1) > maxSFTPHandles {
		h.handles.Add(-1)
		return errorf(Refused, "at most %d files and directories may be open at once", maxSFTPHandles)
	}
	return nil
}

// maxSFTPNotices bounds the refusals one SFTP session explains on stderr.
const maxSFTPNotices = 20

// sftpError is err as the SFTP client sees it: the request server turns not-exist errors into
// "no such file", the others into a failure. An SFTP client shows only the status's name, so a
// refusal's reason also goes to stderr, which ssh shows (at most maxSFTPNotices of them).
func (h *sftpHandler) sftpError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return os.ErrNotExist
	}
	var e *Error
	var pe *sitepath.Error
	if errors.As(err, &e) || errors.As(err, &pe) {
		if h.notices.Add(1) <= maxSFTPNotices {
			fmt.Fprintf(h.s.notice, "portico: %s\n", asError(err).Message)
		}
	}
	if errors.Is(err, fs.ErrPermission) {
		return sftp.ErrSSHFxPermissionDenied
	}
	return err
}

// Fileread opens a file for reading.
func (h *sftpHandler) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	p, err := h.path(r.Filepath)
	if err != nil {
		return nil, err
	}
	if err := h.takeHandle(); err != nil {
		return nil, h.sftpError(err)
	}
	rd, _, err := h.s.open(p)
	if err != nil {
		h.handles.Add(-1)
		return nil, h.sftpError(err)
	}
	return &sftpReader{h: h, r: rd}, nil
}

type sftpReader struct {
	h    *sftpHandler
	r    io.ReaderAt
	once sync.Once
}

func (r *sftpReader) ReadAt(p []byte, off int64) (int, error) { return r.r.ReadAt(p, off) }

func (r *sftpReader) Close() error {
	r.once.Do(func() {
		r.h.handles.Add(-1)
		if c, ok := r.r.(io.Closer); ok {
			c.Close()
		}
	})
	return nil
}

// Filewrite opens a file for writing: a new version of it, committed when the handle closes.
// Without O_TRUNC an existing file's content comes first (resumed uploads); O_APPEND is not
// supported.
func (h *sftpHandler) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	p, err := h.writePath(r.Filepath)
	if err != nil {
		return nil, err
	}
	flags := r.Pflags()
	if flags.Append {
		return nil, sftp.ErrSSHFxOpUnsupported
	}
	if err := h.takeHandle(); err != nil {
		return nil, h.sftpError(err)
	}
	u, err := h.s.create(p)
	if err != nil {
		h.handles.Add(-1)
		return nil, h.sftpError(err)
	}
	w := &sftpWriter{h: h, u: u, path: p, mode: 0o644, mtime: time.Now().Unix()}
	if old, err := h.s.stat(p); err == nil && !old.IsDir() {
		if flags.Excl {
			u.Abort()
			h.handles.Add(-1)
			return nil, os.ErrExist
		}
		w.mode = old.Mode().Perm()
		if !flags.Trunc {
			if err := w.copyOld(p); err != nil {
				u.Abort()
				h.handles.Add(-1)
				return nil, h.sftpError(err)
			}
		}
	}
	if a := r.Attributes(); r.AttrFlags().Permissions && a != nil {
		w.mode = fs.FileMode(a.Mode).Perm()
	}
	h.mu.Lock()
	h.writers[p.String()] = w
	h.mu.Unlock()
	return w, nil
}

// sftpWriter is a file being written over SFTP.
type sftpWriter struct {
	h    *sftpHandler
	u    *upload
	path sitepath.Path

	mu     sync.Mutex
	mode   fs.FileMode
	mtime  int64
	failed error // the transfer broke (TransferError)
	closed bool
}

// copyOld writes the current content of the file first, for a write without O_TRUNC.
func (w *sftpWriter) copyOld(p sitepath.Path) error {
	rd, _, err := w.h.s.open(p)
	if err != nil {
		return err
	}
	defer rd.Close()
	_, err = io.Copy(w.u, io.NewSectionReader(rd, 0, rd.Size()))
	return err
}

func (w *sftpWriter) WriteAt(p []byte, off int64) (int, error) {
	n, err := w.u.WriteAt(p, off)
	return n, w.h.sftpError(err)
}

// setAttrs records attributes set on the open file (fsetstat), applied when it is committed.
func (w *sftpWriter) setAttrs(mode *fs.FileMode, mtime *int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if mode != nil {
		w.mode = mode.Perm()
	}
	if mtime != nil {
		w.mtime = *mtime
	}
}

// TransferError is called when the session ends with the file still open.
func (w *sftpWriter) TransferError(err error) {
	w.mu.Lock()
	w.failed = err
	w.mu.Unlock()
}

func (w *sftpWriter) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	failed, mode, mtime := w.failed, w.mode, w.mtime
	w.mu.Unlock()
	w.h.mu.Lock()
	if w.h.writers[w.path.String()] == w {
		delete(w.h.writers, w.path.String())
	}
	w.h.mu.Unlock()
	w.h.handles.Add(-1)
	if failed != nil {
		w.h.incomplete.Add(1)
		return w.u.Abort()
	}
	return w.h.sftpError(w.u.commit(mode, mtime))
}

// Filecmd runs setstat, rename, mkdir, rmdir and remove. Links are refused: sites hold files.
func (h *sftpHandler) Filecmd(r *sftp.Request) error {
	parse := h.path
	if r.Method == "Mkdir" || r.Method == "Rename" {
		parse = h.writePath
	}
	p, err := parse(r.Filepath)
	if err != nil {
		return err
	}
	switch r.Method {
	case "Setstat":
		return h.sftpError(h.setstat(r, p))
	case "Rename":
		return h.sftpError(h.rename(p, r.Target, false))
	case "Mkdir":
		return h.sftpError(h.mkdir(p))
	case "Rmdir", "Remove":
		return h.sftpError(h.remove(p, r.Method == "Rmdir"))
	case "Link", "Symlink":
		return h.sftpError(errorf(Refused, "sites hold no links: upload the file itself"))
	}
	return sftp.ErrSSHFxOpUnsupported
}

// PosixRename renames, replacing an existing file (posix-rename@openssh.com).
func (h *sftpHandler) PosixRename(r *sftp.Request) error {
	p, err := h.writePath(r.Filepath)
	if err != nil {
		return err
	}
	return h.sftpError(h.rename(p, r.Target, true))
}

func (h *sftpHandler) setstat(r *sftp.Request, p sitepath.Path) error {
	flags, a := r.AttrFlags(), r.Attributes()
	var mode *fs.FileMode
	var mtime *int64
	if flags.Permissions {
		m := fs.FileMode(a.Mode).Perm()
		mode = &m
	}
	if flags.Acmodtime {
		t := int64(a.Mtime)
		mtime = &t
	}
	h.mu.Lock()
	w := h.writers[p.String()]
	h.mu.Unlock()
	switch {
	case flags.Size && w != nil:
		// scp in SFTP mode writes in place, then cuts the file at its end (fsetstat).
		if a.Size > math.MaxInt64 {
			return sftp.ErrSSHFxFailure
		}
		if err := w.u.truncate(int64(a.Size)); err != nil {
			return err
		}
	case flags.Size:
		st, err := h.s.stat(p)
		if err != nil || st.IsDir() || uint64(st.Size()) != a.Size {
			return sftp.ErrSSHFxOpUnsupported // truncating a file that is not open is not supported
		}
	}
	if w != nil {
		w.setAttrs(mode, mtime)
		return nil
	}
	if mode == nil && mtime == nil {
		return nil
	}
	if p.Rel == "" {
		return nil // the root and projects keep no attributes
	}
	if _, err := h.s.stat(p); err != nil {
		return err
	}
	d, err := h.s.writable(p)
	if err != nil {
		return err
	}
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	return d.work.setAttrs(p.Rel, mode, mtime, 0)
}

func (h *sftpHandler) mkdir(p sitepath.Path) error {
	d, err := h.s.writable(p)
	if err != nil {
		return err
	}
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if p.Rel == "" {
		return nil // a project is a directory already
	}
	if n := d.work.lookup(p.Rel); n != nil {
		return os.ErrExist
	}
	return d.work.mkdir(p.Rel, false)
}

func (h *sftpHandler) remove(p sitepath.Path, dir bool) error {
	if p.Rel == "" {
		return errorf(Refused, "projects are removed with `ssh pgs@HOST rm PROJECT --yes`")
	}
	st, err := h.s.stat(p)
	if err != nil {
		return err
	}
	switch {
	case dir && !st.IsDir():
		return errNotDir
	case !dir && st.IsDir():
		return errIsDir
	}
	d, err := h.s.writable(p)
	if err != nil {
		return err
	}
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	return d.work.remove(p.Rel)
}

// rename moves a file or directory within the account (between projects too); with replace
// an existing file at the target is replaced, as with POSIX rename.
func (h *sftpHandler) rename(from sitepath.Path, target string, replace bool) error {
	to, err := h.writePath(target)
	if err != nil {
		return err
	}
	if from.Rel == "" || to.Rel == "" {
		return errorf(Refused, "projects cannot be renamed; rename files and directories inside them")
	}
	if _, err := h.s.stat(from); err != nil {
		return err
	}
	dFrom, err := h.s.writable(from)
	if err != nil {
		return err
	}
	dTo, err := h.s.writable(to)
	if err != nil {
		return err
	}
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if from.Project == to.Project && (to.Rel == from.Rel || len(to.Rel) > len(from.Rel) && to.Rel[:len(from.Rel)+1] == from.Rel+"/") {
		return errorf(Invalid, "cannot move %s into itself", shown(from.String()))
	}
	if old := dTo.work.lookup(to.Rel); old != nil {
		if !replace || old.isDir() {
			return os.ErrExist
		}
	}
	if err := parentsOK(dTo.work, to.Rel); err != nil {
		return err
	}
	if _, _, err := dTo.work.dirOf(to.Rel, false); err != nil {
		return err
	}
	if dTo != dFrom && h.s.svc.limits.MaxFiles > 0 {
		if n := dFrom.work.lookup(from.Rel); n != nil {
			if files, _ := n.count(); dTo.work.files+files > h.s.svc.limits.MaxFiles {
				return h.s.fail(errorf(Refused, "%s would hold more than %d files (PORTICO_PGS_MAX_FILES); nothing was published",
					to.Project, h.s.svc.limits.MaxFiles))
			}
		}
	}
	if dTo != dFrom {
		// Checked before anything moves: a failed attach would lose what was detached.
		if n := dFrom.work.lookup(from.Rel); n != nil && dTo.work.dirs+n.countDirs() > maxTreeDirs {
			return errTooDeep
		}
	}
	n, err := dFrom.work.detach(from.Rel)
	if err != nil {
		return err
	}
	if old := dTo.work.lookup(to.Rel); old != nil {
		dTo.work.remove(to.Rel)
	}
	return dTo.work.attach(to.Rel, n)
}

// Filelist answers List (a directory's entries), Stat and Readlink.
func (h *sftpHandler) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	p, err := h.path(r.Filepath)
	if err != nil {
		return nil, err
	}
	switch r.Method {
	case "List":
		if h.listings.Add(1) > maxSFTPListings {
			h.listings.Add(-1)
			return nil, h.sftpError(errorf(Refused, "at most %d directory listings may be open at once", maxSFTPListings))
		}
		if err := h.takeHandle(); err != nil {
			h.listings.Add(-1)
			return nil, h.sftpError(err)
		}
		list, err := h.s.readDir(p)
		if err != nil {
			h.handles.Add(-1)
			h.listings.Add(-1)
			return nil, h.sftpError(err)
		}
		return &lister{h: h, list: list, handle: true}, nil
	case "Stat":
		fi, err := h.s.stat(p)
		if err != nil {
			return nil, h.sftpError(err)
		}
		return &lister{list: []fs.FileInfo{fi}}, nil
	case "Readlink":
		return nil, h.sftpError(errorf(Invalid, "sites hold no links"))
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

// lister serves a listing in pages.
type lister struct {
	h      *sftpHandler
	list   []fs.FileInfo
	handle bool
	once   sync.Once
}

func (l *lister) ListAt(out []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l.list)) {
		return 0, io.EOF
	}
	n := copy(out, l.list[off:])
	if off+int64(n) >= int64(len(l.list)) {
		return n, io.EOF
	}
	return n, nil
}

func (l *lister) Close() error {
	if l.handle {
		l.once.Do(func() {
			l.h.handles.Add(-1)
			l.h.listings.Add(-1)
		})
	}
	return nil
}
