package dev

// Issue 4's fault tests: each runs a dev cluster with real Consul on its own
// loopback range (127.5.<n>.*), writes keys, injects one kind of fault,
// and asserts that the cluster heals by itself: a leader, the configured
// voters, exactly one task (server or client) on every live agent, every
// acknowledged key present, no duplicate task at any moment, and no
// reservation that no server explains. Each logs its recovery time (from
// the fault to the first moment every check passes).

import (
	"context"
	"encoding/json"
	"errors"
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

	"github.com/go-zookeeper/zk"
	consul "github.com/hashicorp/consul/api"

	"github.com/dcos-consul/dcos-consul/internal/zktest"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// faultRole is the Mesos role of dev's service (SERVICE_NAME=consul).
var faultRole = config.DefaultRole("consul")

// faultServerDisk is the server volume size dev asks for (SERVER_DISK).
const faultServerDisk = 256

// faultCluster is a dev cluster under a fault test, with a monitor that
// watches the master's state for duplicate tasks the whole time.
type faultCluster struct {
	*Cluster
	opts Options
	mon  *monitor
}

// startFaultCluster starts dev on 127.5.<n>.1 (agents on 127.5.<n>.2, ...)
// and stops it, with its logs dumped on failure, when the test ends.
func startFaultCluster(t *testing.T, n, agents, servers int, extraEnv ...string) *faultCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a whole dev cluster with real Consul")
	}
	workDir := t.TempDir()
	opts := Options{
		Agents: agents, Servers: servers, WorkDir: workDir, Binary: binary,
		MasterIP: fmt.Sprintf("127.5.%d.1", n), MasterPort: 5050, AgentPort: 5051, DNSPort: 61053,
		DNSRefresh: time.Second, ExtraEnv: extraEnv, Logger: harnessLogger(t, workDir),
	}
	c, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	fc := &faultCluster{Cluster: c, opts: opts, mon: startMonitor(c)}
	t.Cleanup(func() {
		fc.mon.stop()
		c.Stop()
		if t.Failed() {
			dumpLogs(t, workDir)
		}
		// DEV_FAULT_LOGS=<dir> keeps each test's logs: the scheduler's
		// and every executor's (sandbox stdout/stderr).
		if dir := os.Getenv("DEV_FAULT_LOGS"); dir != "" {
			keepLogs(t, workDir, filepath.Join(dir, t.Name()))
		}
	})
	return fc
}

func keepLogs(t *testing.T, workDir, dest string) {
	err := filepath.WalkDir(workDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch d.Name() {
		case "scheduler.log", harnessLogName, "stdout", "stderr":
		default:
			return nil
		}
		rel, err := filepath.Rel(workDir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dest, rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dest, rel), b, 0o644)
	})
	if err != nil {
		t.Logf("keeping the logs in %s: %v", dest, err)
	}
}

// masterState is what the fault tests read of /master/state.
type masterState struct {
	Slaves []struct {
		ID                string                    `json:"id"`
		Hostname          string                    `json:"hostname"`
		Active            bool                      `json:"active"`
		ReservedResources map[string]map[string]any `json:"reserved_resources"`
	} `json:"slaves"`
	Frameworks []struct {
		ID               string      `json:"id"`
		Name             string      `json:"name"`
		Active           bool        `json:"active"`
		Connected        bool        `json:"connected"`
		Tasks            []stateTask `json:"tasks"`
		UnreachableTasks []stateTask `json:"unreachable_tasks"`
		CompletedTasks   []stateTask `json:"completed_tasks"`
	} `json:"frameworks"`
}

type stateTask struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	State   string `json:"state"`
	SlaveID string `json:"slave_id"`
}

func readMasterState(c *Cluster) (*masterState, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(c.Sim.MasterURL() + "/master/state")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /master/state: %s", resp.Status)
	}
	var st masterState
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("decoding /master/state: %w", err)
	}
	return &st, nil
}

// consulFramework returns the consul framework's entries (one, unless the
// scheduler registered a second framework, which is itself a bug).
func (st *masterState) consulFrameworks() []int {
	var out []int
	for i, f := range st.Frameworks {
		if f.Name == "consul" {
			out = append(out, i)
		}
	}
	return out
}

// duplicates reports running tasks sharing a name and active tasks
// sharing an agent.
func (st *masterState) duplicates() []string {
	var out []string
	for _, i := range st.consulFrameworks() {
		byName := map[string][]string{}
		byAgent := map[string][]string{}
		for _, task := range st.Frameworks[i].Tasks {
			switch task.State {
			case "TASK_RUNNING":
				byName[task.Name] = append(byName[task.Name], task.ID)
				fallthrough
			case "TASK_STAGING", "TASK_STARTING", "TASK_KILLING":
				byAgent[task.SlaveID] = append(byAgent[task.SlaveID], task.Name+"("+task.State+")")
			}
		}
		for name, ids := range byName {
			if len(ids) > 1 {
				out = append(out, fmt.Sprintf("%d RUNNING tasks named %s: %v", len(ids), name, ids))
			}
		}
		for agent, names := range byAgent {
			if len(names) > 1 {
				out = append(out, fmt.Sprintf("%d tasks on agent %s: %v", len(names), agent, names))
			}
		}
	}
	if n := len(st.consulFrameworks()); n > 1 {
		out = append(out, fmt.Sprintf("%d frameworks named consul", n))
	}
	return out
}

