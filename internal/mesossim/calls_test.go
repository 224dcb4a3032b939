package mesossim

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// LAUNCH_GROUP: atomic; executor must have cpus/mem/disk minimums and a
// framework_id; a valid group launches every task.
func TestLaunchGroup(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, true))
	s := subscribe(t, c.MasterURL(), paInfo("group"))
	a := c.Agents()[0]
	group := func(ex *mesos.ExecutorInfo, ids ...string) mesos.Offer_Operation {
		var tasks []mesos.TaskInfo
		for _, id := range ids {
			tasks = append(tasks, taskInfo(id, a.ID, nil, res("cpus", 0.1, role), res("mem", 32, role)))
		}
		return mesos.Offer_Operation{Type: mesos.Offer_Operation_LAUNCH_GROUP,
			LaunchGroup: &mesos.Offer_Operation_LaunchGroup{Executor: *ex, TaskGroup: mesos.TaskGroupInfo{Tasks: tasks}}}
	}
	// No disk in the executor: the whole group fails.
	ex := customExecutor("ge", role)
	ex.FrameworkID = &mesos.FrameworkID{Value: s.fwID}
	s.accept([]mesos.Offer{offerFrom(t, s, a.ID)}, 0, group(ex, "g1", "g2"))
	for _, id := range []string{"g1", "g2"} {
		assertMasterStatus(t, s.update(id, waitLong), mesos.TASK_ERROR, mesos.REASON_TASK_GROUP_INVALID, "Executor 'ge' uses no disk")
	}
	// framework_id is not filled in for LAUNCH_GROUP.
	ex2 := customExecutor("ge2", role)
	ex2.Resources = append(ex2.Resources, res("disk", 10, role))
	s.accept([]mesos.Offer{offerFrom(t, s, a.ID)}, 0, group(ex2, "g3"))
	assertMasterStatus(t, s.update("g3", waitLong), mesos.TASK_ERROR, mesos.REASON_TASK_GROUP_INVALID, "'ExecutorInfo.framework_id' must be set")
	ex2.FrameworkID = &mesos.FrameworkID{Value: s.fwID}
	s.accept([]mesos.Offer{offerFrom(t, s, a.ID)}, 0, group(ex2, "g4", "g5"))
	for _, id := range []string{"g4", "g5"} {
		if st := s.update(id, waitLong); st.GetState() != mesos.TASK_STARTING {
			t.Errorf("%s: %s %s", id, st.GetState(), st.GetMessage())
		}
	}
}

// A framework whose connection drops is removed when failover_timeout
// runs out: its tasks are killed and it moves to completed_frameworks.
func TestFailoverTimeoutRemovesFramework(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, true))
	info := paInfo("short")
	ft := 1.0
	info.FailoverTimeout = &ft
	s := subscribe(t, c.MasterURL(), info)
	a := c.Agents()[0]
	launchRunning(t, s, a.ID, "t", "e")
	s.resp.Body.Close()
	time.Sleep(300 * time.Millisecond)
	st := getState(t, c.MasterURL())
	if fws := st["frameworks"].([]interface{}); len(fws) != 1 || fws[0].(map[string]interface{})["connected"] != false {
		t.Fatalf("framework right after disconnect: %v", fws)
	}
	eventually(t, waitLong, "framework removed after failover_timeout", func() bool {
		st := getState(t, c.MasterURL())
		return len(st["frameworks"].([]interface{})) == 0 && len(st["completed_frameworks"].([]interface{})) == 1
	})
	eventually(t, waitLong, "executor shut down", func() bool {
		exs, _ := c.Executors(a.ID)
		return len(exs) == 0
	})
}

