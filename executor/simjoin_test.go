package executor

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dcos-consul/dcos-consul/executor/internal/testdns"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// TestExecutorsJoinThroughSchedulerMessage: servers launched together know
// no running peer, and Mesos-DNS lists a task only once it is RUNNING, so
// nothing resolves: they wait in TASK_STARTING. The scheduler's join
// MESSAGE with the placed servers' addresses lets them form the cluster.
func TestExecutorsJoinThroughSchedulerMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the dcos-consul binary and runs three Consul servers")
	}
	ips := []string{"127.3.1.20", "127.3.1.21", "127.3.1.22"}
	c := newSimCluster(t, ips)
	dns := testdns.Start(t, "127.3.1.3") // publishes nothing: no task is RUNNING yet
	names := []string{"consul-server-0.consul.mesos", "consul-server-1.consul.mesos", "consul-server-2.consul.mesos"}
	p := freePortsOnAll(t, ips, 3)
	ports := taskspec.Ports{Server: p[0], SerfLAN: p[1], SerfWAN: -1, HTTP: p[2], HTTPS: -1, GRPC: -1, DNS: -1}
	for i := range ips {
		name := fmt.Sprintf("consul-server-%d", i)
		spec, err := taskspec.Encode(taskspec.Spec{Role: taskspec.RoleServer, NodeName: name, Datacenter: "dc1",
			BootstrapExpect: 3, Ports: ports, DataDir: "consul-data", JoinDNSNames: names, DNSServer: dns.Addr, RaftMultiplier: 1})
		if err != nil {
			t.Fatal(err)
		}
		c.launch(i, name+"__1", name+"__exec1", "vol-"+name, spec)
	}
	for i := range ips {
		c.masters[i].waitFor(t, time.Minute, "STARTING", hasUpdate(fmt.Sprintf("consul-server-%d__1", i), mesos.TASK_STARTING, nil), nil)
	}
	time.Sleep(3 * time.Second)
	for i := range ips {
		if hasUpdate(fmt.Sprintf("consul-server-%d__1", i), mesos.TASK_RUNNING, nil)(c.masters[i].snapshotUpdates(), nil) {
			t.Fatalf("server %d RUNNING without any peer to join", i)
		}
	}
	var addrs []string
	for _, ip := range ips {
		addrs = append(addrs, net.JoinHostPort(ip, strconv.Itoa(ports.SerfLAN)))
	}
	msg, err := taskspec.EncodeJoinUpdate(addrs)
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	for i := range ips {
		c.agents[i].Message(*c.fw.ID, mesos.ExecutorID{Value: fmt.Sprintf("consul-server-%d__exec1", i)}, msg)
	}
	for i := range ips {
		c.masters[i].waitFor(t, 2*time.Minute, "healthy after the join MESSAGE",
			hasUpdate(fmt.Sprintf("consul-server-%d__1", i), mesos.TASK_RUNNING, boolp(true)),
			c.sandbox(i, fmt.Sprintf("consul-server-%d__exec1", i)))
	}
	t.Logf("all servers healthy %v after the join MESSAGE", time.Since(sent).Round(time.Millisecond))
}
