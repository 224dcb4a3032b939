package scheduler

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/api"
	"github.com/dcos-consul/dcos-consul/scheduler/backup"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// TestSnapshotVolumeRoutes: only a live server's executor with its own
// credential is offered the newest snapshot and may download it; its
// report makes the listing say where each copy is; a restore of a copy
// only a volume holds takes that executor's upload, refused when its
// checksum is not the reported one.
func TestSnapshotVolumeRoutes(t *testing.T) {
	ctx := context.Background()
	staging, _ := backup.Open("file://" + t.TempDir())
	view := api.View{Tasks: []state.Task{
		{Name: "consul-server-0", Role: taskspec.RoleServer, TaskID: "consul-server-0__a", State: "TASK_RUNNING"},
		{Name: "consul-client-x", Role: taskspec.RoleClient, TaskID: "consul-client-x__b", State: "TASK_RUNNING"},
	}}
	s := &snapshots{keep: 3, staging: staging, volumes: map[string]volumeReport{}, view: func() api.View { return view },
		now: time.Now, log: zap.NewNop()}
	name := "consul-dc1-20260101T000000.000Z.snap"
	e, err := s.store(ctx, name, strings.NewReader("snapshot bytes"))
	if err != nil {
		t.Fatal(err)
	}
	live := func(id string) (string, bool) {
		for _, tk := range view.Tasks {
			if tk.TaskID == id {
				return tk.Name, tk.Role == taskspec.RoleServer
			}
		}
		return "", false
	}
	h := s.executorHandler(func(id, tok string) bool { return tok == "cred-"+id }, live)
	call := func(method, path, id, tok string, body string) (int, string) {
		req := httptest.NewRequest(method, path+"?task_id="+id, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		w := httptest.NewRecorder()
		h(w, req)
		b, _ := io.ReadAll(w.Body)
		return w.Code, string(b)
	}
	srv, cli := "consul-server-0__a", "consul-client-x__b"
	if code, _ := call(http.MethodPost, backup.ExecutorPath, srv, "", `{"have":[]}`); code != http.StatusUnauthorized {
		t.Fatalf("no credential: %d", code)
	}
	if code, _ := call(http.MethodPost, backup.ExecutorPath, srv, "cred-other", `{"have":[]}`); code != http.StatusForbidden {
		t.Fatalf("another task's credential: %d", code)
	}
	if code, _ := call(http.MethodGet, backup.ExecutorPath+"/"+name, cli, "cred-"+cli, ""); code != http.StatusForbidden {
		t.Fatalf("a client's executor: %d", code)
	}
	code, body := call(http.MethodPost, backup.ExecutorPath, srv, "cred-"+srv, `{"have":[]}`)
	var off backup.Offer
	if err := json.Unmarshal([]byte(body), &off); code != http.StatusOK || err != nil || off.Latest == nil || off.Latest.SHA256 != e.SHA256 || off.Keep != 3 {
		t.Fatalf("offer: %d %s", code, body)
	}
	if code, body := call(http.MethodGet, backup.ExecutorPath+"/"+name, srv, "cred-"+srv, ""); code != http.StatusOK || body != "snapshot bytes" {
		t.Fatalf("download: %d %q", code, body)
	}

	// The executor reports its copy and an older one only it has.
	old := backup.Entry{Name: "consul-dc1-20251231T000000.000Z.snap", SHA256: sha("old bytes"), Size: 9}
	rep, _ := json.Marshal(backup.Report{Have: []backup.Entry{old, e}})
	if code, body := call(http.MethodPost, backup.ExecutorPath, srv, "cred-"+srv, string(rep)); code != http.StatusOK {
		t.Fatalf("report: %d %s", code, body)
	}
	es, err := s.List(ctx)
	if err != nil || len(es) != 2 || strings.Join(es[1].Locations, ",") != "volume of consul-server-0" || es[0].Name != old.Name {
		t.Fatalf("list %+v %v", es, err)
	}

	// A restore of the old one waits for the upload; a wrong upload is refused.
	done := make(chan backup.Target, 1)
	go func() {
		from, err := s.restoreSource(ctx, old.Name)
		if err != nil {
			t.Error(err)
		}
		done <- from
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := call(http.MethodPost, backup.ExecutorPath, srv, "cred-"+srv, string(rep))
		if strings.Contains(body, `"upload":"`+old.Name+`"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no upload asked: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := call(http.MethodPut, backup.ExecutorPath+"/"+old.Name, srv, "cred-"+srv, "tampered"); code != http.StatusBadRequest {
		t.Fatalf("a wrong upload: %d %s", code, body)
	}
	if code, body := call(http.MethodPut, backup.ExecutorPath+"/"+old.Name, srv, "cred-"+srv, "old bytes"); code != http.StatusOK {
		t.Fatalf("the upload: %d %s", code, body)
	}
	from := <-done
	rd, err := from.Open(ctx, old.Name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rd)
	rd.Close()
	if err != nil || !bytes.Equal(b, []byte("old bytes")) {
		t.Fatalf("restored from %s: %q %v", from, b, err)
	}
	if code, _ := call(http.MethodPut, backup.ExecutorPath+"/"+old.Name, srv, "cred-"+srv, "old bytes"); code != http.StatusConflict {
		t.Fatalf("an upload nobody waits for: %d", code)
	}
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
