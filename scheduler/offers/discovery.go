package offers

import (
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dcos-consul/dcos-consul/scheduler/discovery"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// discoveryInfo is a task's DiscoveryInfo as DC/OS SDK services set it:
// named after the task (so Mesos-DNS names stay <task>.<service>.mesos),
// visibility CLUSTER, one port per named Consul port, EXTERNAL (the SDK's
// "advertised"), with the SDK's VIP label and network-scope=host where the
// port is behind a VIP.
func discoveryInfo(t state.Task) *mesos.DiscoveryInfo {
	ext := mesos.EXTERNAL
	var ports []mesos.Port
	for _, p := range discovery.Ports(t.Role, t.Ports) {
		mp := mesos.Port{Number: uint32(p.Number), Name: strPtr(p.Name), Visibility: &ext}
		if p.Protocol != "" {
			mp.Protocol = strPtr(p.Protocol)
		}
		if p.VIP != "" {
			k, v := discovery.VIPLabel(p)
			mp.Labels = &mesos.Labels{Labels: []mesos.Label{{Key: k, Value: strPtr(v)}, {Key: "network-scope", Value: strPtr("host")}}}
		}
		ports = append(ports, mp)
	}
	return &mesos.DiscoveryInfo{
		Visibility: mesos.CLUSTER,
		Name:       strPtr(t.Name),
		Ports:      &mesos.Ports{Ports: ports},
	}
}
