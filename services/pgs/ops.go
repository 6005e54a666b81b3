package pgs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/portico-sh/portico/auth"
	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services/pgs/sitepath"
)

// The operations on an account's sites, shared by the pgs commands and the admin TUI. Each
// takes the connection's Grant and acts on its account only.

// ProjectView is a project as `ls --json` shows it: what its site serves.
type ProjectView struct {
	Project     string    `json:"project"`
	URL         string    `json:"url"`
	LiveDeploy  *string   `json:"live_deploy"` // "d3", or null when nothing is live
	Files       int64     `json:"files"`
	Bytes       int64     `json:"bytes"`
	UpdatedAt   time.Time `json:"updated_at"`
	UpdatedBy   string    `json:"updated_by"`
	LinkTo      *string   `json:"link_to"`
	ACL         string    `json:"acl"`                    // public, accounts or password
	ACLAccounts []string  `json:"acl_accounts,omitempty"` // with accounts: who besides the owner
}

// DeployView is a deploy as `deploys --json` shows it.
type DeployView struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	Identity  string    `json:"identity"`
	Method    string    `json:"method"`
	Serial    *uint64   `json:"serial"`
	Tool      string    `json:"tool"`
	Added     int64     `json:"added"`
	Changed   int64     `json:"changed"`
	Removed   int64     `json:"removed"`
	Files     int64     `json:"files"`
	Bytes     int64     `json:"bytes"`
	Live      bool      `json:"live"`
}

// FileView is a file of a live deploy as `ls PROJECT --json` shows it.
type FileView struct {
	Path     string    `json:"path"`
	Size     int64     `json:"size"`
	Mode     string    `json:"mode"`
	Modified time.Time `json:"modified"`
	SHA256   string    `json:"sha256"`
}

// StatsView is `stats --json`.
type StatsView struct {
	Bytes      int64  `json:"bytes"`
	QuotaBytes *int64 `json:"quota_bytes"` // null: no quota
	Files      int64  `json:"files"`
	Projects   int64  `json:"projects"`
}

func deployID(seq int64) string { return "d" + strconv.FormatInt(seq, 10) }

// parseDeployID reads "d3" or "3".
func parseDeployID(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimPrefix(s, "d"), 10, 64)
	if err != nil || n < 1 {
		return 0, errorf(Invalid, "deploy %q: want an id such as d3", s)
	}
	return n, nil
}

func checkProject(name string) error {
	if err := sitepath.CheckProject(name); err != nil {
		return userError(err)
	}
	return nil
}

// Projects lists the account's projects.
func (s *Service) Projects(ctx context.Context, g auth.Grant) ([]ProjectView, error) {
	list, err := s.store.PGSProjects(ctx, g.AccountID)
	if err != nil {
		return nil, userError(err)
	}
	byName := map[string]db.PGSProject{}
	for _, p := range list {
		byName[p.Name] = p
	}
	// ACLs keep account ids: the names of those that still exist (deleted ones let nobody in,
	// and are not shown).
	var listed []int64
	for _, p := range list {
		listed = append(listed, p.ACL.AccountIDs...)
	}
	names, err := s.store.AccountNames(ctx, listed)
	if err != nil {
		return nil, userError(err)
	}
	out := make([]ProjectView, 0, len(list))
	for _, p := range list {
		v := ProjectView{Project: p.Name, URL: s.public.SiteURL(g.Account, p.Name), Files: p.Files, Bytes: p.Bytes,
			UpdatedAt: p.UpdatedAt, UpdatedBy: p.UpdatedBy, ACL: p.ACL.Kind}
		for _, id := range p.ACL.AccountIDs {
			if name, ok := names[id]; ok {
				v.ACLAccounts = append(v.ACLAccounts, name)
			}
		}
		if v.ACL == "" {
			v.ACL = db.PGSPublic
		}
		served := p
		if p.LinkTo != "" {
			link := p.LinkTo
			v.LinkTo = &link
			served = byName[p.LinkTo]
			v.Files, v.Bytes = served.Files, served.Bytes
		}
		if served.LiveSeq > 0 {
			id := deployID(served.LiveSeq)
			v.LiveDeploy = &id
		}
		out = append(out, v)
	}
	return out, nil
}