// monitor polls the master's state every 300 ms and records every
// duplicate it ever sees: a duplicate that heals before the final checks
// is still a bug.
type monitor struct {
	c      *Cluster
	mu     sync.Mutex
	seen   map[string]time.Time
	done   chan struct{}
	wg     sync.WaitGroup
	polled int
}

func startMonitor(c *Cluster) *monitor {
	m := &monitor{c: c, seen: map[string]time.Time{}, done: make(chan struct{})}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.done:
				return
			case <-tick.C:
			}
			st, err := readMasterState(c)
			if err != nil {
				continue // the master may be restarting
			}
			m.mu.Lock()
			m.polled++
			for _, d := range st.duplicates() {
				if _, ok := m.seen[d]; !ok {
					m.seen[d] = time.Now()
				}
			}
			m.mu.Unlock()
		}
	}()
	return m
}

func (m *monitor) stop() {
	select {
	case <-m.done:
	default:
		close(m.done)
	}
	m.wg.Wait()
}

// check fails the test if the monitor ever saw a duplicate.
func (m *monitor) check(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.seen) > 0 {
		var ds []string
		for d, at := range m.seen {
			ds = append(ds, at.Format("15:04:05.000")+" "+d)
		}
		sort.Strings(ds)
		t.Fatalf("duplicate tasks seen in the master's state:\n%s", strings.Join(ds, "\n"))
	}
	if m.polled == 0 {
		t.Fatal("the duplicate monitor never read the master's state")
	}
}

// healthy is issue 4's "the cluster returns to health" for a dev cluster
// with the given number of live agents and servers: it retries every
// check until all pass at once (or timeout), then returns the running
// tasks and the leader's address.
func (fc *faultCluster) healthy(t *testing.T, nServers int, timeout time.Duration) ([]masterTask, string) {
	t.Helper()
	var tasks []masterTask
	var leader string
	eventually(t, timeout, fmt.Sprintf("a healthy cluster (%d servers, a task on each of %d agents)", nServers, len(fc.Sim.Agents())), func() error {
		var err error
		tasks, leader, err = fc.checkHealthy(t, nServers)
		return err
	})
	fc.mon.check(t)
	return tasks, leader
}

