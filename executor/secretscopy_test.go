package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dcos-consul/dcos-consul/executor/consulagent"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// TestServerKeepsAndPresentsTheSecretsCopy: a server's executor writes
// the copy of its answer on the volume (0600, and only a server), and
// when the scheduler answers that its secrets are lost, presents that
// copy with its credential and asks again; neither the copy nor the token
// reaches the log.
func TestServerKeepsAndPresentsTheSecretsCopy(t *testing.T) {
	const doc = `{"version":1,"secrets":{"management_token":"mgmt-SECRET"}}`
	var lost atomic.Bool
	var presented atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-1" || r.URL.Query().Get("task_id") != "consul-server-0__1" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		switch {
		case r.URL.Path == taskspec.SecretsCopyPath && r.Method == http.MethodPost:
			b, _ := io.ReadAll(r.Body)
			presented.Store(string(b))
			lost.Store(false)
			_, _ = w.Write([]byte(`{"message":"accepted"}`))
		case r.URL.Path == taskspec.SecretsPath && lost.Load():
			w.WriteHeader(taskspec.SecretsLost)
			_, _ = w.Write([]byte(`{"message":"secrets lost"}`))
		case r.URL.Path == taskspec.SecretsPath:
			_ = json.NewEncoder(w).Encode(taskspec.Secrets{GossipKey: testGossipKey, SecretsCopy: doc})
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	var logs bytes.Buffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&logs), zap.DebugLevel))
	inner := func(ctx context.Context, spec taskspec.Spec, env consulagent.Env, log *zap.Logger) (consulAgent, error) {
		return nil, nil
	}
	sandbox := t.TempDir()
	spec := taskspec.Spec{Role: taskspec.RoleServer, DataDir: "volume/data", GossipEncryption: true,
		Secrets: &taskspec.SecretsRef{URL: srv.URL, Token: "tok-1"}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := consulagent.Env{Sandbox: sandbox}
	if _, err := withSecrets(inner, "consul-server-0__1", srv.Client())(ctx, spec, env, log); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(sandbox, "volume", "data", taskspec.SecretsCopyFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("copy mode %v, want 0600", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(path); string(b) != doc {
		t.Fatalf("copy on the volume: %q", b)
	}

	// The scheduler lost its secrets: the copy goes back, then the GET
	// succeeds.
	lost.Store(true)
	if _, err := withSecrets(inner, "consul-server-0__1", srv.Client())(ctx, spec, env, log); err != nil {
		t.Fatal(err)
	}
	if got, _ := presented.Load().(string); got != doc {
		t.Fatalf("presented %q", got)
	}
	if strings.Contains(logs.String(), "mgmt-SECRET") || strings.Contains(logs.String(), "tok-1") || strings.Contains(logs.String(), testGossipKey) {
		t.Fatalf("a secret is in the executor log:\n%s", logs.String())
	}

	// A client keeps no copy.
	cl := spec
	cl.Role, cl.DataDir = taskspec.RoleClient, "client/data"
	if _, err := withSecrets(inner, "consul-server-0__1", srv.Client())(ctx, cl, env, log); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(sandbox, "client", "data", taskspec.SecretsCopyFile)); !os.IsNotExist(err) {
		t.Fatalf("a client wrote a copy: %v", err)
	}
}
