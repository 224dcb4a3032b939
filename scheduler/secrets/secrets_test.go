package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
)

var errNotFound = errors.New("not found")

type memStore struct {
	m    map[string][]byte
	puts int
	fail error
}

func (s *memStore) Get(_ context.Context, k string) ([]byte, error) {
	v, ok := s.m[k]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", k, errNotFound)
	}
	return v, nil
}

func (s *memStore) Put(_ context.Context, k string, v []byte) error {
	if s.fail != nil {
		return s.fail
	}
	s.puts++
	s.m[k] = append([]byte(nil), v...)
	return nil
}

func TestLoadOrCreateGeneratesOnceAndKeeps(t *testing.T) {
	st := &memStore{m: map[string][]byte{}}
	a, err := LoadOrCreate(context.Background(), st, nil, errNotFound)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Complete() || st.puts != 1 {
		t.Fatalf("complete=%v puts=%d", a.Complete(), st.puts)
	}
	if err := taskspec.ValidGossipKey(a.GossipKey()); err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreate(context.Background(), st, nil, errNotFound)
	if err != nil {
		t.Fatal(err)
	}
	if st.puts != 1 || b.GossipKey() != a.GossipKey() || b.OperatorToken != a.OperatorToken || !bytes.Equal(a.ExecutorKey, b.ExecutorKey) {
		t.Fatalf("second load changed the secrets (puts %d)", st.puts)
	}
}

func TestLoadOrCreateFailsWithoutWriting(t *testing.T) {
	st := &memStore{m: map[string][]byte{}, fail: errors.New("disk full")}
	if _, err := LoadOrCreate(context.Background(), st, nil, errNotFound); err == nil {
		t.Fatal("a failed write must fail the load: no secret may be handed out before it is stored")
	}
	st = &memStore{m: map[string][]byte{Key: []byte(`{"gossip_keys": ["c2VjcmV0LWJ1dC1iYWQ="]`)}}
	_, err := LoadOrCreate(context.Background(), st, nil, errNotFound)
	if err == nil || st.puts != 0 {
		t.Fatalf("a broken document must be refused, never replaced: %v, puts %d", err, st.puts)
	}
	if strings.Contains(err.Error(), "c2VjcmV0") {
		t.Fatalf("the error shows the stored secret: %v", err)
	}
}

func TestSecretsNeverFormat(t *testing.T) {
	s, _, err := Fill(Secrets{}, strings.NewReader(strings.Repeat("k", 200)))
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s)} {
		if strings.Contains(out, s.GossipKey()) || strings.Contains(out, s.OperatorToken) {
			t.Fatalf("formatted secrets show a secret: %s", out)
		}
	}
}

func TestExecutorHandler(t *testing.T) {
	s, _, _ := Fill(Secrets{}, nil2rand())
	h := NewHolder(s)
	live := map[string]bool{"consul-server-0__a": true}
	srv := httptest.NewServer(ExecutorHandler(h, func(id string) (bool, Needs) { return live[id], Needs{Gossip: true} }))
	defer srv.Close()
	get := func(id, tok string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+taskspec.SecretsPath+"?task_id="+id, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	code, body := get("consul-server-0__a", s.Credential("consul-server-0__a"))
	var got taskspec.Secrets
	if code != 200 || json.Unmarshal([]byte(body), &got) != nil || got.GossipKey != s.GossipKey() {
		t.Fatalf("live task with its credential: %d %s", code, body)
	}
	for _, tc := range []struct {
		id, tok string
		want    int
	}{
		{"consul-server-0__a", "", 401},
		{"consul-server-0__a", s.Credential("consul-server-0__b"), 403}, // another task's credential
		{"consul-server-0__b", s.Credential("consul-server-0__b"), 403}, // a task that is not live
		{"consul-server-0__a", s.OperatorToken, 403},
	} {
		code, body := get(tc.id, tc.tok)
		if code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.id, code, body, tc.want)
		}
		if strings.Contains(body, s.GossipKey()) {
			t.Errorf("%s: refusal shows the key", tc.id)
		}
	}
}

