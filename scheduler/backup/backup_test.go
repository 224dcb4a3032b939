package backup

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestScheduleAndPrune(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	if !Due(time.Time{}, 6*time.Hour).IsZero() {
		t.Fatal("no snapshot yet: due at once")
	}
	if got := Due(t0, 6*time.Hour); !got.Equal(t0.Add(6 * time.Hour)) {
		t.Fatalf("due %v", got)
	}
	var es []Entry
	for i := 0; i < 9; i++ {
		es = append(es, Entry{Name: Name("consul", "dc1", t0.Add(time.Duration(i)*time.Hour)), Taken: t0.Add(time.Duration(i) * time.Hour)})
	}
	es[0], es[8] = es[8], es[0] // order does not matter
	got := Prune(es, 7)
	if len(got) != 2 || got[0] != Name("consul", "dc1", t0) || got[1] != Name("consul", "dc1", t0.Add(time.Hour)) {
		t.Fatalf("prune %v", got)
	}
	if Prune(es[:3], 7) != nil || !Newest(es).Equal(t0.Add(8*time.Hour)) {
		t.Fatal("prune or newest")
	}
	for _, bad := range []string{"../x.snap", "a/b.snap", "x", ".snap", "x.snap/"} {
		if ValidName(bad) {
			t.Errorf("%q accepted as a name", bad)
		}
	}
	if !ValidName(Name("consul/prod", "dc 1", t0)) {
		t.Fatal(Name("consul/prod", "dc 1", t0))
	}
}

func roundTrip(t *testing.T, tg Target) {
	t.Helper()
	ctx := context.Background()
	data := bytes.Repeat([]byte("raft"), 100000)
	e, err := tg.Put(ctx, "a.snap", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if e.Size != int64(len(data)) || len(e.SHA256) != 64 {
		t.Fatalf("entry %+v", e)
	}
	// b.snap has its ACL companion (written first), a.snap has none; the
	// companion is never listed as a snapshot and goes with its snapshot.
	if err := tg.PutACL(ctx, "b.snap", []byte(`{"management_token":"m"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Put(ctx, "b.snap", strings.NewReader("b")); err != nil {
		t.Fatal(err)
	}
	if b, err := tg.GetACL(ctx, "b.snap"); err != nil || string(b) != `{"management_token":"m"}` {
		t.Fatalf("ACL companion of b.snap: %q %v", b, err)
	}
	if b, err := tg.GetACL(ctx, "a.snap"); err != nil || b != nil {
		t.Fatalf("ACL companion of a.snap: %q %v, want none", b, err)
	}
	es, err := tg.List(ctx)
	if err != nil || len(es) != 2 || es[0].Name != "a.snap" {
		t.Fatalf("list %+v %v", es, err)
	}
	r, err := tg.Open(ctx, "a.snap")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	if err := tg.Delete(ctx, "b.snap"); err != nil {
		t.Fatal(err)
	}
	if es, _ := tg.List(ctx); len(es) != 1 {
		t.Fatalf("after delete %+v", es)
	}
	if b, err := tg.GetACL(ctx, "b.snap"); err != nil || b != nil {
		t.Fatalf("the ACL companion of a deleted snapshot: %q %v", b, err)
	}
	if _, err := tg.Put(ctx, "../evil.snap", strings.NewReader("x")); err == nil {
		t.Fatal("a path as a name")
	}
}

func TestFileTarget(t *testing.T) {
	dir := t.TempDir()
	tg, err := Open("file://" + dir)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, tg)
	// A corrupted snapshot fails its read; a half-written one is not listed.
	if err := os.WriteFile(filepath.Join(dir, "a.snap"), []byte("bitrot"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := tg.Open(context.Background(), "a.snap")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt snapshot read: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "half.snap"), []byte("x"), 0o600)
	if es, _ := tg.List(context.Background()); len(es) != 1 {
		t.Fatalf("a snapshot without checksum listed: %+v", es)
	}
	for _, bad := range []string{"ftp://x/", "file://relative", "http:///nohost"} {
		if _, err := Open(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// A minimal PUT/GET/DELETE server, as a WebDAV or object store would be.
func TestHTTPTarget(t *testing.T) {
	var mu sync.Mutex
	files := map[string][]byte{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.Method {
		case http.MethodPut:
			b, _ := io.ReadAll(r.Body)
			files[r.URL.Path] = b
			w.WriteHeader(http.StatusCreated)
		case http.MethodGet:
			b, ok := files[r.URL.Path]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Write(b)
		case http.MethodDelete:
			delete(files, r.URL.Path)
		}
	}))
	defer srv.Close()
	tg, err := Open(srv.URL + "/backups/consul")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, tg)
	mu.Lock()
	_, ok := files["/backups/consul/a.snap.sha256"]
	mu.Unlock()
	if !ok {
		t.Fatal("no checksum stored beside the snapshot")
	}
}

func TestMergeSaysWhereEachCopyIs(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := Entry{Name: "c-dc1-20260101T000000.000Z.snap", SHA256: "aa", Size: 10, Taken: t0}
	b := Entry{Name: "c-dc1-20260101T060000.000Z.snap", SHA256: "bb", Size: 11, Taken: t0.Add(6 * time.Hour)}
	bOther := b
	bOther.SHA256 = "cc"
	got := Merge([]Entry{b, a}, "file:///x", map[string][]Entry{
		"consul-server-1": {b},
		"consul-server-0": {a, b},
		"consul-server-2": {bOther},
	})
	var lines []string
	for _, e := range got {
		lines = append(lines, e.Name[15:21]+" "+e.SHA256+" "+strings.Join(e.Locations, ","))
	}
	want := []string{
		"000000 aa file:///x,volume of consul-server-0",
		"060000 bb file:///x,volume of consul-server-0,volume of consul-server-1",
		"060000 cc volume of consul-server-2",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("merged:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if got := Merge(nil, "", nil); len(got) != 0 {
		t.Fatalf("nothing anywhere: %+v", got)
	}
}

func TestKeepNewest(t *testing.T) {
	ctx := context.Background()
	tg, err := Open("file://" + t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"c-d-20260103T000000.000Z.snap", "c-d-20260101T000000.000Z.snap", "c-d-20260102T000000.000Z.snap"} {
		if _, err := tg.Put(ctx, n, strings.NewReader(n)); err != nil {
			t.Fatal(err)
		}
	}
	gone, err := KeepNewest(ctx, tg, 2)
	if err != nil || len(gone) != 1 || gone[0] != "c-d-20260101T000000.000Z.snap" {
		t.Fatalf("deleted %v, %v", gone, err)
	}
	es, _ := tg.List(ctx)
	if len(es) != 2 {
		t.Fatalf("left %+v", es)
	}
}

func TestFileTargetACLCompanionIsPrivate(t *testing.T) {
	dir := t.TempDir()
	tg, _ := Open("file://" + dir)
	if err := tg.PutACL(context.Background(), "c.snap", []byte("secret")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "c.snap.acl"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("c.snap.acl: %v %v, want mode 0600", fi, err)
	}
}
