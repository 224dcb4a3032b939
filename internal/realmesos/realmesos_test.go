package realmesos

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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

	"github.com/dcos-consul/dcos-consul/internal/operator"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// The suite's loopback range: master and Mesos-DNS on 127.6.0.1, agents on
// 127.6.0.2-6 (other packages' tests use 127.2.*, 127.4.*, 127.5.*,
// 127.0.42.* and 127.1.200.*).
const netPrefix = "127.6.0"

// serviceName and role of the service the scheduler runs.
const serviceName = "consul"

var role = config.DefaultRole(serviceName)

// serverDisk is SERVER_DISK in the scheduler's environment (MB).
const serverDisk = 256

// keepEnv, set to anything, keeps the run's directory (logs, work dirs,
// the master's state after each step) even when the suite passes.
const keepEnv = "REALMESOS_KEEP"

var (
	// binary is the dcos-consul executable built once: the scheduler runs
	// it and the agents' fetcher copies it as the executor.
	binary string
	// runRoot holds this run's cluster directories and logs.
	runRoot string
	// unavailable says why the suite cannot run ("" when it can).
	unavailable string
	zkAddr      string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if stale := SweepStale(os.TempDir()); len(stale) > 0 {
		fmt.Fprintf(os.Stderr, "realmesos: cleaned up after earlier runs: %v\n", stale)
	}
	unavailable = prerequisites()
	if unavailable != "" {
		verb := "SKIPPED"
		if Required() {
			verb = "FAILS (" + RequireEnv + " is set)"
		}
		fmt.Fprintf(os.Stderr, "realmesos: the real-Mesos suite %s: %s\n", verb, unavailable)
		os.Exit(m.Run())
	}
	var err error
	runRoot, err = os.MkdirTemp("", fmt.Sprintf("%s%d-", RunDirPrefix, os.Getpid()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(runRoot, "bin", "dcos-consul")
	// Stripped: every agent's fetcher copies it into its cache and each
	// sandbox.
	build := exec.Command("go", "build", "-ldflags=-s -w", "-o", binary, "github.com/dcos-consul/dcos-consul/cmd/dcos-consul")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building dcos-consul:", err)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 && os.Getenv(keepEnv) == "" {
		_ = os.RemoveAll(runRoot)
	} else {
		fmt.Fprintf(os.Stderr, "realmesos: logs, work dirs and /master/state after each step kept in %s (the next run removes them)\n", runRoot)
	}
	os.Exit(code)
}

// prerequisites returns why the suite cannot run here, or "".
func prerequisites() string {
	if testing.Short() {
		return "-short is set (the suite runs a real Mesos cluster and real Consul)"
	}
	wd, _ := os.Getwd()
	if err := Ensure(context.Background(), wd); err != nil {
		return err.Error()
	}
	zkAddr = os.Getenv("ZK_TEST_ADDR")
	if zkAddr == "" {
		zkAddr = "127.0.0.1:2181"
	}
	if err := ZKReachable(zkAddr); err != nil {
		return fmt.Sprintf("no ZooKeeper at %s (%v): run .ci/zookeeper.sh (make test does) or set ZK_TEST_ADDR", zkAddr, err)
	}
	return ""
}

func requireMesos(t *testing.T) {
	t.Helper()
	if unavailable == "" {
		return
	}
	if Required() && !testing.Short() {
		t.Fatalf("%s=1 but the real-Mesos suite cannot run: %s", RequireEnv, unavailable)
	}
	t.Skipf("real-Mesos suite skipped: %s", unavailable)
}

// suite is one real cluster shared by the steps of TestRealMesos.
type suite struct {
	c       *Cluster
	s       *Scheduler
	zkRoot  string
	mon     *monitor
	fwID    string
	written map[string]int
}

// TestRealMesos runs dcos-consul on a real Mesos 1.12.0 cluster (master,
// five agents, Mesos-DNS) and checks, in order on one cluster: the
// deploy, KV, Mesos-DNS names, a SIGKILLed server executor, an operator's
// pod restart of a server (drained, then stopped in place), a scheduler
// restart, a master restart, the loss of a server's agent, and the
// uninstall; the whole time, that the master never shows a second
// framework of ours nor a duplicate task.
func TestRealMesos(t *testing.T) {
	requireMesos(t)
	ctx := context.Background()
	dir, err := os.MkdirTemp(runRoot, "cluster-")
	if err != nil {
		t.Fatal(err)
	}
	su := &suite{zkRoot: fmt.Sprintf("/dcos-consul-realmesos-%d-%d", os.Getpid(), time.Now().UnixNano()), written: map[string]int{}}
	start := time.Now()
	su.c, err = Start(ctx, Options{Dir: dir, Net: netPrefix, Agents: 5, ZK: zkAddr, ZKRoot: su.zkRoot})
	t.Cleanup(func() { su.cleanup(t) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("TIMING real Mesos master + 5 agents + Mesos-DNS up in %s (dir %s)", time.Since(start).Round(100*time.Millisecond), dir)
	su.s, err = su.c.NewScheduler(SchedulerOptions{
		Binary: binary, StateZK: zkAddr + su.zkRoot + "/state",
		ExtraEnv: []string{config.EnvReplaceAft + "=10s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	su.mon = startMonitor(su.c)
	if err := su.s.Start(); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		run  func(*testing.T)
	}{
		{"Deploy", su.deploy},
		{"KV", su.kv},
		{"MesosDNS", su.mesosDNS},
		{"KillServerExecutor", su.killServerExecutor},
		{"RestartServerInPlace", su.restartServerInPlace},
		{"RestartLeaderInPlace", su.restartLeaderInPlace},
		{"RestartScheduler", su.restartScheduler},
		{"RestartMaster", su.restartMaster},
		{"LoseServerAgent", su.loseServerAgent},
		{"Uninstall", su.uninstall},
	}
	for _, st := range steps {
		begin := time.Now()
		ok := t.Run(st.name, st.run)
		su.saveState(t, dir, st.name)
		t.Logf("TIMING %s: %s", st.name, time.Since(begin).Round(100*time.Millisecond))
		if !ok {
			t.Fatalf("step %s failed; the later steps need its outcome and are not run", st.name)
		}
	}
	t.Logf("TIMING whole suite (cluster start to uninstalled): %s", time.Since(start).Round(100*time.Millisecond))
}

// saveState keeps the master's state after each step in the run's
// directory (master-state-<step>.json), for comparison with the simulator.
func (su *suite) saveState(t *testing.T, dir, step string) {
	b, err := su.c.RawState(context.Background())
	if err != nil {
		t.Logf("saving /master/state after %s: %v", step, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, "master-state-"+step+".json"), b, 0o644); err != nil {
		t.Logf("saving /master/state after %s: %v", step, err)
	}
}

func (su *suite) cleanup(t *testing.T) {
	if su.mon != nil {
		// Checked whether the steps passed or not: a second framework
		// is the first thing to know about a failed deploy.
		su.mon.stop()
		su.mon.check(t)
	}
	if su.s != nil {
		su.s.Stop(15 * time.Second)
	}
	if su.c != nil {
		su.c.Stop()
		if pids := sandboxProcs(runRoot, ""); len(pids) > 0 {
			t.Errorf("executor processes left after stopping the cluster: %v", pids)
		}
		if t.Failed() {
			su.dumpLogs(t)
		}
	}
	if err := DeleteZKTree(zkAddr, su.zkRoot); err != nil {
		t.Logf("deleting %s from ZooKeeper: %v", su.zkRoot, err)
	}
}

func (su *suite) dumpLogs(t *testing.T) {
	if su.s != nil {
		t.Logf("==== %s (tail)\n%s", su.s.LogPath(), tail(su.s.LogPath(), 100))
	}
	for _, p := range su.c.Logs() {
		n := 40
		if strings.Contains(p, "/runs/") {
			n = 15
		}
		t.Logf("==== %s (tail)\n%s", p, tail(p, n))
	}
	if st, err := su.c.State(context.Background()); err == nil {
		t.Logf("==== /master/state frameworks: %+v", st.Frameworks)
	}
}

// task is a RUNNING task of our framework as the master lists it.
type task struct {
	Name, ID, AgentID, AgentIP, ExecutorID, FrameworkID string
}

// checkServersLeft: each of these server tasks, running when the
// uninstall started, ended by its own graceful leave (TASK_KILLED
// labelled by its executor), not by the uninstall's kill, so that no
// federated datacenter keeps it as a failed WAN member.
func (su *suite) checkServersLeft(t *testing.T, running []task) {
	t.Helper()
	st, err := su.c.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ended := map[string]Task{}
	for _, f := range append(st.Frameworks, st.CompletedFrameworks...) {
		for _, tk := range append(append([]Task(nil), f.Tasks...), f.CompletedTasks...) {
			ended[tk.ID] = tk
		}
	}
	for _, r := range running {
		tk, ok := ended[r.ID]
		left := ""
		for _, s := range tk.Statuses {
			for _, l := range s.Labels {
				if l.Key == taskspec.LabelLeft {
					left = l.Value
				}
			}
		}
		if !ok || tk.State != "TASK_KILLED" || left != "true" {
			t.Errorf("server task %s ended %q with %s=%q, want TASK_KILLED with \"true\" (a graceful leave before the uninstall's kill)", r.ID, tk.State, taskspec.LabelLeft, left)
		}
	}
	if b, _ := os.ReadFile(su.s.LogPath()); strings.Contains(string(b), "no report of its graceful leave") {
		t.Error("the uninstall fell back to killing a server that did not report its leave")
	}
}

func isServer(tk task) bool { return strings.HasPrefix(tk.Name, "consul-server-") }

func servers(ts []task) []task {
	var out []task
	for _, tk := range ts {
		if isServer(tk) {
			out = append(out, tk)
		}
	}
	return out
}

func findTask(ts []task, name string) (task, bool) {
	for _, tk := range ts {
		if tk.Name == name {
			return tk, true
		}
	}
	return task{}, false
}

func taskIDs(ts []task) map[string]string {
	out := map[string]string{}
	for _, tk := range ts {
		out[tk.Name] = tk.ID
	}
	return out
}

func taskNames(ts []task) []string {
	var out []string
	for _, tk := range ts {
		out = append(out, tk.Name+"@"+tk.AgentIP)
	}
	return out
}

// running lists our framework's RUNNING tasks, sorted by name.
func running(st *State) []task {
	hosts := st.SlaveHost()
	var out []task
	for _, f := range st.FrameworksNamed(serviceName) {
		for _, tk := range f.Tasks {
			if tk.State == "TASK_RUNNING" {
				out = append(out, task{Name: tk.Name, ID: tk.ID, AgentID: tk.SlaveID, AgentIP: hosts[tk.SlaveID], ExecutorID: tk.ExecutorID, FrameworkID: f.ID})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (su *suite) liveAgents() map[string]bool {
	out := map[string]bool{}
	for _, a := range su.c.Agents() {
		if !a.Lost() {
			out[a.IP] = true
		}
	}
	return out
}

// healthy retries every check of a healthy service until all pass at once
// (or timeout) and returns the running tasks and the leader's address.
func (su *suite) healthy(t *testing.T, nServers int, timeout time.Duration) ([]task, string) {
	t.Helper()
	var tasks []task
	var leader string
	eventually(t, timeout, fmt.Sprintf("a healthy service (%d servers, a task on each of %d live agents)", nServers, len(su.liveAgents())), func() error {
		if !su.s.Running() {
			t.Fatalf("the scheduler process exited: %v (log %s)", su.s.ExitErr(), su.s.LogPath())
		}
		var err error
		tasks, leader, err = su.checkHealthy(t, nServers)
		return err
	})
	return tasks, leader
}

func (su *suite) checkHealthy(t *testing.T, nServers int) ([]task, string, error) {
	t.Helper()
	st, err := su.c.State(context.Background())
	if err != nil {
		return nil, "", err
	}
	if d := st.Duplicates(serviceName); len(d) > 0 {
		return nil, "", fmt.Errorf("duplicates: %v", d)
	}
	fws := st.FrameworksNamed(serviceName)
	if len(fws) != 1 || !fws[0].Connected || !fws[0].Active {
		return nil, "", fmt.Errorf("want one connected, active framework %q, have %+v", serviceName, fws)
	}
	for _, tk := range fws[0].Tasks {
		if tk.State != "TASK_RUNNING" {
			return nil, "", fmt.Errorf("task %s is %s", tk.Name, tk.State)
		}
		if h := tk.Healthy(); h == nil {
			return nil, "", fmt.Errorf("task %s: no health reported in its last status", tk.Name)
		} else if !*h {
			return nil, "", fmt.Errorf("task %s is reported unhealthy in its last status", tk.Name)
		}
	}
	tasks := running(st)
	live := su.liveAgents()
	onAgent := map[string]string{}
	names := map[string]bool{}
	for _, tk := range tasks {
		if !live[tk.AgentIP] {
			return nil, "", fmt.Errorf("task %s RUNNING on agent %q, which is not a live agent", tk.Name, tk.AgentIP)
		}
		if prev, ok := onAgent[tk.AgentIP]; ok {
			return nil, "", fmt.Errorf("tasks %s and %s both on agent %s", prev, tk.Name, tk.AgentIP)
		}
		onAgent[tk.AgentIP] = tk.Name
		names[tk.Name] = true
	}
	for ip := range live {
		if _, ok := onAgent[ip]; !ok {
			return nil, "", fmt.Errorf("no running task on live agent %s; running: %v", ip, taskNames(tasks))
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
	leader, err := su.checkConsul(t, tasks)
	if err != nil {
		return nil, "", err
	}
	if err := su.checkDNS(srv); err != nil {
		return nil, "", err
	}
	return tasks, leader, su.checkReservations(st, srv)
}

// checkConsul: a leader, exactly the server tasks as raft voters, and
// every task (and nothing else) an alive LAN member as each server sees it.
func (su *suite) checkConsul(t *testing.T, tasks []task) (string, error) {
	srv := servers(tasks)
	client := consulClient(t, su.s, srv[0].AgentIP)
	leader, err := client.Status().Leader()
	if err != nil || leader == "" {
		return "", fmt.Errorf("leader %q: %v", leader, err)
	}
	peers, err := raftPeers(client)
	if err != nil {
		return "", err
	}
	var got, want []string
	for _, p := range peers {
		got = append(got, p.Node+"@"+hostOf(p.Address))
		if !p.Voter {
			return "", fmt.Errorf("raft peer %s is not a voter", p.Node)
		}
	}
	for _, s := range srv {
		want = append(want, s.Name+"@"+s.AgentIP)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		return "", fmt.Errorf("raft peers %v, want %v", got, want)
	}
	var wantAlive []string
	for _, tk := range tasks {
		wantAlive = append(wantAlive, tk.Name+"@"+tk.AgentIP)
	}
	sort.Strings(wantAlive)
	for _, s := range srv {
		members, err := consulClient(t, su.s, s.AgentIP).Agent().Members(false)
		if err != nil {
			return "", fmt.Errorf("members via %s: %w", s.Name, err)
		}
		var alive []string
		for _, m := range members {
			if m.Status == memberAlive {
				alive = append(alive, m.Name+"@"+m.Addr)
			}
		}
		sort.Strings(alive)
		if strings.Join(alive, ",") != strings.Join(wantAlive, ",") {
			return "", fmt.Errorf("alive LAN members seen by %s: %v, want %v", s.Name, alive, wantAlive)
		}
	}
	return leader, nil
}

// checkDNS: real Mesos-DNS resolves consul-server-<i>.consul.mesos to the
// server's agent.
func (su *suite) checkDNS(srv []task) error {
	for _, s := range srv {
		name := s.Name + "." + serviceName + ".mesos"
		ips, err := resolveA(su.c.DNSAddr(), name)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if len(ips) != 1 || ips[0] != s.AgentIP {
			return fmt.Errorf("Mesos-DNS resolves %s to %v, want [%s]", name, ips, s.AgentIP)
		}
	}
	return nil
}

// checkReservations: resources of the service's role are reserved only on
// the agents of running servers, one server's volume each.
func (su *suite) checkReservations(st *State, srv []task) error {
	serverAgents := map[string]bool{}
	for _, s := range srv {
		serverAgents[s.AgentIP] = true
	}
	live := su.liveAgents()
	for _, sl := range st.Slaves {
		if !live[sl.Hostname] {
			continue
		}
		r := sl.ReservedResources[role]
		switch {
		case serverAgents[sl.Hostname] && r["disk"] != float64(serverDisk):
			return fmt.Errorf("agent %s runs a server but has %v MB of disk reserved for %s, want %d (reserved: %v)",
				sl.Hostname, r["disk"], role, serverDisk, sl.ReservedResources)
		case !serverAgents[sl.Hostname] && len(NonZero(r)) > 0:
			return fmt.Errorf("agent %s runs no server but has resources reserved for %s: %v",
				sl.Hostname, role, sl.ReservedResources)
		}
	}
	return nil
}

// writeKeys writes n keys under prefix through a client agent.
func (su *suite) writeKeys(t *testing.T, tasks []task, prefix string, n int) {
	t.Helper()
	var via task
	for _, tk := range tasks {
		if !isServer(tk) {
			via = tk
			break
		}
	}
	if via.Name == "" {
		t.Fatalf("no client task among %v", taskNames(tasks))
	}
	kv := consulClient(t, su.s, via.AgentIP).KV()
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("%s/%d", prefix, i)
		eventually(t, time.Minute, "writing "+key+" through "+via.Name, func() error {
			_, err := kv.Put(&consul.KVPair{Key: key, Value: []byte("v" + key)}, nil)
			return err
		})
	}
	su.written[prefix] = n
}

// checkAllKeys reads every written key back from every server's own state
// (stale reads) and, consistently, through every client.
func (su *suite) checkAllKeys(t *testing.T, tasks []task) {
	t.Helper()
	for prefix, n := range su.written {
		for _, tk := range tasks {
			kv := consulClient(t, su.s, tk.AgentIP).KV()
			opts := &consul.QueryOptions{AllowStale: true}
			if !isServer(tk) {
				opts = &consul.QueryOptions{RequireConsistent: true}
			}
			eventually(t, time.Minute, fmt.Sprintf("keys %s/* on %s", prefix, tk.Name), func() error {
				pairs, _, err := kv.List(prefix+"/", opts)
				if err != nil {
					return err
				}
				if len(pairs) != n {
					return fmt.Errorf("%d keys under %s, want %d", len(pairs), prefix, n)
				}
				for _, p := range pairs {
					if string(p.Value) != "v"+p.Key {
						return fmt.Errorf("%s = %q", p.Key, p.Value)
					}
				}
				return nil
			})
		}
	}
}

func (su *suite) subscribed(t *testing.T, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, "the scheduler subscribed", func() error {
		if !su.s.Running() {
			t.Fatalf("the scheduler process exited: %v", su.s.ExitErr())
		}
		h, err := su.s.Health(context.Background())
		if err != nil {
			return err
		}
		if !h.Subscribed {
			return fmt.Errorf("health %+v", h)
		}
		return nil
	})
}

func (su *suite) ended(t *testing.T) map[string]string {
	t.Helper()
	st, err := su.c.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range st.FrameworksNamed(serviceName) {
		for _, tk := range append(append([]Task(nil), f.CompletedTasks...), f.UnreachableTasks...) {
			out[tk.ID] = tk.Name + ":" + tk.State
		}
	}
	return out
}

func (su *suite) deploy(t *testing.T) {
	start := time.Now()
	su.subscribed(t, 2*time.Minute)
	t.Logf("TIMING subscribed %s after the scheduler started", time.Since(start).Round(100*time.Millisecond))
	tasks, leader := su.healthy(t, 3, 5*time.Minute)
	su.fwID = tasks[0].FrameworkID
	su.volumes(t, 3)
	t.Logf("TIMING healthy %s after the scheduler started: framework %s, leader %s, tasks %v",
		time.Since(start).Round(100*time.Millisecond), su.fwID, leader, taskNames(tasks))
}

// volumes checks that the live agents hold n persistent volumes on disk
// (one per server): the same lookup then finds none after the uninstall.
func (su *suite) volumes(t *testing.T, n int) {
	t.Helper()
	if vs := su.c.VolumeDirs(); len(vs) != n {
		t.Fatalf("%d persistent volumes on the live agents' disks, want %d: %v", len(vs), n, vs)
	}
}

func (su *suite) kv(t *testing.T) {
	tasks, _ := su.healthy(t, 3, time.Minute)
	su.writeKeys(t, tasks, "deploy", 20)
	su.checkAllKeys(t, tasks)
}

func (su *suite) mesosDNS(t *testing.T) {
	tasks, _ := su.healthy(t, 3, time.Minute)
	for _, s := range servers(tasks) {
		name := s.Name + "." + serviceName + ".mesos"
		ips, err := resolveA(su.c.DNSAddr(), name)
		if err != nil || len(ips) != 1 || ips[0] != s.AgentIP {
			t.Fatalf("Mesos-DNS: %s -> %v (%v), want %s", name, ips, err, s.AgentIP)
		}
		t.Logf("Mesos-DNS: %s -> %v", name, ips)
	}
}

func (su *suite) killServerExecutor(t *testing.T) {
	start := time.Now()
	tasks := su.restartFollower(t, "the kill", func(victim task) {
		pids, err := su.c.KillExecutors(victim.ExecutorID)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("SIGKILLed executor %s of %s on %s: pids %v", victim.ExecutorID, victim.Name, victim.AgentIP, pids)
	})
	t.Logf("TIMING healthy %s after the kill", time.Since(start).Round(100*time.Millisecond))
	su.writeKeys(t, tasks, "after-executor-kill", 10)
}

// restartServerInPlace: an operator's `pod restart` of a follower (the
// quorum gate, then KILL): on real Mesos the executor drains the server
// before it stops (its TASK_KILLED message, in the scheduler's log, says
// so), and it comes back on its agent as the same raft peer.
func (su *suite) restartServerInPlace(t *testing.T) {
	logFrom := len(readFile(su.s.LogPath()))
	ops := &operator.Commands{Client: su.operatorClient(t), Out: io.Discard}
	tasks := su.restartFollower(t, "the pod restart", func(victim task) {
		eventually(t, 2*time.Minute, "pod restart "+victim.Name+" through the quorum gate", func() error {
			return ops.PodRestart(context.Background(), victim.Name)
		})
	})
	log := readFile(su.s.LogPath())[logFrom:]
	if !strings.Contains(log, "client requests drained to the other servers") {
		t.Errorf("the old task's TASK_KILLED message does not say the server drained; scheduler log tail:\n%s", tail(su.s.LogPath(), 20))
	}
	su.writeKeys(t, tasks, "after-pod-restart", 10)
}

// restartLeaderInPlace: an operator's `pod restart` of the raft leader.
// The scheduler first asks the leader's executor (a MESSAGE through the
// real master and agent) to hold the requests that need the leader; the
// executor answers with a MESSAGE of its own, which the real agent and
// master deliver to the scheduler; only then is leadership handed over,
// with the requests held, and the old leader restarted as a follower. It
// comes back on its agent as the same raft peer, with every key.
func (su *suite) restartLeaderInPlace(t *testing.T) {
	logFrom := len(readFile(su.s.LogPath()))
	ops := &operator.Commands{Client: su.operatorClient(t), Out: io.Discard}
	tasks := su.restartServer(t, "the pod restart of the leader", true, func(victim task) {
		eventually(t, 2*time.Minute, "pod restart "+victim.Name+" through the quorum gate", func() error {
			return ops.PodRestart(context.Background(), victim.Name)
		})
	})
	log := readFile(su.s.LogPath())[logFrom:]
	for _, want := range []string{
		"the raft leader's executor holds the requests that need the leader", // its MESSAGE reached the scheduler
		`"requests_held":true`,
		"raft leadership handed over",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the scheduler's log since the pod restart lacks %q; its tail:\n%s", want, tail(su.s.LogPath(), 30))
		}
	}
	su.writeKeys(t, tasks, "after-leader-restart", 10)
}

// restartFollower ends a server that does not lead with end, then checks
// that it comes back as a new task on its own agent (its volume), the
// same raft peer, with every key written so far; it returns the tasks.
func (su *suite) restartFollower(t *testing.T, what string, end func(victim task)) []task {
	return su.restartServer(t, what, false, end)
}

// restartServer is restartFollower for the leader (leader true) or a
// server that does not lead.
func (su *suite) restartServer(t *testing.T, what string, leading bool, end func(victim task)) []task {
	tasks, leader := su.healthy(t, 3, time.Minute)
	var victim task
	for _, s := range servers(tasks) {
		if (s.AgentIP == hostOf(leader)) == leading {
			victim = s
			break
		}
	}
	if victim.Name == "" {
		t.Fatalf("no server task to restart (leader %v) among %v; leader at %s", leading, taskNames(tasks), leader)
	}
	before := su.peers(t, hostOf(leader))[victim.Name]
	if before == nil {
		t.Fatalf("%s is not a raft peer", victim.Name)
	}
	start := time.Now()
	end(victim)
	var again task
	eventually(t, 3*time.Minute, victim.Name+" relaunched", func() error {
		st, err := su.c.State(context.Background())
		if err != nil {
			return err
		}
		tk, ok := findTask(running(st), victim.Name)
		if !ok || tk.ID == victim.ID {
			return fmt.Errorf("%s not running as a new task yet (%+v)", victim.Name, tk)
		}
		again = tk
		return nil
	})
	t.Logf("TIMING %s RUNNING again as %s %s after %s", victim.Name, again.ID, time.Since(start).Round(100*time.Millisecond), what)
	if again.AgentIP != victim.AgentIP {
		t.Fatalf("%s relaunched on %s, want its own agent %s (its volume is there)", victim.Name, again.AgentIP, victim.AgentIP)
	}
	tasks, leader = su.healthy(t, 3, 3*time.Minute)
	if after := su.peers(t, hostOf(leader))[victim.Name]; after == nil || after.ID != before.ID {
		t.Fatalf("%s came back with raft ID %v, want %s (the same data on its volume)", victim.Name, after, before.ID)
	}
	su.checkAllKeys(t, tasks)
	return tasks
}

// operatorClient is the scheduler API's client with the operator token
// the scheduler wrote.
func (su *suite) operatorClient(t *testing.T) *operator.Client {
	t.Helper()
	tok, err := os.ReadFile(su.s.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := operator.NewClient(operator.Location{BaseURL: su.s.URL, OperatorToken: strings.TrimSpace(string(tok)), From: "test"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func (su *suite) peers(t *testing.T, ip string) map[string]*consul.RaftServer {
	t.Helper()
	var peers map[string]*consul.RaftServer
	eventually(t, time.Minute, "the raft configuration", func() error {
		var err error
		peers, err = raftPeers(consulClient(t, su.s, ip))
		return err
	})
	return peers
}

func (su *suite) restartScheduler(t *testing.T) {
	tasks, _ := su.healthy(t, 3, time.Minute)
	ids, ended := taskIDs(tasks), su.ended(t)
	start := time.Now()
	su.s.Stop(30 * time.Second)
	t.Logf("scheduler stopped (SIGTERM) in %s: %v", time.Since(start).Round(100*time.Millisecond), su.s.ExitErr())
	start = time.Now()
	if err := su.s.Start(); err != nil {
		t.Fatal(err)
	}
	su.subscribed(t, 2*time.Minute)
	t.Logf("TIMING subscribed %s after the restart", time.Since(start).Round(100*time.Millisecond))
	tasks, _ = su.healthy(t, 3, 3*time.Minute)
	t.Logf("TIMING healthy %s after the restart", time.Since(start).Round(100*time.Millisecond))
	su.sameService(t, tasks, ids, ended)
	su.checkAllKeys(t, tasks)
}

// sameService fails unless the framework ID and every task ID are what
// they were, and no task ended since.
func (su *suite) sameService(t *testing.T, tasks []task, ids, ended map[string]string) {
	t.Helper()
	if got := tasks[0].FrameworkID; got != su.fwID {
		t.Fatalf("framework ID %s, was %s", got, su.fwID)
	}
	if got := taskIDs(tasks); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("tasks changed: %v, before %v", got, ids)
	}
	// A restarted master forgets completed tasks: none may be new.
	for id, what := range su.ended(t) {
		if _, ok := ended[id]; !ok {
			t.Fatalf("task %s ended (%s); before, the ended tasks were %v", id, what, ended)
		}
	}
}

func (su *suite) restartMaster(t *testing.T) {
	tasks, _ := su.healthy(t, 3, time.Minute)
	ids, ended := taskIDs(tasks), su.ended(t)
	st, err := su.c.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	oldMaster := st.ID
	start := time.Now()
	if err := su.c.RestartMaster(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "the framework re-subscribed to the restarted master", func() error {
		st, err := su.c.State(context.Background())
		if err != nil {
			return err
		}
		if st.ID == oldMaster {
			return errors.New("still the old master's state")
		}
		for _, f := range st.FrameworksNamed(serviceName) {
			if f.ID == su.fwID && f.Connected && f.Active {
				return nil
			}
		}
		return fmt.Errorf("framework %s not connected: %+v", su.fwID, st.FrameworksNamed(serviceName))
	})
	t.Logf("TIMING framework re-subscribed %s after the master was killed", time.Since(start).Round(100*time.Millisecond))
	su.subscribed(t, time.Minute)
	if err := su.c.WaitAgents(context.Background(), 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("TIMING agents re-registered %s after the master was killed", time.Since(start).Round(100*time.Millisecond))
	tasks, _ = su.healthy(t, 3, 3*time.Minute)
	t.Logf("TIMING healthy %s after the master was killed", time.Since(start).Round(100*time.Millisecond))
	su.sameService(t, tasks, ids, ended)
	su.checkAllKeys(t, tasks)
	su.writeKeys(t, tasks, "after-master-restart", 10)
}

func (su *suite) loseServerAgent(t *testing.T) {
	tasks, leader := su.healthy(t, 3, time.Minute)
	var victim task
	for _, s := range servers(tasks) {
		if s.AgentIP != hostOf(leader) {
			victim = s
			break
		}
	}
	start := time.Now()
	pids, err := su.c.LoseAgent(victim.AgentIP)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("agent %s lost (agent and executors SIGKILLed, executor pids %v); it ran %s (%s)", victim.AgentIP, pids, victim.Name, victim.ID)
	var moved task
	eventually(t, 4*time.Minute, victim.Name+" replaced on another agent", func() error {
		st, err := su.c.State(context.Background())
		if err != nil {
			return err
		}
		tk, ok := findTask(running(st), victim.Name)
		if !ok || tk.ID == victim.ID {
			return fmt.Errorf("%s not running as a new task yet", victim.Name)
		}
		moved = tk
		return nil
	})
	t.Logf("TIMING %s RUNNING on %s %s after the agent loss", victim.Name, moved.AgentIP, time.Since(start).Round(100*time.Millisecond))
	if moved.AgentIP == victim.AgentIP {
		t.Fatalf("%s relaunched on the lost agent %s", victim.Name, victim.AgentIP)
	}
	tasks, leader = su.healthy(t, 3, 4*time.Minute)
	for name, p := range su.peers(t, hostOf(leader)) {
		if hostOf(p.Address) == victim.AgentIP {
			t.Fatalf("the lost server's raft peer %s (%s) is still in the configuration", name, p.Address)
		}
	}
	su.checkAllKeys(t, tasks)
	su.volumes(t, 3)
	t.Logf("TIMING healthy on %d agents %s after the agent loss: %v", len(tasks), time.Since(start).Round(100*time.Millisecond), taskNames(tasks))
	su.writeKeys(t, tasks, "after-agent-loss", 10)
}

func (su *suite) uninstall(t *testing.T) {
	tasks, _ := su.healthy(t, 3, time.Minute)
	start := time.Now()
	su.s.Stop(30 * time.Second)
	if err := su.s.Start(config.EnvUninstall + "=true"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Minute, "the framework torn down, nothing reserved", func() error {
		st, err := su.c.State(context.Background())
		if err != nil {
			return err
		}
		if fws := st.FrameworksNamed(serviceName); len(fws) > 0 {
			n := 0
			for _, f := range fws {
				n += len(f.Tasks)
			}
			return fmt.Errorf("framework still registered with %d tasks", n)
		}
		done := false
		for _, f := range st.CompletedFrameworks {
			done = done || f.ID == su.fwID
		}
		if !done {
			return fmt.Errorf("framework %s not among the completed frameworks", su.fwID)
		}
		live := su.liveAgents()
		for _, sl := range st.Slaves {
			if !live[sl.Hostname] {
				continue
			}
			for r, res := range sl.ReservedResources {
				if len(NonZero(res)) > 0 {
					return fmt.Errorf("agent %s keeps resources reserved for %s: %v", sl.Hostname, r, res)
				}
			}
		}
		return nil
	})
	t.Logf("TIMING uninstalled %s after the scheduler restarted with %s=true", time.Since(start).Round(100*time.Millisecond), config.EnvUninstall)
	su.checkServersLeft(t, servers(tasks))
	if vs := su.c.VolumeDirs(); len(vs) > 0 {
		t.Fatalf("persistent volumes left on the agents' disks: %v", vs)
	}
	// Nothing of the service is left in ZooKeeper: not a key of the state,
	// not the store's fencing node (__epoch) or lock, not the service node.
	node := su.zkRoot + "/state/dcos-service-" + serviceName
	eventually(t, time.Minute, "the scheduler's state deleted", func() error {
		kids, err := ZKChildren(zkAddr, node)
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("%s still exists, holding %v", node, kids)
	})
	eventually(t, time.Minute, "every executor process gone", func() error {
		if pids := sandboxProcs(runRoot, ""); len(pids) > 0 {
			return fmt.Errorf("executor processes still running: %v", pids)
		}
		return nil
	})
}

// monitor polls the master's state every second for the whole run and
// records every duplicate (a second framework of ours registered, a task
// twice) and every framework ID of ours it ever sees: issue 8's bug
// registered six frameworks in a row.
type monitor struct {
	c      *Cluster
	mu     sync.Mutex
	seen   map[string]time.Time
	fwIDs  map[string]bool
	polled int
	done   chan struct{}
	wg     sync.WaitGroup
}

func startMonitor(c *Cluster) *monitor {
	m := &monitor{c: c, seen: map[string]time.Time{}, fwIDs: map[string]bool{}, done: make(chan struct{})}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-m.done:
				return
			case <-tick.C:
			}
			st, err := c.State(context.Background())
			if err != nil {
				continue // the master may be restarting
			}
			m.mu.Lock()
			m.polled++
			for _, d := range st.Duplicates(serviceName) {
				if _, ok := m.seen[d]; !ok {
					m.seen[d] = time.Now()
				}
			}
			for _, id := range st.FrameworkIDs(serviceName) {
				m.fwIDs[id] = true
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

func (m *monitor) check(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	var ds []string
	for d, at := range m.seen {
		ds = append(ds, at.Format("15:04:05.000")+" "+d)
	}
	sort.Strings(ds)
	if len(ds) > 0 {
		t.Errorf("duplicates seen in the master's state:\n%s", strings.Join(ds, "\n"))
	}
	if len(m.fwIDs) != 1 {
		t.Errorf("the master knew %d frameworks named %s over the run, want exactly 1: %v", len(m.fwIDs), serviceName, m.fwIDs)
	}
	if m.polled == 0 {
		t.Error("the monitor never read the master's state")
	}
	if !t.Failed() {
		t.Logf("monitor: %d reads of /master/state, one framework ID %v, no duplicate", m.polled, m.fwIDs)
	}
}
