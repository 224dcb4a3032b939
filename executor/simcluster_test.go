package executor

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dcos-consul/dcos-consul/executor/internal/testdns"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
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

// TestExecutorsFormClusterOnSimulatedAgents: three server executors and a
// client executor (real processes) on four simulated agents form a Consul
// cluster through Mesos-DNS-style names only; a KILLed non-leader server
// stops without leaving (it stays a raft peer), and relaunched on its
// agent with its volume it comes back as the same raft voter with the data.
func TestExecutorsFormClusterOnSimulatedAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the dcos-consul binary and runs four Consul agents")
	}
	ips := []string{"127.3.1.10", "127.3.1.11", "127.3.1.12", "127.3.1.13"}
	c := newSimCluster(t, ips)
	dns := testdns.Start(t, "127.3.1.1")
	names := []string{"consul-server-0.consul.mesos", "consul-server-1.consul.mesos", "consul-server-2.consul.mesos"}
	for i, n := range names {
		dns.Publish(n, ips[i])
	}
	p := freePortsOnAll(t, ips, 3)
	ports := taskspec.Ports{Server: p[0], SerfLAN: p[1], SerfWAN: -1, HTTP: p[2], HTTPS: -1, GRPC: -1, DNS: -1}
	specFor := func(role taskspec.Role, name string) []byte {
		s := taskspec.Spec{Role: role, NodeName: name, Datacenter: "dc1", Ports: ports, DataDir: "consul-data",
			JoinDNSNames: names, DNSServer: dns.Addr, RaftMultiplier: 1}
		if role == taskspec.RoleServer {
			s.BootstrapExpect = 3
		}
		b, err := taskspec.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	start := time.Now()
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("consul-server-%d", i)
		c.launch(i, name+"__1", name+"__exec1", "vol-"+name, specFor(taskspec.RoleServer, name))
	}
	c.launch(3, "consul-client-3__1", "consul-client-3__exec1", "", specFor(taskspec.RoleClient, "consul-client-3"))

	tasks := []string{"consul-server-0__1", "consul-server-1__1", "consul-server-2__1", "consul-client-3__1"}
	for i, task := range tasks {
		c.masters[i].waitFor(t, 2*time.Minute, task+" RUNNING", hasUpdate(task, mesos.TASK_RUNNING, nil),
			c.sandbox(i, strings.TrimSuffix(task, "__1")+"__exec1"))
	}
	t.Logf("all 4 tasks RUNNING %v after the launches", time.Since(start).Round(time.Millisecond))
	for i, task := range tasks {
		c.masters[i].waitFor(t, 2*time.Minute, task+" healthy", hasUpdate(task, mesos.TASK_RUNNING, boolp(true)),
			c.sandbox(i, strings.TrimSuffix(task, "__1")+"__exec1"))
	}
	t.Logf("all 4 tasks healthy (leader elected, servers voters, client joined) %v after the launches", time.Since(start).Round(time.Millisecond))

	nodeIDs := make([]string, 3)
	for i := 0; i < 3; i++ {
		c.masters[i].mu.Lock()
		nodeIDs[i] = nodeIDLabel(c.masters[i].updates, tasks[i])
		c.masters[i].mu.Unlock()
	}
	httpOf := func(i int) *api.Client {
		cl, err := api.NewClient(&api.Config{Address: net.JoinHostPort(ips[i], strconv.Itoa(ports.HTTP))})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	client := httpOf(3)
	peers := func(want []string) func() error {
		sorted := append([]string(nil), want...)
		sort.Strings(sorted)
		return func() error {
			rc, err := client.Operator().RaftGetConfiguration(nil)
			if err != nil {
				return err
			}
			var got []string
			for _, s := range rc.Servers {
				if !s.Voter {
					return fmt.Errorf("%s is not a voter", s.Node)
				}
				got = append(got, s.ID)
			}
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(sorted, ",") {
				return fmt.Errorf("raft peers %v, want %v", got, sorted)
			}
			return nil
		}
	}
	eventually(t, time.Minute, "raft peers are the three server tasks", peers(nodeIDs))
	eventually(t, time.Minute, "4 alive LAN members", func() error {
		ms, err := client.Agent().Members(false)
		if err != nil {
			return err
		}
		alive := map[string]bool{}
		for _, m := range ms {
			if m.Status == 1 {
				alive[m.Addr] = true
			}
		}
		if len(alive) != 4 {
			return fmt.Errorf("alive members on %d distinct addresses: %v", len(alive), alive)
		}
		return nil
	})
	if _, err := client.KV().Put(&api.KVPair{Key: "sim/key", Value: []byte("v1")}, nil); err != nil {
		t.Fatal(err)
	}
	readOn := func(i int) func() error {
		return func() error {
			kv, _, err := httpOf(i).KV().Get("sim/key", &api.QueryOptions{AllowStale: true})
			if err != nil {
				return err
			}
			if kv == nil || string(kv.Value) != "v1" {
				return errors.New("key not there")
			}
			return nil
		}
	}
	for i := 0; i < 3; i++ {
		eventually(t, 30*time.Second, fmt.Sprintf("key on server %d", i), readOn(i))
	}

	// KILL a non-leader server, then relaunch it on its agent and volume.
	leader, err := client.Status().Leader()
	if err != nil {
		t.Fatal(err)
	}
	v := 0
	for v < 3 && net.JoinHostPort(ips[v], strconv.Itoa(ports.Server)) == leader {
		v++
	}
	c.agents[v].Kill(*c.fw.ID, mesos.TaskID{Value: tasks[v]}, nil)
	c.masters[v].waitFor(t, time.Minute, "KILLED and exit", func(ups []mesos.TaskStatus, terms []int32) bool {
		return hasUpdate(tasks[v], mesos.TASK_KILLED, nil)(ups, nil) && len(terms) == 1
	}, c.sandbox(v, fmt.Sprintf("consul-server-%d__exec1", v)))
	// It did not leave: still one of the three raft peers while down.
	if err := peers(nodeIDs)(); err != nil {
		t.Errorf("the killed server is not a raft peer any more (a restart in place must not leave): %v", err)
	}

	relaunched := time.Now()
	name := fmt.Sprintf("consul-server-%d", v)
	c.launch(v, name+"__2", name+"__exec2", "vol-"+name, specFor(taskspec.RoleServer, name))
	c.masters[v].waitFor(t, 2*time.Minute, "relaunched server healthy", hasUpdate(name+"__2", mesos.TASK_RUNNING, boolp(true)),
		c.sandbox(v, name+"__exec2"))
	t.Logf("relaunched server healthy (voter again) %v after its launch", time.Since(relaunched).Round(time.Millisecond))
	c.masters[v].mu.Lock()
	again := nodeIDLabel(c.masters[v].updates, name+"__2")
	c.masters[v].mu.Unlock()
	if again != nodeIDs[v] {
		t.Errorf("relaunched server has node ID %q, want %q", again, nodeIDs[v])
	}
	eventually(t, time.Minute, "raft peers are the three servers again", peers(nodeIDs))
	eventually(t, 30*time.Second, "key on the relaunched server", readOn(v))
}
