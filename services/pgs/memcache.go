package pgs

import (
	"container/list"
	"io"
	"sync"

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

func (c *memCache) get(k memKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*memEntry).data, true
}

func (c *memCache) put(k memKey, data []byte) {
	if int64(len(data)) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[k]; ok {
		return
	}
	c.items[k] = c.lru.PushFront(&memEntry{key: k, data: data})
	c.size += int64(len(data))
	for c.size > c.max {
		el := c.lru.Back()
		e := el.Value.(*memEntry)
		c.lru.Remove(el)
		delete(c.items, e.key)
		c.size -= int64(len(e.data))
	}
}

// memReader is a file held in memory, as a blob.Reader.
type memReader struct{ data []byte }

func (r memReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(r.data)) {
		return 0, io.EOF
	}
	n := copy(p, r.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (r memReader) Size() int64  { return int64(len(r.data)) }
func (r memReader) Close() error { return nil }

// cached opens a blob (enc "") or its compressed copy through the memory cache: open is called
// on a miss, and a small result is read whole and kept.
func (s *Service) cached(k memKey, open func() (blob.Reader, error)) (blob.Reader, error) {
	if data, ok := s.mem.get(k); ok {
		return memReader{data}, nil
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
	s.mem.put(k, data)
	return memReader{data}, nil
}
