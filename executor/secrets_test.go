package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dcos-consul/dcos-consul/executor/consulagent"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

const testGossipKey = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="

// TestWithSecretsFetchesTheKeyBeforeStart: the executor trades its task
// credential for the key (retrying while the scheduler refuses), hands the
// key to the agent in memory, and logs neither.
func TestWithSecretsFetchesTheKeyBeforeStart(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.URL.Path != taskspec.SecretsPath || r.URL.Query().Get("task_id") != "consul-server-0__1" || r.Header.Get("Authorization") != "Bearer tok-1" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		if n == 1 { // the scheduler has not published the record yet
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"message": "task \"consul-server-0__1\" is not a live task of this scheduler"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(taskspec.Secrets{GossipKey: testGossipKey})
	}))
	defer srv.Close()
	var logs bytes.Buffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&logs), zap.DebugLevel))
	var got consulagent.Env
	inner := func(ctx context.Context, spec taskspec.Spec, env consulagent.Env, log *zap.Logger) (consulAgent, error) {
		got = env
		return nil, nil
	}
	spec := taskspec.Spec{GossipEncryption: true, Secrets: &taskspec.SecretsRef{URL: srv.URL, Token: "tok-1"}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := withSecrets(inner, "consul-server-0__1", srv.Client())(ctx, spec, consulagent.Env{BindIP: "127.0.0.1"}, log); err != nil {
		t.Fatal(err)
	}
	if got.GossipKey != testGossipKey || calls.Load() != 2 {
		t.Fatalf("key handed over: %v, calls %d", got.GossipKey == testGossipKey, calls.Load())
	}
	if strings.Contains(logs.String(), testGossipKey) || strings.Contains(logs.String(), "tok-1") {
		t.Fatalf("a secret is in the executor log:\n%s", logs.String())
	}

	// A scheduler that never answers fails the start once ctx ends.
	spec.Secrets.Token = "wrong"
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	_, err := withSecrets(inner, "consul-server-0__1", srv.Client())(ctx2, spec, consulagent.Env{}, log)
	if err == nil || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("refused fetch: %v", err)
	}
}

// TestWithSecretsTLS: a server's certificate and key and the CA reach the
// agent's Env from the secrets answer only; a server answer without a
// certificate fails the start.
func TestWithSecretsTLS(t *testing.T) {
	answer := taskspec.Secrets{TLSCACert: "CA-PEM", TLSCert: "CERT-PEM", TLSKey: "KEY-PEM"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(answer)
	}))
	defer srv.Close()
	var got consulagent.Env
	inner := func(ctx context.Context, spec taskspec.Spec, env consulagent.Env, log *zap.Logger) (consulAgent, error) {
		got = env
		return nil, nil
	}
	spec := taskspec.Spec{Role: taskspec.RoleServer, TLS: true, Secrets: &taskspec.SecretsRef{URL: srv.URL, Token: "tok"}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := withSecrets(inner, "consul-server-0__1", srv.Client())(ctx, spec, consulagent.Env{}, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	if got.TLSCACert != "CA-PEM" || got.TLSCert != "CERT-PEM" || got.TLSKey != "KEY-PEM" {
		t.Fatalf("TLS material not handed over: %v", got)
	}
	answer = taskspec.Secrets{TLSCACert: "CA-PEM"}
	if _, err := withSecrets(inner, "consul-server-0__1", srv.Client())(ctx, spec, consulagent.Env{}, zap.NewNop()); err == nil {
		t.Fatal("a server started without its certificate")
	}
	spec.Role = taskspec.RoleClient
	if _, err := withSecrets(inner, "consul-client-x__1", srv.Client())(ctx, spec, consulagent.Env{}, zap.NewNop()); err != nil {
		t.Fatalf("a client needs the CA only: %v", err)
	}
}
