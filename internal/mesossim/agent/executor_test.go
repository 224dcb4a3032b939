package agent

import (
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// The environment must be exactly what a Mesos 1.12 agent gives a custom
// executor (04-executor-env.txt), plus CommandInfo.environment, and nothing
// from the test process (which certainly has HOME, GOPATH, ...).
func TestExecutorEnvironmentIsExactlyMesos(t *testing.T) {
	a, m := newTestAgent(t, func(c *Config) { c.ExecutorShutdownGrace = 5 * time.Second })
	ex := executorInfo("e-env", map[string]string{"CONSUL_EXTRA": "x y", "PATH": "/custom/bin:/usr/bin:/bin"})
	launch(a, ex, taskInfo(a, "t-env", ""))
	waitState(t, m, "t-env", mesos.TASK_RUNNING)

	st, ok := executorState(a, "e-env")
	if !ok {
		t.Fatal("executor not listed")
	}
	sandbox := st.Directory
	wantDir := filepath.Join(a.cfg.WorkDir, "slaves", a.cfg.ID.Value, "frameworks", testFramework.ID.Value, "executors", "e-env", "runs")
	if filepath.Dir(sandbox) != wantDir {
		t.Fatalf("sandbox %s not under %s", sandbox, wantDir)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(readFile(t, filepath.Join(sandbox, "env.txt"))), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	want := map[string]string{
		"MESOS_EXECUTOR_ID":                    "e-env",
		"MESOS_FRAMEWORK_ID":                   testFramework.ID.Value,
		"MESOS_CHECKPOINT":                     "1",
		"MESOS_HTTP_COMMAND_EXECUTOR":          "0",
		"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5secs",
		"MESOS_SUBSCRIPTION_BACKOFF_MAX":       "2secs",
		"MESOS_RECOVERY_TIMEOUT":               "15mins",
		"LIBPROCESS_PORT":                      "0",
		"LIBPROCESS_IP":                        a.cfg.IP,
		"MESOS_AGENT_ENDPOINT":                 a.cfg.IP + ":5051",
		"MESOS_SLAVE_ID":                       a.cfg.ID.Value,
		"MESOS_SLAVE_PID":                      "slave(1)@" + a.cfg.IP + ":5051",
		"MESOS_DIRECTORY":                      sandbox,
		"MESOS_SANDBOX":                        sandbox,
		"PWD":                                  sandbox, // exported by dash, as in the recording
		"PATH":                                 "/custom/bin:/usr/bin:/bin",
		"CONSUL_EXTRA":                         "x y",
	}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for _, k := range keys {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected variable %s=%q (the executor must inherit nothing)", k, got[k])
		}
	}
	// The sandbox is drwxr-x--- with stdout/stderr, and runs/latest points to it.
	fi, err := os.Stat(sandbox)
	if err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("sandbox mode = %v, %v; want 0750", fi.Mode().Perm(), err)
	}
	for _, f := range []string{"stdout", "stderr"} {
		if _, err := os.Stat(filepath.Join(sandbox, f)); err != nil {
			t.Errorf("sandbox has no %s: %v", f, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(wantDir, "latest")); err != nil || l != sandbox {
		t.Errorf("runs/latest -> %q (%v), want %q", l, err, sandbox)
	}
}

func TestExecutorEnvironmentWithoutCheckpoint(t *testing.T) {
	a, _ := newTestAgent(t, nil)
	ex := executorInfo("e-nock", nil)
	ex.ShutdownGracePeriod = &mesos.DurationInfo{Nanoseconds: int64(1500 * time.Millisecond)}
	fw := testFramework
	fw.Checkpoint = boolp(false)
	a.Launch(Launch{Framework: fw, Executor: ex, Tasks: []mesos.TaskInfo{taskInfo(a, "t-nock", "")}})
	var sandbox string
	waitFor(t, "env.txt", func() bool {
		st, ok := executorState(a, "e-nock")
		if !ok {
			return false
		}
		sandbox = st.Directory
		_, err := os.Stat(filepath.Join(sandbox, "env.txt"))
		return err == nil
	})
	env := readFile(t, filepath.Join(sandbox, "env.txt"))
	for _, want := range []string{"MESOS_CHECKPOINT=0\n", "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=1500ms\n", "PATH=" + defaultPath + "\n"} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %q:\n%s", want, env)
		}
	}
	for _, absent := range []string{"MESOS_RECOVERY_TIMEOUT", "MESOS_SUBSCRIPTION_BACKOFF_MAX"} {
		if strings.Contains(env, absent) {
			t.Errorf("%s set without checkpointing", absent)
		}
	}
}

