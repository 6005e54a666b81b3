//go:build race

package rsync

// raceEnabled is true in race-detector builds, where every real-client run is several times
// slower: the interop tests then cover fewer combinations (the full matrix runs without -race).
const raceEnabled = true
