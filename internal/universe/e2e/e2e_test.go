// Package e2e starts the real scheduler in the simulated Mesos cluster with
// the environment the DC/OS package renders from a non-default option set,
// and checks that the Consul cluster it builds is the one the options ask
// for.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/cosmos"
	"github.com/dcos-consul/dcos-consul/internal/dev"
	"github.com/dcos-consul/dcos-consul/internal/universe"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// The options an operator would give `dcos package install consul
// --options=...`: five servers, another service name and datacenter, and
// every Consul port moved (inside the simulated agents' port range,
// 8000-9000 and 31000-32000). TLS off: with TLS (the default) plain HTTP
// is off, and this test reads the cluster on the HTTP port it moved.
const options = `{
  "service": {"name": "consul-east", "log_level": "debug"},
  "servers": {"count": 5, "cpus": 0.2, "mem": 256, "disk": 256},
  "clients": {"cpus": 0.1, "mem": 128},
  "consul": {"datacenter": "east", "extra_config": "{\"node_meta\": {\"installed_by\": \"e2e\"}}"},
  "ports": {"server": 8310, "serf_lan": 8311, "serf_wan": 8312, "http": 8510, "grpc": 8512, "dns": 8610},
  "security": {"tls": {"enabled": false}}
}`

const (
	agents   = 6 // five servers and one client
	masterIP = "127.0.42.1"
	httpPort = 8510
)

func TestRenderedOptionsGiveThatCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds dcos-consul and runs a six-agent Consul cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	src, err := universe.ReadSource("../../..")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cosmos.DecodeJSON(strings.NewReader(options))
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := src.RenderMarathon(universe.DefaultBaseURL, opts.(map[string]any))
	if err != nil {
		t.Fatal(err)
	}
	var app struct {
		Env map[string]string `json:"env"`
	}
	if err := json.Unmarshal(rendered, &app); err != nil {
		t.Fatal(err)
	}
	// Keep what comes from the options; what the template fixes for DC/OS
	// (master, ZooKeeper, the binary's URL) dev sets for the simulator, and
	// the user is the one running the test.
	sources := map[string]config.Source{}
	for _, o := range config.Options {
		sources[o.Env] = o.Source
	}
	var extra []string
	for k, v := range app.Env {
		if sources[k] == config.FromOption && k != config.EnvUser {
			extra = append(extra, k+"="+v)
		}
	}
	sort.Strings(extra)
	t.Logf("scheduler env from the package: %v", extra)

	// The work dir (sandboxes, logs) is kept when the test fails.
	work, err := os.MkdirTemp("", "dcos-consul-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("work dir kept: %s", work)
			return
		}
		os.RemoveAll(work)
	}()
	bin := filepath.Join(work, "dcos-consul")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/dcos-consul")
	build.Dir = "../../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building dcos-consul: %v\n%s", err, out)
	}
	logPath := filepath.Join(work, "scheduler.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	// The scheduler listens on all interfaces: take a port free on all.
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	apiPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	c, err := dev.Start(ctx, dev.Options{
		Agents: agents, Servers: 5, WorkDir: filepath.Join(work, "dev"), Binary: bin,
		MasterIP: masterIP, APIPort: apiPort, ExtraEnv: extra, SchedulerOutput: logFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	defer func() {
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("scheduler log (tail):\n%s", b)
			}
		}
	}()

	// Wait until some agent's HTTP port (the one the options chose) sees
	// five raft peers on the server port the options chose.
	client := &http.Client{Timeout: 3 * time.Second}
	var addr string
	var peers []string
	for {
		addr, peers = "", nil
		for _, a := range c.Sim.Agents() {
			a := net.JoinHostPort(a.IP, strconv.Itoa(httpPort))
			var p []string
			if err := getJSON(ctx, client, "http://"+a+"/v1/status/peers", &p); err == nil && len(p) == 5 {
				addr, peers = a, p
				break
			}
		}
		if addr != "" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no agent reports five raft peers on port %d", httpPort)
		case <-time.After(time.Second):
		}
		// Not <-c.SchedulerExited(): Stop waits on that channel.
		if b, _ := os.ReadFile(logPath); strings.Contains(string(b), "scheduler stopped with an error") {
			t.Fatal("the scheduler exited")
		}
	}
	for _, p := range peers {
		if !strings.HasSuffix(p, ":8310") {
			t.Errorf("raft peer %s is not on the server port 8310", p)
		}
	}

	// Every agent joins, in datacenter east, with the extra configuration.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var nodes []struct {
			Node, Datacenter string
			Meta             map[string]string
		}
		err := getJSON(ctx, client, "http://"+addr+"/v1/catalog/nodes?dc=east", &nodes)
		// Node meta arrives with each agent's anti-entropy sync, after
		// the leader first registers the node from serf.
		ok := err == nil && len(nodes) == agents
		for _, n := range nodes {
			if n.Datacenter != "east" || n.Meta["installed_by"] != "e2e" {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("catalog of datacenter east: %+v (%v), want %d nodes in east with node_meta installed_by=e2e", nodes, err, agents)
		}
		time.Sleep(time.Second)
	}
	// Members are read from the agent itself, filtered by its own ACL
	// view: right after the scheduler bootstraps ACLs, a follower may not
	// yet have applied the anonymous token's policy that the leader used
	// for the catalog above, and shows no member (seen once in CI under
	// load). Poll until the view is complete, then judge it.
	type member struct {
		Name string
		Port int
		Tags map[string]string
	}
	var members []member
	servers := 0
	for {
		members, servers = nil, 0
		err := getJSON(ctx, client, "http://"+addr+"/v1/agent/members", &members)
		for _, m := range members {
			if m.Tags["role"] == "consul" {
				servers++
			}
		}
		if err == nil && servers == 5 && len(members) == agents {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d members, %d servers (%v); want %d and 5", len(members), servers, err, agents)
		}
		time.Sleep(time.Second)
	}
	for _, m := range members {
		if m.Port != 8311 {
			t.Errorf("member %s gossips on port %d, want 8311", m.Name, m.Port)
		}
		if m.Tags["role"] == "consul" && m.Tags["dc"] != "east" {
			t.Errorf("server %s in dc %q", m.Name, m.Tags["dc"])
		}
	}

	// The scheduler's API is the framework the options named.
	var fw struct {
		Name string `json:"name"`
	}
	resp, err := client.Get("http://" + hostPort(c.Sim.MasterURL()) + "/master/state")
	if err == nil {
		var state struct {
			Frameworks []struct {
				Name string `json:"name"`
				Role string `json:"role"`
			} `json:"frameworks"`
		}
		json.NewDecoder(resp.Body).Decode(&state)
		resp.Body.Close()
		for _, f := range state.Frameworks {
			fw.Name = f.Name
		}
	}
	if fw.Name != "consul-east" {
		t.Errorf("framework name %q, want consul-east (service.name)", fw.Name)
	}
}

func hostPort(u string) string {
	u = strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
	return strings.TrimSuffix(u, "/")
}

func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