func TestRequireOperator(t *testing.T) {
	s, _, _ := Fill(Secrets{}, nil2rand())
	calls := 0
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls++ })
	srv := httptest.NewServer(RequireOperator(NewHolder(s), next, "/open/"))
	defer srv.Close()
	do := func(method, path, auth string) int {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		for _, auth := range []string{"", "Bearer nope", "token=nope", "Basic " + s.OperatorToken} {
			if c := do(m, "/v1/pod/consul-server-0/replace", auth); c != 401 {
				t.Errorf("%s with %q: %d, want 401", m, auth, c)
			}
		}
	}
	if calls != 0 {
		t.Fatalf("refused requests reached the API %d times", calls)
	}
	for _, auth := range []string{"Bearer " + s.OperatorToken, "token=" + s.OperatorToken} {
		if c := do(http.MethodPost, "/v1/pod/consul-server-0/replace", auth); c != 200 {
			t.Errorf("POST with the operator token (%s...): %d", auth[:6], c)
		}
	}
	if c := do(http.MethodGet, "/v1/pod", ""); c != 200 {
		t.Errorf("GET without a token: %d, want 200 (reads stay open)", c)
	}
	if c := do(http.MethodPost, "/open/x", ""); c != 200 {
		t.Errorf("exempt path: %d", c)
	}
	if calls != 4 {
		t.Fatalf("calls %d, want 4", calls)
	}
}

func nil2rand() *bytes.Reader {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return bytes.NewReader(b)
}

func TestRotationSteps(t *testing.T) {
	s, _, _ := Fill(Secrets{}, nil2rand())
	old := s.GossipKey()
	r1, changed, err := BeginRotation(s, nil)
	if err != nil || !changed || r1.RotatingTo == "" || r1.GossipKey() != old || len(r1.GossipKeys) != 2 {
		t.Fatalf("begin: %v %v %d keys", changed, err, len(r1.GossipKeys))
	}
	// A second call resumes the same rotation.
	r2, changed, _ := BeginRotation(r1, nil)
	if changed || r2.RotatingTo != r1.RotatingTo {
		t.Fatal("a pending rotation was not resumed")
	}
	p := PromoteRotation(r2)
	if p.GossipKey() != r1.RotatingTo || len(p.GossipKeys) != 2 || p.GossipKeys[1] != old {
		t.Fatalf("promote: %d keys", len(p.GossipKeys))
	}
	if again := PromoteRotation(p); again.GossipKey() != p.GossipKey() || len(again.GossipKeys) != 2 {
		t.Fatal("promote is not idempotent")
	}
	f := FinishRotation(p)
	if f.GossipKey() != r1.RotatingTo || len(f.GossipKeys) != 1 || f.RotatingTo != "" {
		t.Fatalf("finish: %d keys", len(f.GossipKeys))
	}
	if n, _ := s.ForTask(Needs{Gossip: true}, nil, time.Now()); len(n.GossipKeys) != 1 || n.ACLAgentToken != "" {
		t.Fatal("ForTask gives more than the task uses")
	}
	if n, _ := r1.ForTask(Needs{ACL: true}, nil, time.Now()); n.GossipKey != "" || n.ACLAgentToken == "" {
		t.Fatal("ForTask with ACLs only")
	}
}

