package realmesos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-zookeeper/zk"
)

// DCOSPorts is the ports resource a DC/OS agent offers by default (see
// /work/shared/mesos/README.md); without it an agent offers [31000-32000].
const DCOSPorts = "[1025-2180,2182-3887,3889-5049,5052-8079,8082-8180,8182-32000]"

// Options of a real Mesos cluster on loopback.
type Options struct {
	// Dir holds every process's work dir and log; required.
	Dir string
	// Net is the first three octets of the loopback addresses, e.g.
	// "127.6.0": the master and Mesos-DNS on .1, agents on .2, .3, ...
	Net    string
	Agents int // default 5
	// ZK is ZooKeeper's host:port; ZKRoot a path of this run's own under
	// which the master registers (<ZKRoot>/mesos). Required.
	ZK, ZKRoot string
	// AgentResources per agent; default cpus:2;mem:2048;disk:4096 and the
	// DC/OS ports.
	AgentResources string
	// PingTimeout and MaxPingTimeouts: the master declares an agent lost
	// after about their product (default 3 s × 5).
	PingTimeout     time.Duration
	MaxPingTimeouts int
	// DNSRefresh is Mesos-DNS's refreshSeconds (default 2).
	DNSRefresh int
	// FrameworkCredentials (principal → secret), when set, make the
	// master require HTTP framework authentication:
	// --authenticate_http_frameworks --http_framework_authenticators=basic
	// --credentials=<file>.
	FrameworkCredentials map[string]string
}

// Cluster is a running real Mesos cluster: master, agents, Mesos-DNS.
type Cluster struct {
	opts   Options
	master *proc
	agents []*Agent
	dns    *proc
}

// Agent is one mesos-agent process and its directories.
type Agent struct {
	IP      string
	WorkDir string
	proc    *proc
	lost    bool // killed for good with its executors
}

// Addresses.
func (c *Cluster) MasterIP() string  { return c.opts.Net + ".1" }
func (c *Cluster) MasterURL() string { return "http://" + c.MasterIP() + ":5050" }

// MasterZK is the zk:// URL agents, Mesos-DNS and the scheduler detect the
// leading master through (as MESOS_MASTER on DC/OS: zk://.../mesos).
func (c *Cluster) MasterZK() string { return "zk://" + c.opts.ZK + c.opts.ZKRoot + "/mesos" }

// DNSAddr is Mesos-DNS's DNS address.
func (c *Cluster) DNSAddr() string { return c.MasterIP() + ":8053" }

// Agents returns the agents, lost ones included.
func (c *Cluster) Agents() []*Agent { return c.agents }

// Lost reports whether the agent was killed for good.
func (a *Agent) Lost() bool { return a.lost }

func (o *Options) setDefaults() error {
	if o.Dir == "" || o.Net == "" || o.ZK == "" || o.ZKRoot == "" {
		return errors.New("realmesos: Dir, Net, ZK and ZKRoot are required")
	}
	if o.Agents == 0 {
		o.Agents = 5
	}
	if o.AgentResources == "" {
		o.AgentResources = "cpus:2;mem:2048;disk:4096;ports:" + DCOSPorts
	}
	if o.PingTimeout == 0 {
		o.PingTimeout = 3 * time.Second
	}
	if o.MaxPingTimeouts == 0 {
		o.MaxPingTimeouts = 5
	}
	if o.DNSRefresh == 0 {
		o.DNSRefresh = 2
	}
	return nil
}

