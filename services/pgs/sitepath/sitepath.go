package sitepath

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits on a path below a project.
const (
	// MaxSegment is the longest name of one file or directory, in bytes.
	MaxSegment = 255
	// MaxPath is the longest path below a project, in bytes.
	MaxPath = 1024
	// MaxProject is the longest project name.
	MaxProject = 32
	// MaxDepth is the most directories a path below a project may go through (a path of
	// MaxPath bytes has at most MaxPath/2 segments anyway; this keeps tree walks shallow).
	MaxDepth = 128
)

// Error is a refused path: the path as sent and why.
type Error struct {
	Path   string
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("path %q: %s", e.Path, e.Reason) }

func refuse(p, format string, args ...any) error {
	return &Error{Path: p, Reason: fmt.Sprintf(format, args...)}
}

// CheckProject checks a project name: one DNS label of lower-case letters, digits and inner
// hyphens, at most 32 characters (^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$).
func CheckProject(name string) error {
	if name == "" {
		return &Error{Path: name, Reason: "a project name is required"}
	}
	if len(name) > MaxProject {
		return refuse(name, "a project name has at most %d characters", MaxProject)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(name)-1:
		default:
			return refuse(name, "a project name is lower-case letters, digits and inner hyphens (a DNS label)")
		}
	}
	return nil
}

// CheckRel checks a path below a project: segments separated by single slashes, each non-empty,
// not "." or "..", at most MaxSegment bytes; valid UTF-8 without NUL; at most MaxPath bytes and
// MaxDepth segments. The empty path is the project's root.
func CheckRel(rel string) error {
	if rel == "" {
		return nil
	}
	if len(rel) > MaxPath {
		return refuse(rel, "longer than %d bytes", MaxPath)
	}
	if !utf8.ValidString(rel) {
		return refuse(rel, "not valid UTF-8")
	}
	if strings.IndexByte(rel, 0) >= 0 {
		return refuse(rel, "contains a NUL byte")
	}
	depth := 0
	for seg := range strings.SplitSeq(rel, "/") {
		switch {
		case seg == "":
			return refuse(rel, "empty path segment (a leading, doubled or trailing slash)")
		case seg == "." || seg == "..":
			return refuse(rel, "%q segments are not allowed", seg)
		case len(seg) > MaxSegment:
			return refuse(rel, "a segment is longer than %d bytes", MaxSegment)
		}
		if depth++; depth > MaxDepth {
			return refuse(rel, "deeper than %d segments", MaxDepth)
		}
	}
	return nil
}

// Path is a checked path inside an account: the project and the path below it ("" for the
// project itself). The zero Path is the account's root, above every project.
type Path struct {
	Project string
	Rel     string
}

// IsRoot reports whether p is the account's root.
func (p Path) IsRoot() bool { return p.Project == "" }

// String is p as a slash-separated path relative to the account's root: "blog/a/b.html",
// "blog", or "." for the root.
func (p Path) String() string {
	switch {
	case p.Project == "":
		return "."
	case p.Rel == "":
		return p.Project
	}
	return p.Project + "/" + p.Rel
}

// Join returns the path of name (a relative path, checked) below p. p must not be the root.
func (p Path) Join(name string) (Path, error) {
	if p.IsRoot() {
		return Parse(name)
	}
	rel := name
	if p.Rel != "" && name != "" {
		rel = p.Rel + "/" + name
	} else if p.Rel != "" {
		rel = p.Rel
	}
	if err := CheckRel(rel); err != nil {
		return Path{}, err
	}
	return Path{Project: p.Project, Rel: rel}, nil
}

// Dir is the directory holding p (the project's root for a top-level file). Dir of a project
// or of the root is the root.
func (p Path) Dir() Path {
	if p.Rel == "" {
		return Path{}
	}
	i := strings.LastIndexByte(p.Rel, '/')
	if i < 0 {
		return Path{Project: p.Project}
	}
	return Path{Project: p.Project, Rel: p.Rel[:i]}
}

// Base is the last segment of p: the file's name, the project's name, or "." for the root.
func (p Path) Base() string {
	switch {
	case p.Project == "":
		return "."
	case p.Rel == "":
		return p.Project
	}
	return p.Rel[strings.LastIndexByte(p.Rel, '/')+1:]
}

// Parse checks a path relative to the account's root as a client sends it: "/blog/a/b.html",
// "blog/", "/" or "" (the root). Leading slashes are dropped, as is one trailing slash; "."
// alone means the root. Everything else must pass CheckProject and CheckRel: ".." is refused,
// never resolved.
func Parse(p string) (Path, error) {
	s := strings.TrimLeft(p, "/")
	s = strings.TrimSuffix(s, "/")
	if s == "" || s == "." {
		if strings.IndexByte(p, 0) >= 0 {
			return Path{}, refuse(p, "contains a NUL byte")
		}
		return Path{}, nil
	}
	project, rel, found := strings.Cut(s, "/")
	if project == "." || project == ".." {
		return Path{}, refuse(p, "%q segments are not allowed", project)
	}
	if err := CheckProject(project); err != nil {
		return Path{}, refuse(p, "%s", err.(*Error).Reason)
	}
	if found {
		if rel == "" {
			return Path{}, refuse(p, "empty path segment (a doubled slash)")
		}
		if err := CheckRel(rel); err != nil {
			return Path{}, refuse(p, "%s", err.(*Error).Reason)
		}
	}
	return Path{Project: project, Rel: rel}, nil
}

// Hidden reports whether a path below a project is not served over HTTP: a segment starting
// with "." outside "/.well-known/", or the site rule files _redirects and _headers at the root.
func Hidden(rel string) bool {
	switch rel {
	case "_redirects", "_headers":
		return true
	case ".well-known":
		return false
	}
	if strings.HasPrefix(rel, ".well-known/") {
		rel = rel[len(".well-known/"):]
	}
	for seg := range strings.SplitSeq(rel, "/") {
		if strings.HasPrefix(seg, ".") {
			return true
		}
	}
	return false
}