func (fc *faultCluster) checkHealthy(t *testing.T, nServers int) ([]masterTask, string, error) {
	t.Helper()
	st, err := readMasterState(fc.Cluster)
	if err != nil {
		return nil, "", err
	}
	if d := st.duplicates(); len(d) > 0 {
		return nil, "", fmt.Errorf("duplicates: %v", d)
	}
	tasks := runningTasks(t, fc.Cluster)
	agents := fc.Sim.Agents()
	live := map[string]string{} // agent ID → IP
	for _, a := range agents {
		live[a.ID] = a.IP
	}

	// One running task on every live agent; the servers are exactly
	// consul-server-0 .. n-1.
	onAgent := map[string]string{}
	names := map[string]bool{}
	for _, task := range tasks {
		if _, ok := live[task.AgentID]; !ok {
			return nil, "", fmt.Errorf("task %s RUNNING on agent %s, which is not live", task.Name, task.AgentID)
		}
		if prev, ok := onAgent[task.AgentID]; ok {
			return nil, "", fmt.Errorf("tasks %s and %s both on agent %s", prev, task.Name, task.AgentIP)
		}
		onAgent[task.AgentID] = task.Name
		if names[task.Name] {
			return nil, "", fmt.Errorf("two RUNNING tasks named %s", task.Name)
		}
		names[task.Name] = true
	}
	for id, ip := range live {
		if _, ok := onAgent[id]; !ok {
			return nil, "", fmt.Errorf("no running task on live agent %s (%s); running: %v", ip, id, taskNames(tasks))
		}
	}
	srv := servers(tasks)
	if len(srv) != nServers {
		return nil, "", fmt.Errorf("%d servers running, want %d: %v", len(srv), nServers, taskNames(tasks))
	}
	for i := 0; i < nServers; i++ {
		if !names[fmt.Sprintf("consul-server-%d", i)] {
			return nil, "", fmt.Errorf("consul-server-%d not running: %v", i, taskNames(tasks))
		}
	}

	// A leader, and exactly the server tasks as voters.
	client := consulClient(t, fc.Cluster, srv[0].AgentIP)
	leader, err := client.Status().Leader()
	if err != nil || leader == "" {
		return nil, "", fmt.Errorf("leader %q: %v", leader, err)
	}
	peers, err := raftPeers(client)
	if err != nil {
		return nil, "", err
	}
	var got, want []string
	for _, p := range peers {
		host, _, _ := net.SplitHostPort(p.Address)
		got = append(got, p.Node+"@"+host)
		if !p.Voter {
			return nil, "", fmt.Errorf("raft peer %s is not a voter", p.Node)
		}
	}
	for _, s := range srv {
		want = append(want, s.Name+"@"+s.AgentIP)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		return nil, "", fmt.Errorf("raft peers %v, want %v", got, want)
	}

	// Every task is an alive LAN member, and nothing else is alive: as
	// every server sees it.
	for _, s := range srv {
		members, err := consulClient(t, fc.Cluster, s.AgentIP).Agent().Members(false)
		if err != nil {
			return nil, "", fmt.Errorf("members via %s: %w", s.Name, err)
		}
		var alive, wantAlive []string
		for _, m := range members {
			if m.Status == memberAlive {
				alive = append(alive, m.Name+"@"+m.Addr)
			}
		}
		for _, task := range tasks {
			wantAlive = append(wantAlive, task.Name+"@"+task.AgentIP)
		}
		sort.Strings(alive)
		sort.Strings(wantAlive)
		if strings.Join(alive, ",") != strings.Join(wantAlive, ",") {
			return nil, "", fmt.Errorf("alive LAN members seen by %s: %v, want %v", s.Name, alive, wantAlive)
		}
	}

	// Mesos-DNS names every server's agent.
	for _, s := range srv {
		name := s.Name + ".consul.mesos"
		ips, err := resolveA(fc.DNS.Addr(), name)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", name, err)
		}
		if len(ips) != 1 || ips[0] != s.AgentIP {
			return nil, "", fmt.Errorf("%s resolves to %v, want [%s]", name, ips, s.AgentIP)
		}
	}

	// Reservations of the service's role only where a server runs, one
	// server's volume each: nothing left behind.
	serverAgents := map[string]bool{}
	for _, s := range srv {
		serverAgents[s.AgentID] = true
	}
	for _, sl := range st.Slaves {
		r := sl.ReservedResources[faultRole]
		if _, isLive := live[sl.ID]; !isLive {
			continue
		}
		switch {
		case serverAgents[sl.ID] && r["disk"] != float64(faultServerDisk):
			return nil, "", fmt.Errorf("agent %s runs a server but has %v MB of disk reserved for %s, want %d (reserved: %v)",
				sl.Hostname, r["disk"], faultRole, faultServerDisk, sl.ReservedResources)
		case !serverAgents[sl.ID] && len(nonZero(r)) > 0:
			return nil, "", fmt.Errorf("agent %s runs no server but has resources reserved for %s: %v (a reservation left behind)",
				sl.Hostname, faultRole, sl.ReservedResources)
		}
	}
	return tasks, leader, nil
}

// memberAlive is serf's StatusAlive (1); memberLeft its StatusLeft (3);
// 4 is failed.
const (
	memberAlive = 1
	memberLeft  = 3
)

// nonZero drops the zero quantities of a resources object (scalars are
// numbers, ranges such as ports strings like "[31000-31000]").
func nonZero(r map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range r {
		if v != 0.0 && v != "" && v != "[]" {
			out[k] = v
		}
	}
	return out
}

func taskNames(ts []masterTask) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name+"@"+t.AgentIP)
	}
	return out
}

func taskIDs(ts []masterTask) map[string]string {
	out := map[string]string{}
	for _, t := range ts {
		out[t.Name] = t.ID
	}
	return out
}

// checkAllKeys reads every prefix back from every server (stale reads:
// each server's own state) and through one client (a consistent read via
// the leader).
func checkAllKeys(t *testing.T, c *Cluster, tasks []masterTask, written map[string]int) {
	t.Helper()
	for prefix, n := range written {
		for _, s := range servers(tasks) {
			checkKeys(t, c, s.AgentIP, prefix, n)
		}
	}
	for _, task := range tasks {
		if strings.HasPrefix(task.Name, "consul-client-") {
			kv := consulClient(t, c, task.AgentIP).KV()
			for prefix, n := range written {
				eventually(t, time.Minute, "consistent read of "+prefix+" through "+task.Name, func() error {
					pairs, _, err := kv.List(prefix+"/", &consul.QueryOptions{RequireConsistent: true})
					if err != nil {
						return err
					}
					if len(pairs) != n {
						return fmt.Errorf("%d keys under %s, want %d", len(pairs), prefix, n)
					}
					return nil
				})
			}
			break
		}
	}
}

func leaderIP(leader string) string {
	h, _, _ := net.SplitHostPort(leader)
	return h
}

func findTask(ts []masterTask, name string) (masterTask, bool) {
	for _, t := range ts {
		if t.Name == name {
			return t, true
		}
	}
	return masterTask{}, false
}

// waitRelaunched waits until name runs as a new task (not oldID) and
// returns it.
func (fc *faultCluster) waitRelaunched(t *testing.T, name, oldID string) masterTask {
	t.Helper()
	var got masterTask
	eventually(t, 3*time.Minute, name+" relaunched", func() error {
		task, ok := findTask(runningTasks(t, fc.Cluster), name)
		if !ok {
			return fmt.Errorf("%s not running", name)
		}
		if task.ID == oldID {
			return fmt.Errorf("%s still runs as %s", name, oldID)
		}
		got = task
		return nil
	})
	return got
}

