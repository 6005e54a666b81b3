//go:build !amd64 || purego

package delta

// useAVX2 is false where there is no assembly.
var useAVX2 = false

// sum1Chunks takes nothing: the portable loop does it all.
func sum1Chunks(b []byte) (s1, s2 uint32, rest []byte) { return 0, 0, b }
