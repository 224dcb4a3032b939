// Package discovery says under which stable names applications find the
// Consul agents on DC/OS, as DC/OS SDK services are found: each task's
// DiscoveryInfo lists its named ports (Mesos-DNS then serves
// _<port>._<task>._<proto>.<service>.mesos SRV records), and the ports that
// any agent can answer carry VIP labels (DC/OS's load balancer then serves
// <vip>.<service>.l4lb.thisdcos.directory). Pure: the scheduler's offers
// step renders it into TaskInfo, the API lists it in /v1/endpoints.
package discovery

import (
	"strconv"
	"strings"

	"github.com/dcos-consul/dcos-consul/internal/mesosdns"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// VIPName is the VIP every Consul agent backs: HTTP, HTTPS, gRPC and DNS
// are answered alike by any agent, server or client.
const VIPName = "consul"

// ServerVIPName is the VIP of the servers' RPC port, which only servers
// listen on.
const ServerVIPName = "consul-server"

// L4LBDomain is the domain of DC/OS's named VIPs (dcos-net's l4lb).
const L4LBDomain = "l4lb.thisdcos.directory"

// Port is one named port of a task.
type Port struct {
	Name   string // http, https, grpc, grpc-tls, dns, rpc, serf-lan, serf-wan
	Number int
	// Protocol is "tcp" or "udp", or "" for both (Mesos-DNS then publishes
	// _tcp and _udp SRV records): DNS and serf use both.
	Protocol string
	// VIP is the VIP name of the port ("" for none): serf gossip is peer to
	// peer, a load balancer in front of it makes no sense.
	VIP string
}

// Ports are a task's named ports, in a fixed order: the ones the role
// listens on and that are enabled (a port number <= 0 is disabled).
func Ports(role taskspec.Role, p taskspec.Ports) []Port {
	all := []Port{
		{Name: "http", Number: p.HTTP, Protocol: "tcp", VIP: VIPName},
		{Name: "https", Number: p.HTTPS, Protocol: "tcp", VIP: VIPName},
		{Name: "grpc", Number: p.GRPC, Protocol: "tcp", VIP: VIPName},
		{Name: "grpc-tls", Number: p.GRPCTLS, Protocol: "tcp", VIP: VIPName},
		{Name: "dns", Number: p.DNS, VIP: VIPName},
		{Name: "serf-lan", Number: p.SerfLAN},
	}
	if role == taskspec.RoleServer {
		all = append(all,
			Port{Name: "rpc", Number: p.Server, Protocol: "tcp", VIP: ServerVIPName},
			Port{Name: "serf-wan", Number: p.SerfWAN})
	}
	var out []Port
	for _, q := range all {
		if q.Number > 0 {
			out = append(out, q)
		}
	}
	return out
}

// VIPLabel is the label a port carries to be behind a VIP, in the SDK's
// form: key VIP_<something unique>, value <vip>:<port>. The SDK makes the
// key unique with a UUID; the port's name does it here, and keeps the
// TaskInfo the same from one launch to the next.
func VIPLabel(p Port) (key, value string) {
	return "VIP_" + strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_")), p.VIP + ":" + strconv.Itoa(p.Number)
}

// VIPHost is the name DC/OS's load balancer gives a VIP of a framework:
// <vip>.<framework>.l4lb.thisdcos.directory. The VIP name keeps its dots
// (each part a DNS label); the framework name becomes one label, as dcos-net
// does for its names ("prod/consul" → "prod-consul" is inferred, not
// observed).
func VIPHost(vip, framework string) string {
	return mesosdns.DomainFrag(strings.TrimPrefix(vip, "/"), mesosdns.RFC1123) + "." + mesosdns.RFC1123(framework) + "." + L4LBDomain
}

// SRVName is the SRV name Mesos-DNS gives a named DiscoveryInfo port of a
// task: _<port>._<task>._<proto>.<framework>.<domain>.
func SRVName(port, task, proto, framework, domain string) string {
	return "_" + mesosdns.RFC1123(port) + "." + mesosdns.TaskSRV(task, proto, framework, domain)
}

// Protocols are the protocols Mesos-DNS publishes a port under.
func Protocols(p Port) []string {
	if p.Protocol != "" {
		return []string{p.Protocol}
	}
	return []string{"tcp", "udp"}
}