// project returns a project of the account, or a NotFound error naming it.
func (s *Service) project(ctx context.Context, g auth.Grant, name string) (db.PGSProject, error) {
	if err := checkProject(name); err != nil {
		return db.PGSProject{}, err
	}
	p, err := s.store.PGSProject(ctx, g.AccountID, name)
	if errors.Is(err, db.ErrNotFound) {
		return p, errorf(NotFound, "no project %s", name)
	}
	if err != nil {
		return p, userError(err)
	}
	return p, nil
}

// Deploys lists a project's kept deploys, newest first.
func (s *Service) Deploys(ctx context.Context, g auth.Grant, project string) ([]DeployView, error) {
	p, err := s.project(ctx, g, project)
	if err != nil {
		return nil, err
	}
	list, err := s.store.PGSDeploys(ctx, p.ID)
	if err != nil {
		return nil, userError(err)
	}
	out := make([]DeployView, 0, len(list))
	for _, d := range list {
		out = append(out, DeployView{ID: deployID(d.Seq), CreatedAt: d.CreatedAt, Identity: d.Identity, Method: d.Method,
			Serial: d.Serial, Tool: d.Tool, Added: d.Added, Changed: d.Changed, Removed: d.Removed, Files: d.Files,
			Bytes: d.Bytes, Live: d.ID == p.LiveDeployID})
	}
	return out, nil
}

// Files lists the files of a project's live deploy under path ("" for all).
func (s *Service) Files(ctx context.Context, g auth.Grant, project, path string) ([]FileView, error) {
	path = strings.Trim(path, "/")
	if err := sitepath.CheckRel(path); err != nil {
		return nil, userError(err)
	}
	if _, err := s.project(ctx, g, project); err != nil {
		return nil, err
	}
	live, found, err := s.sites.liveOf(ctx, g.Account, project, false)
	if err != nil {
		return nil, userError(err)
	}
	t := newTree(time.Time{})
	if found {
		if t, err = s.sites.tree(ctx, live.DeployID); err != nil {
			return nil, userError(err)
		}
	}
	n := t.lookup(path)
	if n == nil {
		return nil, errorf(NotFound, "no file or directory %s/%s in the live deploy", project, shown(path))
	}
	out := []FileView{}
	t.walk(path, func(p string, f File) {
		out = append(out, FileView{Path: p, Size: f.Size, Mode: fmt.Sprintf("%04o", uint32(f.Mode.Perm())),
			Modified: time.Unix(f.MTime, 0).UTC(), SHA256: f.Hash.String()})
	})
	return out, nil
}

// Stats is what the account stores against its quota.
func (s *Service) Stats(ctx context.Context, g auth.Grant) (StatsView, error) {
	u, err := s.store.PGSUsage(ctx, g.AccountID)
	if err != nil {
		return StatsView{}, userError(err)
	}
	v := StatsView{Bytes: u.Bytes, Files: u.Blobs, Projects: u.Projects}
	if q := s.limits.Quota; q > 0 {
		v.QuotaBytes = &q
	}
	return v, nil
}

// locked runs fn holding the project's deploy lock (waiting for a deploy under way).
func (s *Service) locked(ctx context.Context, g auth.Grant, project string, notice io.Writer, fn func(holder string) error) error {
	holder := newHolder()
	if err := s.acquire(ctx, g.AccountID, project, holder, notice); err != nil {
		return userError(err)
	}
	defer s.release(g.AccountID, project, holder)
	err := fn(holder)
	if err == nil {
		s.sites.forget(g.Account, project)
	}
	return err
}

