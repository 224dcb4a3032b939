package executor

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dcos-consul/dcos-consul/executor/consulagent"
	"github.com/dcos-consul/dcos-consul/internal/freeport"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// Tests of this package use loopback addresses in 127.3.0.0/16 only.

// testLogger logs to a file (goroutines may log after the test) and prints
// its tail when the test failed.
func testLogger(t *testing.T) *zap.Logger {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(f), zap.DebugLevel)
	t.Cleanup(func() {
		if !t.Failed() && os.Getenv("EXECUTOR_TEST_LOG") == "" {
			return
		}
		data, _ := os.ReadFile(path)
		lines := strings.Split(string(data), "\n")
		if len(lines) > 200 {
			lines = lines[len(lines)-200:]
		}
		t.Logf("last log lines:\n%s", strings.Join(lines, "\n"))
	})
	return zap.New(core)
}

// fakeConsul stands in for a Consul agent in tests of the Mesos side.
type fakeConsul struct {
	mu      sync.Mutex
	healthy bool
	ready   chan struct{}
	done    chan struct{}
	once    sync.Once
	left    bool
	err     error
	joins   []string
	// leaveErr is what Leave returns (after stopping, as the real one).
	leaveErr error
	// drained counts Drain calls; drainErr is what Drain returns.
	drained  int
	drainErr error
	leads    bool            // what Leads says
	holds    []time.Duration // HoldForHandOver calls
	// hang, when set, makes Stop (and so Leave) block until it is closed,
	// as hashicorp/raft's Shutdown was seen to.
	hang chan struct{}
}

func newFakeConsul() *fakeConsul {
	return &fakeConsul{ready: make(chan struct{}), done: make(chan struct{})}
}

func (f *fakeConsul) Ready(ctx context.Context) error {
	select {
	case <-f.ready:
		return nil
	case <-f.done:
		return errors.New("stopped")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeConsul) Health() consulagent.Health {
	f.mu.Lock()
	defer f.mu.Unlock()
	return consulagent.Health{Healthy: f.healthy, Message: "fake health " + strconv.FormatBool(f.healthy)}
}

func (f *fakeConsul) setHealthy(b bool) {
	f.mu.Lock()
	f.healthy = b
	f.mu.Unlock()
}

func (f *fakeConsul) Leave(ctx context.Context) error {
	f.mu.Lock()
	f.left = f.leaveErr == nil
	err := f.leaveErr
	f.mu.Unlock()
	f.Stop()
	return err
}

func (f *fakeConsul) Drain() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drained++
	return f.drainErr
}

func (f *fakeConsul) Leads() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leads
}

func (f *fakeConsul) HoldForHandOver(hold time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holds = append(f.holds, hold)
	return f.leads
}

func (f *fakeConsul) drains() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.drained
}

func (f *fakeConsul) hasLeft() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.left
}

func (f *fakeConsul) AddJoinAddrs(addrs []string) {
	f.mu.Lock()
	f.joins = append(f.joins, addrs...)
	f.mu.Unlock()
}

func (f *fakeConsul) joined() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.joins...)
}

func (f *fakeConsul) Stop() {
	if f.hang != nil {
		<-f.hang
	}
	f.once.Do(func() { close(f.done) })
}
func (f *fakeConsul) Done() <-chan struct{} { return f.done }
func (f *fakeConsul) Err() error            { f.mu.Lock(); defer f.mu.Unlock(); return f.err }
func (f *fakeConsul) NodeID() string        { return "11111111-2222-3333-4444-555555555555" }

func fakeStart(fc *fakeConsul) startFunc {
	return func(ctx context.Context, spec taskspec.Spec, env consulagent.Env, log *zap.Logger) (consulAgent, error) {
		return fc, nil
	}
}

