package offers

import (
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// portsOf is a DiscoveryInfo's ports as name → "number protocol labels".
func portsOf(d *mesos.DiscoveryInfo) map[string]string {
	out := map[string]string{}
	for _, p := range d.GetPorts().GetPorts() {
		s := itoa(int(p.Number)) + " " + p.GetProtocol()
		for _, l := range p.GetLabels().GetLabels() {
			s += " " + l.Key + "=" + l.GetValue()
		}
		if p.GetVisibility() != mesos.EXTERNAL {
			s += " not-external"
		}
		out[p.GetName()] = s
	}
	return out
}

func itoa(n int) string {
	b := []byte{}
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestLaunchedTasksCarryDiscoveryInfo: servers and clients are launched
// with a DiscoveryInfo in the DC/OS SDK's shape: named after the task,
// CLUSTER visibility, one EXTERNAL port per Consul listener the task has,
// and the SDK's VIP labels where any agent can answer.
func TestLaunchedTasksCarryDiscoveryInfo(t *testing.T) {
	for _, tc := range []struct {
		name, api, apiPort string
		tg                 state.Target
	}{
		{"TLS (the default): HTTPS only", "https", "8501", target()},
		{"TLS off: plain HTTP", "http", "8500", target(func(c *config.Config) { c.TLS, c.Ports.HTTPS = false, -1 })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkDiscoveryInfo(t, tc.tg, tc.api, tc.apiPort)
		})
	}
}

func checkDiscoveryInfo(t *testing.T, tg state.Target, api, apiPort string) {
	d := Evaluate(input(tg, state.Tasks{}, offer(1)))
	di := launchedTask(t, d).Discovery
	if di == nil || di.GetName() != "consul-server-0" || di.Visibility != mesos.CLUSTER {
		t.Fatalf("server DiscoveryInfo %+v", di)
	}
	want := map[string]string{
		api:        apiPort + " tcp VIP_" + strings.ToUpper(api) + "=consul:" + apiPort + " network-scope=host",
		"dns":      "8600  VIP_DNS=consul:8600 network-scope=host",
		"serf-lan": "8301 ",
		"rpc":      "8300 tcp VIP_RPC=consul-server:8300 network-scope=host",
		"serf-wan": "8302 ",
	}
	if api == "https" { // gRPC over TLS comes with TLS
		want["grpc-tls"] = "8503 tcp VIP_GRPC_TLS=consul:8503 network-scope=host"
	}
	got := portsOf(di)
	if len(got) != len(want) {
		t.Errorf("server ports %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("server port %s = %q, want %q", k, got[k], v)
		}
	}

	all := state.Tasks{
		"consul-server-0": running("consul-server-0", 1, &state.Reservation{ID: "r0", Confirmed: true}),
		"consul-server-1": running("consul-server-1", 2, &state.Reservation{ID: "r1", Confirmed: true}),
		"consul-server-2": running("consul-server-2", 3, &state.Reservation{ID: "r2", Confirmed: true}),
	}
	di = launchedTask(t, Evaluate(input(tg, all, offer(4)))).Discovery
	if di == nil || di.GetName() != "consul-client-m-s4" {
		t.Fatalf("client DiscoveryInfo %+v", di)
	}
	got = portsOf(di)
	wantClient := 3 // the API, dns and serf-lan
	if api == "https" {
		wantClient = 4 // and grpc-tls
	}
	if _, ok := got["rpc"]; ok || len(got) != wantClient || got[api] != want[api] {
		t.Errorf("client ports %v: want %s, dns, serf-lan (and grpc-tls with TLS) only (no server RPC, no serf WAN)", got, api)
	}
}
