package mesossim

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// launchRunning launches one task on agentID and acks STARTING/RUNNING.
func launchRunning(t *testing.T, s *sched, agentID, taskID, exID string) {
	t.Helper()
	o := offerFrom(t, s, agentID)
	s.accept([]mesos.Offer{o}, 0, launch(taskInfo(taskID, agentID, customExecutor(exID, role), res("cpus", 0.1, role), res("mem", 32, role))))
	for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING} {
		st := s.update(taskID, waitLong)
		if st.GetState() != want {
			t.Fatalf("%s: got %s (%s %s), want %s", taskID, st.GetState(), st.GetReason(), st.GetMessage(), want)
		}
		s.ack(st)
	}
}

// RemoveAgent: offers rescinded, TASK_UNREACHABLE for a partition-aware
// framework and TASK_LOST for another (both master-generated, no uuid),
// FAILURE{agent_id}; reconciliation then says unreachable.
func TestRemoveAgent(t *testing.T) {
	c := startCluster(t, testOptions(t, 2, true))
	pa := subscribe(t, c.MasterURL(), paInfo("pa"))
	a := c.Agents()[0]
	launchRunning(t, pa, a.ID, "pa-task", "e1")
	old := subscribe(t, c.MasterURL(), frameworkInfo("old", role))
	launchRunning(t, old, a.ID, "old-task", "e2")
	oo := offerFrom(t, old, a.ID) // an outstanding offer on that agent

	if err := c.RemoveAgent(a.ID); err != nil {
		t.Fatal(err)
	}
	if ev := old.next(scheduler.Event_RESCIND, waitLong); ev.Rescind.OfferID != oo.ID {
		t.Errorf("rescinded %v, want %v", ev.Rescind.OfferID, oo.ID)
	}
	st := pa.update("pa-task", waitLong)
	assertMasterStatus(t, st, mesos.TASK_UNREACHABLE, mesos.REASON_AGENT_REMOVED, "")
	if st.UnreachableTime == nil || st.GetAgentID().GetValue() != a.ID {
		t.Errorf("unreachable update: %+v", st)
	}
	assertMasterStatus(t, old.update("old-task", waitLong), mesos.TASK_LOST, mesos.REASON_AGENT_REMOVED, "")
	for _, s := range []*sched{pa, old} {
		if ev := s.next(scheduler.Event_FAILURE, waitLong); ev.Failure.AgentID.Value != a.ID || ev.Failure.ExecutorID != nil {
			t.Errorf("FAILURE %+v", ev.Failure)
		}
	}
	pa.mustCall(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{Tasks: []scheduler.Call_Reconcile_Task{
		{TaskID: mesos.TaskID{Value: "pa-task"}}, {TaskID: mesos.TaskID{Value: "x"}, AgentID: &mesos.AgentID{Value: a.ID}}}}})
	assertMasterStatus(t, pa.update("pa-task", waitLong), mesos.TASK_UNREACHABLE, mesos.REASON_RECONCILIATION, "Reconciliation: Task is unreachable")
	assertMasterStatus(t, pa.update("x", waitLong), mesos.TASK_UNREACHABLE, mesos.REASON_RECONCILIATION, "Reconciliation: Task is unreachable")
	// The unreachable task's ID stays in use. (The other framework holds
	// the remaining agent's offer: tear it down to free it.)
	old.mustCall(&scheduler.Call{Type: scheduler.Call_TEARDOWN})
	b := c.Agents()[0]
	o := offerFrom(t, pa, b.ID)
	pa.accept([]mesos.Offer{o}, 0, launch(taskInfo("pa-task", b.ID, customExecutor("e1", role), res("cpus", 0.1, role))))
	assertMasterStatus(t, pa.update("pa-task", waitLong), mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, "Task reuses the ID of an unreachable task: pa-task")

	// AddAgent at runtime: a new ID, the next address, offered at once.
	n, err := c.AddAgent()
	if err != nil {
		t.Fatal(err)
	}
	if n.ID == a.ID || n.IP == b.IP || n.IP == a.IP {
		t.Errorf("new agent %+v", n)
	}
	offerFrom(t, pa, n.ID)
}

