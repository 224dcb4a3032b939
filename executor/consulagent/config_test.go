package consulagent

import (
	"context"
	"encoding/json"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/executor/internal/testdns"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

func TestConfigGenerated(t *testing.T) {
	spec := serverSpec("consul-server-1", 3, taskspec.Ports{Server: 8300, SerfLAN: 8301, SerfWAN: -1, HTTP: 8500, HTTPS: -1, GRPC: 8502, DNS: 8600})
	spec.Domain = "consul."
	spec.UI = true
	spec.RaftMultiplier = 0
	doc, err := Config(spec, Env{BindIP: "127.3.0.40", Sandbox: "/sb"})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(doc, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"node_name": "consul-server-1", "datacenter": "dc1", "domain": "consul.", "server": true,
		"bootstrap_expect": 3.0, "data_dir": "/sb/consul-data",
		"bind_addr": "127.3.0.40", "advertise_addr": "127.3.0.40", "client_addr": "127.3.0.40",
		"disable_update_check": true, "log_level": "INFO",
	}
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	ports := got["ports"].(map[string]any)
	if ports["serf_wan"] != -1.0 || ports["dns"] != 8600.0 || ports["grpc"] != 8502.0 {
		t.Errorf("ports %v", ports)
	}
	if got["ui_config"].(map[string]any)["enabled"] != true {
		t.Errorf("ui not enabled: %v", got["ui_config"])
	}
	if _, ok := got["performance"].(map[string]any)["raft_multiplier"]; ok {
		t.Errorf("raft_multiplier 0 must leave Consul's default: %v", got["performance"])
	}

	client := spec
	client.Role = taskspec.RoleClient
	client.BootstrapExpect = 0
	doc, _ = Config(client, Env{BindIP: "127.3.0.40", Sandbox: "/sb"})
	got = nil
	json.Unmarshal(doc, &got)
	if got["server"] != false || got["bootstrap_expect"] != nil {
		t.Errorf("client config: server=%v bootstrap_expect=%v", got["server"], got["bootstrap_expect"])
	}
}

func TestConfigExtraMergedOver(t *testing.T) {
	spec := serverSpec("s", 1, taskspec.Ports{Server: 8300, SerfLAN: 8301, SerfWAN: -1, HTTP: 8500, HTTPS: -1, GRPC: -1, DNS: -1})
	spec.ExtraConfig = json.RawMessage(`{"log_level":"DEBUG","performance":{"leave_drain_time":"7s"},"ports":{"dns":8601},"retry_join_wan":["x"],"acl":{"enabled":true}}`)
	doc, err := Config(spec, Env{BindIP: "127.3.0.40", Sandbox: "/sb"})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(doc, &got)
	if got["log_level"] != "DEBUG" {
		t.Errorf("extra log_level not applied: %v", got["log_level"])
	}
	perf := got["performance"].(map[string]any)
	if perf["leave_drain_time"] != "7s" || perf["raft_multiplier"] != 1.0 {
		t.Errorf("nested merge of performance: %v", perf)
	}
	ports := got["ports"].(map[string]any)
	if ports["dns"] != 8601.0 || ports["server"] != 8300.0 {
		t.Errorf("nested merge of ports kept generated keys? %v", ports)
	}
	if got["acl"].(map[string]any)["enabled"] != true || got["retry_join_wan"] == nil {
		t.Errorf("new keys not added: %v", got)
	}
}

func TestConfigRefuses(t *testing.T) {
	ok := serverSpec("s", 1, taskspec.Ports{Server: 8300, SerfLAN: 8301, SerfWAN: -1, HTTP: 8500, HTTPS: -1, GRPC: -1, DNS: -1})
	for name, tc := range map[string]struct {
		edit func(*taskspec.Spec, *Env)
		want string
	}{
		"no bind ip":          {func(s *taskspec.Spec, e *Env) { e.BindIP = "" }, "bind address"},
		"wildcard bind":       {func(s *taskspec.Spec, e *Env) { e.BindIP = "0.0.0.0" }, "bind address"},
		"data dir escapes":    {func(s *taskspec.Spec, e *Env) { s.DataDir = "../../etc" }, "inside the sandbox"},
		"absolute data dir":   {func(s *taskspec.Spec, e *Env) { s.DataDir = "/var/lib/consul" }, "inside the sandbox"},
		"no sandbox":          {func(s *taskspec.Spec, e *Env) { e.Sandbox = "" }, "MESOS_SANDBOX"},
		"extra not an object": {func(s *taskspec.Spec, e *Env) { s.ExtraConfig = json.RawMessage(`[1]`) }, "JSON object"},
	} {
		s, e := ok, Env{BindIP: "127.3.0.40", Sandbox: "/sb"}
		tc.edit(&s, &e)
		_, err := Config(s, e)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", name, err, tc.want)
		}
	}
}