// Rollback makes a kept deploy live: to, or the newest one older than the live one.
func (s *Service) Rollback(ctx context.Context, g auth.Grant, project, to string, notice io.Writer) (string, error) {
	p, err := s.project(ctx, g, project)
	if err != nil {
		return "", err
	}
	if p.LinkTo != "" {
		return "", errorf(Refused, "%s is a link to %s: roll back %s instead", project, p.LinkTo, p.LinkTo)
	}
	var seq int64
	if to != "" {
		if seq, err = parseDeployID(to); err != nil {
			return "", err
		}
	}
	err = s.locked(ctx, g, project, notice, func(holder string) error {
		if seq == 0 {
			// The deploy before the live one, as the lock sees it.
			p, err := s.store.PGSProject(ctx, g.AccountID, project)
			if err != nil {
				return userError(err)
			}
			deploys, err := s.store.PGSDeploys(ctx, p.ID)
			if err != nil {
				return userError(err)
			}
			for _, d := range deploys {
				if d.Seq < p.LiveSeq {
					seq = d.Seq
					break
				}
			}
			if seq == 0 {
				return errorf(NotFound, "%s has no kept deploy older than the live one (d%d)", project, p.LiveSeq)
			}
		}
		err := s.store.SetPGSLive(ctx, g.AccountID, project, holder, seq, g.Identity)
		if errors.Is(err, db.ErrNotFound) {
			return errorf(NotFound, "%s has no kept deploy %s", project, deployID(seq))
		}
		return userError(err)
	})
	if err != nil {
		return "", err
	}
	s.log.Info("pgs: rollback", "account", g.Account, "project", project, "deploy", seq, "identity", g.Identity)
	return deployID(seq), nil
}

// Link makes project serve target's live deploy.
func (s *Service) Link(ctx context.Context, g auth.Grant, project, target string, notice io.Writer) error {
	if err := checkProject(project); err != nil {
		return err
	}
	if err := checkProject(target); err != nil {
		return err
	}
	return s.locked(ctx, g, project, notice, func(holder string) error {
		// Asked once the lock is held: from then on the tuns side sees the name as taken
		// (ProjectExists counts locks), so a tunnel cannot bind it between the two checks.
		if _, err := s.store.PGSProject(ctx, g.AccountID, project); errors.Is(err, db.ErrNotFound) &&
			s.tunnels != nil && s.tunnels.TunnelLive(g.Account, project) {
			return errorf(Refused, "%s is the name of a live tunnel of %s: a project cannot take it", project, g.Account)
		}
		err := s.store.LinkPGSProject(ctx, g.AccountID, project, target, holder, g.Identity, maxProjects)
		switch {
		case errors.Is(err, db.ErrTooManyProjects):
			return tooManyProjects()
		case errors.Is(err, db.ErrNotFound):
			return errorf(NotFound, "no project %s to link to", target)
		case errors.Is(err, db.ErrLinkChain):
			return errorf(Refused, "links cannot be chained: %s must not be a link, and no project may link to %s", target, project)
		}
		return userError(err)
	})
}

// Unlink makes project serve its own deploys again.
func (s *Service) Unlink(ctx context.Context, g auth.Grant, project string, notice io.Writer) error {
	if _, err := s.project(ctx, g, project); err != nil {
		return err
	}
	return s.locked(ctx, g, project, notice, func(holder string) error {
		err := s.store.UnlinkPGSProject(ctx, g.AccountID, project, holder, g.Identity)
		if errors.Is(err, db.ErrNotFound) {
			return errorf(NotFound, "%s is not a link", project)
		}
		return userError(err)
	})
}

// Remove deletes a project with its deploys, and the blobs only it used.
func (s *Service) Remove(ctx context.Context, g auth.Grant, project string, notice io.Writer) error {
	if _, err := s.project(ctx, g, project); err != nil {
		return err
	}
	err := s.locked(ctx, g, project, notice, func(holder string) error {
		err := s.store.DeletePGSProject(ctx, g.AccountID, project, holder)
		if errors.Is(err, db.ErrLinkedTo) {
			var linkers []string
			list, _ := s.store.PGSProjects(ctx, g.AccountID)
			for _, p := range list {
				if p.LinkTo == project {
					linkers = append(linkers, p.Name)
				}
			}
			return errorf(Refused, "%s is linked to by %s: unlink or remove them first", project, strings.Join(linkers, ", "))
		}
		return userError(err)
	})
	if err != nil {
		return err
	}
	s.log.Info("pgs: project removed", "account", g.Account, "project", project, "identity", g.Identity)
	s.collect(ctx, g.AccountID, false)
	return nil
}