// 09-executor-happy-path: STARTING, RUNNING only after STARTING is acked,
// KILL → KILLING/KILLED, a second task on the same executor, SHUTDOWN with a
// silent exit → FAILURE status 0, then TASK_FAILED / EXECUTOR_TERMINATED.
func TestExecutorHappyPath(t *testing.T) {
	for _, codec := range []string{"json", "protobuf"} {
		t.Run(codec, func(t *testing.T) {
			a, m := newTestAgent(t, nil)
			m.autoAck.Store(false)
			ex := executorInfo("e9", map[string]string{"TESTEXEC_CODEC": codec, "TESTEXEC_SILENT_SHUTDOWN": "1"})
			launch(a, ex, taskInfo(a, "t9a", ""))

			starting := waitState(t, m, "t9a", mesos.TASK_STARTING)
			st, _ := executorState(a, "e9")
			waitEventsLog(t, st.Directory, "ACKNOWLEDGED t9a") // the agent acks the executor before the scheduler does
			time.Sleep(300 * time.Millisecond)
			if got := m.statesFor("t9a"); len(got) != 1 {
				t.Fatalf("before the STARTING ack the master got %v, want only TASK_STARTING", got)
			}
			s := starting.status
			if s.GetSource() != mesos.SOURCE_EXECUTOR || s.Reason != nil || len(s.UUID) != 16 ||
				s.GetAgentID().GetValue() != a.cfg.ID.Value || s.GetExecutorID().GetValue() != "e9" {
				t.Errorf("STARTING update = %+v", s)
			}
			cs := s.GetContainerStatus()
			if cs == nil || cs.GetContainerID().GetValue() == "" || cs.GetExecutorPID() == 0 ||
				len(cs.NetworkInfos) != 1 || cs.NetworkInfos[0].IPAddresses[0].GetIPAddress() != a.cfg.IP {
				t.Errorf("container_status = %+v", cs)
			}
			// Resends of the head carry the newer latest state.
			waitFor(t, "a resend with latest_state RUNNING", func() bool {
				us := m.updatesFor("t9a")
				return us[len(us)-1].latest == mesos.TASK_RUNNING && us[len(us)-1].status.GetState() == mesos.TASK_STARTING
			})
			m.autoAck.Store(true)
			a.Acknowledge(*testFramework.ID, mesos.TaskID{Value: "t9a"}, s.UUID)
			waitState(t, m, "t9a", mesos.TASK_RUNNING)

			a.Kill(*testFramework.ID, mesos.TaskID{Value: "t9a"}, nil)
			killed := waitState(t, m, "t9a", mesos.TASK_KILLED)
			if killed.status.GetMessage() != "killed by testexecutor" || killed.status.GetSource() != mesos.SOURCE_EXECUTOR {
				t.Errorf("KILLED = %+v", killed.status)
			}
			if got := m.statesFor("t9a"); !equalStates(got, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_KILLING, mesos.TASK_KILLED) {
				t.Errorf("t9a states = %v", got)
			}
			waitFor(t, "t9a forgotten after its terminal ack", func() bool {
				st, _ := executorState(a, "e9")
				_, still := st.Tasks["t9a"]
				return !still
			})

			launch(a, ex, taskInfo(a, "t9b", ""))
			waitState(t, m, "t9b", mesos.TASK_RUNNING)
			log := waitEventsLog(t, st.Directory, "LAUNCH t9b")
			if n := strings.Count(log, "SUBSCRIBED"); n != 1 {
				t.Errorf("executor subscribed %d times, want 1:\n%s", n, log)
			}

			a.ShutdownExecutor(*testFramework.ID, mesos.ExecutorID{Value: "e9"})
			failed := waitState(t, m, "t9b", mesos.TASK_FAILED)
			_, terms := m.snapshot()
			if len(terms) != 1 || terms[0].status != 0 || terms[0].ex.Value != "e9" {
				t.Fatalf("terminations = %+v, want one with status 0", terms)
			}
			f := failed.status
			if f.GetSource() != mesos.SOURCE_AGENT || f.GetReason() != mesos.REASON_EXECUTOR_TERMINATED ||
				f.GetMessage() != "Executor terminated" || len(f.UUID) != 16 || f.ContainerStatus != nil ||
				f.GetExecutorID().GetValue() != "e9" {
				t.Errorf("TASK_FAILED = %+v", f)
			}
			assertTerminationFirst(t, m, "t9b")
			waitFor(t, "the terminated run to go once its task is acknowledged", func() bool {
				_, ok := executorState(a, "e9")
				return !ok
			})
			if !processGone(st.PID) {
				t.Error("executor process still alive")
			}
		})
	}
}

