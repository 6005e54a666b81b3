package pgs

import (
	"container/list"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-sh/portico/services/pgs/blob"
)

// Files up to memFileMax bytes (and their compressed copies) are kept in memory once served,
// up to memCacheBytes in all, least recently used first out: a small file then costs no file
// system calls per request.
const (
	memFileMax    = 256 << 10
	memCacheBytes = 128 << 20
)

type memKey struct {
	account int64
	hash    blob.Hash
	enc     string // "" for the file itself
}

type memEntry struct {
	key  memKey
	data []byte

	// The header values of a plain GET of it, made once: net/http only reads a header's
	// values, so that these slices are shared by every response (never changed in place).
	etag    []string // its ETag: the blob's hash, and its encoding for a compressed copy
	length  []string // its Content-Length
	lastMod atomic.Pointer[lastModified]
}

// lastModified is the Last-Modified value of the last file served from an entry (files with
// the same contents may differ in their times).
type lastModified struct {
	mtime int64
	value []string
}

func newMemEntry(k memKey, data []byte) *memEntry {
	etag := `"` + k.hash.String() + `"`
	if k.enc != "" {
		etag = `"` + k.hash.String() + "-" + k.enc + `"`
	}
	return &memEntry{key: k, data: data, etag: []string{etag}, length: []string{strconv.Itoa(len(data))}}
}

// lastModifiedOf is the Last-Modified value of mtime (Unix seconds).
func (e *memEntry) lastModifiedOf(mtime int64) []string {
	if lm := e.lastMod.Load(); lm != nil && lm.mtime == mtime {
		return lm.value
	}
	lm := &lastModified{mtime: mtime, value: []string{time.Unix(mtime, 0).UTC().Format(http.TimeFormat)}}
	e.lastMod.Store(lm)
	return lm.value
}

// memCache holds the contents of small files in memory.
type memCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	items map[memKey]*list.Element
	lru   list.List
}

func newMemCache(max int64) *memCache {
	return &memCache{max: max, items: map[memKey]*list.Element{}}
}

func (c *memCache) get(k memKey) (*memEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*memEntry), true
}

// put keeps data as k's contents and returns its entry (the one kept already, if any).
func (c *memCache) put(k memKey, data []byte) *memEntry {
	e := newMemEntry(k, data)
	if int64(len(data)) > c.max {
		return e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		return el.Value.(*memEntry)
	}
	c.items[k] = c.lru.PushFront(e)
	c.size += int64(len(data))
	for c.size > c.max {
		el := c.lru.Back()
		old := el.Value.(*memEntry)
		c.lru.Remove(el)
		delete(c.items, old.key)
		c.size -= int64(len(old.data))
	}
	return e
}

// memReader is a file held in memory, as a blob.Reader. It is one pointer, so that a
// blob.Reader holding it needs no allocation.
type memReader struct {
	e *memEntry
}

func (r memReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(r.e.data)) {
		return 0, io.EOF
	}
	n := copy(p, r.e.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (r memReader) Size() int64  { return int64(len(r.e.data)) }
func (r memReader) Close() error { return nil }

// cached opens a blob (enc "") or its compressed copy through the memory cache: open is called
// on a miss, and a small result is read whole and kept.
func (s *Service) cached(k memKey, open func() (blob.Reader, error)) (blob.Reader, error) {
	if e, ok := s.mem.get(k); ok {
		return memReader{e}, nil
	}
	rd, err := open()
	if err != nil || rd.Size() > memFileMax {
		return rd, err
	}
	defer rd.Close()
	data := make([]byte, rd.Size())
	if _, err := rd.ReadAt(data, 0); err != nil && err != io.EOF {
		return nil, err
	}
	e := s.mem.put(k, data)
	return memReader{e}, nil
}