// PartitionAgent: offers rescinded at once; past the ping timeout the
// tasks turn unreachable; when the partition heals the agent re-registers
// and its tasks are back (reconciliation says RUNNING).
func TestPartitionAgent(t *testing.T) {
	o := testOptions(t, 1, true)
	o.AgentPingTimeout = 500 * time.Millisecond
	c := startCluster(t, o)
	s := subscribe(t, c.MasterURL(), paInfo("part"))
	a := c.Agents()[0]
	launchRunning(t, s, a.ID, "t", "e")
	of := offerFrom(t, s, a.ID)
	if err := c.PartitionAgent(a.ID, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if ev := s.next(scheduler.Event_RESCIND, waitLong); ev.Rescind.OfferID != of.ID {
		t.Errorf("rescind %v", ev.Rescind.OfferID)
	}
	assertMasterStatus(t, s.update("t", waitLong), mesos.TASK_UNREACHABLE, mesos.REASON_AGENT_REMOVED, "health check timed out")
	s.next(scheduler.Event_FAILURE, waitLong)
	offerFrom(t, s, a.ID) // re-registered
	s.mustCall(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{}})
	assertMasterStatus(t, s.update("t", waitLong), mesos.TASK_RUNNING, mesos.REASON_RECONCILIATION, "Reconciliation: Latest task state")

	// Faults over HTTP.
	resp, err := http.Post(c.MasterURL()+"/sim/v1/agents/"+a.ID+"/partition?duration=300ms", "", nil)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("partition over HTTP: %v %v", err, resp)
	}
	resp, _ = http.Post(c.MasterURL()+"/sim/v1/agents/nope/partition?duration=1s", "", nil)
	if resp.StatusCode != 404 {
		t.Errorf("unknown agent: %d", resp.StatusCode)
	}
	resp, _ = http.Post(c.MasterURL()+"/sim/v1/agents", "", nil)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"ip":"127.1.`) {
		t.Errorf("add agent over HTTP: %d %s", resp.StatusCode, b)
	}
	if len(c.Agents()) != 2 {
		t.Errorf("agents after HTTP add: %d", len(c.Agents()))
	}
}

// RestartMaster: the stream ends with a plain EOF, the scheduler
// re-subscribes with its framework ID (new master id), agents re-register,
// and the task is recovered (reconciliation says RUNNING); before that an
// explicit reconcile without agent_id gets no answer.
func TestRestartMaster(t *testing.T) {
	o := testOptions(t, 1, true)
	o.AgentReregisterDelay = 1500 * time.Millisecond
	c := startCluster(t, o)
	s := subscribe(t, c.MasterURL(), paInfo("restart"))
	a := c.Agents()[0]
	launchRunning(t, s, a.ID, "t", "e")
	oldMaster := c.MasterID()
	if err := c.RestartMaster(); err != nil {
		t.Fatal(err)
	}
	if err := <-s.done; err == nil || err == io.EOF {
		// A dead master's stream ends without the terminating chunk.
		t.Errorf("stream end after master restart: %v, want an unexpected EOF", err)
	}
	info := paInfo("restart")
	info.ID = &mesos.FrameworkID{Value: s.fwID}
	s2 := subscribe(t, c.MasterURL(), info)
	if s2.fwID != s.fwID || c.MasterID() == oldMaster {
		t.Fatalf("after restart: framework %s (was %s), master %s (was %s)", s2.fwID, s.fwID, c.MasterID(), oldMaster)
	}
	s2.mustCall(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{Tasks: []scheduler.Call_Reconcile_Task{{TaskID: mesos.TaskID{Value: "t"}}}}})
	if ev := s2.nextOr(scheduler.Event_UPDATE, 500*time.Millisecond); ev != nil {
		t.Errorf("reconcile answered before the agents re-registered: %+v", ev.Update.Status)
	}
	offerFrom(t, s2, a.ID)
	s2.mustCall(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{}})
	st := s2.update("t", waitLong)
	assertMasterStatus(t, st, mesos.TASK_RUNNING, mesos.REASON_RECONCILIATION, "Reconciliation: Latest task state")
	// The task can still be killed through the new master.
	s2.mustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: "t"}}})
	for {
		st := s2.update("t", waitLong)
		if st.GetState() == mesos.TASK_KILLED {
			break
		}
		s2.ack(st)
	}
}