// schedulerAlive fails the test if the scheduler process has exited.
func (fc *faultCluster) schedulerAlive(t *testing.T) {
	t.Helper()
	select {
	case err := <-fc.SchedulerExited():
		t.Fatalf("the scheduler process exited: %v", err)
	default:
	}
}

// schedulerSubscribed waits until the scheduler's API says it holds a
// subscription to the master.
func (fc *faultCluster) schedulerSubscribed(t *testing.T, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	eventually(t, timeout, "the scheduler subscribed", func() error {
		resp, err := client.Get(fc.SchedulerURL + "/v1/health")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var h struct {
			Subscribed bool `json:"subscribed"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			return err
		}
		if !h.Subscribed {
			return errors.New("not subscribed")
		}
		return nil
	})
}

// pod is what the fault tests read of the scheduler's /v1/pod/<name>/info.
type pod struct {
	Info struct {
		AgentID string `json:"agentId"`
		TaskID  string `json:"taskId"`
	} `json:"info"`
	Status struct {
		State     string `json:"state"`
		Summary   string `json:"summary"`
		Replacing bool   `json:"replacing"`
	} `json:"status"`
}

func (fc *faultCluster) podInfo(name string) (pod, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(fc.SchedulerURL + "/v1/pod/" + name + "/info")
	if err != nil {
		return pod{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return pod{}, fmt.Errorf("GET /v1/pod/%s/info: %s", name, resp.Status)
	}
	var ps []pod
	if err := json.NewDecoder(resp.Body).Decode(&ps); err != nil {
		return pod{}, err
	}
	if len(ps) != 1 {
		return pod{}, fmt.Errorf("GET /v1/pod/%s/info: %d entries", name, len(ps))
	}
	return ps[0], nil
}

// pods lists the scheduler's pods (GET /v1/pod).
func (fc *faultCluster) pods() ([]string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(fc.SchedulerURL + "/v1/pod")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []string
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("GET /v1/pod: %w", err)
	}
	return out, nil
}

// addAgentWithClient adds an agent and waits for its client.
func (fc *faultCluster) addAgentWithClient(t *testing.T) masterTask {
	t.Helper()
	a, err := fc.Sim.AddAgent()
	if err != nil {
		t.Fatal(err)
	}
	var got masterTask
	eventually(t, 2*time.Minute, "a client on the new agent "+a.IP, func() error {
		for _, task := range runningTasks(t, fc.Cluster) {
			if task.AgentID == a.ID {
				if !strings.HasPrefix(task.Name, "consul-client-") {
					return fmt.Errorf("the new agent runs %s, not a client", task.Name)
				}
				got = task
				return nil
			}
		}
		return fmt.Errorf("nothing runs on %s yet", a.IP)
	})
	return got
}

func frameworkIDOf(t *testing.T, tasks []masterTask) string {
	t.Helper()
	if len(tasks) == 0 {
		t.Fatal("no tasks")
	}
	return tasks[0].FrameworkID
}

// TestFaultKillServerExecutor kills a non-leader server's executor, then
// the leader's: each is relaunched on its own agent with its data.
func TestFaultKillServerExecutor(t *testing.T) {
	besideOthers(t)
	fc := startFaultCluster(t, 1, 5, 3)
	tasks, leader := fc.healthy(t, 3, 3*time.Minute)
	written := map[string]int{}
	writeThroughClient(t, fc.Cluster, tasks, "before-follower-kill", 20)
	written["before-follower-kill"] = 20

	for _, which := range []string{"follower", "leader"} {
		var victim masterTask
		for _, s := range servers(tasks) {
			if (s.AgentIP == leaderIP(leader)) == (which == "leader") {
				victim = s
				break
			}
		}
		before := mustPeers(t, fc.Cluster, leaderIP(leader))[victim.Name]
		if before == nil {
			t.Fatalf("%s is not a raft peer", victim.Name)
		}
		t.Logf("killing the executor of the %s %s (%s) on %s", which, victim.Name, victim.ID, victim.AgentIP)
		start := time.Now()
		if err := fc.Sim.KillExecutor(victim.AgentID, victim.FrameworkID, victim.ID); err != nil {
			t.Fatal(err)
		}
		again := fc.waitRelaunched(t, victim.Name, victim.ID)
		t.Logf("%s RUNNING again as %s after %s", victim.Name, again.ID, time.Since(start).Round(100*time.Millisecond))
		if again.AgentID != victim.AgentID {
			t.Fatalf("%s relaunched on %s, want its own agent %s (its volume is there)", victim.Name, again.AgentIP, victim.AgentIP)
		}
		tasks, leader = fc.healthy(t, 3, 3*time.Minute)
		checkAllKeys(t, fc.Cluster, tasks, written)
		recovery := time.Since(start)
		after := mustPeers(t, fc.Cluster, leaderIP(leader))[victim.Name]
		if after == nil || after.ID != before.ID {
			t.Fatalf("%s came back with raft ID %v, want %s (same data dir)", victim.Name, after, before.ID)
		}
		t.Logf("RECOVERY kill %s executor: %s (new leader %s)", which, recovery.Round(100*time.Millisecond), leader)
		prefix := "after-" + which + "-kill"
		writeThroughClient(t, fc.Cluster, tasks, prefix, 10)
		written[prefix] = 10
	}
}

// TestFaultRemoveServerAgent removes the leader's agent for good: the
// server is replaced on another agent (a client gives up its agent, as
// every agent runs a task) and its old raft peer is removed. The scheduler
// is also killed and restarted in the middle of the replacement.
func TestFaultRemoveServerAgent(t *testing.T) {
	besideOthers(t)
	fc := startFaultCluster(t, 2, 6, 3, config.EnvReplaceAft+"=10s")
	tasks, leader := fc.healthy(t, 3, 3*time.Minute)
	writeThroughClient(t, fc.Cluster, tasks, "before-remove", 20)
	written := map[string]int{"before-remove": 20}

	var victim masterTask
	for _, s := range servers(tasks) {
		if s.AgentIP == leaderIP(leader) {
			victim = s
		}
	}
	t.Logf("removing agent %s (%s), which runs the leader %s", victim.AgentIP, victim.AgentID, victim.Name)
	start := time.Now()
	if err := fc.Sim.RemoveAgent(victim.AgentID); err != nil {
		t.Fatal(err)
	}

	// Writes keep working through a client while the server is replaced.
	var other masterTask
	for _, task := range tasks {
		if strings.HasPrefix(task.Name, "consul-client-") {
			other = task
			break
		}
	}
	kv := consulClient(t, fc.Cluster, other.AgentIP).KV()
	for i := 0; i < 10; i++ {
		key := fmt.Sprintf("during-replace/%d", i)
		eventually(t, 2*time.Minute, "writing "+key+" while the server is replaced", func() error {
			_, err := kv.Put(&consul.KVPair{Key: key, Value: []byte("v" + key)}, nil)
			return err
		})
	}
	written["during-replace"] = 10
	t.Logf("writes through %s work again %s after the removal", other.Name, time.Since(start).Round(100*time.Millisecond))

	// A scheduler crash in the middle of the replacement (the server is
	// moved off its agent, not yet placed) changes nothing of the above.
	eventually(t, 2*time.Minute, victim.Name+" moved off its agent", func() error {
		p, err := fc.podInfo(victim.Name)
		if err != nil {
			return err
		}
		if !p.Status.Replacing || p.Info.AgentID != "" {
			return fmt.Errorf("%s: agent %q, replacing %v, %s", victim.Name, p.Info.AgentID, p.Status.Replacing, p.Status.Summary)
		}
		return nil
	})
	t.Logf("%s is being replaced (%s after the removal): killing and restarting the scheduler", victim.Name, time.Since(start).Round(100*time.Millisecond))
	fc.KillScheduler()
	if err := fc.RestartScheduler(); err != nil {
		t.Fatal(err)
	}

	moved := fc.waitRelaunched(t, victim.Name, victim.ID)
	if moved.AgentID == victim.AgentID {
		t.Fatalf("%s relaunched on the removed agent", victim.Name)
	}
	tasks, leader = fc.healthy(t, 3, 4*time.Minute)
	for name, p := range mustPeers(t, fc.Cluster, leaderIP(leader)) {
		if h := leaderIP(p.Address); h == victim.AgentIP {
			t.Fatalf("the removed server's raft peer %s (%s) is still in the configuration", name, p.Address)
		}
	}
	checkAllKeys(t, fc.Cluster, tasks, written)
	t.Logf("RECOVERY remove server agent: %s (%s now on %s, leader %s)", time.Since(start).Round(100*time.Millisecond), victim.Name, moved.AgentIP, leader)
	writeThroughClient(t, fc.Cluster, tasks, "after-replace", 10)
	written["after-replace"] = 10
	checkAllKeys(t, fc.Cluster, tasks, written)
}

// TestFaultSchedulerRestarts restarts the scheduler at three moments of a
// deploy: at once (SIGTERM), while the first tasks start (SIGKILL), and
// with the cluster up (SIGTERM); then once more after a server failed
// while it was down (SIGKILL). No task is ever killed or duplicated, the
// framework ID stays, no reservation is left behind.
func TestFaultSchedulerRestarts(t *testing.T) {
	besideOthers(t)
	fc := startFaultCluster(t, 3, 5, 3)

	// 1. Right after start, before any task runs.
	st, err := readMasterState(fc.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, i := range st.consulFrameworks() {
		n += len(st.Frameworks[i].Tasks)
	}
	t.Logf("restart 1 (SIGTERM) right after start: %d tasks launched", n)
	start := time.Now()
	if err := fc.RestartScheduler(); err != nil {
		t.Fatal(err)
	}

	// 2. While the servers are starting: at the first task the master
	// knows of, kill the scheduler (a crash, no goodbye).
	eventually(t, 2*time.Minute, "a task launched", func() error {
		st, err := readMasterState(fc.Cluster)
		if err != nil {
			return err
		}
		var states []string
		for _, i := range st.consulFrameworks() {
			for _, task := range st.Frameworks[i].Tasks {
				states = append(states, task.Name+":"+task.State)
			}
		}
		if len(states) == 0 {
			return errors.New("no task yet")
		}
		fc.KillScheduler()
		t.Logf("restart 2 (SIGKILL) %s after restart 1, tasks: %v", time.Since(start).Round(10*time.Millisecond), states)
		return nil
	})
	start = time.Now()
	if err := fc.RestartScheduler(); err != nil {
		t.Fatal(err)
	}
	tasks, _ := fc.healthy(t, 3, 3*time.Minute)
	t.Logf("RECOVERY scheduler restart during the deploy: healthy %s after restart 2", time.Since(start).Round(100*time.Millisecond))
	writeThroughClient(t, fc.Cluster, tasks, "before-restart-3", 20)
	written := map[string]int{"before-restart-3": 20}
	ids := taskIDs(tasks)
	fwID := frameworkIDOf(t, tasks)

	// 3. With the cluster up.
	start = time.Now()
	if err := fc.RestartScheduler(); err != nil {
		t.Fatal(err)
	}
	fc.schedulerSubscribed(t, 2*time.Minute)
	tasks, _ = fc.healthy(t, 3, 3*time.Minute)
	t.Logf("RECOVERY scheduler restart with the cluster up: subscribed and healthy after %s", time.Since(start).Round(100*time.Millisecond))
	if got := taskIDs(tasks); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("tasks changed across the restart: %v, before %v", got, ids)
	}
	checkAllKeys(t, fc.Cluster, tasks, written)

	// The new scheduler still acts: a new agent gets a client.
	fc.addAgentWithClient(t)
	tasks, _ = fc.healthy(t, 3, 2*time.Minute)
	if got := frameworkIDOf(t, tasks); got != fwID {
		t.Fatalf("framework ID changed: %s, was %s", got, fwID)
	}

	// Tasks that change while the scheduler is away are picked up: with
	// the scheduler down, a server's executor dies; the new scheduler
	// relaunches it.
	victim := servers(tasks)[1]
	fc.KillScheduler()
	if err := fc.Sim.KillExecutor(victim.AgentID, victim.FrameworkID, victim.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the master records the failure with no scheduler to tell
	start = time.Now()
	if err := fc.RestartScheduler(); err != nil {
		t.Fatal(err)
	}
	fc.waitRelaunched(t, victim.Name, victim.ID)
	tasks, _ = fc.healthy(t, 3, 3*time.Minute)
	checkAllKeys(t, fc.Cluster, tasks, written)
	t.Logf("RECOVERY scheduler restart after a server failed while it was down: %s", time.Since(start).Round(100*time.Millisecond))

	// No other task of this framework ever ended: nothing healthy was
	// killed, nothing launched twice, one framework throughout.
	fc.onlyEnded(t, fwID, victim.ID)
}

// onlyEnded fails the test if a task of the consul framework other than
// those named ended (completed or unreachable), or if a second consul
// framework registered.
func (fc *faultCluster) onlyEnded(t *testing.T, fwID string, allowed ...string) {
	t.Helper()
	st, err := readMasterState(fc.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	ok := map[string]bool{}
	for _, id := range allowed {
		ok[id] = true
	}
	for _, i := range st.consulFrameworks() {
		f := st.Frameworks[i]
		if f.ID != fwID {
			t.Fatalf("a second framework %s besides %s", f.ID, fwID)
		}
		for _, task := range append(append([]stateTask(nil), f.CompletedTasks...), f.UnreachableTasks...) {
			if !ok[task.ID] {
				t.Fatalf("task %s (%s) ended %s; only %v were to end", task.Name, task.ID, task.State, allowed)
			}
		}
	}
}

// TestFaultRestartMaster restarts the Mesos master: no task is lost or
// relaunched, the scheduler re-subscribes and keeps acting.
func TestFaultRestartMaster(t *testing.T) {
	besideOthers(t)
	fc := startFaultCluster(t, 4, 5, 3)
	tasks, _ := fc.healthy(t, 3, 3*time.Minute)
	writeThroughClient(t, fc.Cluster, tasks, "before-master-restart", 20)
	written := map[string]int{"before-master-restart": 20}
	ids := taskIDs(tasks)
	fwID := frameworkIDOf(t, tasks)

	start := time.Now()
	if err := fc.Sim.RestartMaster(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "the framework re-subscribed to the new master", func() error {
		st, err := readMasterState(fc.Cluster)
		if err != nil {
			return err
		}
		for _, i := range st.consulFrameworks() {
			if f := st.Frameworks[i]; f.ID == fwID && f.Connected && f.Active {
				return nil
			}
		}
		return errors.New("framework not connected")
	})
	tasks, _ = fc.healthy(t, 3, 3*time.Minute)
	t.Logf("RECOVERY master restart: %s", time.Since(start).Round(100*time.Millisecond))
	if got := taskIDs(tasks); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("tasks changed across the master restart: %v, before %v", got, ids)
	}
	checkAllKeys(t, fc.Cluster, tasks, written)
	fc.schedulerAlive(t)

	fc.addAgentWithClient(t)
	tasks, _ = fc.healthy(t, 3, 2*time.Minute)
	if got := frameworkIDOf(t, tasks); got != fwID {
		t.Fatalf("framework ID changed: %s, was %s", got, fwID)
	}
	writeThroughClient(t, fc.Cluster, tasks, "after-master-restart", 10)
	fc.onlyEnded(t, fwID)
}

func zkConnect(t *testing.T, addr string) *zk.Conn {
	t.Helper()
	conn, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "a ZooKeeper session", func() error {
		if conn.State() != zk.StateHasSession {
			return fmt.Errorf("state %v", conn.State())
		}
		return nil
	})
	return conn
}

func zkDeleteTree(c *zk.Conn, p string) error {
	kids, _, err := c.Children(p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, k := range kids {
		if err := zkDeleteTree(c, p+"/"+k); err != nil {
			return err
		}
	}
	if err := c.Delete(p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	return nil
}

// TestFaultZooKeeperRestart keeps the scheduler's state in ZooKeeper (a
// chroot of its own, so runs never share state) and restarts ZooKeeper
// under it: the scheduler keeps running, and changes after the restart
// (a relaunch, a new agent's client) are made and recorded.
func TestFaultZooKeeperRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole dev cluster with real Consul")
	}
	addr := zktest.Addr(t)
	restart := os.Getenv("ZK_TEST_RESTART_CMD")
	if restart == "" {
		if os.Getenv("ZK_TEST_ADDR") != "" {
			t.Skip("ZK_TEST_ADDR is set but ZK_TEST_RESTART_CMD is not: cannot restart that ZooKeeper")
		}
		restart = "bash ../../.ci/zookeeper.sh restart"
	}
	chroot := fmt.Sprintf("/dcos-consul-faults-%d", time.Now().UnixNano())
	zc := zkConnect(t, addr)
	t.Cleanup(func() {
		// After the cluster stops (cleanups run last-in first-out).
		if err := zkDeleteTree(zc, chroot); err != nil {
			t.Logf("deleting %s: %v", chroot, err)
		}
		zc.Close()
	})
	fc := startFaultCluster(t, 5, 5, 3, config.EnvZK+"="+addr+chroot)
	tasks, _ := fc.healthy(t, 3, 3*time.Minute)
	root := chroot + "/dcos-service-consul"
	kids, _, err := zc.Children(root)
	if err != nil || len(kids) == 0 {
		t.Fatalf("the scheduler's state is not in ZooKeeper at %s: %v %v", root, kids, err)
	}
	t.Logf("state in ZooKeeper at %s: %v", root, kids)
	writeThroughClient(t, fc.Cluster, tasks, "before-zk-restart", 20)
	written := map[string]int{"before-zk-restart": 20}
	ids := taskIDs(tasks)

	// Restart ZooKeeper; while it is down, kill a server's executor, so
	// that the scheduler has a status update to record (and a relaunch to
	// make) with no store to write to.
	victim := servers(tasks)[0]
	start := time.Now()
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := exec.Command("sh", "-c", restart).CombinedOutput()
		done <- result{out, err}
	}()
	killedWhileDown := false
	var res result
wait:
	for {
		select {
		case res = <-done:
			break wait
		case <-time.After(100 * time.Millisecond):
		}
		if killedWhileDown {
			continue
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			continue
		}
		t.Logf("ZooKeeper is down (%s after the restart began): killing the executor of %s", time.Since(start).Round(100*time.Millisecond), victim.Name)
		if err := fc.Sim.KillExecutor(victim.AgentID, victim.FrameworkID, victim.ID); err != nil {
			t.Fatal(err)
		}
		killedWhileDown = true
	}
	if res.err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("restart ZooKeeper (%s): %v\n%s", restart, res.err, res.out)
		}
		t.Skipf("cannot restart ZooKeeper (%s): %v\n%s", restart, res.err, res.out)
	}
	t.Logf("ZooKeeper restarted in %s: %s", time.Since(start).Round(100*time.Millisecond), strings.TrimSpace(string(res.out)))
	if !killedWhileDown {
		t.Logf("ZooKeeper was never seen down: killing the executor of %s after the restart", victim.Name)
		if err := fc.Sim.KillExecutor(victim.AgentID, victim.FrameworkID, victim.ID); err != nil {
			t.Fatal(err)
		}
	}
	fc.schedulerAlive(t)

	// Changes during and after the restart happen and are written: the
	// killed server is relaunched, a new agent gets a client.
	fc.waitRelaunched(t, victim.Name, victim.ID)
	added := fc.addAgentWithClient(t)
	tasks, _ = fc.healthy(t, 3, 3*time.Minute)
	t.Logf("RECOVERY ZooKeeper restart: %s (a relaunch and a new client included)", time.Since(start).Round(100*time.Millisecond))
	fc.schedulerAlive(t)
	for name, id := range ids {
		if name == victim.Name {
			continue
		}
		if got := taskIDs(tasks)[name]; got != id {
			t.Fatalf("%s runs as %s, was %s: the ZooKeeper restart cost a task", name, got, id)
		}
	}
	checkAllKeys(t, fc.Cluster, tasks, written)
	fc.onlyEnded(t, frameworkIDOf(t, tasks), victim.ID)
	// What the scheduler's store went through (for the report).
	if b, err := os.ReadFile(filepath.Join(fc.opts.WorkDir, "scheduler.log")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "succeeded after retries") || strings.Contains(l, "\"level\":\"error\"") {
				t.Logf("scheduler: %s", l)
			}
		}
	}

	// The new client's record is in ZooKeeper.
	eventually(t, time.Minute, "the new client's record in ZooKeeper", func() error {
		var found []string
		var walk func(p string) error
		walk = func(p string) error {
			ks, _, err := zc.Children(p)
			if err != nil {
				return err
			}
			for _, k := range ks {
				if strings.Contains(k, added.Name) || strings.Contains(k, strings.ToLower(added.AgentID)) {
					found = append(found, p+"/"+k)
				}
				if err := walk(p + "/" + k); err != nil {
					return err
				}
			}
			return nil
		}
		if err := walk(root); err != nil {
			return err
		}
		if len(found) == 0 {
			return fmt.Errorf("no node for %s under %s", added.Name, root)
		}
		return nil
	})
}

// TestFaultClientAgents adds two agents (each gets a client) and removes
// two client agents (their members are force-left, none stays alive).
func TestFaultClientAgents(t *testing.T) {
	besideOthers(t)
	fc := startFaultCluster(t, 6, 5, 3, config.EnvReplaceAft+"=10s")
	tasks, _ := fc.healthy(t, 3, 3*time.Minute)
	writeThroughClient(t, fc.Cluster, tasks, "before-add", 20)
	written := map[string]int{"before-add": 20}

	start := time.Now()
	var added []masterTask
	for i := 0; i < 2; i++ {
		added = append(added, fc.addAgentWithClient(t))
	}
	tasks, _ = fc.healthy(t, 3, 2*time.Minute)
	t.Logf("RECOVERY add 2 client agents: %s until both clients are alive members", time.Since(start).Round(100*time.Millisecond))
	// Each new client serves reads and writes.
	for _, a := range added {
		kv := consulClient(t, fc.Cluster, a.AgentIP).KV()
		key := "via/" + a.Name
		eventually(t, time.Minute, "writing through "+a.Name, func() error {
			_, err := kv.Put(&consul.KVPair{Key: key, Value: []byte("x")}, nil)
			return err
		})
	}
	checkAllKeys(t, fc.Cluster, tasks, written)

	// Remove one original client agent and one added one.
	var victims []masterTask
	for _, task := range tasks {
		if strings.HasPrefix(task.Name, "consul-client-") && task.Name != added[0].Name && task.Name != added[1].Name {
			victims = append(victims, task)
			break
		}
	}
	victims = append(victims, added[1])
	start = time.Now()
	for _, v := range victims {
		t.Logf("removing client agent %s (%s)", v.AgentIP, v.Name)
		if err := fc.Sim.RemoveAgent(v.AgentID); err != nil {
			t.Fatal(err)
		}
	}
	tasks, _ = fc.healthy(t, 3, 2*time.Minute)
	t.Logf("no removed client is an alive member %s after the removal", time.Since(start).Round(100*time.Millisecond))
	// The scheduler force-leaves them (after SERVER_REPLACE_AFTER, 10 s
	// here): no member stays on their addresses, not even as failed.
	client := consulClient(t, fc.Cluster, servers(tasks)[0].AgentIP)
	eventually(t, 2*time.Minute, "the removed clients force-left", func() error {
		members, err := client.Agent().Members(false)
		if err != nil {
			return err
		}
		for _, m := range members {
			for _, v := range victims {
				if m.Name == v.Name && m.Status != 3 { // serf StatusLeft
					return fmt.Errorf("member %s@%s has status %d, want left (3) or gone", m.Name, m.Addr, m.Status)
				}
			}
		}
		return nil
	})
	t.Logf("RECOVERY remove 2 client agents: %s until both are force-left", time.Since(start).Round(100*time.Millisecond))
	// And the scheduler forgot their records (a pod per live agent only).
	eventually(t, time.Minute, "the removed clients' pods forgotten", func() error {
		pods, err := fc.pods()
		if err != nil {
			return err
		}
		for _, v := range victims {
			for _, p := range pods {
				if p == v.Name {
					return fmt.Errorf("the scheduler still has pod %s: %v", p, pods)
				}
			}
		}
		if want := len(fc.Sim.Agents()); len(pods) != want {
			return fmt.Errorf("%d pods, want %d (one per live agent): %v", len(pods), want, pods)
		}
		return nil
	})
	tasks, _ = fc.healthy(t, 3, time.Minute)
	checkAllKeys(t, fc.Cluster, tasks, written)
}
