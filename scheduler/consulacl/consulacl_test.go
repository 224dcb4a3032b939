package consulacl

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/executor/consulagent"
	"github.com/dcos-consul/dcos-consul/internal/freeport"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

var tokens = Tokens{
	Management: "0b8e1b53-1f0e-4a8f-9c52-7e2c0f6f1a01",
	Scheduler:  "1c9f2c64-2a1f-4b90-8d63-8f3d1a7a2b02",
	Agent:      "2da03d75-3b2a-4ca1-9e74-903e2b8b3c03",
}

// TestBootstrapOnARealServer: a server started as the executor starts one
// with ACLs; Bootstrap is idempotent (run twice, and again as after a
// crash); afterwards anonymous KV reads are denied, DNS still answers, the
// management token can do everything and the scheduler's token what it
// needs.
func TestBootstrapOnARealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Consul server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addr, dnsAddr := startACLServer(ctx, t, "127.3.1.10")
	var err error
	var done []string
	deadline := time.Now().Add(time.Minute)
	for {
		done, err = Bootstrap(ctx, addr, tokens)
		if err == nil {
			break
		}
		if strings.Contains(err.Error(), tokens.Management) {
			t.Fatalf("error shows the token: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	t.Logf("first run: %v", done)
	if len(done) < 5 {
		t.Fatalf("first run did %v, want bootstrap, 3 policies, 2 tokens, anonymous", done)
	}
	for i := 0; i < 2; i++ {
		again, err := Bootstrap(ctx, addr, tokens)
		if err != nil || len(again) != 0 {
			t.Fatalf("run %d: %v %v, want nothing to do", i+2, again, err)
		}
	}
	// Another management secret cannot take over a bootstrapped cluster.
	other := tokens
	other.Management = "3eb14e86-4c3b-4db2-8f85-a14f3c9c4d04"
	if _, err := Bootstrap(ctx, addr, other); err == nil {
		t.Fatal("a second management secret was accepted")
	}

	anon, _ := Client(addr, "")
	if _, err := anon.KV().Put(&consulapi.KVPair{Key: "x", Value: []byte("1")}, nil); !forbidden(err) {
		t.Fatalf("anonymous KV write: %v, want 403", err)
	}
	if _, _, err := anon.KV().Get("x", nil); !forbidden(err) {
		mgmt, _ := Client(addr, tokens.Management)
		if _, err := mgmt.KV().Put(&consulapi.KVPair{Key: "x", Value: []byte("1")}, nil); err != nil {
			t.Fatal(err)
		}
		if p, _, err := anon.KV().Get("x", nil); err == nil && p != nil {
			t.Fatalf("anonymous KV read got the value")
		}
	}
	mgmt, _ := Client(addr, tokens.Management)
	if _, err := mgmt.KV().Put(&consulapi.KVPair{Key: "x", Value: []byte("1")}, nil); err != nil {
		t.Fatalf("management KV write: %v", err)
	}
	if p, _, err := anon.KV().Get("x", nil); err == nil && p != nil {
		t.Fatal("anonymous KV read got the value")
	} else if err != nil && !forbidden(err) {
		t.Fatalf("anonymous KV read: %v", err)
	}
	sched, _ := Client(addr, tokens.Scheduler)
	if _, err := sched.Operator().RaftGetConfiguration(nil); err != nil {
		t.Fatalf("scheduler token: raft configuration: %v", err)
	}
	if _, err := sched.Operator().AutopilotServerHealth(nil); err != nil {
		t.Fatalf("scheduler token: autopilot health: %v", err)
	}
	if _, err := sched.Operator().KeyringList(nil); err != nil {
		t.Fatalf("scheduler token: keyring: %v", err)
	}
	if _, err := sched.KV().Put(&consulapi.KVPair{Key: "y", Value: []byte("1")}, nil); !forbidden(err) {
		t.Fatalf("scheduler token KV write: %v, want 403 (it has only the rights it uses)", err)
	}
	// The server registered itself with the agent token: DNS answers
	// anonymous clients for its node and the consul service.
	// Snapshots need acl:write (Consul 1.16): the scheduler takes them
	// with the management token; its own token is refused.
	if _, _, err := sched.Snapshot().Save(nil); !forbidden(err) {
		t.Fatalf("scheduler token snapshot: %v, want 403", err)
	}
	r, _, err := mgmt.Snapshot().Save(nil)
	if err != nil {
		t.Fatalf("management token snapshot: %v", err)
	}
	r.Close()
	// The server registered itself with the agent token: DNS answers
	// anonymous clients for its node and the consul service.
	eventuallyDNS(t, dnsAddr, "consul.service.consul.")
	eventuallyDNS(t, dnsAddr, "acl-server.node.consul.")
}

// startACLServer starts a one-server cluster on ip as the executor starts
// one with ACLs (the agent token in its configuration) and returns its
// HTTP and DNS addresses once it runs.
func startACLServer(ctx context.Context, t *testing.T, ip string) (httpAddr, dnsAddr string) {
	t.Helper()
	ports := freePorts(t, ip, 4)
	spec := taskspec.Spec{Version: taskspec.Version, Role: taskspec.RoleServer, NodeName: "acl-server", Datacenter: "dc1",
		BootstrapExpect: 1, DataDir: "consul-data", LogLevel: "WARN", RaftMultiplier: 1,
		Ports: taskspec.Ports{Server: ports[0], SerfLAN: ports[1], SerfWAN: -1, HTTP: ports[2], HTTPS: -1, GRPC: -1, DNS: ports[3]},
		ACL:   true, GossipEncryption: true, Secrets: &taskspec.SecretsRef{URL: "http://127.0.0.1:1", Token: "x"}}
	a, err := consulagent.Start(context.Background(), spec, consulagent.Env{BindIP: ip, Sandbox: t.TempDir(), ACLAgentToken: tokens.Agent,
		GossipKey: "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	if err := a.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(ip, strconv.Itoa(ports[2])), net.JoinHostPort(ip, strconv.Itoa(ports[3]))
}

// TestBootstrapKilledAtEveryStep is issue 10's "the management token works
// after a scheduler SIGKILL at every step of the bootstrap". The scheduler
// keeps no progress of its own (the tokens are stored before the first
// step), and each step is one Consul write at most, so a kill leaves
// Consul as after a prefix of the steps (the last one perhaps applied
// without its answer read). For every prefix, on a fresh real server: the
// prefix runs, then the bootstrap of the next scheduler from the start;
// it must succeed, leave every token working, and a further run must find
// nothing to do.
func TestBootstrapKilledAtEveryStep(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real Consul servers")
	}
	steps := Steps()
	for k := 0; k <= len(steps); k++ {
		what := "before the first step"
		if k > 0 {
			what = "after step " + strconv.Itoa(k) + " (" + steps[k-1].Name + ")"
		}
		t.Run("killed "+what, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			addr, _ := startACLServer(ctx, t, "127.3.2."+strconv.Itoa(10+k))
			// The killed scheduler: the first k steps (retried until the
			// server has a leader, as the scheduler's loop does).
			eventuallyOK(t, func() error { _, err := Run(ctx, addr, tokens, steps[:k]); return err })
			// The next scheduler: the whole bootstrap, from the start.
			var done []string
			eventuallyOK(t, func() (err error) { done, err = Bootstrap(ctx, addr, tokens); return err })
			t.Logf("the next scheduler did %v", done)
			if k == len(steps) && len(done) != 0 {
				t.Errorf("after a complete bootstrap the next one did %v", done)
			}
			if again, err := Bootstrap(ctx, addr, tokens); err != nil || len(again) != 0 {
				t.Fatalf("a further run: %v %v, want nothing to do", again, err)
			}
			checkTokens(t, addr)
		})
	}
}

// checkTokens: the management token writes, the scheduler's reads the raft
// configuration and lists the keyring, the agent's reads itself, anonymous
// KV reads are refused and the anonymous token has the DNS policy.
func checkTokens(t *testing.T, addr string) {
	t.Helper()
	mgmt, _ := Client(addr, tokens.Management)
	if _, err := mgmt.KV().Put(&consulapi.KVPair{Key: "k", Value: []byte("v")}, nil); err != nil {
		t.Fatalf("the management token: %v", err)
	}
	sched, _ := Client(addr, tokens.Scheduler)
	if _, err := sched.Operator().RaftGetConfiguration(nil); err != nil {
		t.Fatalf("the scheduler token: %v", err)
	}
	if _, err := sched.Operator().KeyringList(nil); err != nil {
		t.Fatalf("the scheduler token: keyring: %v", err)
	}
	agent, _ := Client(addr, tokens.Agent)
	if self, _, err := agent.ACL().TokenReadSelf(nil); err != nil || len(self.Policies) != 1 || self.Policies[0].Name != PolicyAgent {
		t.Fatalf("the agent token: %+v %v", self, err)
	}
	anon, _ := Client(addr, "")
	if p, _, err := anon.KV().Get("k", nil); p != nil || (err != nil && !forbidden(err)) {
		t.Fatalf("anonymous KV read: %v %v", p, err)
	}
	tok, _, err := mgmt.ACL().TokenRead(anonymousAccessor, nil)
	if err != nil || len(tok.Policies) != 1 || tok.Policies[0].Name != PolicyDNS {
		t.Fatalf("the anonymous token: %+v %v", tok, err)
	}
}

func eventuallyOK(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := f()
		if err == nil {
			return
		}
		if strings.Contains(err.Error(), tokens.Management) {
			t.Fatalf("an error shows the management token: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
}

func forbidden(err error) bool {
	var se consulapi.StatusError
	return errors.As(err, &se) && se.Code == 403 || err != nil && strings.Contains(err.Error(), "403")
}

func eventuallyDNS(t *testing.T, server, name string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		r, err := dns.Exchange(m, server)
		if err == nil && len(r.Answer) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("DNS %s: %v %v", name, r, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func freePorts(t *testing.T, ip string, n int) []int {
	t.Helper()
	ports, err := freeport.Take([]string{ip}, n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}