// An agent removed after a master restart, before it re-registered: the
// new master never learns its tasks. As a real master (agent_reregister_
// timeout, "allowing 10mins for agents to reregister",
// 12-master-restart.txt) it marks the agent unreachable when the timeout
// passes: FAILURE{agent_id}, and an explicit reconciliation of its task,
// unanswered until then, answers TASK_UNREACHABLE (issue 13).
func TestAgentRemovedBeforeReregisteringIsUnreachableAfterTimeout(t *testing.T) {
	o := testOptions(t, 2, true)
	o.AgentReregisterDelay = 2 * time.Second
	o.AgentReregisterTimeout = 4 * time.Second
	c := startCluster(t, o)
	s := subscribe(t, c.MasterURL(), paInfo("removed"))
	a := c.Agents()[0]
	launchRunning(t, s, a.ID, "t", "e")
	if err := c.RestartMaster(); err != nil {
		t.Fatal(err)
	}
	<-s.done
	if err := c.RemoveAgent(a.ID); err != nil {
		t.Fatal(err)
	}
	info := paInfo("removed")
	info.ID = &mesos.FrameworkID{Value: s.fwID}
	s2 := subscribe(t, c.MasterURL(), info)
	reconcileT := &scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{Tasks: []scheduler.Call_Reconcile_Task{
		{TaskID: mesos.TaskID{Value: "t"}, AgentID: &mesos.AgentID{Value: a.ID}}}}}
	s2.mustCall(reconcileT)
	if ev := s2.nextOr(scheduler.Event_UPDATE, 500*time.Millisecond); ev != nil {
		t.Errorf("reconcile answered while the agent may still re-register: %+v", ev.Update.Status)
	}
	ev := s2.next(scheduler.Event_FAILURE, waitLong)
	if ev.Failure.GetAgentID().GetValue() != a.ID || ev.Failure.ExecutorID != nil {
		t.Fatalf("FAILURE %+v, want the removed agent %s", ev.Failure, a.ID)
	}
	s2.mustCall(reconcileT)
	st := s2.update("t", waitLong)
	if st.GetState() != mesos.TASK_UNREACHABLE || st.GetReason() != mesos.REASON_RECONCILIATION || st.UnreachableTime == nil {
		t.Errorf("reconciled after the re-register timeout: %s %s (unreachable_time %v), want TASK_UNREACHABLE", st.GetState(), st.GetReason(), st.UnreachableTime)
	}
	// The other agent re-registered and stays.
	if n := len(c.Agents()); n != 1 {
		t.Errorf("%d agents in the cluster, want 1", n)
	}
}

// Facts 10 and 11 with real executor processes: the executor environment
// uses stout durations, and a killed executor gives FAILURE (raw wait
// status) then TASK_FAILED / REASON_EXECUTOR_TERMINATED with a uuid.
func TestKillExecutorProcess(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, false))
	s := subscribe(t, c.MasterURL(), paInfo("crash"))
	a := c.Agents()[0]
	launchRunning(t, s, a.ID, "t", "e")
	exs, err := c.Executors(a.ID)
	if err != nil || len(exs) != 1 || exs[0].PID == 0 {
		t.Fatalf("executors %+v %v", exs, err)
	}
	env, err := os.ReadFile(filepath.Join(exs[0].Directory, "env.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=5secs", "MESOS_AGENT_ENDPOINT=" + a.IP + ":", "MESOS_FRAMEWORK_ID=" + s.fwID, "MESOS_CHECKPOINT=1"} {
		if !strings.Contains(string(env), want) {
			t.Errorf("executor env lacks %q", want)
		}
	}
	if err := c.KillExecutor(a.ID, s.fwID, "e"); err != nil {
		t.Fatal(err)
	}
	ev := s.next(scheduler.Event_FAILURE, waitLong)
	if ev.Failure.GetExecutorID().GetValue() != "e" || ev.Failure.GetAgentID().GetValue() != a.ID || ev.Failure.GetStatus() != 9 {
		t.Errorf("FAILURE %+v (status %d)", ev.Failure, ev.Failure.GetStatus())
	}
	st := s.update("t", waitLong)
	if st.GetState() != mesos.TASK_FAILED || st.GetReason() != mesos.REASON_EXECUTOR_TERMINATED || st.GetSource() != mesos.SOURCE_AGENT || len(st.UUID) != 16 {
		t.Errorf("after executor kill: %s %s %s uuid %x", st.GetState(), st.GetReason(), st.GetSource(), st.UUID)
	}
	s.ack(st)
	// The executor is forgotten: the same ExecutorID starts a new one.
	launchRunning(t, s, a.ID, "t2", "e")
}