// MESSAGE both ways and SHUTDOWN with a real executor process.
func TestMessageAndShutdown(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, false))
	s := subscribe(t, c.MasterURL(), paInfo("msg"))
	a := c.Agents()[0]
	launchRunning(t, s, a.ID, "t", "e")
	s.mustCall(&scheduler.Call{Type: scheduler.Call_MESSAGE, Message: &scheduler.Call_Message{
		AgentID: mesos.AgentID{Value: a.ID}, ExecutorID: mesos.ExecutorID{Value: "e"}, Data: []byte("echo:hello")}})
	ev := s.next(scheduler.Event_MESSAGE, waitLong)
	if string(ev.Message.Data) != "hello" || ev.Message.ExecutorID.Value != "e" || ev.Message.AgentID.Value != a.ID {
		t.Errorf("MESSAGE %+v", ev.Message)
	}
	s.mustCall(&scheduler.Call{Type: scheduler.Call_SHUTDOWN, Shutdown: &scheduler.Call_Shutdown{
		AgentID: mesos.AgentID{Value: a.ID}, ExecutorID: mesos.ExecutorID{Value: "e"}}})
	f := s.next(scheduler.Event_FAILURE, waitLong)
	if f.Failure.GetExecutorID().GetValue() != "e" {
		t.Errorf("FAILURE after SHUTDOWN: %+v", f.Failure)
	}
	st := s.update("t", waitLong)
	for st.GetState() == mesos.TASK_KILLING {
		s.ack(st)
		st = s.update("t", waitLong)
	}
	if !isTerminal(st.GetState()) || len(st.UUID) != 16 {
		t.Errorf("task after SHUTDOWN: %s uuid %x", st.GetState(), st.UUID)
	}
}

// UPDATE_FRAMEWORK answers 200 with no body; RECONCILE_OPERATIONS 200 with
// a Response; a protobuf call missing a required field is 400.
func TestSynchronousCallsAndProtobufValidation(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, true))
	s := subscribe(t, c.MasterURL(), paInfo("sync"))
	info := paInfo("sync-renamed")
	info.ID = &mesos.FrameworkID{Value: s.fwID}
	code, body := s.call(&scheduler.Call{Type: scheduler.Call_UPDATE_FRAMEWORK, UpdateFramework: &scheduler.Call_UpdateFramework{FrameworkInfo: info}})
	if code != 200 || body != "" {
		t.Errorf("UPDATE_FRAMEWORK: %d %q", code, body)
	}
	info.User = "other"
	if code, body := s.call(&scheduler.Call{Type: scheduler.Call_UPDATE_FRAMEWORK, UpdateFramework: &scheduler.Call_UpdateFramework{FrameworkInfo: info}}); code != 400 {
		t.Errorf("UPDATE_FRAMEWORK changing user: %d %q", code, body)
	}
	if fw := getState(t, c.MasterURL())["frameworks"].([]interface{})[0].(map[string]interface{}); fw["name"] != "sync-renamed" {
		t.Errorf("name after UPDATE_FRAMEWORK: %v", fw["name"])
	}
	code, body = s.call(&scheduler.Call{Type: scheduler.Call_RECONCILE_OPERATIONS, ReconcileOperations: &scheduler.Call_ReconcileOperations{}})
	if code != 200 || body != `{"type":"RECONCILE_OPERATIONS","reconcile_operations":{}}` {
		t.Errorf("RECONCILE_OPERATIONS: %d %q", code, body)
	}
	// Protobuf KILL without the required task_id.
	bad := []byte{0x0a, 0x03, 0x0a, 0x01, 'x', 0x10, 0x06, 0x32, 0x00} // framework_id{x}, type KILL, kill{}
	req, _ := http.NewRequest("POST", c.MasterURL()+"/api/v1/scheduler", bytes.NewReader(bad))
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || string(b) != "Failed to validate scheduler::Call: Not initialized: task_id" {
		t.Errorf("protobuf missing required field: %d %q", resp.StatusCode, b)
	}
	req, _ = http.NewRequest("POST", c.MasterURL()+"/api/v1/scheduler", bytes.NewReader([]byte{0xff, 0xff}))
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, _ = http.DefaultClient.Do(req)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || string(b) != "Failed to parse body into Call protobuf" {
		t.Errorf("garbage protobuf: %d %q", resp.StatusCode, b)
	}
}
