package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
)

// Hash is the SHA-256 of a blob's content.
type Hash [sha256.Size]byte

// String is the hash in lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash reads a hash written by String.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("blob hash %q: want %d hex digits", s, 2*len(h))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("blob hash %q: %w", s, err)
	}
	return h, nil
}

// Ref names one blob: the account whose namespace holds it and its content hash.
type Ref struct {
	Account int64
	Hash    Hash
}

// Key is the blob's object name in any store: "ACCOUNT/HH/HASH" (HH: the hash's first byte).
func (r Ref) Key() string {
	s := r.Hash.String()
	return strconv.FormatInt(r.Account, 10) + "/" + s[:2] + "/" + s
}

// Store keeps blobs by content hash. A blob is written once (Create, then Commit under the hash
// of what was written) and never changed; the same hash always means the same bytes.
type Store interface {
	// Create starts a new blob; its data is held apart until Commit.
	Create(ctx context.Context) (Writer, error)
	// Open opens a committed blob for reading at any offset.
	Open(ctx context.Context, r Ref) (Reader, error)
	// Stat returns a committed blob's size; a missing blob's error wraps fs.ErrNotExist.
	Stat(ctx context.Context, r Ref) (int64, error)
	// Delete removes a blob; deleting a missing blob is not an error.
	Delete(ctx context.Context, r Ref) error
	// Sync makes every blob committed so far durable (it survives a crash of the machine).
	Sync(ctx context.Context) error
}

// Writer is a blob being written, in order (Write) or at offsets (WriteAt, as SFTP clients
// write; calls may come from several goroutines at once).
type Writer interface {
	io.Writer
	io.WriterAt
	// Truncate sets the size of the data before Sum: it cuts it, or extends it with zeros.
	Truncate(size int64) error
	// Sum ends the writing and returns the SHA-256 and size of the data. From then on the data
	// can be read (ReadAt) and committed; writes fail.
	Sum() (Hash, int64, error)
	// ReadAt reads the data after Sum.
	io.ReaderAt
	// Commit stores the data as blob r, whose hash must be the one Sum returned. If the blob
	// exists already (the same bytes), the data is dropped. The writer can still be read
	// until Close.
	Commit(ctx context.Context, r Ref) error
	// Close releases the writer; without Commit the data is discarded.
	Close() error
}

// Reader reads a committed blob.
type Reader interface {
	io.ReaderAt
	io.Closer
	Size() int64
}
