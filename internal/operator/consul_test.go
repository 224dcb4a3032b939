package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// fakeConsul answers per address; addresses not in ok fail.
type fakeConsul struct {
	mu      sync.Mutex
	asked   []string
	members map[string][]Member
	peers   map[string][]Peer // fresh answers
	stale   map[string][]Peer // answers only with stale
	deny    bool              // ACLs on, no token: 403
}

func (f *fakeConsul) Members(_ context.Context, addr string) ([]Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, "members "+addr)
	if m, ok := f.members[addr]; ok {
		return m, nil
	}
	return nil, errors.New("connection refused")
}

func (f *fakeConsul) RaftPeers(_ context.Context, addr string, stale bool) ([]Peer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, fmt.Sprintf("peers %s stale=%t", addr, stale))
	if p, ok := f.peers[addr]; ok {
		return append([]Peer(nil), p...), nil
	}
	if p, ok := f.stale[addr]; ok && stale {
		return append([]Peer(nil), p...), nil
	}
	if f.deny {
		return nil, errors.New("Unexpected response code: 403 (Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission 'operator:read')")
	}
	return nil, errors.New("Unexpected response code: 500 (No cluster leader)")
}

// The servers come from the scheduler's https endpoint (TLS is on by
// default: no http endpoint); the first that answers is used.
func TestMembersThroughScheduler(t *testing.T) {
	s := startScheduler(t)
	v := testView()
	v.Tasks[1].State = "TASK_RUNNING" // consul-server-1 at 10.0.0.2
	s.sched.view = v
	fc := &fakeConsul{members: map[string][]Member{"https://10.0.0.2:8501": {
		{Name: "consul-client-s2", Address: "10.0.0.3:8301", Status: "alive", Role: "client", Datacenter: "dc1"},
		{Name: "consul-server-1", Address: "10.0.0.2:8301", Status: "alive", Role: "server", Datacenter: "dc1", Build: "1.16.1"},
		{Name: "consul-server-0", Address: "10.0.0.1:8301", Status: "failed", Role: "server", Datacenter: "dc1", Build: "1.16.1"},
	}}}
	c, out := commands(t, s.URL, false)
	c.Consul = fc
	if err := c.Members(ctx); err != nil {
		t.Fatal(err)
	}
	expect(t, out.String(), `NAME              ADDRESS        STATUS  ROLE    DC   BUILD
consul-server-0   10.0.0.1:8301  failed  server  dc1  1.16.1
consul-server-1   10.0.0.2:8301  alive   server  dc1  1.16.1
consul-client-s2  10.0.0.3:8301  alive   client  dc1  -
`)
	if fmt.Sprint(fc.asked) != "[members https://10.0.0.1:8501 members https://10.0.0.2:8501]" {
		t.Fatalf("asked %v", fc.asked)
	}
	out.Reset()
	c.JSON = true
	if err := c.Members(ctx); err != nil {
		t.Fatal(err)
	}
	var ms []Member
	if err := json.Unmarshal(out.Bytes(), &ms); err != nil || len(ms) != 3 || ms[0].Name != "consul-server-0" {
		t.Fatalf("%v %s", err, out)
	}
}

