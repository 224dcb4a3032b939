package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/backup"
)

// fakeSnapScheduler offers snapshots, serves their bytes, records the
// reports and uploads, and checks the credential.
type fakeSnapScheduler struct {
	mu       sync.Mutex
	snaps    map[string]string // name → content
	latest   string
	keep     int
	upload   string
	reports  [][]backup.Entry
	uploaded map[string]string
}

func sum(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func (f *fakeSnapScheduler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer cred" || r.URL.Query().Get("task_id") != "consul-server-0__1" {
		http.Error(w, "no", http.StatusForbidden)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, backup.ExecutorPath), "/")
	switch {
	case name == "" && r.Method == http.MethodPost:
		var rep backup.Report
		_ = json.NewDecoder(r.Body).Decode(&rep)
		f.reports = append(f.reports, rep.Have)
		off := backup.Offer{Keep: f.keep, Upload: f.upload}
		if f.latest != "" {
			off.Latest = &backup.Entry{Name: f.latest, SHA256: sum(f.snaps[f.latest]), Size: int64(len(f.snaps[f.latest]))}
		}
		_ = json.NewEncoder(w).Encode(off)
	case r.Method == http.MethodGet:
		_, _ = io.WriteString(w, f.snaps[name])
	case r.Method == http.MethodPut:
		b, _ := io.ReadAll(r.Body)
		f.uploaded[name] = string(b)
	}
}

// TestSnapshotSyncKeepsCopiesOnTheVolume: the newest snapshot is copied
// onto the volume with its checksum, the copies are pruned to keep, a
// corrupt download is not kept, an upload is sent when asked, and every
// change is reported.
func TestSnapshotSyncKeepsCopiesOnTheVolume(t *testing.T) {
	f := &fakeSnapScheduler{snaps: map[string]string{}, keep: 2, uploaded: map[string]string{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), backup.VolumeDir)
	vol, err := backup.Open("file://" + dir)
	if err != nil {
		t.Fatal(err)
	}
	ss := &snapshotSync{client: srv.Client(), ref: taskspec.SecretsRef{URL: srv.URL, Token: "cred"}, taskID: "consul-server-0__1", vol: vol, log: zap.NewNop()}
	ctx := context.Background()
	names := []string{"c-dc1-20260101T000000.000Z.snap", "c-dc1-20260101T060000.000Z.snap", "c-dc1-20260101T120000.000Z.snap"}
	for _, n := range names {
		f.mu.Lock()
		f.snaps[n], f.latest = "data of "+n, n
		f.mu.Unlock()
		if err := ss.once(ctx); err != nil {
			t.Fatal(err)
		}
	}
	es, _ := vol.List(ctx)
	if len(es) != 2 || es[0].Name != names[1] || es[1].Name != names[2] || es[1].SHA256 != sum("data of "+names[2]) {
		t.Fatalf("copies on the volume %+v, want the 2 newest", es)
	}
	if b, err := os.ReadFile(filepath.Join(dir, names[2]+".sha256")); err != nil || !strings.HasPrefix(string(b), sum("data of "+names[2])) {
		t.Fatalf("checksum beside the copy: %q %v", b, err)
	}
	last := f.reports[len(f.reports)-1]
	if len(last) != 2 || last[1].Name != names[2] {
		t.Fatalf("the last report %+v does not show the copies", last)
	}

	// A download that does not match the scheduler's checksum is not kept.
	bad := "c-dc1-20260101T180000.000Z.snap"
	f.mu.Lock()
	f.snaps[bad], f.latest = "truncated", bad
	f.mu.Unlock()
	// Served with other bytes than announced.
	corrupt := &corruptingScheduler{fakeSnapScheduler: f, name: bad}
	srv2 := httptest.NewServer(corrupt)
	defer srv2.Close()
	ss.ref.URL, ss.client = srv2.URL, srv2.Client()
	if err := ss.once(ctx); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("a corrupt download: %v", err)
	}
	if es, _ := vol.List(ctx); len(es) != 2 {
		t.Fatalf("after a corrupt download: %+v", es)
	}

	// A restore asks for a copy.
	ss.ref.URL, ss.client = srv.URL, srv.Client()
	f.mu.Lock()
	f.latest, f.upload = names[2], names[1]
	f.mu.Unlock()
	if err := ss.once(ctx); err != nil {
		t.Fatal(err)
	}
	if f.uploaded[names[1]] != "data of "+names[1] {
		t.Fatalf("uploaded %v", f.uploaded)
	}

	// A wrong credential gets nothing and changes nothing.
	ss.ref.Token = "other"
	if err := ss.once(ctx); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("with another credential: %v", err)
	}
}

// corruptingScheduler serves other bytes for one snapshot than it offers.
type corruptingScheduler struct {
	*fakeSnapScheduler
	name string
}

func (c *corruptingScheduler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/"+c.name) {
		_, _ = io.WriteString(w, "not what was announced")
		return
	}
	c.fakeSnapScheduler.ServeHTTP(w, r)
}