// assertTerminationFirst: the master hears ExecutorTerminated before the
// task's TASK_FAILED (FAILURE precedes the update, 10-executor-crash).
func assertTerminationFirst(t *testing.T, m *fakeMaster, task string) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.terms) == 0 {
		t.Fatal("no termination")
	}
	for i, u := range m.updates {
		if u.status.TaskID.Value == task && u.status.GetState() == mesos.TASK_FAILED {
			if m.useq[i] < m.terms[0].seq {
				t.Errorf("TASK_FAILED reached the master before ExecutorTerminated")
			}
			return
		}
	}
}

func equalStates(got []mesos.TaskState, want ...mesos.TaskState) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// 10-executor-crash: an executor that dies (here it exits 7 after RUNNING)
// gives FAILURE with the raw wait status, then TASK_FAILED.
func TestExecutorCrash(t *testing.T) {
	a, m := newTestAgent(t, nil)
	launch(a, executorInfo("e10", nil), taskInfo(a, "t10", "crash"))
	waitState(t, m, "t10", mesos.TASK_RUNNING)
	f := waitState(t, m, "t10", mesos.TASK_FAILED).status
	if f.GetReason() != mesos.REASON_EXECUTOR_TERMINATED || f.GetSource() != mesos.SOURCE_AGENT {
		t.Errorf("TASK_FAILED = %+v", f)
	}
	_, terms := m.snapshot()
	if len(terms) != 1 || terms[0].status != 7<<8 {
		t.Fatalf("terminations = %+v, want status %d (exit 7)", terms, 7<<8)
	}
	assertTerminationFirst(t, m, "t10")

	// The same executor ID can be launched again: a new run, a new sandbox.
	launch(a, executorInfo("e10", nil), taskInfo(a, "t10b", ""))
	waitState(t, m, "t10b", mesos.TASK_RUNNING)
	st, _ := executorState(a, "e10")
	execPID, _ := strconv.Atoi(readFile(t, filepath.Join(st.Directory, "pid.txt")))
	if err := a.KillExecutorProcess(*testFramework.ID, mesos.ExecutorID{Value: "e10"}); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "t10b", mesos.TASK_FAILED)
	_, terms = m.snapshot()
	// The executor (child of sh -c) is killed; sh exits 137: raw status 35072.
	if len(terms) != 2 || terms[1].status != 137<<8 {
		t.Fatalf("terminations = %+v, want a second with status 35072", terms)
	}
	waitFor(t, "executor and shell gone", func() bool { return processGone(execPID) && processGone(st.PID) })
	runs, _ := os.ReadDir(filepath.Dir(st.Directory))
	if len(runs) != 3 { // two runs + latest
		t.Errorf("runs dir has %d entries, want 2 runs and latest", len(runs))
	}
}

// 04a: an executor that never subscribes is killed when the registration
// timeout expires: FAILURE status 9, then TASK_FAILED /
// REASON_EXECUTOR_REGISTRATION_TIMEOUT.
func TestExecutorRegistrationTimeout(t *testing.T) {
	a, m := newTestAgent(t, func(c *Config) { c.ExecutorRegisterTimout = time.Second })
	launch(a, executorInfo("e4a", map[string]string{"TESTEXEC_NO_SUBSCRIBE": "1"}), taskInfo(a, "t4a", ""))
	f := waitState(t, m, "t4a", mesos.TASK_FAILED).status
	if f.GetReason() != mesos.REASON_EXECUTOR_REGISTRATION_TIMEOUT || f.GetSource() != mesos.SOURCE_AGENT ||
		f.GetMessage() != "Executor did not register within 1secs" || len(f.UUID) != 16 {
		t.Errorf("TASK_FAILED = %+v", f)
	}
	if got := m.statesFor("t4a"); len(got) != 1 {
		t.Errorf("states = %v, want only TASK_FAILED (no STAGING/STARTING)", got)
	}
	_, terms := m.snapshot()
	if len(terms) != 1 || terms[0].status != int32(syscall.SIGKILL) {
		t.Fatalf("terminations = %+v, want status 9", terms)
	}
	assertTerminationFirst(t, m, "t4a")
}

