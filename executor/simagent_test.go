package executor

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dcos-consul/dcos-consul/internal/mesossim/agent"
)

// The dcos-consul binary, built once for the tests that run the executor
// as a real process under the simulated Mesos agent.
var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func dcosConsulBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "executor-test-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "dcos-consul")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/dcos-consul/dcos-consul/cmd/dcos-consul").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// simMaster is the master side of the simulated agent: it records what the
// agent forwards and acknowledges every update, as a scheduler would.
type simMaster struct {
	mu      sync.Mutex
	agent   *agent.Agent
	updates []mesos.TaskStatus
	terms   []int32
}

func (m *simMaster) StatusUpdate(_ mesos.AgentID, fw mesos.FrameworkID, st mesos.TaskStatus, _ mesos.TaskState) {
	m.mu.Lock()
	m.updates = append(m.updates, st)
	a := m.agent
	m.mu.Unlock()
	if len(st.UUID) > 0 && a != nil {
		go a.Acknowledge(fw, st.TaskID, st.UUID)
	}
}

func (m *simMaster) ExecutorTerminated(_ mesos.AgentID, _ mesos.FrameworkID, _ mesos.ExecutorID, status int32) {
	m.mu.Lock()
	m.terms = append(m.terms, status)
	m.mu.Unlock()
}

func (m *simMaster) ExecutorMessage(mesos.AgentID, mesos.FrameworkID, mesos.ExecutorID, []byte) {}