func TestResolveTargets(t *testing.T) {
	dnsSrv := testdns.Start(t, "127.3.0.41")
	dnsSrv.Publish("consul-server-0.consul.mesos", "127.3.0.42")
	r := NewResolver(dnsSrv.Addr)
	addrs, failed := resolveTargets(context.Background(), r, JoinTargets{
		Addrs:    []string{"127.3.0.43:9301", "127.3.0.42"},
		DNSNames: []string{"consul-server-0.consul.mesos", "consul-server-1.consul.mesos", "127.3.0.44"},
		Port:     8301,
	})
	want := []string{"127.3.0.42:8301", "127.3.0.43:9301", "127.3.0.44:8301"}
	if !reflect.DeepEqual(addrs, want) {
		t.Errorf("addrs %v, want %v (deduplicated, sorted, names on the serf LAN port)", addrs, want)
	}
	if _, ok := failed["consul-server-1.consul.mesos"]; !ok || len(failed) != 1 {
		t.Errorf("failed %v, want only consul-server-1", failed)
	}
	if got := missingTargets(want, "127.3.0.42:8301", map[string]bool{"127.3.0.43:9301": true}); !reflect.DeepEqual(got, []string{"127.3.0.44:8301"}) {
		t.Errorf("missing %v", got)
	}
}

// TestStartFailsOnPortInUse: an agent that cannot bind says why, and
// leaves nothing running (the HTTP port stays free).
func TestStartFailsOnPortInUse(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Consul")
	}
	const ip = "127.3.0.45"
	p := freePorts(t, []string{ip}, 3)
	ports := testPorts(p)
	taken, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(ports.SerfLAN)))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, err = Start(context.Background(), serverSpec("s", 1, ports), Env{BindIP: ip, Sandbox: t.TempDir()}, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("error %v, want address already in use", err)
	}
	time.Sleep(200 * time.Millisecond)
	if c, err := net.Dial("tcp", net.JoinHostPort(ip, strconv.Itoa(ports.HTTP))); err == nil {
		c.Close()
		t.Errorf("HTTP port open after a failed start")
	}
}

// TestSingleServer: bootstrap_expect 1 is ready alone, becomes healthy
// (its own leader), and leaves.
func TestSingleServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Consul")
	}
	const ip = "127.3.0.46"
	ports := testPorts(freePorts(t, []string{ip}, 3))
	a, err := Start(context.Background(), serverSpec("solo", 1, ports), Env{BindIP: ip, Sandbox: t.TempDir()}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if err := a.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "leader", func() error {
		if h := a.Health(); !h.Healthy {
			return errorString(h.Message)
		}
		return nil
	})
	t.Logf("single server ready and its own leader %v after start", time.Since(start).Round(time.Millisecond))
	if err := a.Leave(ctx); err != nil {
		t.Errorf("leave: %v", err)
	}
	select {
	case <-a.Done():
	default:
		t.Errorf("Done not closed after Leave")
	}
	if a.Err() != nil {
		t.Errorf("Err after a requested stop: %v", a.Err())
	}
	if h := a.Health(); h.Healthy {
		t.Errorf("healthy after stop")
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

// TestStartRejectsBadExtraConfig: Consul's own validation of the merged
// configuration comes back as the start error, naming the problem.
func TestStartRejectsBadExtraConfig(t *testing.T) {
	spec := serverSpec("s", 1, testPorts([]int{18300, 18301, 18500}))
	spec.ExtraConfig = json.RawMessage(`{"no_such_option": true}`)
	_, err := Start(context.Background(), spec, Env{BindIP: "127.3.0.47", Sandbox: t.TempDir()}, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "no_such_option") {
		t.Fatalf("error %v, want one naming no_such_option", err)
	}
	spec.ExtraConfig = nil
	spec.LogLevel = "LOUD"
	if _, err := Start(context.Background(), spec, Env{BindIP: "127.3.0.47", Sandbox: t.TempDir()}, testLogger(t)); err == nil {
		t.Fatalf("log level LOUD accepted")
	} else {
		t.Logf("bad log level: %v", err)
	}
}

// TestSingleServerWithACLs: with ACLs on (default deny, from extra_config)
// the agent is still found ready and healthy: an anonymous HTTP call is
// refused but answered, and the voter check falls back to the leader.
func TestSingleServerWithACLs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Consul")
	}
	const ip = "127.3.0.48"
	spec := serverSpec("acl", 1, testPorts(freePorts(t, []string{ip}, 3)))
	spec.ExtraConfig = json.RawMessage(`{"acl":{"enabled":true,"default_policy":"deny","tokens":{"initial_management":"4f2e7a7c-6f0b-4a52-9d0e-2f1a3c5b7d91"}}}`)
	a, err := Start(context.Background(), spec, Env{BindIP: ip, Sandbox: t.TempDir()}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "healthy with ACLs", func() error {
		if h := a.Health(); !h.Healthy {
			return errorString(h.Message)
		}
		return nil
	})
	t.Logf("health with ACLs: %s", a.Health().Message)
}
