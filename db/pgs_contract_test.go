package db_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portico-sh/portico/db"
	"github.com/portico-sh/portico/db/dbtest"
)

// The pgs store contract, on each store implementation.

func TestSQLitePGS(t *testing.T) {
	t.Parallel()
	runPGSContract(t, dbtest.SQLite)
}

func TestPostgresPGS(t *testing.T) {
	t.Parallel()
	runPGSContract(t, dbtest.Postgres)
}

func runPGSContract(t *testing.T, open func(testing.TB) db.Store) {
	tests := []struct {
		name string
		run  func(*testing.T, db.Store)
	}{
		{"PublishAndList", testPGSPublishAndList},
		{"Locks", testPGSLocks},
		{"ConcurrentLocks", testPGSConcurrentLocks},
		{"PublishChecks", testPGSPublishChecks},
		{"Rollback", testPGSRollback},
		{"Links", testPGSLinks},
		{"DeleteAndCollect", testPGSDeleteAndCollect},
		{"CollectWaitsForDeploys", testPGSCollectWaitsForDeploys},
		{"Accounts", testPGSAccounts},
		{"AccountDeleted", testPGSAccountDeleted},
		{"MaxProjects", testPGSMaxProjects},
		{"MaxKeptFiles", testPGSMaxKeptFiles},
		{"GarbageAccountsRotate", testPGSGarbageAccountsRotate},
		{"PublishWhileRenewing", testPGSPublishWhileRenewing},
		{"ACL", testPGSACL},
		{"MTimeNanoseconds", testPGSMTimeNanoseconds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, open(t))
		})
	}
}

func blobOf(content string) db.PGSBlob {
	h := sha256.Sum256([]byte(content))
	return db.PGSBlob{Hash: hex.EncodeToString(h[:]), Size: int64(len(content))}
}

func fileOf(path, content string) db.PGSFile {
	b := blobOf(content)
	return db.PGSFile{Path: path, Hash: b.Hash, Size: b.Size, Mode: 0o644, MTime: 1700000000, MTimeNsec: 123_456_789}
}

// testPGSMTimeNanoseconds: a file keeps the nanoseconds of its modification time, from none
// to the largest, before and after 1970.
func testPGSMTimeNanoseconds(t *testing.T, s db.Store) {
	a, _ := createAccount(t, s, "alice")
	lock(t, s, a.ID, "blog", "h1")
	want := []db.PGSFile{fileOf("a", "1"), fileOf("b", "2"), fileOf("c", "3"), fileOf("d", "4")}
	want[0].MTimeNsec = 0
	want[1].MTimeNsec = 1
	want[2].MTimeNsec = 999_999_999
	want[3].MTime, want[3].MTimeNsec = -5, 500_000_000
	record(t, s, a.ID, "1", "2", "3", "4")
	d, err := s.PublishPGSDeploy(ctx, db.PGSPublish{AccountID: a.ID, Project: "blog", Holder: "h1", Keep: 10,
		Files: want, Deploy: db.PGSDeploy{Identity: "alice", Method: "key", Tool: "rsync", Added: 4, Files: 4}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.PGSFiles(ctx, d.ID)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("PGSFiles = %+v, %v; want %+v", got, err, want)
	}
}

const ttl = time.Minute

func lock(t *testing.T, s db.Store, accountID int64, project, holder string) {
	t.Helper()
	ok, err := s.LockPGSProject(ctx, accountID, project, holder, ttl)
	if err != nil || !ok {
		t.Fatalf("LockPGSProject(%q, %q) = %v, %v", project, holder, ok, err)
	}
}

func record(t *testing.T, s db.Store, accountID int64, contents ...string) int64 {
	t.Helper()
	var blobs []db.PGSBlob
	for _, c := range contents {
		blobs = append(blobs, blobOf(c))
	}
	total, err := s.RecordPGSBlobs(ctx, accountID, blobs)
	if err != nil {
		t.Fatalf("RecordPGSBlobs: %v", err)
	}
	return total
}

// publish records the files' blobs and publishes them (the holder must hold the lock).
func publish(t *testing.T, s db.Store, accountID int64, project, holder string, keep int, files map[string]string) db.PGSDeploy {
	t.Helper()
	var list []db.PGSFile
	var contents []string
	for p, c := range files {
		list = append(list, fileOf(p, c))
		contents = append(contents, c)
	}
	record(t, s, accountID, contents...)
	d, err := s.PublishPGSDeploy(ctx, db.PGSPublish{
		AccountID: accountID, Project: project, Holder: holder, Keep: keep, Files: list,
		Deploy: db.PGSDeploy{Identity: "ci@run-42", Method: "cert", Serial: ptr(uint64(42)), Tool: "rsync",
			Added: int64(len(list)), Files: int64(len(list))},
	})
	if err != nil {
		t.Fatalf("PublishPGSDeploy(%q): %v", project, err)
	}
	return d
}

func paths(files []db.PGSFile) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	return out
}