func (m *simMaster) waitFor(t *testing.T, timeout time.Duration, what string, cond func(ups []mesos.TaskStatus, terms []int32) bool, sandbox func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m.mu.Lock()
		ups := append([]mesos.TaskStatus(nil), m.updates...)
		terms := append([]int32(nil), m.terms...)
		m.mu.Unlock()
		if cond(ups, terms) {
			return
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("timed out after %v waiting for %s; updates: %s; executor exits: %v", timeout, what, describe(ups), terms)
			if sandbox != nil {
				if b, err := os.ReadFile(filepath.Join(sandbox(), "stderr")); err == nil {
					lines := strings.Split(string(b), "\n")
					if len(lines) > 60 {
						lines = lines[len(lines)-60:]
					}
					msg += "\nexecutor stderr:\n" + strings.Join(lines, "\n")
				}
			}
			t.Fatal(msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasUpdate(task string, state mesos.TaskState, healthy *bool) func([]mesos.TaskStatus, []int32) bool {
	return func(ups []mesos.TaskStatus, _ []int32) bool {
		for _, u := range ups {
			if u.TaskID.Value == task && u.GetState() == state && (healthy == nil || (u.Healthy != nil && *u.Healthy == *healthy)) {
				return true
			}
		}
		return false
	}
}

func nodeIDLabel(ups []mesos.TaskStatus, task string) string {
	for _, u := range ups {
		if u.TaskID.Value == task && u.Labels != nil {
			for _, l := range u.Labels.Labels {
				if l.Key == "consul_node_id" {
					return l.GetValue()
				}
			}
		}
	}
	return ""
}

// TestExecutorOnSimulatedAgent runs the real dcos-consul executor process
// under the simulated Mesos agent (internal/mesossim/agent) with a
// persistent volume for the Consul data: RUNNING and healthy, survives an
// agent restart (re-subscribe, Consul keeps running), KILL → stop without
// leaving → KILLED and exit; a relaunch with a new executor on the same
// volume has the same Consul node ID; SHUTDOWN ends it within the grace.
func TestExecutorOnSimulatedAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the dcos-consul binary and runs Consul")
	}
	bin := dcosConsulBinary(t)
	const ip = "127.3.1.2"
	m := &simMaster{}
	ag, err := agent.New(agent.Config{
		ID: mesos.AgentID{Value: "sim-S0"}, Hostname: ip, IP: ip, Port: 5051, WorkDir: t.TempDir(),
		Resources:              []mesos.Resource{resScalar("cpus", 4), resScalar("mem", 8192), resScalar("disk", 20000)},
		StatusUpdateRetry:      200 * time.Millisecond,
		StatusUpdateRetryMax:   time.Second,
		ExecutorShutdownGrace:  5 * time.Second,
		SubscriptionBackoffMax: time.Second,
		RecoveryTimeout:        time.Minute,
	}, m)
	if err != nil {
		t.Fatal(err)
	}
	m.agent = ag
	if err := ag.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ag.Stop)
	if err := ag.CreateVolume("consul", "vol-consul-server-0"); err != nil {
		t.Fatal(err)
	}

	p := freePortsOn(t, ip, 3)
	spec := testSpecPorts(t, p)
	fw := mesos.FrameworkInfo{
		User: "root", Name: "consul", ID: &mesos.FrameworkID{Value: "sim-fw-0000"},
		Checkpoint: boolp(true), Roles: []string{"consul"},
		Capabilities: []mesos.FrameworkInfo_Capability{
			{Type: mesos.FrameworkInfo_Capability_TASK_KILLING_STATE},
			{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE},
		},
	}
	execInfo := func(id string) mesos.ExecutorInfo {
		shell := true
		cmd := bin + " executor"
		return mesos.ExecutorInfo{
			Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: id}, FrameworkID: fw.ID,
			Command:   &mesos.CommandInfo{Value: &cmd, Shell: &shell},
			Resources: []mesos.Resource{resScalar("cpus", 0.1), resScalar("mem", 32)},
		}
	}
	task := func(id string) mesos.TaskInfo {
		return mesos.TaskInfo{
			Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: mesos.AgentID{Value: "sim-S0"}, Data: spec,
			Resources: []mesos.Resource{resScalar("cpus", 0.5), resScalar("mem", 256), volume("consul", "vol-consul-server-0", "consul-data")},
		}
	}
	sandboxOf := func(exec string) func() string {
		return func() string {
			for _, e := range ag.Executors() {
				if e.Executor.Value == exec {
					return e.Directory
				}
			}
			return ""
		}
	}
	httpUp := func() error {
		resp, err := http.Get("http://" + net.JoinHostPort(ip, strconv.Itoa(p[2])) + "/v1/status/leader")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	launched := time.Now()
	ag.Launch(agent.Launch{Framework: fw, Executor: execInfo("exec-1"), Tasks: []mesos.TaskInfo{task("consul-server-0__1")}})
	m.waitFor(t, 2*time.Minute, "RUNNING", hasUpdate("consul-server-0__1", mesos.TASK_RUNNING, nil), sandboxOf("exec-1"))
	toRunning := time.Since(launched)
	m.waitFor(t, time.Minute, "RUNNING healthy", hasUpdate("consul-server-0__1", mesos.TASK_RUNNING, boolp(true)), sandboxOf("exec-1"))
	t.Logf("executor process: LAUNCH → RUNNING %v, → healthy %v", toRunning.Round(time.Millisecond), time.Since(launched).Round(time.Millisecond))
	pidBefore := 0
	for _, e := range ag.Executors() {
		if e.Executor.Value == "exec-1" {
			pidBefore = e.PID
		}
	}

	// The agent restarts; the executor re-subscribes and Consul runs on.
	if err := ag.Restart(time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := httpUp(); err != nil {
		t.Fatalf("Consul stopped answering across the agent restart: %v", err)
	}
	for _, e := range ag.Executors() {
		if e.Executor.Value == "exec-1" && e.PID != pidBefore {
			t.Errorf("executor process changed across the agent restart: %d → %d", pidBefore, e.PID)
		}
	}

	ag.Kill(*fw.ID, mesos.TaskID{Value: "consul-server-0__1"}, nil)
	m.waitFor(t, time.Minute, "KILLED and executor exit", func(ups []mesos.TaskStatus, terms []int32) bool {
		return hasUpdate("consul-server-0__1", mesos.TASK_KILLED, nil)(ups, nil) && len(terms) == 1
	}, sandboxOf("exec-1"))
	m.mu.Lock()
	firstID := nodeIDLabel(m.updates, "consul-server-0__1")
	for _, u := range m.updates {
		if u.TaskID.Value == "consul-server-0__1" && u.GetState() == mesos.TASK_FAILED {
			t.Errorf("task failed: %q (%s)", u.GetMessage(), u.GetReason())
		}
	}
	if m.terms[0] != 0 {
		t.Errorf("executor exit status %d, want 0", m.terms[0])
	}
	m.mu.Unlock()
	if err := httpUp(); err == nil {
		t.Errorf("Consul still answers after TASK_KILLED")
	}

	// Relaunch on the same volume with a new executor: same node.
	ag.Launch(agent.Launch{Framework: fw, Executor: execInfo("exec-2"), Tasks: []mesos.TaskInfo{task("consul-server-0__2")}})
	m.waitFor(t, 2*time.Minute, "relaunched RUNNING healthy", hasUpdate("consul-server-0__2", mesos.TASK_RUNNING, boolp(true)), sandboxOf("exec-2"))
	m.mu.Lock()
	secondID := nodeIDLabel(m.updates, "consul-server-0__2")
	m.mu.Unlock()
	if firstID == "" || secondID != firstID {
		t.Errorf("node ID after relaunch on the same volume %q, before %q", secondID, firstID)
	}

	shutdownAt := time.Now()
	ag.ShutdownExecutor(*fw.ID, mesos.ExecutorID{Value: "exec-2"})
	m.waitFor(t, time.Minute, "KILLED after SHUTDOWN and exit", func(ups []mesos.TaskStatus, terms []int32) bool {
		return hasUpdate("consul-server-0__2", mesos.TASK_KILLED, nil)(ups, nil) && len(terms) == 2
	}, sandboxOf("exec-2"))
	m.mu.Lock()
	for _, u := range m.updates {
		if u.GetState() == mesos.TASK_KILLED {
			t.Logf("%s KILLED: %s", u.TaskID.Value, u.GetMessage())
		}
	}
	m.mu.Unlock()
	t.Logf("SHUTDOWN → executor exit %v", time.Since(shutdownAt).Round(time.Millisecond))
	if d := time.Since(shutdownAt); d > 6*time.Second {
		t.Errorf("SHUTDOWN took %v, beyond the 5s grace period", d)
	}
	m.mu.Lock()
	if m.terms[1] != 0 {
		t.Errorf("executor exit status after SHUTDOWN %d, want 0 (killed by the agent?)", m.terms[1])
	}
	m.mu.Unlock()
}

func resScalar(name string, v float64) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
}