// Start runs the master, the agents and Mesos-DNS, and waits until the
// master is elected and every agent is registered. On error everything
// started is stopped, and the cluster is returned all the same (if its
// options were valid) for its logs.
func Start(ctx context.Context, o Options) (c *Cluster, err error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	c = &Cluster{opts: o}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	if err := ensureZKPath(o.ZK, o.ZKRoot); err != nil {
		return c, err
	}
	secs := func(d time.Duration) string { return strconv.Itoa(int(d.Seconds())) + "secs" }
	md := filepath.Join(o.Dir, "master")
	if err := os.MkdirAll(md, 0o755); err != nil {
		return c, err
	}
	c.master = &proc{
		name: "mesos-master", path: filepath.Join(Prefix, "sbin/mesos-master"),
		args: []string{
			"--ip=" + c.MasterIP(), "--port=5050", "--hostname=" + c.MasterIP(), "--no-hostname_lookup",
			"--cluster=realmesos",
			"--registry=replicated_log", "--quorum=1", "--work_dir=" + filepath.Join(md, "work"),
			"--zk=" + c.MasterZK(), "--zk_session_timeout=10secs",
			"--agent_ping_timeout=" + secs(o.PingTimeout), "--max_agent_ping_timeouts=" + strconv.Itoa(o.MaxPingTimeouts),
		},
		logPath: filepath.Join(md, "master.log"),
	}
	if len(o.FrameworkCredentials) > 0 {
		f, err := writeCredentials(md, o.FrameworkCredentials)
		if err != nil {
			return c, err
		}
		c.master.args = append(c.master.args,
			"--authenticate_http_frameworks", "--http_framework_authenticators=basic", "--credentials="+f)
	}
	if err := c.master.start(); err != nil {
		return c, err
	}
	for i := 0; i < o.Agents; i++ {
		ip := fmt.Sprintf("%s.%d", o.Net, i+2)
		dir := filepath.Join(o.Dir, "agent-"+ip)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return c, err
		}
		a := &Agent{IP: ip, WorkDir: filepath.Join(dir, "work")}
		a.proc = &proc{
			name: "mesos-agent " + ip, path: filepath.Join(Prefix, "sbin/mesos-agent"),
			args: []string{
				"--master=" + c.MasterZK(), "--ip=" + ip, "--port=5051", "--hostname=" + ip, "--no-hostname_lookup",
				"--launcher=posix", "--isolation=posix/cpu,posix/mem", "--no-systemd_enable_support",
				"--work_dir=" + a.WorkDir, "--runtime_dir=" + filepath.Join(dir, "run"),
				"--fetcher_cache_dir=" + filepath.Join(dir, "fetch"),
				"--resources=" + o.AgentResources,
			},
			logPath: filepath.Join(dir, "agent.log"),
		}
		if err := a.proc.start(); err != nil {
			return c, err
		}
		c.agents = append(c.agents, a)
	}
	if err := c.startDNS(); err != nil {
		return c, err
	}
	if err := c.WaitAgents(ctx, 2*time.Minute); err != nil {
		return c, err
	}
	return c, nil
}

func (c *Cluster) startDNS() error {
	o := c.opts
	cfg := map[string]any{
		"zk": c.MasterZK(), "masters": []string{c.MasterIP() + ":5050"}, "zkDetectionTimeout": 30,
		"refreshSeconds": o.DNSRefresh, "stateTimeoutSeconds": 10, "ttl": 60,
		"domain": "mesos", "port": 8053, "listener": c.MasterIP(), "HTTPListener": c.MasterIP(), "httpport": 8123,
		"dnson": true, "httpon": true, "externalon": false, "recurseon": false,
		"SOAMname": "ns1.mesos", "SOARname": "root.ns1.mesos",
		"IPSources": []string{"netinfo", "mesos", "host"}, "EnumerationOn": true,
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	dir := filepath.Join(o.Dir, "mesos-dns")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	c.dns = &proc{
		name: "mesos-dns", path: filepath.Join(Prefix, "bin/mesos-dns"),
		args:    []string{"-config=" + path, "-v=1"},
		logPath: filepath.Join(dir, "mesos-dns.log"),
	}
	return c.dns.start()
}

// WaitAgents waits until the master is elected and every agent that is not
// lost is registered and active.
func (c *Cluster) WaitAgents(ctx context.Context, timeout time.Duration) error {
	want := map[string]bool{}
	for _, a := range c.agents {
		if !a.lost {
			want[a.IP] = true
		}
	}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if !c.master.running() {
			return fmt.Errorf("mesos-master exited: %v (see %s)", c.master.err, c.master.logPath)
		}
		st, err := c.State(ctx)
		if err == nil {
			got := map[string]bool{}
			for _, s := range st.Slaves {
				if s.Active && want[s.Hostname] {
					got[s.Hostname] = true
				}
			}
			if len(got) == len(want) {
				return nil
			}
			err = fmt.Errorf("%d of %d agents active", len(got), len(want))
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("agents not all registered within %s: %v", timeout, last)
}

// State reads GET /master/state.
func (c *Cluster) State(ctx context.Context) (*State, error) {
	b, err := c.RawState(ctx)
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("decoding /master/state: %w", err)
	}
	return &st, nil
}

// RawState returns the body of GET /master/state as the master sent it.
func (c *Cluster) RawState(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.MasterURL()+"/master/state", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET /master/state: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /master/state: %s: %s", resp.Status, b)
	}
	return b, nil
}

// RestartMaster SIGKILLs the master and starts it again on the same work
// dir (its replicated log keeps the registry: agents, frameworks).
func (c *Cluster) RestartMaster() error {
	c.master.kill()
	return c.master.start()
}

// MasterRunning reports whether the master process runs.
func (c *Cluster) MasterRunning() bool { return c.master.running() }

