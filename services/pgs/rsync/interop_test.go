package rsync

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// interopTree is what the matrix transfers: names whose order differs between protocol 27
// (bytewise) and 29+ (files before directories, directories compared with a trailing "/"), an
// empty file, a compressible and an incompressible file large enough for many blocks.
func interopTree() map[string]string {
	big := randomBytes(1<<20, 42)
	return map[string]string{
		"a":            "file a\n",
		"a.txt":        "a.txt\n",
		"a-b/c":        "in a-b\n",
		"ab/x/y.txt":   "deep\n",
		"dir/file":     strings.Repeat("compressible line\n", 20000),
		"dir/sub/z":    "z\n",
		"dir/empty":    "",
		"big.bin":      string(big),
		"zz/emptydir/": "",
	}
}

// interopChanges turns an interopTree into an older version of itself: the large files differ
// in a few places (so that they travel as deltas), a file is missing and one is extraneous.
func interopOld(tree map[string]string) map[string]string {
	old := map[string]string{}
	for k, v := range tree {
		old[k] = v
	}
	big := []byte(tree["big.bin"])
	big = slices.Concat(big[:1000], []byte("inserted"), big[1000:300_000], big[300_100:])
	copy(big[700_000:], "changed here")
	old["big.bin"] = string(big)
	old["dir/file"] = strings.Replace(tree["dir/file"], "compressible line", "changed line!", 3)
	delete(old, "a.txt")
	old["stale/file"] = "extraneous\n"
	return old
}

// TestInteropMatrix runs the real client at every protocol from 27 to 32 with each checksum
// and each compression it offers, uploading and downloading a tree over an older version of it
// (deltas, a new file, --delete), and checks the result byte for byte and that the deltas
// matched blocks (which needs the block checksums of both sides to agree).
func TestInteropMatrix(t *testing.T) {
	rsyncClient(t)
	choices := [][]string{
		{"-c", "--checksum-choice=xxh128"},
		{"-c", "--checksum-choice=xxh3"},
		{"-c", "--checksum-choice=xxh64"},
		{"-c", "--checksum-choice=md5"},
		{"-c", "--checksum-choice=md4"},
		{"-z"}, // negotiated (zstd from a 3.x client at 30+, zlib below)
		{"-z", "--compress-choice=zstd"},
		{"-z", "--compress-choice=lz4"},
		{"-z", "--compress-choice=zlibx"},
		{"-z", "--compress-choice=zlib"},
		{}, // negotiated checksum, no compression
	}
	tree := interopTree()
	old := interopOld(tree)
	protocols := []int{27, 28, 29, 30, 31, 32}
	if raceEnabled {
		// Under -race: the oldest and newest protocol with every choice.
		protocols = []int{27, 32}
	}
	for _, proto := range protocols {
		for _, choice := range choices {
			args := append([]string{fmt.Sprintf("--protocol=%d", proto), "-rt", "--delete", "--stats"}, choice...)
			name := fmt.Sprintf("%d/%s", proto, strings.Join(choice, " "))
			t.Run("upload/"+name, func(t *testing.T) {
				src, root := t.TempDir(), t.TempDir()
				writeTree(t, src, tree)
				writeTree(t, filepath.Join(root, "site"), old)
				out := upload(t, root, src+"/", "site/", args...)
				diffTrees(t, readTree(t, filepath.Join(root, "site")), tree)
				checkMatched(t, out)
			})
			t.Run("download/"+name, func(t *testing.T) {
				srv, dst := t.TempDir(), t.TempDir()
				writeTree(t, filepath.Join(srv, "site"), tree)
				writeTree(t, dst, old)
				out := download(t, srv, "site/", dst+"/", args...)
				diffTrees(t, readTree(t, dst), tree)
				checkMatched(t, out)
			})
		}
	}
}

// checkMatched fails unless the run matched most of the changed large files' blocks.
func checkMatched(t *testing.T, out string) {
	t.Helper()
	if m := stat(t, out, "Matched data"); m < 900_000 {
		t.Errorf("matched only %d bytes: the block checksums do not agree\n%s", m, out)
	}
}

// TestInteropDefaults runs the real client without any choice at each protocol, with the
// options of a typical publish (-avz --delete) and an unchanged re-upload that must send no
// file data.
func TestInteropDefaults(t *testing.T) {
	tree := interopTree()
	for proto := minProtocol; proto <= maxProtocol; proto++ {
		if raceEnabled && proto != 27 && proto != 30 && proto != 32 {
			continue
		}
		t.Run(fmt.Sprint(proto), func(t *testing.T) {
			src, root := t.TempDir(), t.TempDir()
			writeTree(t, src, tree)
			args := []string{fmt.Sprintf("--protocol=%d", proto), "-avz", "--delete", "--stats"}
			upload(t, root, src+"/", "site/", args...)
			diffTrees(t, readTree(t, filepath.Join(root, "site")), tree)
			out := upload(t, root, src+"/", "site/", args...)
			if n := stat(t, out, "Number of regular files transferred"); n != 0 {
				t.Errorf("unchanged re-upload transferred %d files\n%s", n, out)
			}
			dst := t.TempDir()
			download(t, root, "site/", dst+"/", args...)
			diffTrees(t, readTree(t, dst), tree)
			if err := os.RemoveAll(filepath.Join(src, "dir")); err != nil {
				t.Fatal(err)
			}
			upload(t, root, src+"/", "site/", args...)
			if _, err := os.Stat(filepath.Join(root, "site/dir")); !os.IsNotExist(err) {
				t.Errorf("--delete left site/dir (%v)", err)
			}
		})
	}
}