func TestRaftPeers(t *testing.T) {
	s := startScheduler(t)
	peers := []Peer{ // as Consul orders them: not by name
		{Node: "consul-server-1", ID: "id-1", Address: "10.0.0.2:8300", Voter: true},
		{Node: "consul-server-0", ID: "id-0", Address: "10.0.0.1:8300", Leader: true, Voter: true},
	}
	fc := &fakeConsul{peers: map[string][]Peer{"https://10.0.0.1:8501": peers}}
	c, out := commands(t, s.URL, false)
	c.Consul = fc
	if err := c.RaftPeers(ctx); err != nil {
		t.Fatal(err)
	}
	expect(t, out.String(), `NODE             ID    ADDRESS        LEADER  VOTER
consul-server-0  id-0  10.0.0.1:8300  true    true
consul-server-1  id-1  10.0.0.2:8300  false   true
`)

	// No leader: the stale view, with a warning on Err.
	fc = &fakeConsul{stale: map[string][]Peer{"https://10.0.0.1:8501": peers[:1]}}
	var warn bytes.Buffer
	c, out = commands(t, s.URL, false)
	c.Consul, c.Err = fc, &warn
	if err := c.RaftPeers(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(warn.String(), "no server answered through a raft leader; this is https://10.0.0.1:8501's own view") ||
		!strings.Contains(warn.String(), "No cluster leader") || !strings.Contains(out.String(), "consul-server-1") {
		t.Fatalf("warn %q out %q", warn.String(), out.String())
	}
}

func TestConsulErrors(t *testing.T) {
	s := startScheduler(t)
	c, _ := commands(t, s.URL, false)
	c.Consul = &fakeConsul{}
	err := c.Members(ctx)
	if err == nil || !strings.Contains(err.Error(), "no Consul server answered:\n  https://10.0.0.1:8501: connection refused") ||
		!strings.Contains(err.Error(), "--consul") {
		t.Fatalf("%v", err)
	}
	// --consul overrides the scheduler's list.
	fc := &fakeConsul{members: map[string][]Member{"127.0.0.1:8500": {}}}
	c.Consul, c.ConsulAddr = fc, "127.0.0.1:8500"
	if err := c.Members(ctx); err != nil || fmt.Sprint(fc.asked) != "[members 127.0.0.1:8500]" {
		t.Fatalf("%v %v", err, fc.asked)
	}
	// ACLs on and no CONSUL_HTTP_TOKEN: the error says which token to set.
	c.Consul, c.ConsulAddr = &fakeConsul{deny: true}, ""
	if err := c.RaftPeers(ctx); err == nil || !strings.Contains(err.Error(), "403") ||
		!strings.Contains(err.Error(), "CONSUL_HTTP_TOKEN_FILE") || !strings.Contains(err.Error(), "acl management-token") {
		t.Fatalf("%v", err)
	}
	// No server running.
	v := testView()
	v.Tasks = v.Tasks[2:3]
	s.sched.view = v
	c.ConsulAddr = ""
	if err := c.RaftPeers(ctx); err == nil || !strings.Contains(err.Error(), "no Consul server is running yet") {
		t.Fatalf("%v", err)
	}
}

// HTTPConsul reads Consul's own JSON (written here from consul/api's types).
func TestHTTPConsul(t *testing.T) {
	var gotStale []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Consul-Token") != "secret" {
			http.Error(w, "ACL not found", http.StatusForbidden)
			return
		}
		switch r.URL.Path {
		case "/v1/agent/members":
			_ = json.NewEncoder(w).Encode([]consulapi.AgentMember{
				{Name: "consul-server-0", Addr: "10.0.0.1", Port: 8301, Status: 1,
					Tags: map[string]string{"role": "consul", "dc": "dc1", "build": "1.16.1:e0ab4d29"}},
				{Name: "consul-client-s2", Addr: "10.0.0.3", Port: 8301, Status: 4, Tags: map[string]string{"role": "node", "dc": "dc1"}},
				{Name: "odd", Addr: "10.0.0.9", Port: 8301, Status: 9},
			})
		case "/v1/operator/raft/configuration":
			_, stale := r.URL.Query()["stale"]
			gotStale = append(gotStale, fmt.Sprint(stale))
			_ = json.NewEncoder(w).Encode(consulapi.RaftConfiguration{Servers: []*consulapi.RaftServer{
				{ID: "id-0", Node: "consul-server-0", Address: "10.0.0.1:8300", Leader: true, Voter: true},
			}})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	t.Setenv("CONSUL_HTTP_TOKEN", "secret")
	h := HTTPConsul{}
	ms, err := h.Members(ctx, strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Member{
		{Name: "consul-server-0", Address: "10.0.0.1:8301", Status: "alive", Role: "server", Datacenter: "dc1", Build: "1.16.1"},
		{Name: "consul-client-s2", Address: "10.0.0.3:8301", Status: "failed", Role: "client", Datacenter: "dc1"},
		{Name: "odd", Address: "10.0.0.9:8301", Status: "status-9"},
	}
	if fmt.Sprint(ms) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", ms, want)
	}
	for _, stale := range []bool{false, true} {
		ps, err := h.RaftPeers(ctx, srv.URL, stale) // a URL works too
		if err != nil || len(ps) != 1 || ps[0] != (Peer{Node: "consul-server-0", ID: "id-0", Address: "10.0.0.1:8300", Leader: true, Voter: true}) {
			t.Fatalf("%v %v", ps, err)
		}
	}
	if fmt.Sprint(gotStale) != "[false true]" {
		t.Fatalf("stale flags %v", gotStale)
	}
	t.Setenv("CONSUL_HTTP_TOKEN", "wrong")
	if _, err := h.Members(ctx, srv.URL); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("%v", err)
	}
}

