package discovery

import (
	"testing"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

func TestPortsByRole(t *testing.T) {
	p := taskspec.Ports{Server: 8300, SerfLAN: 8301, SerfWAN: 8302, HTTP: 8500, HTTPS: 8501, GRPC: -1, DNS: 8600}
	names := func(ps []Port) (s string) {
		for _, q := range ps {
			s += q.Name + " "
		}
		return s
	}
	if got := names(Ports(taskspec.RoleServer, p)); got != "http https dns serf-lan rpc serf-wan " {
		t.Errorf("server ports: %s", got)
	}
	if got := names(Ports(taskspec.RoleClient, p)); got != "http https dns serf-lan " {
		t.Errorf("client ports (no rpc, no serf-wan, gRPC disabled): %s", got)
	}
	p.HTTP, p.GRPCTLS = -1, 8503 // TLS: HTTPS and gRPC over TLS
	if got := names(Ports(taskspec.RoleClient, p)); got != "https grpc-tls dns serf-lan " {
		t.Errorf("client ports with TLS: %s", got)
	}
	k, v := VIPLabel(Ports(taskspec.RoleServer, p)[1])
	if k != "VIP_GRPC_TLS" || v != "consul:8503" {
		t.Errorf("gRPC TLS VIP label %s=%s", k, v)
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{VIPHost("consul", "consul"), "consul.consul.l4lb.thisdcos.directory"},
		{VIPHost("/consul", "Prod/Consul"), "consul.prodconsul.l4lb.thisdcos.directory"},
		{SRVName("http", "consul-server-0", "tcp", "consul", "mesos"), "_http._consul-server-0._tcp.consul.mesos"},
		{SRVName("serf-lan", "consul-client-s1", "udp", "dev.consul", ""), "_serf-lan._consul-client-s1._udp.dev.consul.mesos"},
	} {
		if c.got != c.want {
			t.Errorf("got %s, want %s", c.got, c.want)
		}
	}
	k, v := VIPLabel(Port{Name: "serf-lan", Number: 8301, VIP: "consul"})
	if k != "VIP_SERF_LAN" || v != "consul:8301" {
		t.Errorf("VIPLabel = %s=%s", k, v)
	}
}
