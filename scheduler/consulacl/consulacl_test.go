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
	ip := "127.3.1.10"
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
	defer a.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := a.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(ports[2]))

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
	eventuallyDNS(t, net.JoinHostPort(ip, strconv.Itoa(ports[3])), "consul.service.consul.")
	eventuallyDNS(t, net.JoinHostPort(ip, strconv.Itoa(ports[3])), "acl-server.node.consul.")
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
	var out []int
	for len(out) < n {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(p)))
		if err != nil {
			continue
		}
		u.Close()
		out = append(out, p)
	}
	return out
}
