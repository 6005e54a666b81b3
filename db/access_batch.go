package db

import (
	"context"
	"time"
)

// AccessBatches writes access-log entries and key use times together, in one transaction: the
// gateway's writer, which records each connection as it authenticates, batches them so that a
// busy server does not pay one commit per connection.
type AccessBatches interface {
	// AppendAccessBatch appends the entries and sets the last-use time of each key in touched,
	// all or nothing. An entry whose account was deleted meanwhile keeps its account's name
	// but no account id; a key removed meanwhile is skipped.
	AppendAccessBatch(ctx context.Context, entries []AccessEntry, touched map[int64]time.Time) error
}
