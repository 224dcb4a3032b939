package agent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// testExecutorBin is testdata/testexecutor built once for the package.
var testExecutorBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agent-testexec-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testExecutorBin = filepath.Join(dir, "testexecutor")
	out, err := exec.Command("go", "build", "-o", testExecutorBin, "./testdata/testexecutor").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the test executor: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const waitLong = 20 * time.Second

type recUpdate struct {
	fw     mesos.FrameworkID
	status mesos.TaskStatus
	latest mesos.TaskState
	at     time.Time
}

type recTerm struct {
	fw     mesos.FrameworkID
	ex     mesos.ExecutorID
	status int32
	seq    int // position among all master calls
}

// fakeMaster records what the agent tells it; with autoAck it acknowledges
// every update from another goroutine, as the master relays scheduler acks.
type fakeMaster struct {
	mu       sync.Mutex
	agent    *Agent
	autoAck  atomic.Bool
	seq      int
	updates  []recUpdate
	useq     []int // seq of each update
	terms    []recTerm
	messages [][]byte
}

func (m *fakeMaster) StatusUpdate(agentID mesos.AgentID, fw mesos.FrameworkID, st mesos.TaskStatus, latest mesos.TaskState) {
	m.mu.Lock()
	m.seq++
	m.updates = append(m.updates, recUpdate{fw: fw, status: st, latest: latest, at: time.Now()})
	m.useq = append(m.useq, m.seq)
	a := m.agent
	m.mu.Unlock()
	if m.autoAck.Load() && a != nil {
		go a.Acknowledge(fw, st.TaskID, st.UUID)
	}
}

func (m *fakeMaster) ExecutorTerminated(agentID mesos.AgentID, fw mesos.FrameworkID, ex mesos.ExecutorID, status int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	m.terms = append(m.terms, recTerm{fw: fw, ex: ex, status: status, seq: m.seq})
}

func (m *fakeMaster) ExecutorMessage(agentID mesos.AgentID, fw mesos.FrameworkID, ex mesos.ExecutorID, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	m.messages = append(m.messages, data)
}

func (m *fakeMaster) snapshot() ([]recUpdate, []recTerm) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]recUpdate(nil), m.updates...), append([]recTerm(nil), m.terms...)
}

// updatesFor lists the updates for a task, in arrival order.
func (m *fakeMaster) updatesFor(task string) []recUpdate {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []recUpdate
	for _, u := range m.updates {
		if u.status.TaskID.Value == task {
			out = append(out, u)
		}
	}
	return out
}

