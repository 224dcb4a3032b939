package agent

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func inProcess(edit func(*Config)) func(*Config) {
	return func(c *Config) {
		c.InProcess = true
		if edit != nil {
			edit(c)
		}
	}
}

func TestInProcessLaunchKillShutdown(t *testing.T) {
	a, m := newTestAgent(t, inProcess(nil))
	if c, err := net.DialTimeout("tcp", a.Endpoint(), time.Second); err == nil {
		c.Close()
		t.Fatal("an in-process agent must not listen")
	}
	launch(a, executorInfo("e-ip", nil), taskInfo(a, "t1", ""), taskInfo(a, "t2", ""))
	r := waitState(t, m, "t1", mesos.TASK_RUNNING).status
	waitState(t, m, "t2", mesos.TASK_RUNNING)
	if got := m.statesFor("t1"); !equalStates(got, mesos.TASK_STARTING, mesos.TASK_RUNNING) {
		t.Errorf("t1 states %v", got)
	}
	if r.GetSource() != mesos.SOURCE_EXECUTOR || len(r.UUID) != 16 || r.GetExecutorID().GetValue() != "e-ip" ||
		r.GetContainerStatus().NetworkInfos[0].IPAddresses[0].GetIPAddress() != a.cfg.IP {
		t.Errorf("RUNNING = %+v", r)
	}
	st, ok := executorState(a, "e-ip")
	if !ok || st.PID != 0 || st.Tasks["t1"] != mesos.TASK_RUNNING {
		t.Errorf("executor state %+v", st)
	}
	a.Kill(*testFramework.ID, mesos.TaskID{Value: "t1"}, nil)
	waitState(t, m, "t1", mesos.TASK_KILLED)
	a.ShutdownExecutor(*testFramework.ID, mesos.ExecutorID{Value: "e-ip"})
	waitState(t, m, "t2", mesos.TASK_KILLED)
	waitFor(t, "termination", func() bool { _, terms := m.snapshot(); return len(terms) == 1 })
	if _, terms := m.snapshot(); terms[0].status != 0 {
		t.Errorf("status %d", terms[0].status)
	}

	launch(a, executorInfo("e-ip2", nil), taskInfo(a, "t3", ""))
	waitState(t, m, "t3", mesos.TASK_RUNNING)
	if err := a.KillExecutorProcess(*testFramework.ID, mesos.ExecutorID{Value: "e-ip2"}); err != nil {
		t.Fatal(err)
	}
	f := waitState(t, m, "t3", mesos.TASK_FAILED).status
	if f.GetReason() != mesos.REASON_EXECUTOR_TERMINATED || f.GetSource() != mesos.SOURCE_AGENT {
		t.Errorf("TASK_FAILED = %+v", f)
	}
	if _, terms := m.snapshot(); len(terms) != 2 || terms[1].status != int32(syscall.SIGKILL) {
		t.Errorf("terminations %+v", terms)
	}
	a.Quiesce()
	waitFor(t, "no executors left", func() bool { return len(a.Executors()) == 0 })
}