func testPGSPublishAndList(t *testing.T, s db.Store) {
	a, _ := createAccount(t, s, "alice")
	if list, err := s.PGSProjects(ctx, a.ID); err != nil || len(list) != 0 {
		t.Fatalf("PGSProjects of a new account = %v, %v", list, err)
	}
	lock(t, s, a.ID, "blog", "h1")
	before := time.Now()
	d1 := publish(t, s, a.ID, "blog", "h1", 10, map[string]string{"index.html": "<h1>hi</h1>", "b/z.css": "z", "B/a.css": "a"})
	if d1.Seq != 1 || d1.ID == 0 || d1.ProjectID == 0 {
		t.Fatalf("first deploy = %+v", d1)
	}
	checkTime(t, "deploy created_at", d1.CreatedAt, before, time.Now())
	d2 := publish(t, s, a.ID, "blog", "h1", 10, map[string]string{"index.html": "<h1>v2</h1>"})
	if d2.Seq != 2 || d2.ProjectID != d1.ProjectID {
		t.Fatalf("second deploy = %+v", d2)
	}
	p, err := s.PGSProject(ctx, a.ID, "blog")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "blog" || p.LiveSeq != 2 || p.LiveDeployID != d2.ID || p.Files != 1 || p.UpdatedBy != "ci@run-42" || p.LinkTo != "" {
		t.Fatalf("project = %+v", p)
	}
	deploys, err := s.PGSDeploys(ctx, p.ID)
	if err != nil || len(deploys) != 2 || deploys[0].Seq != 2 || deploys[1].Seq != 1 {
		t.Fatalf("PGSDeploys = %+v, %v", deploys, err)
	}
	got := deploys[1]
	if got.Identity != "ci@run-42" || got.Method != "cert" || got.Serial == nil || *got.Serial != 42 || got.Tool != "rsync" || got.Files != 3 {
		t.Fatalf("stored deploy = %+v", got)
	}
	files, err := s.PGSFiles(ctx, d1.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Sorted bytewise, as rsync sorts names.
	if want := []string{"B/a.css", "b/z.css", "index.html"}; !slices.Equal(paths(files), want) {
		t.Fatalf("files = %v, want %v", paths(files), want)
	}
	if f := files[2]; f != fileOf("index.html", "<h1>hi</h1>") {
		t.Fatalf("file = %+v", f)
	}
	live, err := s.PGSLive(ctx, "alice", "blog")
	if err != nil || live.DeployID != d2.ID || live.ProjectID != p.ID || live.AccountID != a.ID {
		t.Fatalf("PGSLive = %+v, %v", live, err)
	}
	if _, err := s.PGSLive(ctx, "alice", "nope"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("PGSLive of a missing project = %v", err)
	}
	u, err := s.PGSUsage(ctx, a.ID)
	if err != nil || u.Projects != 1 || u.Blobs != 4 || u.Bytes != int64(len("<h1>hi</h1>")+1+1+len("<h1>v2</h1>")) {
		t.Fatalf("PGSUsage = %+v, %v", u, err)
	}
	// Trimming: with keep 2, the third deploy removes the first.
	d3 := publish(t, s, a.ID, "blog", "h1", 2, map[string]string{"index.html": "<h1>v3</h1>"})
	deploys, _ = s.PGSDeploys(ctx, p.ID)
	if len(deploys) != 2 || deploys[0].ID != d3.ID || deploys[1].ID != d2.ID {
		t.Fatalf("after trimming: %+v", deploys)
	}
	if files, err := s.PGSFiles(ctx, d1.ID); err != nil || len(files) != 0 {
		t.Fatalf("files of a trimmed deploy = %v, %v", files, err)
	}
}

func testPGSLocks(t *testing.T, s db.Store) {
	a, _ := createAccount(t, s, "alice")
	lock(t, s, a.ID, "blog", "h1")
	if ok, err := s.LockPGSProject(ctx, a.ID, "blog", "h2", ttl); err != nil || ok {
		t.Fatalf("a second holder got the lock: %v, %v", ok, err)
	}
	lock(t, s, a.ID, "blog", "h1")  // renewal
	lock(t, s, a.ID, "other", "h2") // another project is free
	if ok, _ := s.PGSProjectExists(ctx, "alice", "blog"); !ok {
		t.Fatal("a project under its first deploy does not exist")
	}
	// h2 cannot publish blog.
	record(t, s, a.ID, "x")
	_, err := s.PublishPGSDeploy(ctx, db.PGSPublish{AccountID: a.ID, Project: "blog", Holder: "h2", Keep: 1,
		Files: []db.PGSFile{fileOf("x", "x")}})
	wantErr(t, "publish without the lock", err, db.ErrLockLost)
	if err := s.UnlockPGSProject(ctx, a.ID, "blog", "h2"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.LockPGSProject(ctx, a.ID, "blog", "h2", ttl); ok {
		t.Fatal("unlock by a non-holder released the lock")
	}
	if err := s.UnlockPGSProject(ctx, a.ID, "blog", "h1"); err != nil {
		t.Fatal(err)
	}
	lock(t, s, a.ID, "blog", "h2")
	if ok, _ := s.PGSProjectExists(ctx, "alice", "nothing"); ok {
		t.Fatal("a project that was never deployed exists")
	}
	// An expired lock passes to the next holder, and no longer names a project.
	if ok, err := s.LockPGSProject(ctx, a.ID, "short", "h1", 50*time.Millisecond); err != nil || !ok {
		t.Fatalf("lock short: %v, %v", ok, err)
	}
	time.Sleep(100 * time.Millisecond)
	if ok, _ := s.PGSProjectExists(ctx, "alice", "short"); ok {
		t.Fatal("an expired lock makes a project exist")
	}
	lock(t, s, a.ID, "short", "h3")
	_, err = s.PublishPGSDeploy(ctx, db.PGSPublish{AccountID: a.ID, Project: "short", Holder: "h1", Keep: 1,
		Files: []db.PGSFile{fileOf("x", "x")}})
	wantErr(t, "publish with an expired lock", err, db.ErrLockLost)
	if err := s.ResetPGSLocks(ctx); err != nil {
		t.Fatal(err)
	}
	lock(t, s, a.ID, "blog", "h9")
}

// Many holders race for one lock: exactly one gets it.
func testPGSConcurrentLocks(t *testing.T, s db.Store) {
	a, _ := createAccount(t, s, "alice")
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners := 0
	for i := range 8 {
		wg.Go(func() {
			ok, err := s.LockPGSProject(ctx, a.ID, "blog", fmt.Sprintf("h%d", i), ttl)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				winners++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if winners != 1 {
		t.Fatalf("%d holders got the lock", winners)
	}
}

func testPGSPublishChecks(t *testing.T, s db.Store) {
	a, _ := createAccount(t, s, "alice")
	lock(t, s, a.ID, "blog", "h1")
	// A file whose blob is not recorded: nothing is published, the project is not created.
	_, err := s.PublishPGSDeploy(ctx, db.PGSPublish{AccountID: a.ID, Project: "blog", Holder: "h1", Keep: 1,
		Files: []db.PGSFile{fileOf("x", "never recorded")}})
	wantErr(t, "publish of an unrecorded blob", err, db.ErrBlobMissing)
	if _, err := s.PGSProject(ctx, a.ID, "blog"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a failed first deploy created the project: %v", err)
	}
	// Over the quota: nothing is published.
	publish(t, s, a.ID, "blog", "h1", 5, map[string]string{"a": "12345"})
	record(t, s, a.ID, "67890")
	_, err = s.PublishPGSDeploy(ctx, db.PGSPublish{AccountID: a.ID, Project: "blog", Holder: "h1", Keep: 5, Quota: 9,
		Files: []db.PGSFile{fileOf("a", "12345"), fileOf("b", "67890")}})
	wantErr(t, "publish over the quota", err, db.ErrOverQuota)
	p, _ := s.PGSProject(ctx, a.ID, "blog")
	if p.LiveSeq != 1 {
		t.Fatalf("after refused publishes the live deploy is d%d", p.LiveSeq)
	}
	// Within the quota, it goes through; the next seq was not used up by the failures.
	d, err := s.PublishPGSDeploy(ctx, db.PGSPublish{AccountID: a.ID, Project: "blog", Holder: "h1", Keep: 5, Quota: 10,
		Files: []db.PGSFile{fileOf("a", "12345"), fileOf("b", "67890")}})
	if err != nil || d.Seq != 2 {
		t.Fatalf("publish within the quota = %+v, %v", d, err)
	}
	// Recording the same blob twice counts it once.
	if total := record(t, s, a.ID, "12345", "12345"); total != 10 {
		t.Fatalf("stored bytes = %d, want 10", total)
	}
}

func testPGSRollback(t *testing.T, s db.Store) {
	a, _ := createAccount(t, s, "alice")
	lock(t, s, a.ID, "blog", "h1")
	d1 := publish(t, s, a.ID, "blog", "h1", 10, map[string]string{"i": "1"})
	publish(t, s, a.ID, "blog", "h1", 10, map[string]string{"i": "2"})
	if err := s.SetPGSLive(ctx, a.ID, "blog", "h1", 1, "bob"); err != nil {
		t.Fatal(err)
	}
	if live, _ := s.PGSLive(ctx, "alice", "blog"); live.DeployID != d1.ID {
		t.Fatalf("after rollback, live = %+v", live)
	}
	p, _ := s.PGSProject(ctx, a.ID, "blog")
	if p.LiveSeq != 1 || p.UpdatedBy != "bob" {
		t.Fatalf("after rollback, project = %+v", p)
	}
	wantErr(t, "rollback to an unknown deploy", s.SetPGSLive(ctx, a.ID, "blog", "h1", 7, "bob"), db.ErrNotFound)
	wantErr(t, "rollback without the lock", s.SetPGSLive(ctx, a.ID, "blog", "h2", 2, "bob"), db.ErrLockLost)
	lock(t, s, a.ID, "none", "h1")
	wantErr(t, "rollback of a missing project", s.SetPGSLive(ctx, a.ID, "none", "h1", 1, "bob"), db.ErrNotFound)
	// The next deploy after a rollback is d3, and live.
	d3 := publish(t, s, a.ID, "blog", "h1", 10, map[string]string{"i": "3"})
	if d3.Seq != 3 {
		t.Fatalf("deploy after rollback = d%d", d3.Seq)
	}
}

func testPGSLinks(t *testing.T, s db.Store) {
	a, _ := createAccount(t, s, "alice")
	for _, p := range []string{"staging", "prod", "docs", "x"} {
		lock(t, s, a.ID, p, "h")
	}
	ds := publish(t, s, a.ID, "staging", "h", 10, map[string]string{"i": "staging"})
	publish(t, s, a.ID, "docs", "h", 10, map[string]string{"i": "docs"})
	wantErr(t, "link to a missing project", s.LinkPGSProject(ctx, a.ID, "prod", "nope", "h", "bob", 0), db.ErrNotFound)
	wantErr(t, "link to itself", s.LinkPGSProject(ctx, a.ID, "prod", "prod", "h", "bob", 0), db.ErrLinkChain)
	if err := s.LinkPGSProject(ctx, a.ID, "prod", "staging", "h", "bob", 0); err != nil {
		t.Fatal(err)
	}
	live, err := s.PGSLive(ctx, "alice", "prod")
	if err != nil || live.DeployID != ds.ID || live.LinkTo != "staging" {
		t.Fatalf("PGSLive of a link = %+v, %v", live, err)
	}
	// Chains: linking to a link, or linking a project others link to.
	wantErr(t, "link to a link", s.LinkPGSProject(ctx, a.ID, "x", "prod", "h", "bob", 0), db.ErrLinkChain)
	wantErr(t, "link a link target", s.LinkPGSProject(ctx, a.ID, "staging", "docs", "h", "bob", 0), db.ErrLinkChain)
	// A link takes no deploys; its target cannot be deleted.
	record(t, s, a.ID, "p")
	_, err = s.PublishPGSDeploy(ctx, db.PGSPublish{AccountID: a.ID, Project: "prod", Holder: "h", Keep: 1,
		Files: []db.PGSFile{fileOf("i", "p")}})
	wantErr(t, "deploy to a link", err, db.ErrLinked)
	wantErr(t, "delete a link target", s.DeletePGSProject(ctx, a.ID, "staging", "h"), db.ErrLinkedTo)
	// A new deploy of the target is what the link serves.
	ds2 := publish(t, s, a.ID, "staging", "h", 10, map[string]string{"i": "staging2"})
	if live, _ := s.PGSLive(ctx, "alice", "prod"); live.DeployID != ds2.ID {
		t.Fatalf("link after target deploy = %+v", live)
	}
	if err := s.UnlinkPGSProject(ctx, a.ID, "prod", "h", "bob"); err != nil {
		t.Fatal(err)
	}
	if live, _ := s.PGSLive(ctx, "alice", "prod"); live.DeployID != 0 || live.LinkTo != "" {
		t.Fatalf("unlinked project without deploys = %+v", live)
	}
	wantErr(t, "unlink of a non-link", s.UnlinkPGSProject(ctx, a.ID, "prod", "h", "bob"), db.ErrNotFound)
	if err := s.DeletePGSProject(ctx, a.ID, "staging", "h"); err != nil {
		t.Fatal(err)
	}
}

// collectAll removes every unreferenced blob with a fake remove and returns their hashes.
func collectAll(t *testing.T, s db.Store, accountID int64, force bool) ([]string, error) {
	t.Helper()
	var all []string
	for {
		var got []string
		n, err := s.CollectPGSBlobs(ctx, accountID, 2, force, func(hashes []string) ([]string, error) {
			got = hashes
			return hashes, nil
		})
		if err != nil {
			return all, err
		}
		all = append(all, got...)
		if n == 0 {
			slices.Sort(all)
			return all, nil
		}
	}
}

func hashesOf(contents ...string) []string {
	var out []string
	for _, c := range contents {
		out = append(out, blobOf(c).Hash)
	}
	slices.Sort(out)
	return out
}

func testPGSDeleteAndCollect(t *testing.T, s db.Store) {
	a, _ := createAccount(t, s, "alice")
	lock(t, s, a.ID, "blog", "h")
	lock(t, s, a.ID, "docs", "h")
	publish(t, s, a.ID, "blog", "h", 1, map[string]string{"a": "shared", "b": "blog-only-1"})
	publish(t, s, a.ID, "blog", "h", 1, map[string]string{"a": "shared", "b": "blog-only-2"})
	publish(t, s, a.ID, "docs", "h", 1, map[string]string{"a": "shared"})
	record(t, s, a.ID, "orphan")
	s.UnlockPGSProject(ctx, a.ID, "blog", "h")
	s.UnlockPGSProject(ctx, a.ID, "docs", "h")
	got, err := collectAll(t, s, a.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := hashesOf("blog-only-1", "orphan"); !slices.Equal(got, want) {
		t.Fatalf("collected %v, want %v (the trimmed deploy's and the unused blob)", got, want)
	}
	lock(t, s, a.ID, "blog", "h")
	if err := s.DeletePGSProject(ctx, a.ID, "blog", "h"); err != nil {
		t.Fatal(err)
	}
	s.UnlockPGSProject(ctx, a.ID, "blog", "h")
	got, _ = collectAll(t, s, a.ID, false)
	if want := hashesOf("blog-only-2"); !slices.Equal(got, want) {
		t.Fatalf("after rm, collected %v, want %v (the shared blob stays for docs)", got, want)
	}
	// A remove that fails for some blobs: those stay recorded.
	record(t, s, a.ID, "k1", "k2")
	n, err := s.CollectPGSBlobs(ctx, a.ID, 10, false, func(hashes []string) ([]string, error) {
		return hashes[:1], errors.New("disk on fire")
	})
	if err == nil || n != 1 {
		t.Fatalf("partial removal: %d, %v", n, err)
	}
	if u, _ := s.PGSUsage(ctx, a.ID); u.Blobs != 2 {
		t.Fatalf("after a partial removal the account has %d blobs, want 2", u.Blobs)
	}
	// Deleting the account's data leaves every blob collectable.
	if err := s.DeletePGSAccountData(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	got, _ = collectAll(t, s, a.ID, true)
	if len(got) != 2 {
		t.Fatalf("after deleting the account's data, collected %v", got)
	}
	if u, _ := s.PGSUsage(ctx, a.ID); u != (db.PGSUsage{}) {
		t.Fatalf("usage after deleting everything = %+v", u)
	}
}

// No blob is collected while a deploy of the account holds a lock: its new blobs are not yet
// referenced.
func testPGSCollectWaitsForDeploys(t *testing.T, s db.Store) {
	a, _ := createAccount(t, s, "alice")
	b, _ := createAccount(t, s, "bob")
	record(t, s, a.ID, "pending")
	record(t, s, b.ID, "bob's garbage")
	lock(t, s, a.ID, "blog", "h")
	if _, err := collectAll(t, s, a.ID, false); !errors.Is(err, db.ErrBusy) {
		t.Fatalf("collection during a deploy = %v, want ErrBusy", err)
	}
	// Another account's collection is not held up.
	if got, err := collectAll(t, s, b.ID, false); err != nil || len(got) != 1 {
		t.Fatalf("bob's collection = %v, %v", got, err)
	}
	publish(t, s, a.ID, "blog", "h", 1, map[string]string{"i": "pending"})
	s.UnlockPGSProject(ctx, a.ID, "blog", "h")
	if got, err := collectAll(t, s, a.ID, false); err != nil || len(got) != 0 {
		t.Fatalf("collected a published blob: %v, %v", got, err)
	}
}

// One account cannot reach another's projects or blobs.
func testPGSAccounts(t *testing.T, s db.Store) {
	a, _ := createAccount(t, s, "alice")
	b, _ := createAccount(t, s, "bob")
	lock(t, s, a.ID, "blog", "h")
	publish(t, s, a.ID, "blog", "h", 1, map[string]string{"i": "alice's"})
	if list, _ := s.PGSProjects(ctx, b.ID); len(list) != 0 {
		t.Fatalf("bob sees %v", list)
	}
	if _, err := s.PGSProject(ctx, b.ID, "blog"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("bob's blog = %v", err)
	}
	if _, err := s.PGSLive(ctx, "bob", "blog"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("bob's live blog = %v", err)
	}
	// Bob cannot reference alice's blob without having stored it himself.
	lock(t, s, b.ID, "blog", "h")
	_, err := s.PublishPGSDeploy(ctx, db.PGSPublish{AccountID: b.ID, Project: "blog", Holder: "h", Keep: 1,
		Files: []db.PGSFile{fileOf("i", "alice's")}})
	wantErr(t, "bob publishing alice's blob", err, db.ErrBlobMissing)
	// Locks are per account too.
	lock(t, s, b.ID, "docs", "h2")
	if ok, _ := s.LockPGSProject(ctx, a.ID, "docs", "h3", ttl); !ok {
		t.Fatal("bob's lock on docs blocks alice's docs")
	}
}

// A deleted account's projects and deploys go with it; its blob records stay until they are
// collected, so that the blobs themselves can be deleted by hash.
func testPGSAccountDeleted(t *testing.T, s db.Store) {
	a, _ := createAccount(t, s, "alice")
	lock(t, s, a.ID, "blog", "h")
	publish(t, s, a.ID, "blog", "h", 1, map[string]string{"i": "alice's", "j": "more"})
	if err := s.DeleteAccount(ctx, a.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.PGSProjects(ctx, a.ID); len(list) != 0 {
		t.Fatalf("projects of a deleted account: %v", list)
	}
	if ok, _ := s.PGSProjectExists(ctx, "alice", "blog"); ok {
		t.Fatal("a deleted account's project exists")
	}
	_, err := s.RecordPGSBlobs(ctx, a.ID, []db.PGSBlob{blobOf("late")})
	wantErr(t, "recording a blob of a deleted account", err, db.ErrNotFound)
	ids, err := s.PGSAccountsWithGarbage(ctx, 10)
	if err != nil || !slices.Equal(ids, []int64{a.ID}) {
		t.Fatalf("accounts with garbage = %v, %v", ids, err)
	}
	got, err := collectAll(t, s, a.ID, false)
	if err != nil || !slices.Equal(got, hashesOf("alice's", "more")) {
		t.Fatalf("collected %v, %v", got, err)
	}
	if u, _ := s.PGSUsage(ctx, a.ID); u != (db.PGSUsage{}) {
		t.Fatalf("usage after collecting = %+v", u)
	}
	if ids, err := s.PGSAccountsWithGarbage(ctx, 10); err != nil || len(ids) != 0 {
		t.Fatalf("accounts with garbage after collecting = %v, %v", ids, err)
	}
}

// An account's projects are bounded, for deploys and links alike; existing ones go on.
func testPGSMaxProjects(t *testing.T, s db.Store) {
	a, _ := createAccount(t, s, "alice")
	for _, p := range []string{"one", "two", "three", "four"} {
		lock(t, s, a.ID, p, "h")
	}
	record(t, s, a.ID, "x")
	pub := func(project string) error {
		_, err := s.PublishPGSDeploy(ctx, db.PGSPublish{AccountID: a.ID, Project: project, Holder: "h", Keep: 1, MaxProjects: 2,
			Files: []db.PGSFile{fileOf("i", "x")}})
		return err
	}
	if err := pub("one"); err != nil {
		t.Fatal(err)
	}
	if err := pub("two"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "a third project", pub("three"), db.ErrTooManyProjects)
	wantErr(t, "a third project by link", s.LinkPGSProject(ctx, a.ID, "four", "one", "h", "bob", 2), db.ErrTooManyProjects)
	if err := pub("one"); err != nil {
		t.Fatalf("a new deploy of an existing project: %v", err)
	}
	if err := s.LinkPGSProject(ctx, a.ID, "two", "one", "h", "bob", 2); err != nil {
		t.Fatalf("linking an existing project: %v", err)
	}
}

// The files of all an account's kept deploys (the rows of their manifests) are bounded: many
// projects each keeping many deploys of many tiny files cost rows the quota does not count.
// Deploys trimmed by Keep make room.
func testPGSMaxKeptFiles(t *testing.T, s db.Store) {
	a, _ := createAccount(t, s, "alice")
	b, _ := createAccount(t, s, "bob")
	for _, p := range []string{"one", "two"} {
		lock(t, s, a.ID, p, "h")
		lock(t, s, b.ID, p, "h")
	}
	record(t, s, a.ID, "x")
	record(t, s, b.ID, "x")
	pub := func(account int64, project string, files int) error {
		var list []db.PGSFile
		for i := range files {
			list = append(list, fileOf(fmt.Sprintf("f%03d", i), "x"))
		}
		_, err := s.PublishPGSDeploy(ctx, db.PGSPublish{AccountID: account, Project: project, Holder: "h", Keep: 2,
			MaxKeptFiles: 10, Files: list, Deploy: db.PGSDeploy{Files: int64(files)}})
		return err
	}
	for _, step := range []struct {
		project string
		files   int
		want    error
	}{
		{"one", 4, nil}, // kept: 4
		{"one", 4, nil}, // 8
		{"one", 4, nil}, // the first is trimmed: 8
		{"two", 2, nil}, // 10
		{"two", 1, db.ErrTooManyKeptFiles},
		{"one", 3, nil}, // a deploy of 4 trimmed: 4+3+2 = 9
	} {
		err := pub(a.ID, step.project, step.files)
		if step.want == nil && err != nil {
			t.Fatalf("%d files to %s: %v", step.files, step.project, err)
		}
		if step.want != nil {
			wantErr(t, fmt.Sprintf("%d files to %s", step.files, step.project), err, step.want)
		}
	}
	// The refused deploy changed nothing: two's live deploy is its first.
	if p, err := s.PGSProject(ctx, a.ID, "two"); err != nil || p.LiveSeq != 1 || p.Files != 2 {
		t.Fatalf("two after a refused deploy: %+v, %v", p, err)
	}
	// Another account's files do not count.
	if err := pub(b.ID, "one", 10); err != nil {
		t.Fatalf("bob: %v", err)
	}
}

// Accounts with garbage beyond the limit are picked at random: the same first ones (whose
// collection may keep being refused while a deploy holds a lock) must not hide the others.
func testPGSGarbageAccountsRotate(t *testing.T, s db.Store) {
	for _, name := range []string{"alice", "bob", "carol"} {
		a, _ := createAccount(t, s, name)
		record(t, s, a.ID, "garbage of "+name)
	}
	seen := map[int64]bool{}
	for range 60 {
		ids, err := s.PGSAccountsWithGarbage(ctx, 1)
		if err != nil || len(ids) != 1 {
			t.Fatalf("accounts with garbage = %v, %v", ids, err)
		}
		seen[ids[0]] = true
	}
	if len(seen) != 3 {
		t.Fatalf("60 calls with limit 1 named %d of 3 accounts", len(seen))
	}
}

// Publishing new projects while their locks are renewed, links made and blobs recorded, all at
// once, never deadlocks or fails.
func testPGSPublishWhileRenewing(t *testing.T, s db.Store) {
	a, _ := createAccount(t, s, "alice")
	const n = 12
	for i := range n {
		lock(t, s, a.ID, fmt.Sprintf("p%d", i), "h")
	}
	record(t, s, a.ID, "x")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i := range n {
				if _, err := s.LockPGSProject(ctx, a.ID, fmt.Sprintf("p%d", i), "h", ttl); err != nil {
					errs <- err
				}
			}
			if _, err := s.RecordPGSBlobs(ctx, a.ID, []db.PGSBlob{blobOf("x")}); err != nil {
				errs <- err
			}
		}
	})
	for i := range n {
		wg.Go(func() {
			_, err := s.PublishPGSDeploy(ctx, db.PGSPublish{AccountID: a.ID, Project: fmt.Sprintf("p%d", i), Holder: "h",
				Keep: 2, MaxProjects: 100, Files: []db.PGSFile{fileOf("i", "x")}})
			if err != nil {
				errs <- err
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if list, _ := s.PGSProjects(ctx, a.ID); len(list) != n {
		t.Fatalf("%d projects, want %d", len(list), n)
	}
}

func testPGSACL(t *testing.T, s db.Store) {
	a, _ := createAccount(t, s, "alice")
	lock(t, s, a.ID, "blog", "h")
	lock(t, s, a.ID, "prod", "h")
	publish(t, s, a.ID, "blog", "h", 10, map[string]string{"i": "blog"})
	if live, _ := s.PGSLive(ctx, "alice", "blog"); live.ACL.Kind != db.PGSPublic || live.ACL.AccountIDs != nil || live.ACL.PasswordHash != "" {
		t.Fatalf("default ACL = %+v", live.ACL)
	}
	bob, _ := createAccount(t, s, "bob")
	carol, _ := createAccount(t, s, "carol")
	want := db.PGSACL{Kind: db.PGSAccounts, AccountIDs: []int64{carol.ID, bob.ID}}
	if err := s.SetPGSACL(ctx, a.ID, "blog", want); err != nil {
		t.Fatal(err)
	}
	live, err := s.PGSLive(ctx, "alice", "blog")
	if err != nil || live.ACL.Kind != want.Kind || !slices.Equal(live.ACL.AccountIDs, want.AccountIDs) {
		t.Fatalf("PGSLive ACL = %+v, %v", live.ACL, err)
	}
	if p, _ := s.PGSProject(ctx, a.ID, "blog"); p.ACL.Kind != db.PGSAccounts || !slices.Equal(p.ACL.AccountIDs, want.AccountIDs) {
		t.Fatalf("PGSProject ACL = %+v", p.ACL)
	}
	// The ACL keeps ids: once bob's account is deleted and his name registered again, the
	// newcomer's id is another, and AccountNames names only those that exist.
	if err := s.DeleteAccount(ctx, bob.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	newBob, _ := createAccount(t, s, "bob")
	if live, _ := s.PGSLive(ctx, "alice", "blog"); slices.Contains(live.ACL.AccountIDs, newBob.ID) || newBob.ID == bob.ID {
		t.Fatalf("after bob's account was deleted and re-registered (id %d, was %d): ACL %+v", newBob.ID, bob.ID, live.ACL)
	}
	names, err := s.AccountNames(ctx, []int64{carol.ID, bob.ID, newBob.ID})
	if err != nil || len(names) != 2 || names[carol.ID] != "carol" || names[newBob.ID] != "bob" {
		t.Fatalf("AccountNames = %v, %v; want carol and the new bob only", names, err)
	}
	if names, err := s.AccountNames(ctx, nil); err != nil || len(names) != 0 {
		t.Errorf("AccountNames(nil) = %v, %v", names, err)
	}
	pw := db.PGSACL{Kind: db.PGSPassword, PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$aGFzaA"}
	if err := s.SetPGSACL(ctx, a.ID, "blog", pw); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.PGSProjects(ctx, a.ID); len(list) != 1 || list[0].ACL.Kind != db.PGSPassword || list[0].ACL.PasswordHash != pw.PasswordHash || list[0].ACL.AccountIDs != nil {
		t.Fatalf("PGSProjects ACL = %+v", list)
	}
	// A link has its own ACL, not its target's.
	if err := s.LinkPGSProject(ctx, a.ID, "prod", "blog", "h", "alice", 0); err != nil {
		t.Fatal(err)
	}
	if live, _ := s.PGSLive(ctx, "alice", "prod"); live.ACL.Kind != db.PGSPublic {
		t.Fatalf("link ACL = %+v", live.ACL)
	}
	if err := s.SetPGSACL(ctx, a.ID, "blog", db.PGSACL{Kind: db.PGSPublic}); err != nil {
		t.Fatal(err)
	}
	if live, _ := s.PGSLive(ctx, "alice", "blog"); live.ACL.Kind != db.PGSPublic || live.ACL.PasswordHash != "" {
		t.Fatalf("public again = %+v", live.ACL)
	}
	wantErr(t, "ACL of a missing project", s.SetPGSACL(ctx, a.ID, "nope", db.PGSACL{Kind: db.PGSPublic}), db.ErrNotFound)
	for _, bad := range []db.PGSACL{{Kind: "secret"}, {Kind: db.PGSAccounts}, {Kind: db.PGSPassword},
		{Kind: db.PGSPublic, AccountIDs: []int64{carol.ID}}, {Kind: db.PGSAccounts, AccountIDs: []int64{0}},
		{Kind: db.PGSAccounts, AccountIDs: []int64{carol.ID, carol.ID}}} {
		if err := s.SetPGSACL(ctx, a.ID, "blog", bad); err == nil {
			t.Errorf("SetPGSACL(%+v) accepted", bad)
		}
	}
}