func volume(role, id, containerPath string) mesos.Resource {
	mode := mesos.RW
	return mesos.Resource{
		Name: "disk", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 100},
		Reservations: []mesos.Resource_ReservationInfo{{Type: mesos.Resource_ReservationInfo_DYNAMIC.Enum(), Role: &role}},
		Disk: &mesos.Resource_DiskInfo{
			Persistence: &mesos.Resource_DiskInfo_Persistence{ID: id},
			Volume:      &mesos.Volume{ContainerPath: containerPath, Mode: &mode},
		},
	}
}

// freePortsOnAll returns n ports free for TCP and UDP on every ip (a
// Mesos-DNS name is joined on the joiner's own serf LAN port, so the
// servers share one port plan, as they do with fixed ports on DC/OS).
func freePortsOnAll(t *testing.T, ips []string, n int) []int {
	t.Helper()
	var out []int
	for tries := 0; len(out) < n && tries < 100; tries++ {
		cand := freePortsOn(t, ips[0], 1)[0]
		ok := true
		for _, ip := range ips[1:] {
			addr := net.JoinHostPort(ip, strconv.Itoa(cand))
			l, err := net.Listen("tcp", addr)
			if err != nil {
				ok = false
				break
			}
			l.Close()
			u, err := net.ListenPacket("udp", addr)
			if err != nil {
				ok = false
				break
			}
			u.Close()
		}
		if ok && !containsInt(out, cand) {
			out = append(out, cand)
		}
	}
	if len(out) < n {
		t.Fatalf("no %d common free ports on %v", n, ips)
	}
	return out
}