// One unacknowledged update per task: the head is resent with the same uuid
// and the current latest state, with growing intervals, and the next update
// goes out only after the ack.
func TestUpdateRetryOrderingAndLatestState(t *testing.T) {
	a, m := newTestAgent(t, inProcess(func(c *Config) {
		c.StatusUpdateRetry = 100 * time.Millisecond
		c.StatusUpdateRetryMax = 400 * time.Millisecond
	}))
	m.autoAck.Store(false)
	launch(a, executorInfo("e-r", nil), taskInfo(a, "t-r", ""))
	waitFor(t, "several resends", func() bool { return len(m.updatesFor("t-r")) >= 6 })
	us := m.updatesFor("t-r")
	for i, u := range us {
		if u.status.GetState() != mesos.TASK_STARTING || !bytes.Equal(u.status.UUID, us[0].status.UUID) {
			t.Fatalf("send %d is %s %x; only the STARTING head may be sent", i, u.status.GetState(), u.status.UUID)
		}
		// The first send left before RUNNING arrived; every resend knows it.
		if i > 0 && u.latest != mesos.TASK_RUNNING {
			t.Errorf("send %d carries latest %s, want TASK_RUNNING", i, u.latest)
		}
	}
	// Timers never fire early: once the interval has doubled twice (to the
	// 400 ms cap), a gap is well above the 100 ms base even with jitter.
	last := us[len(us)-1].at.Sub(us[len(us)-2].at)
	if last < 200*time.Millisecond {
		t.Errorf("retry interval did not grow: last gap %v with a 100ms base", last)
	}
	if last > 2*time.Second {
		t.Errorf("retry interval %v exceeds the cap by far", last)
	}

	// A wrong uuid is ignored; the right one releases RUNNING at once.
	a.Acknowledge(*testFramework.ID, mesos.TaskID{Value: "t-r"}, newUUID())
	time.Sleep(150 * time.Millisecond)
	if got := m.statesFor("t-r"); len(got) != 1 {
		t.Fatalf("a mismatched ack released %v", got)
	}
	a.Acknowledge(*testFramework.ID, mesos.TaskID{Value: "t-r"}, us[0].status.UUID)
	r := waitState(t, m, "t-r", mesos.TASK_RUNNING)
	if r.latest != mesos.TASK_RUNNING || bytes.Equal(r.status.UUID, us[0].status.UUID) {
		t.Errorf("RUNNING update = %+v", r)
	}
	a.Acknowledge(*testFramework.ID, mesos.TaskID{Value: "t-r"}, r.status.UUID)
	n := len(m.updatesFor("t-r"))
	time.Sleep(500 * time.Millisecond)
	if len(m.updatesFor("t-r")) != n {
		t.Error("updates kept coming after everything was acknowledged")
	}
}

// While partitioned nothing reaches the master; Reregistered() resends the
// heads at once and delivers held executor terminations.
func TestPartitionThenReregistered(t *testing.T) {
	a, m := newTestAgent(t, inProcess(func(c *Config) { c.StatusUpdateRetry = time.Minute }))
	a.SetPartitioned(true)
	launch(a, executorInfo("e-p", nil), taskInfo(a, "t-p", ""))
	launch(a, executorInfo("e-p2", nil), taskInfo(a, "t-p2", ""))
	if err := a.KillExecutorProcess(*testFramework.ID, mesos.ExecutorID{Value: "e-p2"}); err != nil {
		t.Fatal(err)
	}
	a.Message(*testFramework.ID, mesos.ExecutorID{Value: "e-p"}, []byte("x"))
	time.Sleep(300 * time.Millisecond)
	a.Quiesce()
	if us, terms := m.snapshot(); len(us) != 0 || len(terms) != 0 {
		t.Fatalf("master heard %d updates, %d terminations during the partition", len(us), len(terms))
	}
	a.Reregistered() // still partitioned: nothing
	a.Quiesce()
	if us, _ := m.snapshot(); len(us) != 0 {
		t.Fatal("Reregistered sent while partitioned")
	}
	a.SetPartitioned(false)
	a.Reregistered()
	waitState(t, m, "t-p", mesos.TASK_RUNNING) // STARTING acked, RUNNING follows
	waitState(t, m, "t-p2", mesos.TASK_FAILED)
	_, terms := m.snapshot()
	if len(terms) != 1 || terms[0].ex.Value != "e-p2" {
		t.Errorf("held termination not delivered: %+v", terms)
	}
}

func TestShutdownFrameworkSilencesUpdates(t *testing.T) {
	a, m := newTestAgent(t, inProcess(func(c *Config) { c.StatusUpdateRetry = 50 * time.Millisecond }))
	m.autoAck.Store(false)
	launch(a, executorInfo("e-sf", nil), taskInfo(a, "t-sf", ""))
	waitFor(t, "resends", func() bool { return len(m.updatesFor("t-sf")) >= 2 })
	a.ShutdownFramework(*testFramework.ID)
	a.Quiesce()
	n := len(m.updatesFor("t-sf"))
	time.Sleep(400 * time.Millisecond)
	if got := len(m.updatesFor("t-sf")); got != n {
		t.Errorf("%d updates after ShutdownFramework", got-n)
	}
	if len(a.Executors()) != 0 {
		t.Error("executors survived ShutdownFramework")
	}
}