// SHUTDOWN to an executor that ignores it and SIGTERM: after the grace
// period the agent escalates to SIGKILL of the process group.
func TestShutdownGraceThenKill(t *testing.T) {
	a, m := newTestAgent(t, func(c *Config) { c.ExecutorShutdownGrace = 500 * time.Millisecond })
	launch(a, executorInfo("e-stub", map[string]string{"TESTEXEC_IGNORE_SHUTDOWN": "1"}), taskInfo(a, "t-stub", ""))
	waitState(t, m, "t-stub", mesos.TASK_RUNNING)
	st, _ := executorState(a, "e-stub")
	start := time.Now()
	a.ShutdownExecutor(*testFramework.ID, mesos.ExecutorID{Value: "e-stub"})
	waitEventsLog(t, st.Directory, "SHUTDOWN")
	waitState(t, m, "t-stub", mesos.TASK_FAILED)
	if time.Since(start) < 500*time.Millisecond {
		t.Error("executor destroyed before the grace period ended")
	}
	_, terms := m.snapshot()
	// SIGTERM ends `sh -c` (15); the executor itself ignores it and dies by
	// the SIGKILL that follows.
	if len(terms) != 1 || (terms[0].status != int32(syscall.SIGKILL) && terms[0].status != int32(syscall.SIGTERM)) {
		t.Fatalf("terminations = %+v, want a signal status", terms)
	}
	execPID, _ := strconv.Atoi(readFile(t, filepath.Join(st.Directory, "pid.txt")))
	waitFor(t, "the executor process to be gone", func() bool { return processGone(st.PID) && processGone(execPID) })
}

// A well-behaved executor answers SHUTDOWN with TASK_KILLED for its tasks
// and exits 0.
func TestShutdownGracefulExecutor(t *testing.T) {
	a, m := newTestAgent(t, nil)
	launch(a, executorInfo("e-g", nil), taskInfo(a, "t-g", ""))
	waitState(t, m, "t-g", mesos.TASK_RUNNING)
	a.ShutdownExecutor(*testFramework.ID, mesos.ExecutorID{Value: "e-g"})
	waitState(t, m, "t-g", mesos.TASK_KILLED)
	waitFor(t, "termination", func() bool { _, terms := m.snapshot(); return len(terms) == 1 })
	_, terms := m.snapshot()
	if terms[0].status != 0 {
		t.Errorf("status %d, want 0", terms[0].status)
	}
	a.Quiesce()
	for _, s := range m.statesFor("t-g") {
		if s == mesos.TASK_FAILED {
			t.Error("a task killed by its executor must not also fail")
		}
	}
}

// KILL of a task the executor has not received yet (it never subscribes):
// TASK_KILLED / REASON_TASK_KILLED_DURING_LAUNCH from the agent, and the
// unused executor is shut down.
func TestKillBeforeDelivery(t *testing.T) {
	a, m := newTestAgent(t, func(c *Config) { c.ExecutorShutdownGrace = 300 * time.Millisecond })
	launch(a, executorInfo("e-q", map[string]string{"TESTEXEC_NO_SUBSCRIBE": "1"}), taskInfo(a, "t-q", ""))
	waitFor(t, "process", func() bool { st, ok := executorState(a, "e-q"); return ok && st.PID > 0 })
	a.Kill(*testFramework.ID, mesos.TaskID{Value: "t-q"}, nil)
	k := waitState(t, m, "t-q", mesos.TASK_KILLED).status
	if k.GetReason() != mesos.REASON_TASK_KILLED_DURING_LAUNCH || k.GetSource() != mesos.SOURCE_AGENT {
		t.Errorf("TASK_KILLED = %+v", k)
	}
	waitFor(t, "executor shut down", func() bool { _, terms := m.snapshot(); return len(terms) == 1 })
	a.Quiesce()
	if got := m.statesFor("t-q"); !equalStates(got, mesos.TASK_KILLED) {
		t.Errorf("states = %v", got)
	}
}

// KILL for a task no executor holds: TASK_DROPPED (partition-aware) /
// REASON_EXECUTOR_TERMINATED "Cannot find executor".
func TestKillUnknownTask(t *testing.T) {
	a, m := newTestAgent(t, nil)
	launch(a, executorInfo("e-u", nil), taskInfo(a, "t-u", ""))
	waitState(t, m, "t-u", mesos.TASK_RUNNING)
	a.Kill(*testFramework.ID, mesos.TaskID{Value: "nope"}, nil)
	d := waitState(t, m, "nope", mesos.TASK_DROPPED).status
	if d.GetReason() != mesos.REASON_EXECUTOR_TERMINATED || d.GetMessage() != "Cannot find executor" {
		t.Errorf("update = %+v", d)
	}
}

