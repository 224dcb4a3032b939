package dev

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// binary is the dcos-consul executable built once for these tests: the
// scheduler process runs it and the simulated agents fetch it as the executor.
// Not built under -short, where every test that runs it skips.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// -short (make race) skips every test that runs a dev cluster:
		// nothing runs the binary, so it is not built (a link of the
		// whole product, minutes on a loaded machine).
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "dcos-consul-dev-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "dcos-consul")
	build := exec.Command("go", "build", "-o", binary, "github.com/dcos-consul/dcos-consul/cmd/dcos-consul")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building dcos-consul:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// masterTask is what the tests read of a task in /master/state.
type masterTask struct {
	ID, Name, State, AgentID, AgentIP, FrameworkID string
}

// runningTasks reads the master's state: the RUNNING tasks of the consul
// framework, with their agents' addresses.
func runningTasks(t testing.TB, c *Cluster) []masterTask {
	t.Helper()
	resp, err := http.Get(c.Sim.MasterURL() + "/master/state")
	if err != nil {
		t.Fatalf("GET /master/state: %v", err)
	}
	defer resp.Body.Close()
	var st struct {
		Frameworks []struct {
			ID    string `json:"id"`
			Name  string `json:"name"`
			Tasks []struct {
				ID      string `json:"id"`
				Name    string `json:"name"`
				State   string `json:"state"`
				SlaveID string `json:"slave_id"`
			} `json:"tasks"`
		} `json:"frameworks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("decoding /master/state: %v", err)
	}
	ips := map[string]string{}
	for _, a := range c.Sim.Agents() {
		ips[a.ID] = a.IP
	}
	var out []masterTask
	for _, f := range st.Frameworks {
		if f.Name != "consul" {
			continue
		}
		for _, task := range f.Tasks {
			if task.State == "TASK_RUNNING" {
				out = append(out, masterTask{ID: task.ID, Name: task.Name, State: task.State, AgentID: task.SlaveID, AgentIP: ips[task.SlaveID], FrameworkID: f.ID})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func servers(ts []masterTask) []masterTask {
	var out []masterTask
	for _, task := range ts {
		if strings.HasPrefix(task.Name, "consul-server-") {
			out = append(out, task)
		}
	}
	return out
}

// eventually retries f every half second until it returns nil or the
// timeout passes; then it fails the test with f's last error.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// consulConfig is the one place the tests build a Consul API
// configuration for an agent of the dev cluster c at hostPort (ip:port):
// its address and the service's ACL management token (which the scheduler
// hands out with the operator token, as `dcos-consul consul acl
// management-token` reads it). The first call for a cluster waits until
// the token works (the scheduler bootstraps ACLs after the servers elect a
// leader); with ACLs off Consul ignores the token.
func consulConfig(t testing.TB, c *Cluster, hostPort string) *consul.Config {
	t.Helper()
	host, _, err := net.SplitHostPort(hostPort)
	hasPort := err == nil
	if !hasPort {
		host = hostPort
	}
	// HTTP, or with TLS HTTPS on the HTTPS port verified against the
	// service's CA (Cluster.ConsulConfig).
	// Any agent, clients too: wait for Consul's CA roots with TLS.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg, err := c.ConsulConfigAll(ctx, host, "")
	if err != nil {
		t.Fatal(err)
	}
	if hasPort && !c.ConsulTLS() {
		cfg.Address = hostPort // the caller's port (dev --env CONSUL_PORT_HTTP=...)
	}
	cfg.Token = clusterToken(t, c, cfg)
	return cfg
}

// withTimeout is a copy of cfg whose HTTP client gives up after d, keeping
// its transport (the TLS roots with TLS).
func withTimeout(cfg *consul.Config, d time.Duration) *consul.Config {
	out := *cfg
	hc := &http.Client{Timeout: d}
	if cfg.HttpClient != nil {
		hc.Transport = cfg.HttpClient.Transport
	}
	out.HttpClient = hc
	return &out
}

// agentAccess is how the watches reach every agent of a cluster with bare
// HTTP requests: the scheme and port of its Consul API (HTTPS on the
// HTTPS port with TLS), the TLS roots and the token, taken from one
// consulConfig.
type agentAccess struct {
	scheme, port, token string
	tls                 *tls.Config
}

func accessOf(cfg *consul.Config) agentAccess {
	_, port, _ := net.SplitHostPort(cfg.Address)
	a := agentAccess{scheme: cfg.Scheme, port: port, token: cfg.Token}
	if a.scheme == "" {
		a.scheme = "http"
	}
	if cfg.HttpClient != nil {
		if tr, ok := cfg.HttpClient.Transport.(*http.Transport); ok && tr.TLSClientConfig != nil {
			a.tls = tr.TLSClientConfig.Clone()
		}
	}
	return a
}

func (a agentAccess) addr(ip string) string { return net.JoinHostPort(ip, a.port) }

// url is the API's base URL on the agent at ip.
func (a agentAccess) url(ip string) string { return a.scheme + "://" + a.addr(ip) }

// client is an HTTP client that gives up after d and sends the token.
func (a agentAccess) client(d time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = a.tls
	return &http.Client{Timeout: d, Transport: tokenTransport{token: a.token, next: tr}}
}

// config is a Consul API configuration of the agent at ip through hc.
func (a agentAccess) config(ip string, hc *http.Client) *consul.Config {
	return &consul.Config{Address: a.addr(ip), Scheme: a.scheme, Token: a.token, HttpClient: hc}
}

// tokenTransport adds the ACL token to every request (the watches' bare
// requests).
type tokenTransport struct {
	token string
	next  http.RoundTripper
}

func (t tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Consul-Token", t.token)
	return t.next.RoundTrip(r)
}

// consulClient is a client of the agent on ip's default HTTP port.
func consulClient(t testing.TB, c *Cluster, ip string) *consul.Client {
	t.Helper()
	cl, err := consul.NewClient(consulConfig(t, c, net.JoinHostPort(ip, "8500")))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// tokens caches each cluster's management token. The map's lock is held
// only to find a cluster's entry: the wait for one cluster's token (up to
// minutes, while its servers elect a leader) must not hold up the tests
// of other clusters running in parallel.
var (
	tokensMu sync.Mutex
	tokens   = map[*Cluster]*clusterTokenEntry{}
)

type clusterTokenEntry struct {
	mu  sync.Mutex
	tok string
	ok  bool
}

// clusterToken returns c's management token once it works at the agent at.
func clusterToken(t testing.TB, c *Cluster, at *consul.Config) string {
	t.Helper()
	tokensMu.Lock()
	e := tokens[c]
	if e == nil {
		e = &clusterTokenEntry{}
		tokens[c] = e
	}
	tokensMu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ok {
		return e.tok
	}
	var tok string
	deadline := time.Now().Add(4 * time.Minute)
	for {
		var err error
		if tok, err = readManagementToken(c); err == nil {
			err = aclReady(at, tok)
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster's ACL management token does not work at %s: %v", at.Address, err)
		}
		time.Sleep(time.Second)
	}
	e.tok, e.ok = tok, true
	return tok
}

// readManagementToken asks the scheduler for the management token with the
// operator token it wrote for the operator commands.
func readManagementToken(c *Cluster) (string, error) {
	op, err := os.ReadFile(c.OperatorTokenFile())
	if err != nil {
		return "", err
	}
	req, err := http.NewRequest(http.MethodGet, c.SchedulerURL+"/v1/acl/management-token", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Dcos-Consul-Token", strings.TrimSpace(string(op)))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		SecretID string `json:"secret_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.SecretID == "" {
		return "", fmt.Errorf("GET /v1/acl/management-token: %s %v", resp.Status, err)
	}
	return out.SecretID, nil
}

// aclReady: the token reads itself at hostPort (the ACL bootstrap is
// done), or the agent runs without ACLs.
func aclReady(at *consul.Config, tok string) error {
	cfg := *at
	cfg.Token = tok
	cl, err := consul.NewClient(&cfg)
	if err != nil {
		return err
	}
	_, _, err = cl.ACL().TokenReadSelf(nil)
	if err != nil && strings.Contains(err.Error(), "ACL support disabled") {
		return nil
	}
	return err
}

// raftPeers returns the raft configuration as node name → (address, ID).
func raftPeers(c *consul.Client) (map[string]*consul.RaftServer, error) {
	cfg, err := c.Operator().RaftGetConfiguration(nil)
	if err != nil {
		return nil, err
	}
	out := map[string]*consul.RaftServer{}
	for _, s := range cfg.Servers {
		out[s.Node] = s
	}
	return out, nil
}

func resolveA(server, name string) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	r, err := dns.Exchange(m, server)
	if err != nil {
		return nil, err
	}
	var ips []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
		}
	}
	return ips, nil
}

// checkCluster asserts the "done when" for a running dev cluster
// with 5 agents and 3 servers, and returns the running tasks.
func checkCluster(t *testing.T, c *Cluster) []masterTask {
	t.Helper()
	var tasks []masterTask
	eventually(t, 3*time.Minute, "3 servers and 2 clients RUNNING", func() error {
		tasks = runningTasks(t, c)
		if len(tasks) != 5 || len(servers(tasks)) != 3 {
			return fmt.Errorf("running tasks: %+v", tasks)
		}
		return nil
	})
	agents := map[string]bool{}
	for _, task := range tasks {
		if agents[task.AgentIP] {
			t.Fatalf("two tasks on agent %s: %+v", task.AgentIP, tasks)
		}
		agents[task.AgentIP] = true
	}

	srv := servers(tasks)
	client := consulClient(t, c, srv[0].AgentIP)
	eventually(t, 2*time.Minute, "a leader and exactly the 3 server tasks' agents as raft peers", func() error {
		leader, err := client.Status().Leader()
		if err != nil || leader == "" {
			return fmt.Errorf("leader %q: %v", leader, err)
		}
		peers, err := raftPeers(client)
		if err != nil {
			return err
		}
		var got, want []string
		for _, p := range peers {
			host, _, _ := net.SplitHostPort(p.Address)
			got = append(got, p.Node+"@"+host)
			if !p.Voter {
				return fmt.Errorf("peer %s is not a voter yet", p.Node)
			}
		}
		for _, s := range srv {
			want = append(want, s.Name+"@"+s.AgentIP)
		}
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("raft peers %v, want %v", got, want)
		}
		return nil
	})

	eventually(t, 2*time.Minute, "5 alive LAN members, one per agent", func() error {
		members, err := client.Agent().Members(false)
		if err != nil {
			return err
		}
		addrs := map[string]bool{}
		for _, m := range members {
			if m.Status != 1 { // serf StatusAlive
				continue
			}
			addrs[m.Addr] = true
		}
		if len(addrs) != 5 {
			return fmt.Errorf("alive members on %d addresses, want 5: %v", len(addrs), addrs)
		}
		for ip := range agents {
			if !addrs[ip] {
				return fmt.Errorf("no member on agent %s: %v", ip, addrs)
			}
		}
		return nil
	})

	eventually(t, time.Minute, "Mesos-DNS resolves every server's name to its agent", func() error {
		for _, s := range srv {
			name := s.Name + ".consul.mesos"
			ips, err := resolveA(c.DNS.Addr(), name)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if len(ips) != 1 || ips[0] != s.AgentIP {
				return fmt.Errorf("%s resolves to %v, want [%s]", name, ips, s.AgentIP)
			}
		}
		return nil
	})
	return tasks
}

