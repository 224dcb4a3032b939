package api

import (
	"net"
	"strconv"

	"github.com/dcos-consul/dcos-consul/internal/mesosdns"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/discovery"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

func taskHost(task string, t state.Target) string {
	return mesosdns.TaskHost(task, t.ServiceName, t.MesosDNSDomain)
}

// endpointVIP is the DC/OS load balancer address of an endpoint, in the
// SDK's form (<vip>.<service>.l4lb.thisdcos.directory:<port>), or "" when
// the endpoint has no VIP (serf gossip) or is disabled.
func endpointVIP(endpoint string, t state.Target) string {
	want := endpoint
	if endpoint == "server" {
		want = "rpc" // the server RPC port's DiscoveryInfo name
	}
	for _, p := range discovery.Ports(taskspec.RoleServer, t.Ports) {
		if p.Name == want && p.VIP != "" {
			return net.JoinHostPort(discovery.VIPHost(p.VIP, t.ServiceName), strconv.Itoa(p.Number))
		}
	}
	return ""
}