// Ctrl-C (a cancelled context) ends a members call that Consul does not
// answer, before the client's own timeout.
func TestHTTPConsulMembersCancelled(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	cctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := HTTPConsul{Timeout: time.Minute}.Members(cctx, srv.URL)
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("members did not return after cancel")
	}
}

// TestHTTPSServersVerifiedWithTheSchedulersCA: with TLS the scheduler lists
// no http endpoint; the commands ask the servers of its https endpoint over
// HTTPS, verified against the CA it serves as PEM at /v1/tls/ca (not
// JSON: the API client must take it as it is). Without that CA the same
// server fails verification.
func TestHTTPSServersVerifiedWithTheSchedulersCA(t *testing.T) {
	consul := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/agent/members" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`[{"Name": "consul-server-0", "Addr": "127.0.0.1", "Port": 8301, "Status": 1, "Tags": {"role": "consul", "dc": "dc1", "build": "1.16.1:"}}]`))
	}))
	defer consul.Close()
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: consul.Certificate().Raw}))
	servePEM := true
	sched := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/endpoints/https":
			_ = json.NewEncoder(w).Encode(map[string][]string{"servers": {strings.TrimPrefix(consul.URL, "https://")}})
		case "/v1/tls/ca":
			if !servePEM {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/x-pem-file")
			_, _ = w.Write([]byte(caPEM))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message": "not found"}`))
		}
	}))
	defer sched.Close()

	c, out := commands(t, sched.URL, false)
	c.Consul = HTTPConsul{Timeout: 10 * time.Second}
	if err := c.Members(ctx); err != nil {
		t.Fatalf("members over HTTPS with the scheduler's CA: %v", err)
	}
	if !strings.Contains(out.String(), "consul-server-0") {
		t.Fatalf("members: %s", out)
	}
	servePEM = false
	c, _ = commands(t, sched.URL, false)
	c.Consul = HTTPConsul{Timeout: 10 * time.Second}
	if err := c.Members(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("members without the CA: %v, want a verification error", err)
	}
}

// TestTLSCAPrintsTheSchedulersCA: `tls ca` prints the PEM the scheduler
// serves at /v1/tls/ca as it is, and fails on a 404 (TLS off).
func TestTLSCAPrintsTheSchedulersCA(t *testing.T) {
	const caPEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	serve := true
	sched := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/tls/ca" || !serve {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message": "TLS is off for this service (security.tls.enabled)"}`))
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write([]byte(caPEM))
	}))
	defer sched.Close()
	c, out := commands(t, sched.URL, false)
	if err := c.TLSCA(ctx); err != nil || out.String() != caPEM {
		t.Fatalf("tls ca: %v, printed %q", err, out)
	}
	serve = false
	c, _ = commands(t, sched.URL, false)
	if err := c.TLSCA(ctx); err == nil || !strings.Contains(err.Error(), "TLS is off") {
		t.Fatalf("tls ca with TLS off: %v", err)
	}
}
