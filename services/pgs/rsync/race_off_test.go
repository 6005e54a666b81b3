//go:build !race

package rsync

const raceEnabled = false