// writeThroughClient writes keys through a client agent and checks that
// every server has them in its own state (stale reads answer locally).
func writeThroughClient(t *testing.T, c *Cluster, tasks []masterTask, prefix string, n int) {
	t.Helper()
	var clientIP string
	for _, task := range tasks {
		if strings.HasPrefix(task.Name, "consul-client-") {
			clientIP = task.AgentIP
			break
		}
	}
	if clientIP == "" {
		t.Fatalf("no client task among %+v", tasks)
	}
	kv := consulClient(t, c, clientIP).KV()
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("%s/%d", prefix, i)
		eventually(t, time.Minute, "writing "+key, func() error {
			_, err := kv.Put(&consul.KVPair{Key: key, Value: []byte("v" + key)}, nil)
			return err
		})
	}
	for _, s := range servers(tasks) {
		checkKeys(t, c, s.AgentIP, prefix, n)
	}
}

func checkKeys(t *testing.T, c *Cluster, ip, prefix string, n int) {
	t.Helper()
	kv := consulClient(t, c, ip).KV()
	eventually(t, time.Minute, "keys "+prefix+" on "+ip, func() error {
		for i := 0; i < n; i++ {
			key := fmt.Sprintf("%s/%d", prefix, i)
			p, _, err := kv.Get(key, &consul.QueryOptions{AllowStale: true})
			if err != nil {
				return err
			}
			if p == nil || string(p.Value) != "v"+key {
				return fmt.Errorf("%s on %s: %v", key, ip, p)
			}
		}
		return nil
	})
}

