package main

import (
	"log/slog"
	"path/filepath"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/services"
	"github.com/portico-sh/portico/services/pgs"
	"github.com/portico-sh/portico/services/pgs/blob"
)

// newSites is the pgs service on store, its blobs under DATA_DIR/blobs. tunnels tells it which
// names live tunnels hold (nil: none); the tuns service asks it ProjectExists in turn.
func newSites(s *settings, store db.Store, public services.Public, limits pgs.Limits, tunnels pgs.Tunnels, log *slog.Logger) (*pgs.Service, error) {
	blobs, err := blob.NewFS(filepath.Join(s.dataDir, "blobs"))
	if err != nil {
		return nil, err
	}
	// Compressed copies of blobs, beside them and counted by no quota.
	encoded, err := blob.NewEncodedFS(filepath.Join(s.dataDir, "blobs-encoded"))
	if err != nil {
		return nil, err
	}
	return pgs.New(pgs.Options{Store: store, Blobs: blobs, Encoded: encoded, Public: public, Limits: limits, Tunnels: tunnels, Logger: log}), nil
}
