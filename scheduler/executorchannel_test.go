package scheduler

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

func TestPlainExecutorVerdict(t *testing.T) {
	tasks := []state.Task{
		{Name: "consul-server-0", TaskID: "consul-server-0__old"},                                           // launched before the channel
		{Name: "consul-server-1", TaskID: "consul-server-1__new", ExecutorTLS: true},                        // launched with it
		{Name: "consul-server-2", TaskID: "consul-server-2__adopted", Adopted: "running task"},              // adopted after lost state
		{Name: "consul-client-x", TaskID: "consul-client-x__new", ExecutorTLS: true, State: "TASK_RUNNING"}, // a client
	}
	const u = "https://10.0.0.1:9443"
	for name, tc := range map[string]struct {
		path, id string
		operator bool
		want     bool
	}{
		"not an executor route":                    {"/v1/plans", "", false, true},
		"an older task's secrets":                  {taskspec.SecretsPath, "consul-server-0__old", false, true},
		"an older task's snapshot copies":          {"/v1/executor/snapshots/x.snap", "consul-server-0__old", false, true},
		"a new task's secrets":                     {taskspec.SecretsPath, "consul-server-1__new", false, false},
		"a new task's secrets copy":                {taskspec.SecretsCopyPath, "consul-server-1__new", false, false},
		"an adopted task's secrets copy":           {taskspec.SecretsCopyPath, "consul-server-2__adopted", false, false},
		"an unknown task":                          {taskspec.SecretsPath, "consul-server-9__x", false, false},
		"no task ID":                               {taskspec.SecretsPath, "", false, false},
		"the operator presenting a copy":           {taskspec.SecretsCopyPath, "", true, true},
		"the operator on another executor route":   {taskspec.SecretsPath, "", true, false},
		"an unclean path into the executor routes": {"/v1/executor/../executor/secrets", "consul-server-1__new", false, false},
		"the bare prefix":                          {"/v1/executor", "consul-server-1__new", false, false},
	} {
		t.Run(name, func(t *testing.T) {
			ok, why := plainExecutorVerdict(tc.path, tc.id, tc.operator, tasks, u)
			if ok != tc.want {
				t.Fatalf("verdict %v (%s), want %v", ok, why, tc.want)
			}
			if !ok && !strings.Contains(why, u) {
				t.Fatalf("the refusal does not name the TLS channel: %s", why)
			}
		})
	}
}

func TestMessageChannel(t *testing.T) {
	if u, ca := messageChannel(true, "https://h:1", "CA", "http://h:2"); u != "https://h:1" || ca != "CA" {
		t.Errorf("a task on the TLS channel: %s %q", u, ca)
	}
	if u, ca := messageChannel(false, "https://h:1", "CA", "http://h:2"); u != "http://h:2" || ca != "" {
		t.Errorf("an older task: %s %q", u, ca)
	}
	if u, _ := messageChannel(true, "", "", "http://h:2"); u != "http://h:2" {
		t.Errorf("no channel (tests without listeners): %s", u)
	}
	if !onTLSChannel(state.Task{Adopted: "x"}) || onTLSChannel(state.Task{}) || !onTLSChannel(state.Task{ExecutorTLS: true}) {
		t.Error("onTLSChannel")
	}
}

func TestChannelCertDue(t *testing.T) {
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	nb, na := now.Add(-time.Hour), now.Add(30*24*time.Hour)
	if due, _ := channelCertDue(false, "", "a", nb, na, now); !due {
		t.Error("no certificate: not due")
	}
	if due, why := channelCertDue(true, "a", "b", nb, na, now); !due || !strings.Contains(why, "CA changed") {
		t.Error("another CA: not due")
	}
	if due, _ := channelCertDue(true, "a", "a", nb, na, now); due {
		t.Error("a fresh certificate is due")
	}
	if due, _ := channelCertDue(true, "a", "a", nb, na, na.Add(-time.Hour)); !due {
		t.Error("a certificate an hour before expiry is not due")
	}
}