// KILL with a kill policy reaches the executor with it.
func TestKillPolicyDelivered(t *testing.T) {
	a, m := newTestAgent(t, nil)
	launch(a, executorInfo("e-kp", nil), taskInfo(a, "t-kp", ""))
	waitState(t, m, "t-kp", mesos.TASK_RUNNING)
	st, _ := executorState(a, "e-kp")
	a.Kill(*testFramework.ID, mesos.TaskID{Value: "t-kp"}, &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(3 * time.Second)}})
	waitEventsLog(t, st.Directory, "KILL t-kp grace=3s")
	waitState(t, m, "t-kp", mesos.TASK_KILLED)
}

func TestExecutorMessagesBothWays(t *testing.T) {
	a, m := newTestAgent(t, nil)
	launch(a, executorInfo("e-m", nil), taskInfo(a, "t-m", ""))
	waitState(t, m, "t-m", mesos.TASK_RUNNING)
	a.Message(*testFramework.ID, mesos.ExecutorID{Value: "e-m"}, []byte("echo:hello scheduler"))
	waitFor(t, "executor message", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.messages) == 1 && string(m.messages[0]) == "hello scheduler"
	})
}

// 11/11b without the agent restart: the executor's stream breaks; it
// re-subscribes (checkpointing) listing an update the agent never received;
// the agent takes it, acknowledges it after SUBSCRIBED and forwards it.
func TestResubscribeReplaysUnacknowledgedUpdates(t *testing.T) {
	a, m := newTestAgent(t, nil)
	launch(a, executorInfo("e11", nil), taskInfo(a, "t11", ""))
	waitState(t, m, "t11", mesos.TASK_RUNNING)
	st, _ := executorState(a, "e11")
	a.Message(*testFramework.ID, mesos.ExecutorID{Value: "e11"}, []byte("hold:t11"))
	waitEventsLog(t, st.Directory, "MESSAGE hold:t11")
	a.breakExecutorStreams()
	waitEventsLog(t, st.Directory, "DISCONNECTED")
	waitFor(t, "replayed update at the master", func() bool {
		for _, u := range m.updatesFor("t11") {
			if u.status.GetMessage() == "replayed" {
				return true
			}
		}
		return false
	})
	waitFor(t, "second SUBSCRIBED then ACKNOWLEDGED", func() bool {
		b, _ := os.ReadFile(filepath.Join(st.Directory, "events.log"))
		s := string(b)
		i := strings.LastIndex(s, "SUBSCRIBED")
		return strings.Count(s, "SUBSCRIBED") == 2 && strings.Count(s[i:], "ACKNOWLEDGED t11") == 1
	})
	if s, _ := executorState(a, "e11"); s.PID != st.PID {
		t.Error("executor was replaced")
	}
}

// breakExecutorStreams drops every executor connection, as a network blip
// would (test hook).
func (a *Agent) breakExecutorStreams() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, f := range a.frameworks {
		for _, e := range f.executors {
			if e.sub != nil {
				e.sub.close()
				e.sub = nil
			}
		}
	}
}

// Stop leaves nothing behind: processes gone, listener closed, no more
// master calls.
func TestStopKillsEverything(t *testing.T) {
	a, m := newTestAgent(t, nil)
	launch(a, executorInfo("e-s1", nil), taskInfo(a, "t-s1", ""))
	launch(a, executorInfo("e-s2", map[string]string{"TESTEXEC_IGNORE_SHUTDOWN": "1"}), taskInfo(a, "t-s2", ""))
	waitState(t, m, "t-s1", mesos.TASK_RUNNING)
	waitState(t, m, "t-s2", mesos.TASK_RUNNING)
	var pids []int
	for _, s := range a.Executors() {
		pids = append(pids, s.PID)
	}
	a.Quiesce()
	before, terms := m.snapshot()
	a.Stop()
	for _, p := range pids {
		if !processGone(p) {
			t.Errorf("process %d survived Stop", p)
		}
	}
	if c, err := net.DialTimeout("tcp", a.Endpoint(), time.Second); err == nil {
		c.Close()
		t.Error("listener still open after Stop")
	}
	time.Sleep(300 * time.Millisecond)
	after, terms2 := m.snapshot()
	if len(after) != len(before) || len(terms2) != len(terms) {
		t.Errorf("master called after Stop: %d→%d updates, %d→%d terminations", len(before), len(after), len(terms), len(terms2))
	}
}

