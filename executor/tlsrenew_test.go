package executor

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap/zaptest"

	"github.com/dcos-consul/dcos-consul/executor/consulagent"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// reloadingConsul is a fakeConsul that loads certificates in place.
type reloadingConsul struct {
	*fakeConsul
	mu     sync.Mutex
	loaded []string
	fail   error
}

func (r *reloadingConsul) ReloadTLS(ctx context.Context, ca, cert, key string) (consulagent.TLSCertInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return consulagent.TLSCertInfo{}, r.fail
	}
	r.loaded = append(r.loaded, cert+"|"+key+"|"+ca)
	return consulagent.TLSCertInfo{Serial: "a1", NotAfter: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}, nil
}

// TestRenewTLSInPlace: on the scheduler's request the runner fetches the
// task's secrets with its credential from the URL the message names,
// loads the certificate into the agent and reports what it loaded; a
// failed load is reported with its reason.
func TestRenewTLSInPlace(t *testing.T) {
	reports := make(chan taskspec.TLSRenewReport, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("task_id") != "consul-server-0__1" || r.Header.Get("Authorization") != "Bearer tok-1" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == taskspec.SecretsPath:
			_ = json.NewEncoder(w).Encode(taskspec.Secrets{TLSCACert: "CA", TLSCert: "CERT", TLSKey: "KEY"})
		case r.Method == http.MethodPost && r.URL.Path == taskspec.TLSRenewPath:
			var rep taskspec.TLSRenewReport
			if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			reports <- rep
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	spec := taskspec.Spec{Role: taskspec.RoleServer, TLS: true, NodeName: "consul-server-0",
		Secrets: &taskspec.SecretsRef{URL: "http://127.0.0.1:1", Token: "tok-1"}}
	r := newTaskRunner(mesos.TaskID{Value: "consul-server-0__1"}, spec, consulagent.Env{}, nil, nil, zaptest.NewLogger(t))
	defer r.hardStop()
	rc := &reloadingConsul{fakeConsul: newFakeConsul()}
	wait := func() taskspec.TLSRenewReport {
		t.Helper()
		select {
		case rep := <-reports:
			return rep
		case <-time.After(30 * time.Second):
			t.Fatal("no report")
		}
		return taskspec.TLSRenewReport{}
	}

	// Before the agent runs: reported as a failure.
	r.renewTLS(srv.URL, srv.Client())
	if rep := wait(); !strings.Contains(rep.Error, "not running") {
		t.Fatalf("report before start: %+v", rep)
	}
	r.joinMu.Lock()
	r.agent = rc
	r.joinMu.Unlock()
	waitIdle(t, r)
	// The message's URL, not the launch's (127.0.0.1:1 answers nothing).
	r.renewTLS(srv.URL, srv.Client())
	if rep := wait(); rep.Error != "" || rep.Serial != "a1" || rep.NotAfter.Year() != 2027 {
		t.Fatalf("report: %+v", rep)
	}
	rc.mu.Lock()
	loaded := rc.loaded
	rc.mu.Unlock()
	if len(loaded) != 1 || loaded[0] != "CERT|KEY|CA" {
		t.Fatalf("loaded %v", loaded)
	}
	waitIdle(t, r)
	rc.mu.Lock()
	rc.fail = errors.New("Consul did not reload its TLS files")
	rc.mu.Unlock()
	r.renewTLS(srv.URL, srv.Client())
	if rep := wait(); !strings.Contains(rep.Error, "did not reload") {
		t.Fatalf("failure report: %+v", rep)
	}

	// A client, or a task without a credential, ignores the request.
	waitIdle(t, r)
	r.spec.Role = taskspec.RoleClient
	r.renewTLS(srv.URL, srv.Client())
	select {
	case rep := <-reports:
		t.Fatalf("a client reported %+v", rep)
	case <-time.After(300 * time.Millisecond):
	}
}

func waitIdle(t *testing.T, r *taskRunner) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.renewing.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the renewal did not finish")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