// TestDevClusterEndToEnd is issue 3's acceptance test: dev with 5 agents
// and 3 servers gives a real Consul cluster; a killed non-leader server is
// relaunched on the same agent with the same data and raft identity; a
// second start on the same work dir resumes the same cluster and keys.
func TestDevClusterEndToEnd(t *testing.T) {
	besideOthers(t)
	if testing.Short() {
		t.Skip("runs a whole dev cluster with real Consul")
	}
	workDir := t.TempDir()
	opts := Options{
		Agents: 5, Servers: 3, WorkDir: workDir, Binary: binary,
		MasterIP: "127.4.0.1", MasterPort: 5050, AgentPort: 5051, DNSPort: 61053,
		DNSRefresh: time.Second, Logger: harnessLogger(t, workDir),
	}
	ctx := context.Background()
	start := time.Now()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			c.Stop()
		}
		if t.Failed() {
			dumpLogs(t, workDir)
		}
	}()
	waitCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	_, leader, err := c.WaitForLeader(waitCtx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leader %s after %s", leader, time.Since(start))

	tasks := checkCluster(t, c)
	writeThroughClient(t, c, tasks, "before-kill", 20)

	// Kill the executor of a server that is not the leader.
	srv := servers(tasks)
	leaderHost, _, _ := net.SplitHostPort(leader)
	var victim masterTask
	for _, s := range srv {
		if s.AgentIP != leaderHost {
			victim = s
			break
		}
	}
	peers, err := raftPeers(consulClient(t, c, leaderHost))
	if err != nil {
		t.Fatal(err)
	}
	before := peers[victim.Name]
	if before == nil {
		t.Fatalf("%s is not a raft peer: %v", victim.Name, peers)
	}
	t.Logf("killing the executor of %s (%s) on %s, raft ID %s", victim.Name, victim.ID, victim.AgentIP, before.ID)
	if err := c.Sim.KillExecutor(victim.AgentID, victim.FrameworkID, victim.ID); err != nil {
		t.Fatalf("killing the executor: %v", err)
	}
	eventually(t, 3*time.Minute, victim.Name+" relaunched on the same agent", func() error {
		for _, task := range runningTasks(t, c) {
			if task.Name == victim.Name {
				if task.ID == victim.ID {
					return fmt.Errorf("still the old task %s", task.ID)
				}
				if task.AgentIP != victim.AgentIP {
					t.Fatalf("%s relaunched on %s, want its own agent %s", victim.Name, task.AgentIP, victim.AgentIP)
				}
				return nil
			}
		}
		return fmt.Errorf("%s not running", victim.Name)
	})
	eventually(t, 2*time.Minute, victim.Name+" back as the same raft peer", func() error {
		peers, err := raftPeers(consulClient(t, c, leaderHost))
		if err != nil {
			return err
		}
		p := peers[victim.Name]
		if p == nil || p.ID != before.ID || !p.Voter || len(peers) != 3 {
			return fmt.Errorf("peers %v", peers)
		}
		return nil
	})
	checkKeys(t, c, victim.AgentIP, "before-kill", 20)
	tasks = checkCluster(t, c)
	writeThroughClient(t, c, tasks, "before-restart", 5)
	ids := map[string]string{}
	for name, p := range mustPeers(t, c, leaderHost) {
		ids[name] = p.ID
	}

	// Stop everything and start again on the same work dir.
	c.Stop()
	stopped = true
	c, err = Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	stopped = false
	tasks = checkCluster(t, c)
	for _, s := range servers(tasks) {
		checkKeys(t, c, s.AgentIP, "before-kill", 20)
		checkKeys(t, c, s.AgentIP, "before-restart", 5)
	}
	after := mustPeers(t, c, servers(tasks)[0].AgentIP)
	for name, id := range ids {
		if after[name] == nil || after[name].ID != id {
			t.Fatalf("after resuming, %s has raft ID %v, want %s (the same data)", name, after[name], id)
		}
	}
}

func mustPeers(t *testing.T, c *Cluster, ip string) map[string]*consul.RaftServer {
	t.Helper()
	var peers map[string]*consul.RaftServer
	eventually(t, time.Minute, "raft configuration", func() error {
		var err error
		peers, err = raftPeers(consulClient(t, c, ip))
		return err
	})
	return peers
}

func dumpLogs(t *testing.T, workDir string) {
	for _, name := range []string{harnessLogName, "scheduler.log"} {
		b, err := os.ReadFile(filepath.Join(workDir, name))
		if err != nil {
			continue
		}
		lines := strings.Split(string(b), "\n")
		if len(lines) > 80 {
			lines = lines[len(lines)-80:]
		}
		t.Logf("%s (tail):\n%s", name, strings.Join(lines, "\n"))
	}
}

// startLeading starts a dev cluster with opts and waits up to wait for a
// Consul leader. The cluster stops once, at the end of the test (its logs
// dumped if the test failed) or earlier through stop.
func startLeading(t *testing.T, opts Options, wait time.Duration) (c *Cluster, leader string, stop func()) {
	t.Helper()
	c, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() { once.Do(c.Stop) }
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			dumpLogs(t, opts.WorkDir)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, leader, err = c.WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return c, leader, stop
}