// A work dir resumes the cluster: same agents, reservations and volumes;
// the tasks whose executors died with the old process come back terminal
// (with a uuid, to acknowledge).
func TestResumeFromWorkDir(t *testing.T) {
	o := testOptions(t, 1, false)
	c, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	s := subscribe(t, c.MasterURL(), paInfo("resume"))
	a := c.Agents()[0]
	of := offerFrom(t, s, a.ID)
	disk := reserved(res("disk", 100, role), "r")
	s.accept([]mesos.Offer{of}, 0,
		mesos.Offer_Operation{Type: mesos.Offer_Operation_RESERVE, Reserve: &mesos.Offer_Operation_Reserve{Resources: []mesos.Resource{disk}}},
		mesos.Offer_Operation{Type: mesos.Offer_Operation_CREATE, Create: &mesos.Offer_Operation_Create{Volumes: []mesos.Resource{volume(disk, "data-0", "data")}}})
	launchRunning(t, s, a.ID, "t", "e")
	volDir := filepath.Join(o.WorkDir, "agents", a.IP, "volumes", "roles", role, "data-0")
	if err := os.WriteFile(filepath.Join(volDir, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatalf("volume dir: %v", err)
	}
	c.Close()

	c2 := startCluster(t, o)
	if got := c2.Agents(); len(got) != 1 || got[0].ID != a.ID || got[0].IP != a.IP {
		t.Fatalf("agents after resume: %+v, want %+v", got, a)
	}
	info := paInfo("resume")
	info.ID = &mesos.FrameworkID{Value: s.fwID}
	s2 := subscribe(t, c2.MasterURL(), info)
	st := s2.update("t", waitLong)
	if st.GetState() != mesos.TASK_GONE || st.GetReason() != mesos.REASON_EXECUTOR_REREGISTRATION_TIMEOUT || len(st.UUID) != 16 || st.GetSource() != mesos.SOURCE_AGENT {
		t.Errorf("task after resume: %s %s %s uuid %x", st.GetState(), st.GetReason(), st.GetSource(), st.UUID)
	}
	s2.ack(st)
	o2 := offerFrom(t, s2, a.ID)
	v := findRes(o2.Resources, "disk", true)
	if v == nil || v.GetDisk().GetPersistence().GetID() != "data-0" {
		t.Fatalf("volume not offered after resume: %v", o2.Resources)
	}
	if _, err := os.Stat(filepath.Join(volDir, "keep")); err != nil {
		t.Errorf("volume data lost: %v", err)
	}
	eventually(t, waitLong, "task t completed after ack", func() bool {
		fw := getState(t, c2.MasterURL())["frameworks"].([]interface{})[0].(map[string]interface{})
		return len(fw["tasks"].([]interface{})) == 0
	})
}

// The faults API over HTTP: a short partition (below the ping timeout)
// only rescinds offers and loses the tasks of a non-checkpointing
// framework; executors are listed and killed; an agent removed; the master
// restarted.
func TestFaultsOverHTTP(t *testing.T) {
	c := startCluster(t, testOptions(t, 2, false))
	info := frameworkInfo("nocp", role)
	info.Checkpoint = nil
	s := subscribe(t, c.MasterURL(), info)
	a, b := c.Agents()[0], c.Agents()[1]
	launchRunning(t, s, a.ID, "t", "e")
	post := func(path string) int {
		t.Helper()
		resp, err := http.Post(c.MasterURL()+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/sim/v1/agents/" + a.ID + "/partition?duration=500ms"); code != http.StatusNoContent {
		t.Fatalf("partition: %d", code)
	}
	assertMasterStatus(t, s.update("t", waitLong), mesos.TASK_LOST, mesos.REASON_AGENT_DISCONNECTED, "")
	offerFrom(t, s, a.ID) // back after the partition

	launchRunning(t, s, b.ID, "t2", "e2")
	resp, err := http.Get(c.MasterURL() + "/sim/v1/agents/" + b.ID + "/executors")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"executor_id":"e2"`) || !strings.Contains(string(body), `"t2":"TASK_RUNNING"`) {
		t.Errorf("executors: %s", body)
	}
	if code := post("/sim/v1/agents/" + b.ID + "/executors/kill?framework_id=" + s.fwID + "&executor_id=e2"); code != http.StatusNoContent {
		t.Fatalf("kill executor: %d", code)
	}
	s.next(scheduler.Event_FAILURE, waitLong)
	req, _ := http.NewRequest(http.MethodDelete, c.MasterURL()+"/sim/v1/agents/"+b.ID, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("remove agent: %v %v", err, resp)
	}
	if len(c.Agents()) != 1 {
		t.Errorf("agents after remove: %v", c.Agents())
	}
	old := c.MasterID()
	if code := post("/sim/v1/master/restart"); code != http.StatusAccepted {
		t.Fatalf("restart: %d", code)
	}
	eventually(t, waitLong, "new master", func() bool { return c.MasterID() != "" && c.MasterID() != old })
	if err := <-s.done; err == io.EOF {
		t.Errorf("stream ended cleanly on a master restart")
	}
}

// A KILL for a task on a disconnected agent is sent when it re-registers.
func TestKillDuringPartition(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, true))
	s := subscribe(t, c.MasterURL(), paInfo("killpart"))
	a := c.Agents()[0]
	launchRunning(t, s, a.ID, "t", "e")
	if err := c.PartitionAgent(a.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	s.mustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: "t"}}})
	for {
		st := s.update("t", waitLong)
		s.ack(st)
		if st.GetState() == mesos.TASK_KILLED {
			break
		}
	}
}

// A non-partition-aware framework's tasks on an unreachable agent become
// TASK_LOST; when the agent comes back they are re-added (TASK_LOST can
// be followed by RUNNING).
func TestLostTaskComesBack(t *testing.T) {
	o := testOptions(t, 1, true)
	o.AgentPingTimeout = 300 * time.Millisecond
	c := startCluster(t, o)
	s := subscribe(t, c.MasterURL(), frameworkInfo("old", role))
	a := c.Agents()[0]
	launchRunning(t, s, a.ID, "t", "e")
	if err := c.PartitionAgent(a.ID, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	assertMasterStatus(t, s.update("t", waitLong), mesos.TASK_LOST, mesos.REASON_AGENT_REMOVED, "health check timed out")
	offerFrom(t, s, a.ID) // re-registered
	s.mustCall(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{}})
	assertMasterStatus(t, s.update("t", waitLong), mesos.TASK_RUNNING, mesos.REASON_RECONCILIATION, "Reconciliation: Latest task state")
}

// 11-agent-restart-checkpoint.txt: an agent restart with a checkpointing
// framework's task RUNNING gives the scheduler only a RESCIND; the executor
// re-subscribes, the agent re-registers and reconciliation says RUNNING.
func TestRestartAgentCheckpointing(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, false))
	s := subscribe(t, c.MasterURL(), paInfo("agent-restart"))
	a := c.Agents()[0]
	launchRunning(t, s, a.ID, "t", "e")
	of := offerFrom(t, s, a.ID)
	resp, err := http.Post(c.MasterURL()+"/sim/v1/agents/"+a.ID+"/restart?down=500ms", "", nil)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("restart agent: %v %v", err, resp)
	}
	if ev := s.next(scheduler.Event_RESCIND, waitLong); ev.Rescind.OfferID != of.ID {
		t.Errorf("rescind %v", ev.Rescind.OfferID)
	}
	offerFrom(t, s, a.ID) // re-registered
	s.mustCall(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{}})
	assertMasterStatus(t, s.update("t", waitLong), mesos.TASK_RUNNING, mesos.REASON_RECONCILIATION, "Reconciliation: Latest task state")
	if ev := s.nextOr(scheduler.Event_FAILURE, 300*time.Millisecond); ev != nil {
		t.Errorf("FAILURE after an agent restart: %+v", ev.Failure)
	}
	exs, _ := c.Executors(a.ID)
	if len(exs) != 1 || exs[0].Tasks["t"] != mesos.TASK_RUNNING {
		t.Errorf("executors after restart: %+v", exs)
	}
}

// Nothing is written into the work directory after Close returns: a
// registry write scheduled (or running) then would race the test's TempDir
// cleanup ("directory not empty").
func TestNoRegistryWriteAfterClose(t *testing.T) {
	o := testOptions(t, 1, true)
	o.WorkDir = t.TempDir()
	c, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	c.markRegistryDirty() // a write pending on its timer
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	master := filepath.Join(o.WorkDir, "master")
	if _, err := os.Stat(filepath.Join(master, "registry.json")); err != nil {
		t.Fatalf("final registry write missing: %v", err)
	}
	if err := os.RemoveAll(master); err != nil {
		t.Fatal(err)
	}
	c.markRegistryDirty() // as a straggling agent notification would
	c.saveRegistry()      // as a timer that fired just before Close would
	time.Sleep(300 * time.Millisecond)
	if _, err := os.Stat(master); !os.IsNotExist(err) {
		t.Fatalf("registry written after Close: %v", err)
	}
}