// statesFor lists the distinct states forwarded for a task (duplicate
// resends collapsed), in order.
func (m *fakeMaster) statesFor(task string) []mesos.TaskState {
	var out []mesos.TaskState
	var last []byte
	for _, u := range m.updatesFor(task) {
		if string(u.status.UUID) == string(last) {
			continue
		}
		last = u.status.UUID
		out = append(out, u.status.GetState())
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// waitState waits until the master has received an update with state st
// for task and returns it.
func waitState(t *testing.T, m *fakeMaster, task string, st mesos.TaskState) recUpdate {
	t.Helper()
	var got recUpdate
	waitFor(t, fmt.Sprintf("%s for %s", st, task), func() bool {
		for _, u := range m.updatesFor(task) {
			if u.status.GetState() == st {
				got = u
				return true
			}
		}
		return false
	})
	return got
}

var ipCounter atomic.Int32

// nextIP hands out 127.1.200.10, .11, ... (this package's loopback range).
func nextIP() string {
	// Wraps (for -count=N); earlier agents on a reused address are stopped.
	return fmt.Sprintf("127.1.200.%d", 10+ipCounter.Add(1)%230)
}

// newTestAgent starts an agent on a fresh 127.1.200.x address with short
// timings; edit may change the config first.
func newTestAgent(t *testing.T, edit func(*Config)) (*Agent, *fakeMaster) {
	t.Helper()
	ip := nextIP()
	cfg := Config{
		ID:       mesos.AgentID{Value: "e6922113-59b7-4c1f-9b75-e01bd097f100-S" + strings.ReplaceAll(ip, ".", "")},
		Hostname: ip,
		IP:       ip,
		Port:     5051,
		WorkDir:  t.TempDir(),
		Resources: []mesos.Resource{
			scalar("cpus", 4), scalar("mem", 8192), scalar("disk", 20000),
		},
		StatusUpdateRetry:      200 * time.Millisecond,
		StatusUpdateRetryMax:   time.Second,
		ExecutorRegisterTimout: 20 * time.Second,
		ExecutorShutdownGrace:  2 * time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	m := &fakeMaster{}
	m.autoAck.Store(true)
	a, err := New(cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	m.agent = a
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return a, m
}

func scalar(name string, v float64) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
}

var testFramework = mesos.FrameworkInfo{
	User:            "root",
	Name:            "exec-fixture",
	ID:              &mesos.FrameworkID{Value: "e6922113-59b7-4c1f-9b75-e01bd097f100-0001"},
	Checkpoint:      boolp(true),
	FailoverTimeout: float64p(604800),
	Capabilities: []mesos.FrameworkInfo_Capability{
		{Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE},
		{Type: mesos.FrameworkInfo_Capability_TASK_KILLING_STATE},
	},
}

func boolp(b bool) *bool          { return &b }
func float64p(f float64) *float64 { return &f }
func strp(s string) *string       { return &s }

// executorInfo is a CUSTOM executor running the test executor through the
// shell, with extra environment variables.
func executorInfo(id string, env map[string]string) mesos.ExecutorInfo {
	ci := &mesos.CommandInfo{Value: strp(testExecutorBin), Shell: boolp(true)}
	if len(env) > 0 {
		ci.Environment = &mesos.Environment{}
		for k, v := range env {
			ci.Environment.Variables = append(ci.Environment.Variables, mesos.Environment_Variable{Name: k, Value: strp(v)})
		}
	}
	return mesos.ExecutorInfo{
		Type:        mesos.ExecutorInfo_CUSTOM,
		ExecutorID:  mesos.ExecutorID{Value: id},
		FrameworkID: testFramework.ID,
		Name:        strp("tiny-executor"),
		Command:     ci,
		Resources:   []mesos.Resource{scalar("cpus", 0.1), scalar("mem", 32)},
	}
}

func taskInfo(a *Agent, id string, data string, res ...mesos.Resource) mesos.TaskInfo {
	t := mesos.TaskInfo{
		Name:      id,
		TaskID:    mesos.TaskID{Value: id},
		AgentID:   a.cfg.ID,
		Resources: append([]mesos.Resource{scalar("cpus", 0.1), scalar("mem", 32)}, res...),
	}
	if data != "" {
		t.Data = []byte(data)
	}
	return t
}

func launch(a *Agent, ex mesos.ExecutorInfo, tasks ...mesos.TaskInfo) {
	for i := range tasks {
		e := ex
		tasks[i].Executor = &e
	}
	a.Launch(Launch{Framework: testFramework, Executor: ex, Tasks: tasks})
}

func executorState(a *Agent, ex string) (ExecutorState, bool) {
	for _, s := range a.Executors() {
		if s.Executor.Value == ex {
			return s, true
		}
	}
	return ExecutorState{}, false
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// eventsLog waits until the executor's events.log contains want.
func waitEventsLog(t *testing.T, dir, want string) string {
	t.Helper()
	var s string
	waitFor(t, "events.log to contain "+want, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "events.log"))
		s = string(b)
		return strings.Contains(s, want)
	})
	return s
}

func processGone(pid int) bool {
	// Signal 0 probes existence; a zombie would still count, but the agent
	// reaps its children.
	return syscall.Kill(pid, 0) != nil
}