// Scale: 10,000 in-process agents, one task each, in one process. Idle
// agents cost no goroutine and a few KB of heap.
func TestTenThousandInProcessAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test")
	}
	const n = 10000
	var running atomic.Int64
	var mu sync.Mutex
	agents := make(map[string]*Agent, n)
	m := &scaleMaster{onUpdate: func(agentID mesos.AgentID, fw mesos.FrameworkID, st mesos.TaskStatus) {
		mu.Lock()
		a := agents[agentID.Value]
		mu.Unlock()
		if st.GetState() == mesos.TASK_RUNNING {
			running.Add(1)
		}
		go a.Acknowledge(fw, st.TaskID, st.UUID)
	}}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	start := time.Now()
	list := make([]*Agent, 0, n)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("scale-S%d", i)
		a, err := New(Config{ID: mesos.AgentID{Value: id}, IP: "127.1.200.250", InProcess: true,
			Resources: []mesos.Resource{scalar("cpus", 4), scalar("mem", 8192)}}, m)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		agents[id] = a
		mu.Unlock()
		list = append(list, a)
	}
	for i, a := range list {
		tid := fmt.Sprintf("task-%d", i)
		launch(a, executorInfo("consul-exec", nil), taskInfo(a, tid, ""))
	}
	waitFor(t, "every task RUNNING", func() bool { return running.Load() == n })
	for _, a := range list {
		a.Quiesce()
	}
	elapsed := time.Since(start)
	waitFor(t, "ack goroutines to finish", func() bool { return runtime.NumGoroutine() <= g0+10 })
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perAgent := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("%d agents, one task each: %v to RUNNING, %d bytes of heap per agent, %d goroutines (baseline %d)",
		n, elapsed, perAgent, runtime.NumGoroutine(), g0)
	if perAgent > 16<<10 {
		t.Errorf("%d bytes per idle agent with one task; want under 16 KiB", perAgent)
	}
	for _, a := range list {
		a.Stop()
	}
}

type scaleMaster struct {
	onUpdate func(mesos.AgentID, mesos.FrameworkID, mesos.TaskStatus)
}

func (s *scaleMaster) StatusUpdate(agentID mesos.AgentID, fw mesos.FrameworkID, st mesos.TaskStatus, latest mesos.TaskState) {
	s.onUpdate(agentID, fw, st)
}
func (s *scaleMaster) ExecutorTerminated(mesos.AgentID, mesos.FrameworkID, mesos.ExecutorID, int32) {}
func (s *scaleMaster) ExecutorMessage(mesos.AgentID, mesos.FrameworkID, mesos.ExecutorID, []byte)   {}

// BenchmarkInProcessTaskLifecycle: launch, STARTING/RUNNING acked, kill,
// KILLED acked, on one in-process agent; the per-task cost of scale mode.
func BenchmarkInProcessTaskLifecycle(b *testing.B) {
	var a *Agent
	m := &scaleMaster{onUpdate: func(_ mesos.AgentID, fw mesos.FrameworkID, st mesos.TaskStatus) {
		go a.Acknowledge(fw, st.TaskID, st.UUID)
	}}
	var err error
	a, err = New(Config{ID: mesos.AgentID{Value: "bench-S0"}, IP: "127.1.200.251", InProcess: true}, m)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Stop()
	ex := executorInfo("bench-exec", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := mesos.TaskID{Value: fmt.Sprintf("t%d", i)}
		ti := mesos.TaskInfo{Name: id.Value, TaskID: id, AgentID: a.cfg.ID}
		a.Launch(Launch{Framework: testFramework, Executor: ex, Tasks: []mesos.TaskInfo{ti}})
		a.Kill(*testFramework.ID, id, nil)
	}
	for {
		a.Quiesce()
		a.mu.Lock()
		n := len(a.streams)
		a.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
}