// KillExecutors SIGKILLs the processes of executor executorID (the
// dcos-consul executor and its shell) on any agent of the cluster; it
// fails if there was none.
func (c *Cluster) KillExecutors(executorID string) ([]int, error) {
	pids, err := killSandboxProcs(c.opts.Dir, executorID)
	if err == nil && len(pids) == 0 {
		err = fmt.Errorf("no process of executor %s under %s", executorID, c.opts.Dir)
	}
	return pids, err
}

// LoseAgent is a machine loss: the agent and every executor it launched
// are SIGKILLed, and the agent is never started again.
func (c *Cluster) LoseAgent(ip string) ([]int, error) {
	for _, a := range c.agents {
		if a.IP != ip {
			continue
		}
		a.proc.kill()
		a.lost = true
		return killSandboxProcs(a.WorkDir, "")
	}
	return nil, fmt.Errorf("no agent %s", ip)
}

// Stop ends every process: agents, then their executors (which outlive
// them), the master and Mesos-DNS. The directories stay.
func (c *Cluster) Stop() {
	for _, a := range c.agents {
		a.proc.stop(syscall.SIGTERM, 5*time.Second)
	}
	_, _ = killSandboxProcs(c.opts.Dir, "")
	if c.master != nil {
		c.master.stop(syscall.SIGTERM, 5*time.Second)
	}
	if c.dns != nil {
		c.dns.stop(syscall.SIGTERM, 5*time.Second)
	}
}

// Logs lists the log files of the run, for a failure report: the master's,
// the agents', Mesos-DNS's, and every executor sandbox's stdout/stderr.
func (c *Cluster) Logs() []string {
	var out []string
	if c.master != nil {
		out = append(out, c.master.logPath)
	}
	for _, a := range c.agents {
		out = append(out, a.proc.logPath)
	}
	if c.dns != nil {
		out = append(out, c.dns.logPath)
	}
	var sandboxes []string
	for _, a := range c.agents {
		for _, name := range []string{"stdout", "stderr"} {
			runs, _ := filepath.Glob(filepath.Join(a.WorkDir, "slaves/*/frameworks/*/executors/*/runs/*", name))
			for _, r := range runs {
				if !strings.Contains(r, "/runs/latest/") {
					sandboxes = append(sandboxes, r)
				}
			}
		}
	}
	sort.Strings(sandboxes)
	return append(out, sandboxes...)
}

// VolumeDirs lists the persistent volumes present on the agents' disks
// (<work_dir>/volumes/roles/<role>/<id>), lost agents excluded.
func (c *Cluster) VolumeDirs() []string {
	var out []string
	for _, a := range c.agents {
		if a.lost {
			continue
		}
		vs, _ := filepath.Glob(filepath.Join(a.WorkDir, "volumes/roles/*/*"))
		out = append(out, vs...)
	}
	return out
}

// ensureZKPath creates root (and its parents) in ZooKeeper: the master
// registers under it.
func ensureZKPath(addr, root string) error {
	conn, err := zkConnect(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	p := ""
	for _, part := range strings.Split(strings.Trim(root, "/"), "/") {
		p += "/" + part
		if _, err := conn.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("creating %s in ZooKeeper %s: %w", p, addr, err)
		}
	}
	return nil
}

// DeleteZKTree removes root and everything under it (the run's master
// registration and the scheduler's state).
func DeleteZKTree(addr, root string) error {
	conn, err := zkConnect(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	return deleteTree(conn, root)
}

// ZKChildren lists the children of p.
func ZKChildren(addr, p string) ([]string, error) {
	conn, err := zkConnect(addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	kids, _, err := conn.Children(p)
	return kids, err
}

func deleteTree(c *zk.Conn, p string) error {
	kids, _, err := c.Children(p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, k := range kids {
		if err := deleteTree(c, p+"/"+k); err != nil {
			return err
		}
	}
	if err := c.Delete(p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	return nil
}

func zkConnect(addr string) (*zk.Conn, error) {
	conn, events, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		return nil, fmt.Errorf("ZooKeeper %s: %w", addr, err)
	}
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return conn, nil
			}
		case <-timeout:
			conn.Close()
			return nil, fmt.Errorf("ZooKeeper %s: no session within 15s", addr)
		}
	}
}

// ZKReachable dials ZooKeeper.
func ZKReachable(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	return conn.Close()
}

// writeCredentials writes the master's --credentials file (JSON, mode
// 0600) in dir.
func writeCredentials(dir string, creds map[string]string) (string, error) {
	type cred struct {
		Principal string `json:"principal"`
		Secret    string `json:"secret"`
	}
	var doc struct {
		Credentials []cred `json:"credentials"`
	}
	for p, s := range creds {
		doc.Credentials = append(doc.Credentials, cred{p, s})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	f := filepath.Join(dir, "credentials.json")
	return f, os.WriteFile(f, b, 0o600)
}
