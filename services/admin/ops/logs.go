package ops

import (
	"context"
	"fmt"

	"github.com/portico-sh/portico/auth"
)

// Access-log limits: DefaultLogLimit when none is asked for, at most MaxLogLimit.
const (
	DefaultLogLimit = 100
	MaxLogLimit     = 10000
)

// Logs returns the account's access log, newest first: at most limit entries (0 means
// DefaultLogLimit), of one service, or of all when service is "".
func (o *Ops) Logs(ctx context.Context, g auth.Grant, service string, limit int) ([]LogEntry, error) {
	if err := o.requireAdmin(g); err != nil {
		return nil, err
	}
	if service != "" && !auth.KnownService(service) {
		return nil, errorf(Invalid, fmt.Sprintf("unknown service %q (one of %s)", service, serviceList()))
	}
	switch {
	case limit == 0:
		limit = DefaultLogLimit
	case limit < 0 || limit > MaxLogLimit:
		return nil, errorf(Invalid, fmt.Sprintf("limit %d is not between 1 and %d", limit, MaxLogLimit))
	}
	if o.cfg.SyncAccessLog != nil {
		if err := o.cfg.SyncAccessLog(ctx); err != nil {
			o.log.WarnContext(ctx, "waiting for the access log to be written", "err", err)
		}
	}
	entries, err := o.store.ListAccess(ctx, g.AccountID, service, limit)
	if err != nil {
		return nil, o.failed(ctx, "read the access log", err)
	}
	out := make([]LogEntry, 0, len(entries))
	for _, e := range entries {
		out = append(out, logView(e))
	}
	return out, nil
}