func containsInt(s []int, x int) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// simCluster is a few simulated agents, each with its own master recorder.
type simCluster struct {
	t       *testing.T
	bin     string
	agents  []*agent.Agent
	masters []*simMaster
	ips     []string
	fw      mesos.FrameworkInfo
}

func newSimCluster(t *testing.T, ips []string) *simCluster {
	t.Helper()
	c := &simCluster{t: t, bin: dcosConsulBinary(t), ips: ips, fw: mesos.FrameworkInfo{
		User: "root", Name: "consul", ID: &mesos.FrameworkID{Value: "sim-fw-0001"},
		Checkpoint: boolp(true), Roles: []string{"consul"},
		Capabilities: []mesos.FrameworkInfo_Capability{
			{Type: mesos.FrameworkInfo_Capability_TASK_KILLING_STATE},
			{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE},
		},
	}}
	for i, ip := range ips {
		m := &simMaster{}
		ag, err := agent.New(agent.Config{
			ID: mesos.AgentID{Value: fmt.Sprintf("sim-S%d", i)}, Hostname: ip, IP: ip, Port: 5051, WorkDir: t.TempDir(),
			Resources:              []mesos.Resource{resScalar("cpus", 4), resScalar("mem", 8192), resScalar("disk", 20000)},
			StatusUpdateRetry:      200 * time.Millisecond,
			StatusUpdateRetryMax:   time.Second,
			ExecutorShutdownGrace:  15 * time.Second,
			SubscriptionBackoffMax: time.Second,
			RecoveryTimeout:        time.Minute,
		}, m)
		if err != nil {
			t.Fatal(err)
		}
		m.agent = ag
		if err := ag.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ag.Stop)
		c.agents = append(c.agents, ag)
		c.masters = append(c.masters, m)
	}
	return c
}

// launch starts task on agent i with a new executor; volume is the
// persistent volume holding the data dir ("" for none).
func (c *simCluster) launch(i int, taskID, execID, volumeID string, spec []byte) {
	shell := true
	cmd := c.bin + " executor"
	res := []mesos.Resource{resScalar("cpus", 0.5), resScalar("mem", 256)}
	if volumeID != "" {
		if err := c.agents[i].CreateVolume("consul", volumeID); err != nil {
			c.t.Fatal(err)
		}
		res = append(res, volume("consul", volumeID, "consul-data"))
	}
	c.agents[i].Launch(agent.Launch{
		Framework: c.fw,
		Executor: mesos.ExecutorInfo{
			Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: execID}, FrameworkID: c.fw.ID,
			Command:   &mesos.CommandInfo{Value: &cmd, Shell: &shell},
			Resources: []mesos.Resource{resScalar("cpus", 0.1), resScalar("mem", 32)},
		},
		Tasks: []mesos.TaskInfo{{
			Name: taskID, TaskID: mesos.TaskID{Value: taskID}, AgentID: mesos.AgentID{Value: fmt.Sprintf("sim-S%d", i)},
			Data: spec, Resources: res,
		}},
	})
}

func (c *simCluster) sandbox(i int, execID string) func() string {
	return func() string {
		for _, e := range c.agents[i].Executors() {
			if e.Executor.Value == execID {
				return e.Directory
			}
		}
		return ""
	}
}

func (m *simMaster) snapshotUpdates() []mesos.TaskStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]mesos.TaskStatus(nil), m.updates...)
}
