package pgs

import (
	"slices"
	"strconv"
	"strings"
)

// Range requests. http.ServeContent sends every range a client asks for, each as a part of a
// multipart/byteranges body, as long as their lengths add up to no more than the file: a
// request for N one-byte ranges of an N-byte file gets some 150 bytes of part headers for each
// byte (a 1 MiB header line of "0-0," makes a response hundreds of times the file), and two
// overlapping ranges that add up to more than the file get the whole file with status 200.
// RFC 9110 (section 14.2 and 15.3.7.2) lets a server coalesce ranges that overlap or are
// separated by a gap smaller than the overhead of a part, in any order; so the ranges are
// sorted and merged here before ServeContent sees them. A response then carries each byte of
// the file at most once and a part per at least rangeGap bytes: never much more than the file
// itself, whatever the client asked for. nginx sends what was asked, up to the same sum rule.

// rangeGap is the gap below which two ranges are merged: about the size of a part's headers
// (boundary, Content-Type, Content-Range).
const rangeGap = 160

// maxRangeParts bounds the parts of one response once merged; a request for more distinct
// ranges is answered with the whole file (status 200), as RFC 9110 allows a server to ignore a
// Range header. (Apache does so past 200 ranges; after merging, no media player or PDF viewer
// comes near this.)
const maxRangeParts = 1000

// byteRange is [start, end] inclusive.
type byteRange struct{ start, end int64 }

// coalesceRange rewrites a Range header value for a file of size bytes: its ranges sorted and
// merged where they overlap or nearly touch. ok is false when the header is not one this code
// reads (another unit, a syntax error, nothing satisfiable): ServeContent then answers it as
// before. ignore is true when even merged there are too many parts: serve the whole file.
func coalesceRange(h string, size int64) (out string, ignore, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || size <= 0 {
		return "", false, false
	}
	var rs []byteRange
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		first, last, found := strings.Cut(part, "-")
		if !found {
			return "", false, false
		}
		first, last = strings.TrimSpace(first), strings.TrimSpace(last)
		var r byteRange
		if first == "" {
			n, err := strconv.ParseInt(last, 10, 64)
			if err != nil || n < 0 || last[0] == '+' {
				return "", false, false
			}
			if n == 0 {
				continue // an empty suffix: nothing to send
			}
			r = byteRange{max(size-n, 0), size - 1}
		} else {
			s, err := strconv.ParseInt(first, 10, 64)
			if err != nil || s < 0 || first[0] == '+' {
				return "", false, false
			}
			e := size - 1
			if last != "" {
				if e, err = strconv.ParseInt(last, 10, 64); err != nil || e < s || last[0] == '+' {
					return "", false, false
				}
			}
			if s >= size {
				continue // not satisfiable; another range may be
			}
			r = byteRange{s, min(e, size-1)}
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return "", false, false
	}
	slices.SortFunc(rs, func(a, b byteRange) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
	merged := rs[:1]
	for _, r := range rs[1:] {
		last := &merged[len(merged)-1]
		if r.start <= last.end+rangeGap {
			last.end = max(last.end, r.end)
			continue
		}
		merged = append(merged, r)
	}
	if len(merged) > maxRangeParts {
		return "", true, true
	}
	var b strings.Builder
	b.WriteString("bytes=")
	for i, r := range merged {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(r.start, 10))
		b.WriteByte('-')
		b.WriteString(strconv.FormatInt(r.end, 10))
	}
	return b.String(), false, true
}
