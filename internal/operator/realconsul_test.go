package operator

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/executor/consulagent"
	"github.com/dcos-consul/dcos-consul/internal/freeport"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// Tests of this package that start Consul use 127.7.0.0/16 only.

func freePort(t *testing.T, ip string) int {
	t.Helper()
	p, err := freeport.One(ip)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// members and raft peers end to end: the scheduler API (real handler) lists
// a real one-server Consul cluster, which the commands find through
// /v1/endpoints/http and ask.
func TestMembersAndPeersRealConsul(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Consul server")
	}
	ip := "127.7.0.2"
	ports := taskspec.Ports{Server: freePort(t, ip), SerfLAN: freePort(t, ip), SerfWAN: -1, HTTP: freePort(t, ip), HTTPS: -1, GRPC: -1, DNS: -1}
	spec := taskspec.Spec{Version: taskspec.Version, Role: taskspec.RoleServer, NodeName: "consul-server-0", Datacenter: "dc1",
		BootstrapExpect: 1, Ports: ports, DataDir: "consul-data", RaftMultiplier: 1, LogLevel: "WARN"}
	agent, err := consulagent.Start(context.Background(), spec, consulagent.Env{BindIP: ip, Sandbox: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agent.Stop)
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := agent.Ready(rctx); err != nil {
		t.Fatal(err)
	}

	s := startScheduler(t)
	v := testView()
	v.Target.Ports.HTTP = ports.HTTP
	v.Tasks = []state.Task{{Name: "consul-server-0", Role: taskspec.RoleServer, TaskID: "consul-server-0__a", State: "TASK_RUNNING",
		IP: ip, Hostname: "agent-1", Ports: ports}}
	s.sched.view = v

	c, out := commands(t, s.URL, false)
	c.Consul = HTTPConsul{Timeout: 10 * time.Second}
	serf := net.JoinHostPort(ip, strconv.Itoa(ports.SerfLAN))
	raft := net.JoinHostPort(ip, strconv.Itoa(ports.Server))
	// The leader may take a moment after Ready.
	deadline := time.Now().Add(time.Minute)
	for {
		out.Reset()
		err = c.RaftPeers(ctx)
		if err == nil && strings.Contains(out.String(), "true    true") || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(strings.Split(out.String(), "\n")[1])
	if len(got) != 5 || got[0] != "consul-server-0" || got[1] != agent.NodeID() || got[2] != raft || got[3] != "true" || got[4] != "true" {
		t.Fatalf("raft peers:\n%s", out)
	}

	out.Reset()
	if err := c.Members(ctx); err != nil {
		t.Fatal(err)
	}
	got = strings.Fields(strings.Split(out.String(), "\n")[1])
	if len(got) != 6 || got[0] != "consul-server-0" || got[1] != serf || got[2] != "alive" || got[3] != "server" || got[4] != "dc1" ||
		!strings.HasPrefix(got[5], "1.16.") {
		t.Fatalf("members:\n%s", out)
	}
	if !bytes.HasPrefix(out.Bytes(), []byte("NAME ")) {
		t.Fatalf("members:\n%s", out)
	}
}
