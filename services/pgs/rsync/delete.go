package rsync

import (
	"errors"
	"io/fs"
)

// inDeleteScope says whether --delete removes the extraneous entries of directory f: every
// directory of a recursive list, and the top directory otherwise.
func (s *recvSession) inDeleteScope(f *fileEntry) bool {
	return s.single == "" && (s.o.recursive || f.topDir)
}

// deletePass removes the extraneous entries of every directory in scope (--delete-before and
// --delete-after).
func (s *recvSession) deletePass() {
	for _, f := range s.list {
		if !f.dup && f.isDir() && s.inDeleteScope(f) {
			s.deleteIn(f.name, s.fsPath(f))
		}
	}
}

// deleteAllowed is false when the client could not read some of its files: their absence from
// the list would otherwise delete them here.
func (s *recvSession) deleteAllowed() bool {
	if s.ioError == 0 || s.o.ignoreErrors {
		return true
	}
	s.mu.Lock()
	first := !s.ioErrorNoted
	s.ioErrorNoted = true
	s.mu.Unlock()
	if first {
		s.mux.message(msgInfo, "IO error encountered -- skipping file deletion\n")
	}
	return false
}

// deleteIn removes the entries of directory name (at target in the FS) that the list does not
// have, except those the client's filter rules exclude.
func (s *recvSession) deleteIn(name, target string) {
	if !s.deleteAllowed() {
		return
	}
	// Never list through a symbolic link: its target's entries are not this directory's.
	if st, err := s.fsys.Lstat(target); err != nil || !st.IsDir() {
		return
	}
	ents, err := s.fsys.ReadDir(target)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.fileError("delete: cannot list %q: %v", name, err)
		}
		return
	}
	for _, e := range ents {
		rel := e.Name()
		if name != "." {
			rel = name + "/" + rel
		}
		if _, ok := s.names[rel]; ok {
			continue
		}
		if s.filters.Excluded(rel, e.IsDir()) {
			continue
		}
		s.removeTree(rel, target+"/"+e.Name(), true)
	}
}

// removeTree removes an entry, a directory with its contents. Excluded entries inside a
// directory are kept, and so is the directory then. With report, each deletion is announced
// to the client with -v. It returns whether the entry is gone (or would be, in a dry run).
func (s *recvSession) removeTree(rel, target string, report bool) bool {
	st, err := s.fsys.Lstat(target)
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	isDir := st.IsDir()
	if isDir {
		ents, err := s.fsys.ReadDir(target)
		if err != nil {
			s.fileError("delete: cannot list %q: %v", rel, err)
			return false
		}
		empty := true
		for _, e := range ents {
			crel := rel + "/" + e.Name()
			if s.filters.Excluded(crel, e.IsDir()) || !s.removeTree(crel, target+"/"+e.Name(), report) {
				empty = false
			}
		}
		if !empty {
			if report {
				s.mux.message(msgWarning, "cannot delete non-empty directory: "+rel+"\n")
			}
			return false
		}
	}
	if s.o.maxDelete < 0 || (s.o.maxDelete > 0 && s.deleted >= s.o.maxDelete) {
		s.delLimitN++
		return false
	}
	if report && s.o.verbose > 0 {
		if isDir {
			s.info("deleting %s/\n", rel)
		} else {
			s.info("deleting %s\n", rel)
		}
	}
	s.deleted++
	if isDir {
		s.deletedDirs++
	}
	if s.o.dryRun {
		return true
	}
	if err := s.fsys.Remove(target); err != nil {
		s.fileError("delete %q failed: %v", rel, err)
		return false
	}
	return true
}