func testSpec(t *testing.T, expect int, ports taskspec.Ports) []byte {
	t.Helper()
	b, err := taskspec.Encode(taskspec.Spec{
		Role: taskspec.RoleServer, NodeName: "consul-server-0", Datacenter: "dc1",
		BootstrapExpect: expect, Ports: ports, DataDir: "consul-data", RaftMultiplier: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testClientSpec is a client's spec: a client leaves the cluster on a kill.
func testClientSpec(t *testing.T, ports taskspec.Ports) []byte {
	t.Helper()
	b, err := taskspec.Encode(taskspec.Spec{
		Role: taskspec.RoleClient, NodeName: "consul-client-a1", Datacenter: "dc1",
		Ports: ports, DataDir: "consul-data",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func anyPorts() taskspec.Ports {
	return taskspec.Ports{Server: 8300, SerfLAN: 8301, SerfWAN: -1, HTTP: 8500, HTTPS: -1, GRPC: -1, DNS: -1}
}

func testConfig(fa *fakeAgent, bindIP, sandbox string) Config {
	return Config{
		FrameworkID: fa.fwID, ExecutorID: fa.execID, Sandbox: sandbox,
		AgentEndpoint: fa.addr, BindIP: bindIP,
		Checkpoint: true, RecoveryTimeout: time.Minute, SubscriptionBackoffMax: 200 * time.Millisecond,
		ShutdownGracePeriod: 5 * time.Second, HeartbeatInterval: 500 * time.Millisecond,
	}
}

// runExecutor runs the executor in the background; the returned channel
// yields Run's result.
func runExecutor(t *testing.T, ctx context.Context, cfg Config, start startFunc) <-chan error {
	t.Helper()
	res := make(chan error, 1)
	e := newExecutor(cfg, testLogger(t), start)
	go func() { res <- e.run(ctx) }()
	return res
}

func waitExit(t *testing.T, res <-chan error, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-res:
		return err
	case <-time.After(timeout):
		t.Fatalf("executor did not exit within %v", timeout)
		return nil
	}
}

// checkUpdates asserts what every update must carry.
func checkUpdates(t *testing.T, fa *fakeAgent, ups []mesos.TaskStatus) {
	t.Helper()
	seen := map[string]bool{}
	for _, u := range ups {
		if len(u.UUID) != 16 {
			t.Errorf("update %s has a uuid of %d bytes", u.State, len(u.UUID))
		}
		if _, err := uuid.FromBytes(u.UUID); err != nil {
			t.Errorf("update %s: uuid is not a UUID: %v", u.State, err)
		}
		if seen[string(u.UUID)] {
			t.Errorf("uuid of update %s used twice", u.State)
		}
		seen[string(u.UUID)] = true
		if u.Source == nil || *u.Source != mesos.SOURCE_EXECUTOR {
			t.Errorf("update %s: source %v, want SOURCE_EXECUTOR", u.State, u.Source)
		}
		if u.GetMessage() == "" {
			t.Errorf("update %s has no message", u.State)
		}
		if u.ExecutorID == nil || u.ExecutorID.Value != fa.execID {
			t.Errorf("update %s: executor_id %v", u.State, u.ExecutorID)
		}
		if u.Timestamp == nil {
			t.Errorf("update %s has no timestamp", u.State)
		}
	}
}

func states(ups []mesos.TaskStatus) []string {
	var out []string
	for _, u := range ups {
		s := strings.TrimPrefix(u.State.String(), "TASK_")
		if u.Healthy != nil && *u.State == mesos.TASK_RUNNING {
			if *u.Healthy {
				s += "(healthy)"
			} else {
				s += "(unhealthy)"
			}
		}
		out = append(out, s)
	}
	return out
}

func freePortsOn(t *testing.T, ip string, n int) []int {
	t.Helper()
	ports, err := freeport.Take([]string{ip}, n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// TestExecutorRunsConsulServer is the happy path with a real Consul
// server: STARTING → RUNNING → RUNNING(healthy) → KILLING → KILLED, every
// update well-formed, and the executor exits once KILLED is acknowledged.
func TestExecutorRunsConsulServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Consul server")
	}
	const ip = "127.3.0.21"
	fa := newFakeAgent(t, ip)
	p := freePortsOn(t, ip, 3)
	ports := taskspec.Ports{Server: p[0], SerfLAN: p[1], SerfWAN: -1, HTTP: p[2], HTTPS: -1, GRPC: -1, DNS: -1}
	sandbox := t.TempDir()
	res := runExecutor(t, context.Background(), testConfig(fa, ip, sandbox), startConsul)

	fa.waitFor(30*time.Second, "SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) == 1 })
	launched := time.Now()
	fa.send(launchEvent("consul-server-0__1", testSpec(t, 1, ports)))
	fa.waitState(30*time.Second, mesos.TASK_STARTING, nil)
	running := fa.waitState(60*time.Second, mesos.TASK_RUNNING, nil)
	toRunning := time.Since(launched)
	// RUNNING means the HTTP API answers.
	resp, err := http.Get("http://" + net.JoinHostPort(ip, strconv.Itoa(ports.HTTP)) + "/v1/agent/self")
	if err != nil {
		t.Fatalf("RUNNING reported but Consul's HTTP API does not answer: %v", err)
	}
	resp.Body.Close()
	if running.Labels == nil || len(running.Labels.Labels) == 0 || running.Labels.Labels[0].GetValue() == "" {
		t.Errorf("RUNNING carries no consul_node_id label: %v", running.Labels)
	}
	fa.waitState(60*time.Second, mesos.TASK_RUNNING, boolp(true))
	toHealthy := time.Since(launched)
	t.Logf("LAUNCH → RUNNING %v, → healthy (leader elected) %v", toRunning.Round(time.Millisecond), toHealthy.Round(time.Millisecond))
	if _, err := os.Stat(filepath.Join(sandbox, "consul-data", "node-id")); err != nil {
		t.Errorf("the data dir is not sandbox/data_dir: %v", err)
	}

	fa.send(executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: mesos.TaskID{Value: "consul-server-0__1"}}})
	if err := waitExit(t, res, 60*time.Second); err != nil {
		t.Fatalf("executor exit: %v", err)
	}
	_, ups, bad, _ := fa.snapshot()
	if len(bad) > 0 {
		t.Errorf("the agent refused calls: %v", bad)
	}
	checkUpdates(t, fa, ups)
	got := strings.Join(states(ups), " ")
	want := []string{"STARTING RUNNING(unhealthy) RUNNING(healthy) KILLING KILLED", "STARTING RUNNING(healthy) KILLING KILLED"}
	if got != want[0] && got != want[1] {
		t.Errorf("updates %q, want one of %q", got, want)
	}
	last := ups[len(ups)-1]
	// A single server leads: it stops without a drain (no other server
	// to send its clients to).
	if !strings.Contains(last.GetMessage(), "without leaving") || !strings.Contains(last.GetMessage(), "not drained (it is the raft leader)") {
		t.Errorf("KILLED message %q does not say the single server (the leader) stopped undrained without leaving", last.GetMessage())
	}
	// The Consul agent is gone.
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, strconv.Itoa(ports.HTTP)), time.Second); err == nil {
		c.Close()
		t.Errorf("Consul's HTTP port still accepts connections after TASK_KILLED")
	}
}

// TestExecutorResendsUnacknowledgedUpdates: updates the agent has not
// acknowledged go out again in the next SUBSCRIBE, with the task, after
// the agent comes back; health changes while it was away are not lost.
func TestExecutorResendsUnacknowledgedUpdates(t *testing.T) {
	fa := newFakeAgent(t, "127.3.0.22")
	fa.setAutoAck(false)
	fc := newFakeConsul()
	res := runExecutor(t, context.Background(), testConfig(fa, "127.3.0.22", t.TempDir()), fakeStart(fc))

	fa.waitFor(10*time.Second, "SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) == 1 })
	fa.send(launchEvent("t1", testClientSpec(t, anyPorts())))
	fa.waitState(10*time.Second, mesos.TASK_STARTING, nil)
	close(fc.ready)
	fa.waitState(10*time.Second, mesos.TASK_RUNNING, boolp(false))
	_, before, _, _ := fa.snapshot()

	// The agent restarts; meanwhile Consul becomes healthy.
	fa.setDown(true)
	fc.setHealthy(true)
	time.Sleep(2 * time.Second)
	fa.setAutoAck(true)
	fa.setDown(false)
	fa.waitFor(20*time.Second, "re-SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) >= 2 })
	subs, _, _, _ := fa.snapshot()
	re := subs[len(subs)-1]
	if len(re.UnacknowledgedTasks) != 1 || re.UnacknowledgedTasks[0].TaskID.Value != "t1" {
		t.Errorf("re-SUBSCRIBE lists tasks %v, want t1 (no update of it was acknowledged)", re.UnacknowledgedTasks)
	}
	var listed []string
	for _, u := range re.UnacknowledgedUpdates {
		listed = append(listed, uuidString(u.Status.UUID))
	}
	for _, u := range before {
		if !contains(listed, uuidString(u.UUID)) {
			t.Errorf("unacknowledged %s update %s missing from the re-SUBSCRIBE", u.State, uuidString(u.UUID))
		}
	}
	healthyListed := false
	for _, u := range re.UnacknowledgedUpdates {
		if *u.Status.State == mesos.TASK_RUNNING && u.Status.Healthy != nil && *u.Status.Healthy {
			healthyListed = true
		}
	}
	if !healthyListed {
		// It may also have been posted right after the SUBSCRIBE.
		fa.waitState(10*time.Second, mesos.TASK_RUNNING, boolp(true))
	}
	if s := re.UnacknowledgedUpdates; len(s) >= 2 && *s[0].Status.State != mesos.TASK_STARTING {
		t.Errorf("re-SUBSCRIBE lists updates out of order: first is %s", s[0].Status.State)
	}

	// Once acknowledged, the next SUBSCRIBE lists nothing.
	fa.dropStream()
	fa.waitFor(20*time.Second, "third SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) >= 3 })
	subs, _, _, _ = fa.snapshot()
	if last := subs[len(subs)-1]; len(last.UnacknowledgedTasks) != 0 || len(last.UnacknowledgedUpdates) != 0 {
		t.Errorf("after the acknowledgements the SUBSCRIBE still lists %d tasks, %d updates",
			len(last.UnacknowledgedTasks), len(last.UnacknowledgedUpdates))
	}

	fa.send(executor.Event{Type: executor.Event_SHUTDOWN})
	if err := waitExit(t, res, 10*time.Second); err != nil {
		t.Fatalf("exit after SHUTDOWN: %v", err)
	}
	if !fc.hasLeft() {
		t.Errorf("SHUTDOWN did not make Consul leave gracefully")
	}
	_, ups, bad, _ := fa.snapshot()
	if len(bad) > 0 {
		t.Errorf("the agent refused calls: %v", bad)
	}
	if last := ups[len(ups)-1]; *last.State != mesos.TASK_KILLED {
		t.Errorf("last update %s, want TASK_KILLED", last.State)
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// TestExecutorBadTaskSpec: a TaskInfo.data that is not a task spec fails
// the task with the decode error, and the executor exits.
func TestExecutorBadTaskSpec(t *testing.T) {
	fa := newFakeAgent(t, "127.3.0.23")
	fc := newFakeConsul()
	res := runExecutor(t, context.Background(), testConfig(fa, "127.3.0.23", t.TempDir()), fakeStart(fc))
	fa.waitFor(10*time.Second, "SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) == 1 })
	fa.send(launchEvent("t1", []byte(`{"version":1,"role":"leader"}`)))
	if err := waitExit(t, res, 20*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	_, ups, _, _ := fa.snapshot()
	checkUpdates(t, fa, ups)
	if len(ups) != 1 || *ups[0].State != mesos.TASK_FAILED {
		t.Fatalf("updates %v, want one TASK_FAILED", states(ups))
	}
	if !strings.Contains(ups[0].GetMessage(), `role "leader"`) || ups[0].GetReason() != mesos.REASON_TASK_INVALID {
		t.Errorf("TASK_FAILED message %q reason %s: want the decode error and REASON_TASK_INVALID", ups[0].GetMessage(), ups[0].GetReason())
	}
}

// TestExecutorRefusesSecondTaskAndTaskGroups: one Consul agent per
// executor; a LAUNCH_GROUP and a second LAUNCH fail cleanly while the
// first task keeps running.
func TestExecutorRefusesSecondTaskAndTaskGroups(t *testing.T) {
	fa := newFakeAgent(t, "127.3.0.24")
	fc := newFakeConsul()
	close(fc.ready)
	fc.setHealthy(true)
	res := runExecutor(t, context.Background(), testConfig(fa, "127.3.0.24", t.TempDir()), fakeStart(fc))
	fa.waitFor(10*time.Second, "SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) == 1 })
	fa.send(launchEvent("t1", testSpec(t, 1, anyPorts())))
	fa.waitState(10*time.Second, mesos.TASK_RUNNING, boolp(true))
	fa.send(launchEvent("t2", testSpec(t, 1, anyPorts())))
	fa.send(executor.Event{Type: executor.Event_LAUNCH_GROUP, LaunchGroup: &executor.Event_LaunchGroup{
		TaskGroup: mesos.TaskGroupInfo{Tasks: []mesos.TaskInfo{{Name: "g1", TaskID: mesos.TaskID{Value: "g1"}}, {Name: "g2", TaskID: mesos.TaskID{Value: "g2"}}}}}})
	// Unknown-to-this-executor messages and heartbeats are harmless.
	fa.send(executor.Event{Type: executor.Event_MESSAGE, Message: &executor.Event_Message{Data: []byte("hi")}})
	fa.send(executor.Event{Type: executor.Event_HEARTBEAT})
	fa.waitFor(10*time.Second, "three TASK_FAILED", func() bool {
		_, ups, _, _ := fa.snapshot()
		n := 0
		for _, u := range ups {
			if *u.State == mesos.TASK_FAILED {
				n++
			}
		}
		return n == 3
	})
	_, ups, _, _ := fa.snapshot()
	for _, u := range ups {
		if *u.State != mesos.TASK_FAILED {
			continue
		}
		if u.TaskID.Value == "t1" {
			t.Errorf("the running task failed: %q", u.GetMessage())
		}
		if u.TaskID.Value == "g1" && u.GetReason() != mesos.REASON_TASK_GROUP_INVALID {
			t.Errorf("task group refused with reason %s", u.GetReason())
		}
	}
	select {
	case err := <-res:
		t.Fatalf("executor exited while its task runs: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	fa.send(executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: mesos.TaskID{Value: "t1"}}})
	if err := waitExit(t, res, 10*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	_, ups, bad, _ := fa.snapshot()
	if len(bad) > 0 {
		t.Errorf("the agent refused calls: %v", bad)
	}
	checkUpdates(t, fa, ups)
}

// TestExecutorExitsOnDisconnectWithoutCheckpoint: a framework that does
// not checkpoint cannot keep its executor across an agent restart; the
// executor leaves Consul and exits with an error.
func TestExecutorExitsOnDisconnectWithoutCheckpoint(t *testing.T) {
	fa := newFakeAgent(t, "127.3.0.25")
	fc := newFakeConsul()
	close(fc.ready)
	cfg := testConfig(fa, "127.3.0.25", t.TempDir())
	cfg.Checkpoint = false
	res := runExecutor(t, context.Background(), cfg, fakeStart(fc))
	fa.waitFor(10*time.Second, "SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) == 1 })
	fa.send(launchEvent("t1", testClientSpec(t, anyPorts())))
	fa.waitState(10*time.Second, mesos.TASK_RUNNING, nil)
	fa.setDown(true)
	err := waitExit(t, res, 20*time.Second)
	if err == nil || !strings.Contains(err.Error(), "does not checkpoint") {
		t.Fatalf("exit error %v, want one about checkpointing", err)
	}
	if !fc.hasLeft() {
		t.Errorf("Consul did not leave before the executor exited")
	}
}

// TestExecutorGivesUpAfterRecoveryTimeout: a checkpointing executor
// re-subscribes with backoff, but not beyond the recovery timeout.
func TestExecutorGivesUpAfterRecoveryTimeout(t *testing.T) {
	fa := newFakeAgent(t, "127.3.0.26")
	fc := newFakeConsul()
	close(fc.ready)
	cfg := testConfig(fa, "127.3.0.26", t.TempDir())
	cfg.RecoveryTimeout = 2 * time.Second
	res := runExecutor(t, context.Background(), cfg, fakeStart(fc))
	fa.waitFor(10*time.Second, "SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) == 1 })
	fa.send(launchEvent("t1", testClientSpec(t, anyPorts())))
	fa.waitState(10*time.Second, mesos.TASK_RUNNING, nil)
	lost := time.Now()
	fa.setDown(true)
	err := waitExit(t, res, 30*time.Second)
	if err == nil || !strings.Contains(err.Error(), "recovery timeout") {
		t.Fatalf("exit error %v, want the recovery timeout", err)
	}
	if d := time.Since(lost); d < 2*time.Second {
		t.Errorf("gave up after %v, before the 2s recovery timeout", d)
	}
	if !fc.hasLeft() {
		t.Errorf("Consul did not leave before the executor exited")
	}
}

// TestExecutorHeartbeatWatchdog: when the agent stops answering the
// executor's HEARTBEAT calls, the executor drops the stream and
// re-subscribes.
func TestExecutorHeartbeatWatchdog(t *testing.T) {
	fa := newFakeAgent(t, "127.3.0.27")
	fc := newFakeConsul()
	res := runExecutor(t, context.Background(), testConfig(fa, "127.3.0.27", t.TempDir()), fakeStart(fc))
	fa.waitFor(10*time.Second, "SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) == 1 })
	fa.waitFor(10*time.Second, "HEARTBEAT calls", func() bool { _, _, _, hb := fa.snapshot(); return hb >= 2 })
	fa.mu.Lock()
	fa.hbFail = true
	fa.mu.Unlock()
	fa.waitFor(20*time.Second, "re-SUBSCRIBE after failed heartbeats", func() bool { s, _, _, _ := fa.snapshot(); return len(s) >= 2 })
	fa.mu.Lock()
	fa.hbFail = false
	fa.mu.Unlock()
	fa.send(executor.Event{Type: executor.Event_SHUTDOWN})
	if err := waitExit(t, res, 10*time.Second); err != nil {
		t.Fatalf("exit after SHUTDOWN with no task: %v", err)
	}
}

// TestExecutorKilledWhileStarting: a KILL before Consul is ready ends the
// task KILLED, not FAILED, and without TASK_KILLING for a framework that
// does not know that state.
func TestExecutorKilledWhileStarting(t *testing.T) {
	fa := newFakeAgent(t, "127.3.0.28")
	fa.killing = false
	fc := newFakeConsul() // never ready
	res := runExecutor(t, context.Background(), testConfig(fa, "127.3.0.28", t.TempDir()), fakeStart(fc))
	fa.waitFor(10*time.Second, "SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) == 1 })
	fa.send(launchEvent("t1", testSpec(t, 3, anyPorts())))
	fa.waitState(10*time.Second, mesos.TASK_STARTING, nil)
	fa.send(executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: mesos.TaskID{Value: "t1"}}})
	if err := waitExit(t, res, 10*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	_, ups, _, _ := fa.snapshot()
	if got := strings.Join(states(ups), " "); got != "STARTING KILLED" {
		t.Errorf("updates %q, want \"STARTING KILLED\"", got)
	}
	checkUpdates(t, fa, ups)
}

// TestExecutorConsulCannotStart: an agent that cannot start (its port is
// taken) fails the task with the reason.
func TestExecutorConsulCannotStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Consul agent")
	}
	const ip = "127.3.0.29"
	fa := newFakeAgent(t, ip)
	p := freePortsOn(t, ip, 3)
	taken, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p[0])))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ports := taskspec.Ports{Server: p[0], SerfLAN: p[1], SerfWAN: -1, HTTP: p[2], HTTPS: -1, GRPC: -1, DNS: -1}
	res := runExecutor(t, context.Background(), testConfig(fa, ip, t.TempDir()), startConsul)
	fa.waitFor(30*time.Second, "SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) == 1 })
	fa.send(launchEvent("t1", testSpec(t, 1, ports)))
	if err := waitExit(t, res, 60*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	_, ups, _, _ := fa.snapshot()
	last := ups[len(ups)-1]
	if *last.State != mesos.TASK_FAILED || !strings.Contains(last.GetMessage(), "address already in use") {
		t.Errorf("last update %s %q, want TASK_FAILED saying the address is in use", last.State, last.GetMessage())
	}
}

// TestExecutorStopsOnSignal: the command's context ending (SIGTERM) is a
// SHUTDOWN: graceful leave, TASK_KILLED, exit.
func TestExecutorStopsOnSignal(t *testing.T) {
	fa := newFakeAgent(t, "127.3.0.30")
	fc := newFakeConsul()
	close(fc.ready)
	ctx, cancel := context.WithCancel(context.Background())
	res := runExecutor(t, ctx, testConfig(fa, "127.3.0.30", t.TempDir()), fakeStart(fc))
	fa.waitFor(10*time.Second, "SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) == 1 })
	fa.send(launchEvent("t1", testClientSpec(t, anyPorts())))
	fa.waitState(10*time.Second, mesos.TASK_RUNNING, nil)
	cancel()
	if err := waitExit(t, res, 10*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	fa.waitState(time.Second, mesos.TASK_KILLED, nil)
	if !fc.hasLeft() {
		t.Errorf("Consul did not leave")
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{
		"MESOS_FRAMEWORK_ID": "fw", "MESOS_EXECUTOR_ID": "ex", "MESOS_DIRECTORY": "/sb",
		"MESOS_SANDBOX": "/sb", "MESOS_AGENT_ENDPOINT": "127.3.0.31:5051",
		"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5secs", "MESOS_CHECKPOINT": "1",
		"MESOS_RECOVERY_TIMEOUT": "15mins", "MESOS_SUBSCRIPTION_BACKOFF_MAX": "2secs", "LIBPROCESS_IP": "",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.BindIP != "127.3.0.31" || !c.Checkpoint || c.RecoveryTimeout != 15*time.Minute ||
		c.SubscriptionBackoffMax != 2*time.Second || c.ShutdownGracePeriod != 5*time.Second || c.Sandbox != "/sb" {
		t.Errorf("config %+v", c)
	}
	t.Setenv("LIBPROCESS_IP", "127.3.0.32")
	if c, _ := FromEnv(); c.BindIP != "127.3.0.32" {
		t.Errorf("LIBPROCESS_IP not preferred: %s", c.BindIP)
	}
	t.Setenv("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5s")
	if _, err := FromEnv(); err == nil {
		t.Errorf("Go duration syntax accepted; Mesos gives stout syntax")
	}
}

func testSpecPorts(t *testing.T, p []int) []byte {
	t.Helper()
	return testSpec(t, 1, taskspec.Ports{Server: p[0], SerfLAN: p[1], SerfWAN: -1, HTTP: p[2], HTTPS: -1, GRPC: -1, DNS: -1})
}

// TestExecutorDeliversTerminalUpdateAcrossAgentRestart: a KILLED update
// the agent had not acknowledged when it went away is delivered by the
// next SUBSCRIBE, even if the agent stays away longer than the usual
// acknowledgement wait; only then does the executor exit.
func TestExecutorDeliversTerminalUpdateAcrossAgentRestart(t *testing.T) {
	fa := newFakeAgent(t, "127.3.0.33")
	fc := newFakeConsul()
	close(fc.ready)
	cfg := testConfig(fa, "127.3.0.33", t.TempDir())
	cfg.AckWait = 300 * time.Millisecond
	res := runExecutor(t, context.Background(), cfg, fakeStart(fc))
	fa.waitFor(10*time.Second, "SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) == 1 })
	fa.send(launchEvent("t1", testSpec(t, 1, anyPorts())))
	fa.waitState(10*time.Second, mesos.TASK_RUNNING, nil)
	fa.setAutoAck(false)
	fa.send(executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: mesos.TaskID{Value: "t1"}}})
	killed := fa.waitState(10*time.Second, mesos.TASK_KILLED, nil)
	fa.setDown(true)
	select {
	case err := <-res:
		t.Fatalf("executor exited (%v) with its KILLED update unacknowledged while the agent restarts", err)
	case <-time.After(1500 * time.Millisecond):
	}
	fa.setAutoAck(true)
	fa.setDown(false)
	if err := waitExit(t, res, 20*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	subs, _, _, _ := fa.snapshot()
	last := subs[len(subs)-1]
	found := false
	for _, u := range last.UnacknowledgedUpdates {
		if string(u.Status.UUID) == string(killed.UUID) {
			found = true
		}
	}
	if !found {
		t.Errorf("the re-SUBSCRIBE did not list the unacknowledged KILLED update")
	}
}

// TestExecutorJoinMessage: the scheduler's join MESSAGE reaches the
// Consul agent's join targets; anything else is ignored, and the task
// runs on.
func TestExecutorJoinMessage(t *testing.T) {
	fa := newFakeAgent(t, "127.3.0.34")
	fc := newFakeConsul()
	res := runExecutor(t, context.Background(), testConfig(fa, "127.3.0.34", t.TempDir()), fakeStart(fc))
	fa.waitFor(10*time.Second, "SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) == 1 })
	fa.send(launchEvent("t1", testSpec(t, 3, anyPorts())))
	fa.waitState(10*time.Second, mesos.TASK_STARTING, nil)
	msg, err := taskspec.EncodeJoinUpdate([]string{"127.3.0.35:8301", "127.3.0.36:8301"})
	if err != nil {
		t.Fatal(err)
	}
	fa.send(executor.Event{Type: executor.Event_MESSAGE, Message: &executor.Event_Message{Data: []byte("not a message")}})
	fa.send(executor.Event{Type: executor.Event_MESSAGE, Message: &executor.Event_Message{Data: msg}})
	fa.waitFor(10*time.Second, "join addresses handed to Consul", func() bool { return len(fc.joined()) == 2 })
	if got := fc.joined(); got[0] != "127.3.0.35:8301" || got[1] != "127.3.0.36:8301" {
		t.Errorf("join addresses %v", got)
	}
	close(fc.ready)
	fa.waitState(10*time.Second, mesos.TASK_RUNNING, nil)
	fa.send(executor.Event{Type: executor.Event_SHUTDOWN})
	if err := waitExit(t, res, 10*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// TestExecutorGivesUpWhenAgentNeverAnswers: without a first subscription
// within the registration window, the executor exits with an error.
func TestExecutorGivesUpWhenAgentNeverAnswers(t *testing.T) {
	fa := newFakeAgent(t, "127.3.0.37")
	fa.setDown(true)
	cfg := testConfig(fa, "127.3.0.37", t.TempDir())
	cfg.InitialSubscribeTimeout = time.Second
	res := runExecutor(t, context.Background(), cfg, fakeStart(newFakeConsul()))
	err := waitExit(t, res, 20*time.Second)
	if err == nil || !strings.Contains(err.Error(), "could not subscribe") {
		t.Fatalf("exit error %v, want could not subscribe", err)
	}
}

// TestExecutorServerStopsWithoutLeaving: a KILL or a SHUTDOWN stops a
// server without a graceful leave (it keeps its raft membership for the
// relaunch in place); a client leaves (TestExecutorStopsOnSignal).
func TestExecutorServerStopsWithoutLeaving(t *testing.T) {
	for _, ev := range []executor.Event{
		{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: mesos.TaskID{Value: "t1"}}},
		{Type: executor.Event_SHUTDOWN},
	} {
		t.Run(ev.Type.String(), func(t *testing.T) {
			ip := "127.3.0.41"
			if ev.Type == executor.Event_SHUTDOWN {
				ip = "127.3.0.42"
			}
			fa := newFakeAgent(t, ip)
			fc := newFakeConsul()
			close(fc.ready)
			res := runExecutor(t, context.Background(), testConfig(fa, ip, t.TempDir()), fakeStart(fc))
			fa.waitFor(10*time.Second, "SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) == 1 })
			fa.send(launchEvent("t1", testSpec(t, 3, anyPorts())))
			fa.waitState(10*time.Second, mesos.TASK_RUNNING, nil)
			fa.send(ev)
			if err := waitExit(t, res, 10*time.Second); err != nil {
				t.Fatalf("exit: %v", err)
			}
			fa.waitState(time.Second, mesos.TASK_KILLED, nil)
			if fc.hasLeft() {
				t.Errorf("the server left the cluster on %s", ev.Type)
			}
			select {
			case <-fc.Done():
			default:
				t.Errorf("the server's agent was not stopped")
			}
			_, ups, _, _ := fa.snapshot()
			if last := ups[len(ups)-1]; !strings.Contains(last.GetMessage(), "without leaving") ||
				!strings.Contains(last.GetMessage(), "client requests drained to the other servers") {
				t.Errorf("KILLED message %q does not say it drained and stopped without leaving", last.GetMessage())
			}
			if n := fc.drains(); n != 1 {
				t.Errorf("the server was drained %d times before its stop, want 1", n)
			}
		})
	}
}

// TestExecutorLeaderDoesNotDrain: a server that leads when it is killed
// (a single server, or one the scheduler's handover missed) stops at
// once without a drain, which would make its followers hold and then
// fail every write they forward to it.
func TestExecutorLeaderDoesNotDrain(t *testing.T) {
	ip := "127.3.0.43"
	fa := newFakeAgent(t, ip)
	fc := newFakeConsul()
	fc.leads = true
	close(fc.ready)
	res := runExecutor(t, context.Background(), testConfig(fa, ip, t.TempDir()), fakeStart(fc))
	fa.waitFor(10*time.Second, "SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) == 1 })
	fa.send(launchEvent("t1", testSpec(t, 3, anyPorts())))
	fa.waitState(10*time.Second, mesos.TASK_RUNNING, nil)
	fa.send(executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: mesos.TaskID{Value: "t1"}}})
	if err := waitExit(t, res, 10*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	fa.waitState(time.Second, mesos.TASK_KILLED, nil)
	if n := fc.drains(); n != 0 {
		t.Errorf("the leader was drained %d times", n)
	}
	_, ups, _, _ := fa.snapshot()
	if last := ups[len(ups)-1]; !strings.Contains(last.GetMessage(), "not drained (it is the raft leader)") {
		t.Errorf("KILLED message %q does not say the leader was not drained", last.GetMessage())
	}
}

// TestExecutorHoldsForHandOver: the scheduler's hand-over MESSAGE makes
// the server hold its requests for the bound it names, and the executor
// answers with a MESSAGE naming the request and the task and saying
// whether the server leads.
func TestExecutorHoldsForHandOver(t *testing.T) {
	fa := newFakeAgent(t, "127.3.0.47")
	fc := newFakeConsul()
	fc.leads = true
	close(fc.ready)
	runExecutor(t, context.Background(), testConfig(fa, "127.3.0.47", t.TempDir()), fakeStart(fc))
	fa.waitFor(10*time.Second, "SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) == 1 })
	fa.send(launchEvent("t1", testSpec(t, 3, anyPorts())))
	fa.waitState(10*time.Second, mesos.TASK_RUNNING, nil)
	msg, err := taskspec.EncodeHandOver(99, "consul-server-1", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fa.send(executor.Event{Type: executor.Event_MESSAGE, Message: &executor.Event_Message{Data: msg}})
	var got [][]byte
	fa.waitFor(10*time.Second, "the hand-over answer", func() bool {
		fa.mu.Lock()
		defer fa.mu.Unlock()
		got = append([][]byte(nil), fa.messages...)
		return len(got) > 0
	})
	m, err := taskspec.DecodeHandOverReady(got[0])
	if err != nil {
		t.Fatalf("answer %q: %v", got[0], err)
	}
	if m.Seq != 99 || m.TaskID != "t1" || !m.Leads {
		t.Errorf("answer %+v, want seq 99, task t1, leads", m)
	}
	fc.mu.Lock()
	holds := fc.holds
	fc.mu.Unlock()
	if len(holds) != 1 || holds[0] != 3*time.Second {
		t.Errorf("holds %v, want one of 3s", holds)
	}
}

// TestExecutorServerLeavesOnLeaveMessage: the scheduler's leave MESSAGE
// (a server going away for good) makes a server leave gracefully, which a
// KILL does not, and end its task with TASK_KILLED labelled with the
// outcome: consul_left=true, or false with the error when the leave did
// not complete (the scheduler then removes the peer itself). It drains
// before it leaves.
func TestExecutorServerLeavesOnLeaveMessage(t *testing.T) {
	for _, tc := range []struct {
		ip       string
		leaveErr error
		want     string
	}{
		{"127.3.0.43", nil, "true"},
		{"127.3.0.44", errors.New("consul leave: no raft removal seen"), "false"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			fa := newFakeAgent(t, tc.ip)
			fc := newFakeConsul()
			fc.leaveErr = tc.leaveErr
			close(fc.ready)
			res := runExecutor(t, context.Background(), testConfig(fa, tc.ip, t.TempDir()), fakeStart(fc))
			fa.waitFor(10*time.Second, "SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) == 1 })
			fa.send(launchEvent("t1", testSpec(t, 3, anyPorts())))
			fa.waitState(10*time.Second, mesos.TASK_RUNNING, nil)
			msg, err := taskspec.EncodeLeave("scale-down", 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			fa.send(executor.Event{Type: executor.Event_MESSAGE, Message: &executor.Event_Message{Data: msg}})
			if err := waitExit(t, res, 10*time.Second); err != nil {
				t.Fatalf("exit: %v", err)
			}
			killed := fa.waitState(time.Second, mesos.TASK_KILLED, nil)
			if got := fc.hasLeft(); got != (tc.leaveErr == nil) {
				t.Errorf("left %v, want %v", got, tc.leaveErr == nil)
			}
			label := ""
			for _, l := range killed.GetLabels().GetLabels() {
				if l.Key == taskspec.LabelLeft {
					label = l.GetValue()
				}
			}
			if label != tc.want {
				t.Errorf("label %s=%q, want %q (labels %v)", taskspec.LabelLeft, label, tc.want, killed.GetLabels())
			}
			if tc.leaveErr != nil && !strings.Contains(killed.GetMessage(), "did not complete") {
				t.Errorf("KILLED message %q does not say the leave did not complete", killed.GetMessage())
			}
			// A server that goes away for good drains first: once left
			// it knows no leader, and a write sent to it would wait.
			if n := fc.drains(); n != 1 {
				t.Errorf("drained %d times before the leave, want 1", n)
			}
			if !strings.Contains(killed.GetMessage(), "client requests sent to the other servers from the leave on") {
				t.Errorf("KILLED message %q does not say the server drained before its leave", killed.GetMessage())
			}
		})
	}
}

// TestExecutorEndsTheTaskWhenConsulShutdownHangs: a Consul agent whose
// shutdown never returns (hashicorp/raft v1.5.0 after a leadership
// transfer) does not keep the task alive: after the leave's bound and
// AgentStopWait the task is reported TASK_KILLED, not left (the scheduler
// then checks the raft peer and force-leaves the node), and the executor
// exits; the same for a KILL of a server.
func TestExecutorEndsTheTaskWhenConsulShutdownHangs(t *testing.T) {
	for _, tc := range []struct{ ip, via string }{{"127.3.0.45", "leave"}, {"127.3.0.46", "kill"}} {
		t.Run(tc.via, func(t *testing.T) {
			fa := newFakeAgent(t, tc.ip)
			fc := newFakeConsul()
			fc.hang = make(chan struct{})
			t.Cleanup(func() { close(fc.hang) })
			close(fc.ready)
			cfg := testConfig(fa, tc.ip, t.TempDir())
			cfg.AgentStopWait = 500 * time.Millisecond
			res := runExecutor(t, context.Background(), cfg, fakeStart(fc))
			fa.waitFor(10*time.Second, "SUBSCRIBE", func() bool { s, _, _, _ := fa.snapshot(); return len(s) == 1 })
			fa.send(launchEvent("t1", testSpec(t, 3, anyPorts())))
			fa.waitState(10*time.Second, mesos.TASK_RUNNING, nil)
			if tc.via == "leave" {
				msg, err := taskspec.EncodeLeave("scale-down", time.Second)
				if err != nil {
					t.Fatal(err)
				}
				fa.send(executor.Event{Type: executor.Event_MESSAGE, Message: &executor.Event_Message{Data: msg}})
			} else {
				fa.send(executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: mesos.TaskID{Value: "t1"}}})
			}
			if err := waitExit(t, res, 15*time.Second); err != nil {
				t.Fatalf("exit: %v", err)
			}
			killed := fa.waitState(time.Second, mesos.TASK_KILLED, nil)
			if !strings.Contains(killed.GetMessage(), "the executor exits, which ends it") {
				t.Errorf("KILLED message %q does not say the shutdown hung", killed.GetMessage())
			}
			for _, l := range killed.GetLabels().GetLabels() {
				if l.Key == taskspec.LabelLeft && l.GetValue() != "false" {
					t.Errorf("a leave whose shutdown hung is labelled %s=%s", l.Key, l.GetValue())
				}
			}
		})
	}
}