// A CUSTOM executor receives LAUNCH_GROUP for a task group.
func TestLaunchGroupToRealExecutor(t *testing.T) {
	a, m := newTestAgent(t, nil)
	ex := executorInfo("e-grp", nil)
	tasks := []mesos.TaskInfo{taskInfo(a, "g1", ""), taskInfo(a, "g2", "")}
	for i := range tasks {
		e := ex
		tasks[i].Executor = &e
	}
	a.Launch(Launch{Framework: testFramework, Executor: ex, Tasks: tasks, Group: true})
	waitState(t, m, "g1", mesos.TASK_RUNNING)
	waitState(t, m, "g2", mesos.TASK_RUNNING)
	st, _ := executorState(a, "e-grp")
	waitEventsLog(t, st.Directory, "LAUNCH_GROUP g1,g2")
}

// shell=false: value is the program, arguments its argv, no shell in
// between (so no PWD), and a kill of the process gives status 9 directly.
func TestArgvCommand(t *testing.T) {
	a, m := newTestAgent(t, nil)
	ex := executorInfo("e-argv", nil)
	ex.Command = &mesos.CommandInfo{Value: strp(testExecutorBin), Shell: boolp(false), Arguments: []string{"custom-argv0"}}
	launch(a, ex, taskInfo(a, "t-argv", ""))
	waitState(t, m, "t-argv", mesos.TASK_RUNNING)
	st, _ := executorState(a, "e-argv")
	env := readFile(t, filepath.Join(st.Directory, "env.txt"))
	if strings.Contains(env, "PWD=") {
		t.Error("PWD set without a shell")
	}
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(st.PID) + "/cmdline")
	if !strings.HasPrefix(string(cmdline), "custom-argv0\x00") {
		t.Errorf("argv = %q", cmdline)
	}
	if err := a.KillExecutorProcess(*testFramework.ID, mesos.ExecutorID{Value: "e-argv"}); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "t-argv", mesos.TASK_FAILED)
	if _, terms := m.snapshot(); len(terms) != 1 || terms[0].status != int32(syscall.SIGKILL) {
		t.Errorf("terminations %+v", terms)
	}

	// A bare program name is looked up in the executor's PATH.
	ex2 := executorInfo("e-path", map[string]string{"PATH": filepath.Dir(testExecutorBin) + ":/usr/bin:/bin"})
	ex2.Command.Value = strp(filepath.Base(testExecutorBin))
	ex2.Command.Shell = boolp(false)
	launch(a, ex2, taskInfo(a, "t-path", ""))
	waitState(t, m, "t-path", mesos.TASK_RUNNING)
}

// A terminated run stays listed (Terminated) while its tasks' terminal
// updates are unacknowledged, so a re-registering agent still reports them.
func TestTerminatedRunListedUntilAcked(t *testing.T) {
	// No retries during the test: the TASK_FAILED head must stay unacked.
	a, m := newTestAgent(t, func(c *Config) { c.StatusUpdateRetry = time.Minute })
	launch(a, executorInfo("e-tl", nil), taskInfo(a, "t-tl", ""))
	waitState(t, m, "t-tl", mesos.TASK_RUNNING)
	m.autoAck.Store(false)
	if err := a.KillExecutorProcess(*testFramework.ID, mesos.ExecutorID{Value: "e-tl"}); err != nil {
		t.Fatal(err)
	}
	f := waitState(t, m, "t-tl", mesos.TASK_FAILED)
	st, ok := executorState(a, "e-tl")
	if !ok || !st.Terminated || st.Tasks["t-tl"] != mesos.TASK_FAILED {
		t.Fatalf("terminated run: %+v (listed %v)", st, ok)
	}
	// A new run of the same executor ID is listed before the old one.
	m.autoAck.Store(true)
	launch(a, executorInfo("e-tl", nil), taskInfo(a, "t-tl2", ""))
	waitState(t, m, "t-tl2", mesos.TASK_RUNNING)
	if live, _ := executorState(a, "e-tl"); live.Terminated || live.Tasks["t-tl2"] != mesos.TASK_RUNNING {
		t.Errorf("first listed run: %+v", live)
	}
	if n := len(a.Executors()); n != 2 {
		t.Errorf("%d runs listed, want the live one and the terminated one", n)
	}
	a.Acknowledge(*testFramework.ID, mesos.TaskID{Value: "t-tl"}, f.status.UUID)
	waitFor(t, "the terminated run to go", func() bool { return len(a.Executors()) == 1 })
}