func TestForTaskTLS(t *testing.T) {
	st := &memStore{m: map[string][]byte{}}
	s, err := LoadOrCreate(context.Background(), st, nil, errNotFound)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CA.Parse(time.Now()); err != nil {
		t.Fatalf("no usable CA generated with the other secrets: %v", err)
	}
	again, _ := LoadOrCreate(context.Background(), st, nil, errNotFound)
	if again.CA.CertPEM != s.CA.CertPEM {
		t.Fatal("the CA was generated again")
	}
	cl, err := s.ForTask(Needs{TLS: true}, nil, time.Now())
	if err != nil || cl.TLSCACert != s.CA.CertPEM || cl.TLSCert != "" || cl.TLSKey != "" {
		t.Fatalf("a client gets the CA certificate only: %v", err)
	}
	sv, err := s.ForTask(Needs{TLS: true, Server: &pki.ServerRequest{Datacenter: "dc1", Hosts: []string{"10.1.1.1"}}}, nil, time.Now())
	if err != nil || sv.TLSCert == "" || sv.TLSKey == "" {
		t.Fatalf("a server gets a certificate: %v", err)
	}
	if fmt.Sprint(sv)+fmt.Sprintf("%#v", sv) != "task-secrets{redacted}task-secrets{redacted}" {
		t.Error("task secrets print their content")
	}
	if n, _ := s.ForTask(Needs{Gossip: true}, nil, time.Now()); n.TLSCACert != "" {
		t.Error("TLS material for a task without TLS")
	}
	// A user's CA replaces the generated one, and is not stored.
	user, _ := pki.NewCA(nil, "user", time.Now())
	s.UserCA = user
	if sv, _ := s.ForTask(Needs{TLS: true, Server: &pki.ServerRequest{Datacenter: "dc1"}}, nil, time.Now()); sv.TLSCACert != user.CertPEM {
		t.Error("the user's CA is not the one handed out")
	}
	b, _ := json.Marshal(s)
	if strings.Contains(string(b), "user") || bytes.Contains(b, []byte(strings.Split(user.KeyPEM, "\n")[1])) {
		t.Error("the user's CA is serialised")
	}
}

func TestCAHandler(t *testing.T) {
	ca, _ := pki.NewCA(nil, "t", time.Now())
	h := NewHolder(Secrets{CA: ca})
	on := false
	srv := httptest.NewServer(CAHandler(h, func() bool { return on }))
	defer srv.Close()
	get := func() (int, string) {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, _ := get(); code != http.StatusNotFound {
		t.Fatalf("TLS off: %d, want 404", code)
	}
	on = true
	code, body := get()
	if code != http.StatusOK || body != ca.CertPEM || strings.Contains(body, "PRIVATE") {
		t.Fatalf("TLS on: %d %q", code, body)
	}
}

// TestManagementRotationSteps: the new secret is chosen once (a second
// begin resumes it), promoted over the old one, which is kept until the
// old token is deleted; every step's document keeps a working token.
func TestManagementRotationSteps(t *testing.T) {
	s, _, _ := Fill(Secrets{}, nil2rand())
	old := s.ManagementToken
	b, changed, err := BeginManagementRotation(s, nil)
	if err != nil || !changed || b.ManagementNext == "" || b.ManagementNext == old || b.ManagementToken != old {
		t.Fatalf("begin: %v %v", changed, err)
	}
	if again, changed, _ := BeginManagementRotation(b, nil); changed || again.ManagementNext != b.ManagementNext {
		t.Fatal("a pending rotation was not resumed")
	}
	p := PromoteManagement(b)
	if p.ManagementToken != b.ManagementNext || p.ManagementOld != old || p.ManagementNext != "" {
		t.Fatal("promote")
	}
	if again := PromoteManagement(p); again.ManagementToken != p.ManagementToken || again.ManagementOld != old {
		t.Fatal("promote is not idempotent")
	}
	if again, changed, _ := BeginManagementRotation(p, nil); changed || again.ManagementNext != "" || again.ManagementOld != old {
		t.Fatal("a rotation waiting for its old token's deletion was restarted")
	}
	f := FinishManagement(p)
	if f.ManagementToken != b.ManagementNext || f.ManagementOld != "" || !f.Complete() {
		t.Fatal("finish")
	}
	if fmt.Sprint(f) != "secrets{redacted}" {
		t.Fatal("a Secrets formats its fields")
	}
}
