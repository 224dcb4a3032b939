package agent

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// 11 and 11b: the agent dies and comes back; a checkpointing executor
// re-subscribes (same run), replays the update the dead agent never took,
// and nothing else happens to its task.
func TestAgentRestartExecutorResubscribes(t *testing.T) {
	a, m := newTestAgent(t, func(c *Config) { c.SubscriptionBackoffMax = 3 * time.Second })
	launch(a, executorInfo("e11", nil), taskInfo(a, "t11", ""))
	waitState(t, m, "t11", mesos.TASK_RUNNING)
	st, _ := executorState(a, "e11")
	a.Message(*testFramework.ID, mesos.ExecutorID{Value: "e11"}, []byte("hold:t11"))
	waitEventsLog(t, st.Directory, "MESSAGE hold:t11")
	a.Quiesce()
	before := len(m.updatesFor("t11"))

	if err := a.Restart(500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitEventsLog(t, st.Directory, "DISCONNECTED")
	// While recovering, only SUBSCRIBE is served.
	var saw503 bool
	waitFor(t, "the recovering agent", func() bool {
		resp, err := http.Post("http://"+a.Endpoint()+"/api/v1/executor", "application/json",
			strings.NewReader(updateBody("e11", "t11", "TASK_RUNNING", newUUID())))
		if err != nil {
			return false
		}
		resp.Body.Close()
		saw503 = resp.StatusCode == http.StatusServiceUnavailable
		return true
	})
	if !saw503 {
		t.Error("an UPDATE during recovery was not answered 503")
	}
	waitFor(t, "second SUBSCRIBED", func() bool {
		b, _ := os.ReadFile(filepath.Join(st.Directory, "events.log"))
		return strings.Count(string(b), "SUBSCRIBED") == 2
	})
	time.Sleep(200 * time.Millisecond)
	if n := len(m.updatesFor("t11")); n != before {
		t.Fatalf("the master heard %d updates while the agent was recovering", n-before)
	}
	waitFor(t, "the replayed update after re-registration", func() bool {
		for _, u := range m.updatesFor("t11") {
			if u.status.GetMessage() == "replayed" {
				return true
			}
		}
		return false
	})
	a.Quiesce()
	if _, terms := m.snapshot(); len(terms) != 0 {
		t.Errorf("terminations %+v", terms)
	}
	if now, ok := executorState(a, "e11"); !ok || now.PID != st.PID || now.Tasks["t11"] != mesos.TASK_RUNNING {
		t.Errorf("executor after restart: %+v", now)
	}
}

// Executors that do not re-subscribe within the re-registration timeout are
// destroyed: TASK_GONE / REASON_EXECUTOR_REREGISTRATION_TIMEOUT. Executors
// of non-checkpointing frameworks are not recovered at all.
func TestAgentRestartDestroysUnrecoveredExecutors(t *testing.T) {
	a, m := newTestAgent(t, func(c *Config) { c.SubscriptionBackoffMax = 500 * time.Millisecond })
	launch(a, sleeperExecutor("e-mute"), taskInfo(a, "t-mute", ""))
	fw := testFramework
	fw.ID = &mesos.FrameworkID{Value: "e6922113-59b7-4c1f-9b75-e01bd097f100-0002"}
	fw.Checkpoint = boolp(false)
	ex := sleeperExecutor("e-nock")
	ex.FrameworkID = fw.ID
	a.Launch(Launch{Framework: fw, Executor: ex, Tasks: []mesos.TaskInfo{taskInfo(a, "t-nock", "")}})
	waitFor(t, "processes", func() bool {
		n := 0
		for _, s := range a.Executors() {
			if s.PID > 0 {
				n++
			}
		}
		return n == 2
	})
	s := rawSubscribe(t, a, "application/json", "", subscribeBody("e-mute"))
	s.jsonEvent(true)
	s.jsonEvent(true)
	post(t, a, "application/json", updateBody("e-mute", "t-mute", "TASK_RUNNING", newUUID()), nil)
	waitState(t, m, "t-mute", mesos.TASK_RUNNING)

	if err := a.Restart(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	g := waitState(t, m, "t-mute", mesos.TASK_GONE).status
	if g.GetReason() != mesos.REASON_EXECUTOR_REREGISTRATION_TIMEOUT || g.GetSource() != mesos.SOURCE_AGENT ||
		g.GetMessage() != "Executor did not reregister within 500ms" {
		t.Errorf("update = %+v", g)
	}
	l := waitState(t, m, "t-nock", mesos.TASK_GONE).status
	if l.GetReason() != mesos.REASON_AGENT_RESTARTED {
		t.Errorf("non-checkpointing task: %+v", l)
	}
	waitFor(t, "two terminations", func() bool { _, terms := m.snapshot(); return len(terms) == 2 })
	_, terms := m.snapshot()
	for _, tm := range terms {
		if tm.status != int32(syscall.SIGKILL) {
			t.Errorf("termination %+v, want status 9", tm)
		}
	}
	waitFor(t, "no executors left", func() bool { return len(a.Executors()) == 0 })
}

func TestInProcessRestartIsAnOutage(t *testing.T) {
	a, m := newTestAgent(t, inProcess(func(c *Config) { c.StatusUpdateRetry = time.Minute }))
	if err := a.Restart(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	launch(a, executorInfo("e-o", nil), taskInfo(a, "t-o", ""))
	time.Sleep(100 * time.Millisecond)
	a.Quiesce()
	if len(m.updatesFor("t-o")) != 0 {
		t.Fatal("an agent that is down reached the master")
	}
	waitState(t, m, "t-o", mesos.TASK_RUNNING)
}
