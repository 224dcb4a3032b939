package consulagent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/serf/serf"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dcos-consul/dcos-consul/executor/internal/testdns"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// eventually retries f every 250 ms until it returns nil or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: still failing after %v: %v", what, timeout, err)
}

func apiClient(t *testing.T, a *Agent) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: a.HTTPAddr()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClusterThreeServersOneClient forms a real Consul cluster through this
// package: three servers and a client on 127.3.0.2-5, joining through
// Mesos-DNS-style names served by a test DNS server (published late for
// one server, as Mesos-DNS's refresh would) and through a scheduler-given
// address. Then a non-leader server leaves gracefully and is started again
// on the same data dir: it must come back as the same raft peer, with the
// data.
func TestClusterThreeServersOneClient(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a real Consul cluster")
	}
	ips := []string{"127.3.0.2", "127.3.0.3", "127.3.0.4", "127.3.0.5"}
	ports := testPorts(freePorts(t, ips, 3))
	dnsSrv := testdns.Start(t, "127.3.0.1")
	names := []string{"consul-server-0.consul.mesos", "consul-server-1.consul.mesos", "consul-server-2.consul.mesos"}
	// Only server-2's record exists at first: server-0 and the client can
	// find the cluster through it; server-1 only through the address the
	// scheduler handed over (server-0's).
	dnsSrv.Publish(names[2], ips[2])

	specs := make([]taskspec.Spec, 4)
	for i := 0; i < 3; i++ {
		specs[i] = serverSpec(fmt.Sprintf("consul-server-%d", i), 3, ports)
		specs[i].JoinDNSNames = names
		specs[i].DNSServer = dnsSrv.Addr
	}
	specs[1].JoinAddrs = []string{addr(ips[0], ports.SerfLAN)}
	specs[3] = taskspec.Spec{
		Version: taskspec.Version, Role: taskspec.RoleClient, NodeName: "consul-client-a5",
		Datacenter: "dc1", Ports: ports, DataDir: "consul-data", JoinDNSNames: names,
		DNSServer: dnsSrv.Addr, LogLevel: "INFO",
	}
	sandboxes := make([]string, 4)
	for i := range sandboxes {
		sandboxes[i] = t.TempDir()
	}
	log := testLogger(t)
	agents := make([]*Agent, 4)
	t.Cleanup(func() {
		for _, a := range agents {
			if a != nil {
				a.Stop()
			}
		}
	})
	start := time.Now()
	for i := range specs {
		a, err := Start(context.Background(), specs[i], Env{BindIP: ips[i], Sandbox: sandboxes[i]}, log)
		if err != nil {
			t.Fatalf("start %s: %v", specs[i].NodeName, err)
		}
		agents[i] = a
	}
	// Mesos-DNS catches up a little later.
	time.AfterFunc(2*time.Second, func() {
		dnsSrv.Publish(names[0], ips[0])
		dnsSrv.Publish(names[1], ips[1])
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, a := range agents {
		if err := a.Ready(ctx); err != nil {
			t.Fatalf("%s not ready: %v", a.spec.NodeName, err)
		}
	}
	t.Logf("all 4 agents ready (HTTP up, joined) %v after start", time.Since(start).Round(time.Millisecond))
	eventually(t, 2*time.Minute, "every agent healthy", func() error {
		for _, a := range agents {
			if h := a.Health(); !h.Healthy {
				return fmt.Errorf("%s: %s", a.spec.NodeName, h.Message)
			}
		}
		return nil
	})
	t.Logf("leader known on every server and the client joined %v after start", time.Since(start).Round(time.Millisecond))
	if n := dnsSrv.Queries(names[2]); n == 0 {
		t.Errorf("nobody asked the test DNS server for %s: the names were not resolved through it", names[2])
	}

	// Raft peers are exactly the three servers, by node ID, all voters.
	wantIDs := []string{agents[0].NodeID(), agents[1].NodeID(), agents[2].NodeID()}
	sort.Strings(wantIDs)
	client := apiClient(t, agents[3])
	checkPeers := func(want []string, needVoters bool) func() error {
		return func() error {
			rc, err := client.Operator().RaftGetConfiguration(nil)
			if err != nil {
				return err
			}
			var got []string
			for _, s := range rc.Servers {
				if needVoters && !s.Voter {
					return fmt.Errorf("raft peer %s is not a voter yet", s.Node)
				}
				got = append(got, s.ID)
			}
			sort.Strings(got)
			if len(got) != len(want) {
				return fmt.Errorf("raft peers %v, want %v", got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					return fmt.Errorf("raft peers %v, want %v", got, want)
				}
			}
			return nil
		}
	}
	eventually(t, time.Minute, "raft peers are the three servers", checkPeers(wantIDs, true))

	// LAN pool: four alive members, seen from the client.
	eventually(t, time.Minute, "4 alive LAN members", func() error {
		ms, err := client.Agent().Members(false)
		if err != nil {
			return err
		}
		alive := 0
		for _, m := range ms {
			if serf.MemberStatus(m.Status) == serf.StatusAlive {
				alive++
			}
		}
		if alive != 4 {
			return fmt.Errorf("%d alive members", alive)
		}
		return nil
	})

	// A key written through the client reads back from every server.
	if _, err := client.KV().Put(&api.KVPair{Key: "dcos-consul/test", Value: []byte("hello")}, nil); err != nil {
		t.Fatalf("KV put through the client: %v", err)
	}
	readFrom := func(a *Agent) func() error {
		return func() error {
			kv, _, err := apiClient(t, a).KV().Get("dcos-consul/test", &api.QueryOptions{AllowStale: true})
			if err != nil {
				return err
			}
			if kv == nil || string(kv.Value) != "hello" {
				return fmt.Errorf("%s does not have the key", a.spec.NodeName)
			}
			return nil
		}
	}
	for _, a := range agents[:3] {
		eventually(t, 30*time.Second, "key readable (stale, local) on "+a.spec.NodeName, readFrom(a))
	}

	// A non-leader server leaves gracefully and comes back on its data.
	leader, err := client.Status().Leader()
	if err != nil {
		t.Fatal(err)
	}
	victim := -1
	for i := 0; i < 3; i++ {
		if addr(ips[i], ports.Server) != leader {
			victim = i
			break
		}
	}
	oldID := agents[victim].NodeID()
	lctx, lcancel := context.WithTimeout(context.Background(), 30*time.Second)
	leaveStart := time.Now()
	if err := agents[victim].Leave(lctx); err != nil {
		t.Fatalf("graceful leave of %s: %v", specs[victim].NodeName, err)
	}
	lcancel()
	t.Logf("graceful leave of a server took %v", time.Since(leaveStart).Round(time.Millisecond))
	var remaining []string
	for i := 0; i < 3; i++ {
		if i != victim {
			remaining = append(remaining, agents[i].NodeID())
		}
	}
	sort.Strings(remaining)
	eventually(t, time.Minute, "the leaving server is out of raft", checkPeers(remaining, false))
	if h := agents[(victim+1)%3].Health(); !h.Healthy {
		t.Logf("note: %s", h.Message)
	}

	restartAt := time.Now()
	again, err := Start(context.Background(), specs[victim], Env{BindIP: ips[victim], Sandbox: sandboxes[victim]}, log)
	if err != nil {
		t.Fatalf("restart %s: %v", specs[victim].NodeName, err)
	}
	agents[victim] = again
	if again.NodeID() != oldID {
		t.Fatalf("restarted server has node ID %s, want %s (from its data dir)", again.NodeID(), oldID)
	}
	if err := again.Ready(ctx); err != nil {
		t.Fatalf("restarted server not ready: %v", err)
	}
	t.Logf("restarted server ready (joined) %v after its start; health: %s",
		time.Since(restartAt).Round(time.Millisecond), again.Health().Message)
	eventually(t, 2*time.Minute, "restarted server is a raft voter again", checkPeers(wantIDs, true))
	t.Logf("restarted server back as a raft voter %v after its start", time.Since(restartAt).Round(time.Millisecond))
	eventually(t, 30*time.Second, "key on the restarted server", readFrom(again))
	eventually(t, 30*time.Second, "restarted server healthy (leader known, voter)", func() error {
		if h := again.Health(); !h.Healthy || !h.Voter {
			return errors.New(h.Message)
		}
		return nil
	})
}

// TestJoinAddrsAddedLater: two servers that know nobody at launch (no
// address from the scheduler yet, names not in Mesos-DNS yet) find each
// other once an address is handed over later (the scheduler's MESSAGE).
func TestJoinAddrsAddedLater(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a real Consul cluster")
	}
	ips := []string{"127.3.0.50", "127.3.0.51"}
	ports := testPorts(freePorts(t, ips, 3))
	obs, logs := observer.New(zap.InfoLevel)
	log := zap.New(zapcore.NewTee(testLogger(t).Core(), obs))
	var agents []*Agent
	t.Cleanup(func() {
		for _, a := range agents {
			a.Stop()
		}
	})
	for i, ip := range ips {
		a, err := Start(context.Background(), serverSpec(fmt.Sprintf("late-%d", i), 2, ports), Env{BindIP: ip, Sandbox: t.TempDir()}, log)
		if err != nil {
			t.Fatal(err)
		}
		agents = append(agents, a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	if err := agents[0].Ready(ctx); err == nil {
		t.Fatalf("a server expecting another one was ready alone")
	}
	cancel()
	agents[1].AddJoinAddrs([]string{addr(ips[0], ports.SerfLAN)})
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, a := range agents {
		if err := a.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, time.Minute, "leader", func() error {
		for _, a := range agents {
			if h := a.Health(); !h.Healthy {
				return errors.New(h.Message)
			}
		}
		return nil
	})
	// Each agent joins once more, reannounceAfter after its first join.
	eventually(t, reannounceAfter+time.Minute, "repeated joins", func() error {
		if n := logs.FilterMessageSnippet("joined the LAN pool once more").Len(); n < len(agents) {
			return fmt.Errorf("%d of %d agents joined once more", n, len(agents))
		}
		return nil
	})
}