// The running scheduler serves the executor routes on its TLS listener,
// with a certificate for the advertised address that verifies against
// the service's CA (and no other), serves nothing else there, and
// refuses a new task's executor routes on the plain API while it still
// answers a task launched before the channel.
func TestExecutorChannelListeners(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.MesosMaster = "http://127.0.0.1:1" // nothing there: the loop waits in its backoff
	cfg.ExecutorURI = "http://127.0.0.1:1/dcos-consul"
	st := newMemStore()
	old := state.Task{Name: "consul-client-0", Role: taskspec.RoleClient, TaskID: "consul-client-0__old", State: "TASK_RUNNING", AgentID: "a1", IP: "127.0.0.1"}
	cur := state.Task{Name: "consul-client-1", Role: taskspec.RoleClient, TaskID: "consul-client-1__new", State: "TASK_RUNNING", AgentID: "a2", IP: "127.0.0.1", ExecutorTLS: true}
	for _, r := range []state.Task{old, cur} {
		if err := putJSON(context.Background(), st, taskKey(r.Name), r); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan *Scheduler, 1)
	done := make(chan error, 1)
	go func() {
		done <- RunWith(ctx, cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), Options{Store: st, Listener: ln,
			onStart: func(s *Scheduler) { started <- s }})
	}()
	var s *Scheduler
	select {
	case s = <-started:
	case <-time.After(time.Minute):
		t.Fatal("the scheduler did not start")
	}
	defer func() {
		cancel()
		<-done
	}()
	httpsURL, sec := s.opts.executorURL, s.secrets.Get()
	if !strings.HasPrefix(httpsURL, "https://127.0.0.1:") {
		t.Fatalf("executor channel URL %q", httpsURL)
	}
	access := s.secretsAccess()
	if access.URL != httpsURL || access.CACert == nil || access.CACert() != sec.ActiveCA().CertPEM {
		t.Fatalf("launches hand out %q and the CA %v", access.URL, access.CACert != nil)
	}
	pool, err := pki.Pool(sec.ActiveCA().CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	tlsClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(c *http.Client, base, p, id string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+p+"?task_id="+id, nil)
		req.Header.Set("Authorization", "Bearer "+sec.Credential(id))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s%s: %v", base, p, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// The TLS listener: the secrets of a new task (and of an older one:
	// the channel is the channel), nothing but executor routes.
	for _, id := range []string{cur.TaskID, old.TaskID} {
		code, body := get(tlsClient, httpsURL, taskspec.SecretsPath, id)
		var got taskspec.Secrets
		if code != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil || got.GossipKey == "" || got.ACLAgentToken == "" {
			t.Fatalf("secrets of %s over TLS: %d (gossip key %v)", id, code, got.GossipKey != "")
		}
	}
	if code, _ := get(tlsClient, httpsURL, "/v1/plans", ""); code != http.StatusNotFound {
		t.Errorf("the TLS listener answers /v1/plans with %d, want 404", code)
	}
	// Its certificate verifies against the service's CA only.
	other, _ := pki.NewCA(nil, "another", time.Now())
	otherPool, _ := pki.Pool(other.CertPEM)
	bad := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: otherPool}}}
	if _, err := bad.Get(httpsURL + taskspec.SecretsPath); err == nil {
		t.Error("the channel's certificate verifies against another CA")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("handshake with another CA: %v", err)
	}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(httpsURL, "https://"), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "server.dc1.consul"}); err == nil {
		t.Error("the channel's certificate passes for a Consul server")
	}

	// The plain API: the older task only.
	plain := "http://" + ln.Addr().String()
	if code, body := get(http.DefaultClient, plain, taskspec.SecretsPath, cur.TaskID); code != http.StatusForbidden || !strings.Contains(body, httpsURL) {
		t.Errorf("a new task's secrets over plain HTTP: %d %s", code, body)
	} else if strings.Contains(body, sec.GossipKey()) {
		t.Error("the refusal holds the gossip key")
	}
	if code, _ := get(http.DefaultClient, plain, taskspec.SecretsPath, old.TaskID); code != http.StatusOK {
		t.Errorf("an older task's secrets over plain HTTP: %d, want 200 (tasks running across the upgrade)", code)
	}
	if code, _ := get(http.DefaultClient, plain, "/v1/health", ""); code >= 400 {
		t.Errorf("the plain API's /v1/health: %d", code)
	}
}
