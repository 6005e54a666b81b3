//go:build amd64 && !purego

package delta

import "golang.org/x/sys/cpu"

// useAVX2 says whether Rolling.Reset adds up whole 32-byte chunks with AVX2 (a variable so that
// tests can compare both ways).
var useAVX2 = cpu.X86.HasAVX2

// sum1AVX2 is implemented in sum1_amd64.s.
//
//go:noescape
func sum1AVX2(b []byte) (s1, ps, w uint32)

// sum1Chunks adds the leading 32-byte chunks of b to the weak checksum (s1, s2) of nothing,
// with AVX2 when the CPU has it, and returns the bytes it did not take.
func sum1Chunks(b []byte) (s1, s2 uint32, rest []byte) {
	m := len(b) / 32
	if !useAVX2 || m < 2 {
		return 0, 0, b
	}
	u, ps, w := sum1AVX2(b[:m*32])
	// The assembly took each byte c as c+128: chunk j's sum is 32·128 more than the signed one,
	// its weighted sum 528·128 more (528 = 32+31+…+1), and ps holds Σj of the sums before
	// chunk j, 32·128·j more each.
	mm := uint32(m)
	pairs := uint32(uint64(m) * uint64(m-1) / 2)
	s1 = u - mm*32*128
	s2 = 32*(ps-pairs*32*128) + w - mm*528*128
	return s1, s2, b[m*32:]
}
