package mesossim

import (
	"strings"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

const role = "consul-role"

func paInfo(name string) mesos.FrameworkInfo {
	info := frameworkInfo(name, role)
	info.Principal = proto.String("consul-principal")
	return withCaps(info, mesos.FrameworkInfo_Capability_RESERVATION_REFINEMENT,
		mesos.FrameworkInfo_Capability_PARTITION_AWARE, mesos.FrameworkInfo_Capability_TASK_KILLING_STATE)
}

// assertMasterStatus checks a master-generated update: SOURCE_MASTER, no uuid.
func assertMasterStatus(t *testing.T, st mesos.TaskStatus, state mesos.TaskState, reason mesos.TaskStatus_Reason, msgPrefix string) {
	t.Helper()
	if st.GetState() != state || st.GetReason() != reason || st.GetSource() != mesos.SOURCE_MASTER || len(st.UUID) != 0 ||
		!strings.HasPrefix(st.GetMessage(), msgPrefix) {
		t.Errorf("task %s: got %s/%s/%s uuid=%x %q; want %s/%s/SOURCE_MASTER no uuid %q...",
			st.TaskID.Value, st.GetState(), st.GetReason(), st.GetSource(), st.UUID, st.GetMessage(), state, reason, msgPrefix)
	}
}

// 05-invalid-accepts.txt (fact 3, fact 9) plus the offer-set rules.
func TestInvalidAccepts(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, true))
	s := subscribe(t, c.MasterURL(), paInfo("invalid"))
	agentID := c.Agents()[0].ID

	// 5a: unknown offer -> TASK_DROPPED (partition-aware), REASON_INVALID_OFFERS.
	bogus := []mesos.Offer{{ID: mesos.OfferID{Value: "d10602e3-0000-0000-0000-000000000000-O999"}}}
	s.accept(bogus, 0, launch(taskInfo("t5a", agentID, customExecutor("e", role), res("cpus", 0.1, role), res("mem", 32, role))))
	st := s.update("t5a", waitLong)
	assertMasterStatus(t, st, mesos.TASK_DROPPED, mesos.REASON_INVALID_OFFERS,
		"Task launched with invalid offers: Offer d10602e3-0000-0000-0000-000000000000-O999 is no longer valid")
	if st.GetAgentID().GetValue() != agentID {
		t.Errorf("5a agent_id %v", st.AgentID)
	}

	// 5b: more cpus than offered.
	offers := s.offers(waitLong)
	s.accept(offers, 0, launch(taskInfo("t5b", agentID, customExecutor("e5b", role), res("cpus", 100, role), res("mem", 32, role))))
	st = s.update("t5b", waitLong)
	assertMasterStatus(t, st, mesos.TASK_ERROR, mesos.REASON_TASK_INVALID,
		"Total resources cpus(allocated: consul-role):100.1; mem(allocated: consul-role):64 required by task and its executor is more than available ports(allocated: consul-role):[8000-9000, 31000-32000]; cpus(allocated: consul-role):4;")

	// 5c: duplicate task ID in one ACCEPT: the first runs, the second errors.
	offers = s.offers(waitLong)
	ex := customExecutor("e5c", role)
	s.accept(offers, 0, launch(
		taskInfo("t5c", agentID, ex, res("cpus", 0.1, role), res("mem", 32, role)),
		taskInfo("t5c", agentID, ex, res("cpus", 0.1, role), res("mem", 32, role))))
	st = s.update("t5c", waitLong)
	assertMasterStatus(t, st, mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, "Task has duplicate ID: t5c")
	st = s.update("t5c", waitLong)
	if st.GetState() != mesos.TASK_STARTING || len(st.UUID) != 16 || st.GetSource() == mesos.SOURCE_MASTER {
		t.Errorf("5c first task: %s uuid %x", st.GetState(), st.UUID)
	}

	// 5d2: ExecutorInfo.type UNKNOWN (what mesos-go sends when left unset).
	offers = s.offers(waitLong)
	ex = customExecutor("e5d2", role)
	ex.Type = mesos.ExecutorInfo_UNKNOWN
	s.accept(offers, 0, launch(taskInfo("t5d2", agentID, ex, res("cpus", 0.1, role), res("mem", 32, role))))
	assertMasterStatus(t, s.update("t5d2", waitLong), mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, "'ExecutorInfo.type' must be 'CUSTOM'")

	// 5e: same executor ID, different command.
	offers = s.offers(waitLong)
	ex = customExecutor("e5c", role)
	ex.Command.Value = proto.String("/bin/other")
	s.accept(offers, 0, launch(taskInfo("t5e", agentID, ex, res("cpus", 0.1, role), res("mem", 32, role))))
	st = s.update("t5e", waitLong)
	assertMasterStatus(t, st, mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, "ExecutorInfo is not compatible with existing ExecutorInfo with same ExecutorID.\n")
	if !strings.Contains(st.GetMessage(), "Existing ExecutorInfo:\nexecutor_id {\n  value: \"e5c\"\n}\nresources {\n  name: \"cpus\"") ||
		!strings.Contains(st.GetMessage(), `value: "/bin/other"`) {
		t.Errorf("5e message: %s", st.GetMessage())
	}

	// Wrong agent id, no resources, command xor executor.
	offers = s.offers(waitLong)
	s.accept(offers, 0, launch(
		taskInfo("bad-agent", "S99", customExecutor("e1", role), res("cpus", 0.1, role)),
		taskInfo("no-res", agentID, customExecutor("e2", role)),
		mesos.TaskInfo{Name: "neither", TaskID: mesos.TaskID{Value: "neither"}, AgentID: mesos.AgentID{Value: agentID}, Resources: []mesos.Resource{res("cpus", 0.1, role)}},
	))
	assertMasterStatus(t, s.update("bad-agent", waitLong), mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, "Task uses invalid agent S99 while agent "+agentID+" is expected")
	assertMasterStatus(t, s.update("no-res", waitLong), mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, "Task uses no resources")
	assertMasterStatus(t, s.update("neither", waitLong), mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present")
}

// A non-partition-aware framework gets TASK_LOST for invalid offers, and
// offers from two agents cannot be combined.
func TestInvalidOfferSetNotPartitionAware(t *testing.T) {
	c := startCluster(t, testOptions(t, 2, true))
	s := subscribe(t, c.MasterURL(), frameworkInfo("lost", role))
	var offers []mesos.Offer
	for len(offers) < 2 {
		offers = append(offers, s.offers(waitLong)...)
	}
	agentID := offers[0].AgentID.Value
	s.accept(offers, 0, launch(taskInfo("t", agentID, customExecutor("e", role), res("cpus", 0.1, role))))
	st := s.update("t", waitLong)
	assertMasterStatus(t, st, mesos.TASK_LOST, mesos.REASON_INVALID_OFFERS, "Task launched with invalid offers: Aggregated offers must belong to one single agent.")
	// The offers went back without a filter: offered again.
	got := s.offers(waitLong)
	if len(got) == 0 {
		t.Fatal("no offers after invalid ACCEPT")
	}
}

// Fact 5: a task ID stays in use until its terminal update is acknowledged.
func TestTaskIDInUseUntilTerminalAck(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, true))
	s := subscribe(t, c.MasterURL(), paInfo("ids"))
	agentID := c.Agents()[0].ID
	ex := customExecutor("e", role)
	offers := s.offers(waitLong)
	s.accept(offers, 0, launch(taskInfo("t1", agentID, ex, res("cpus", 0.1, role), res("mem", 32, role))))
	for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING} {
		st := s.update("t1", waitLong)
		if st.GetState() != want || len(st.UUID) != 16 {
			t.Fatalf("got %s uuid %x, want %s with uuid", st.GetState(), st.UUID, want)
		}
		s.ack(st)
	}
	s.mustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: "t1"}}})
	var killed mesos.TaskStatus
	for {
		st := s.update("t1", waitLong)
		if st.GetState() == mesos.TASK_KILLED {
			killed = st
			break
		}
		s.ack(st)
	}
	// Not acknowledged yet: the ID is still in use, and reconciliation
	// reports the terminal state.
	offers = s.offers(waitLong)
	s.accept(offers, 0, launch(taskInfo("t1", agentID, ex, res("cpus", 0.1, role), res("mem", 32, role))))
	assertMasterStatus(t, s.update("t1", waitLong), mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, "Task has duplicate ID: t1")
	s.mustCall(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{}})
	assertMasterStatus(t, s.update("t1", waitLong), mesos.TASK_KILLED, mesos.REASON_RECONCILIATION, "Reconciliation: Latest task state")
	s.ack(killed)
	eventually(t, waitLong, "task t1 completed", func() bool {
		fw := getState(t, c.MasterURL())["frameworks"].([]interface{})[0].(map[string]interface{})
		return len(fw["tasks"].([]interface{})) == 0 && len(fw["completed_tasks"].([]interface{})) == 1
	})
	offers = s.offers(waitLong)
	s.accept(offers, 0, launch(taskInfo("t1", agentID, ex, res("cpus", 0.1, role), res("mem", 32, role))))
	if st := s.update("t1", waitLong); st.GetState() != mesos.TASK_STARTING {
		t.Errorf("relaunch after ack: %s %s", st.GetState(), st.GetMessage())
	}
}

// 06-reconcile-kill.txt: every answer SOURCE_MASTER / REASON_RECONCILIATION
// without uuid; unknown tasks TASK_UNKNOWN, or TASK_GONE on a registered
// agent; KILL of an unknown task is answered the same way.
func TestReconcileAndKillUnknown(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, true))
	s := subscribe(t, c.MasterURL(), paInfo("rec"))
	agentID := c.Agents()[0].ID
	offers := s.offers(waitLong)
	s.accept(offers, 0, launch(taskInfo("run", agentID, customExecutor("e", role), res("cpus", 0.1, role), res("mem", 32, role))))
	for i := 0; i < 2; i++ {
		s.ack(s.update("run", waitLong))
	}
	rt := func(id, agent string) scheduler.Call_Reconcile_Task {
		x := scheduler.Call_Reconcile_Task{TaskID: mesos.TaskID{Value: id}}
		if agent != "" {
			x.AgentID = &mesos.AgentID{Value: agent}
		}
		return x
	}
	s.mustCall(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{Tasks: []scheduler.Call_Reconcile_Task{
		rt("no-such-task", ""), rt("gone", agentID), rt("unknown-agent", "S99"), rt("run", agentID)}}})
	st := s.update("no-such-task", waitLong)
	assertMasterStatus(t, st, mesos.TASK_UNKNOWN, mesos.REASON_RECONCILIATION, "Reconciliation: Task is unknown")
	if st.AgentID != nil {
		t.Errorf("agent_id set without one in the request")
	}
	st = s.update("gone", waitLong)
	assertMasterStatus(t, st, mesos.TASK_GONE, mesos.REASON_RECONCILIATION, "Reconciliation: Task is unknown to the agent")
	assertMasterStatus(t, s.update("unknown-agent", waitLong), mesos.TASK_UNKNOWN, mesos.REASON_RECONCILIATION, "Reconciliation: Task is unknown")
	st = s.update("run", waitLong)
	assertMasterStatus(t, st, mesos.TASK_RUNNING, mesos.REASON_RECONCILIATION, "Reconciliation: Latest task state")
	if st.GetExecutorID().GetValue() != "e" || st.GetAgentID().GetValue() != agentID {
		t.Errorf("reconcile answer ids: %v %v", st.ExecutorID, st.AgentID)
	}
	// Implicit.
	s.mustCall(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{}})
	assertMasterStatus(t, s.update("run", waitLong), mesos.TASK_RUNNING, mesos.REASON_RECONCILIATION, "Reconciliation: Latest task state")
	// KILL of unknown tasks.
	s.mustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: "k1"}}})
	assertMasterStatus(t, s.update("k1", waitLong), mesos.TASK_UNKNOWN, mesos.REASON_RECONCILIATION, "Reconciliation: Task is unknown")
	s.mustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: "k2"}, AgentID: &mesos.AgentID{Value: agentID}}})
	assertMasterStatus(t, s.update("k2", waitLong), mesos.TASK_GONE, mesos.REASON_RECONCILIATION, "Reconciliation: Task is unknown to the agent")

	// Non-partition-aware frameworks get TASK_LOST instead.
	s2 := subscribe(t, c.MasterURL(), frameworkInfo("old", role))
	s2.mustCall(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{Tasks: []scheduler.Call_Reconcile_Task{rt("x", agentID), rt("y", "")}}})
	assertMasterStatus(t, s2.update("x", waitLong), mesos.TASK_LOST, mesos.REASON_RECONCILIATION, "Reconciliation: Task is unknown to the agent")
	assertMasterStatus(t, s2.update("y", waitLong), mesos.TASK_LOST, mesos.REASON_RECONCILIATION, "Reconciliation: Task is unknown")
}

// Decline filters, refuse_seconds 0, REVIVE and SUPPRESS.
func TestDeclineFiltersReviveSuppress(t *testing.T) {
	o := testOptions(t, 1, true)
	c := startCluster(t, o)
	s := subscribe(t, c.MasterURL(), paInfo("filters"))
	offers := s.offers(waitLong)
	s.decline(offers, 3600)
	if ev := s.nextOr(scheduler.Event_OFFERS, 1500*time.Millisecond); ev != nil {
		t.Fatalf("offer despite a 3600s filter: %v", ev.Offers.Offers[0].ID)
	}
	s.mustCall(&scheduler.Call{Type: scheduler.Call_REVIVE})
	offers = s.offers(waitLong)
	s.decline(offers, 0)
	offers = s.offers(waitLong) // refuse 0: offered again next cycle
	s.mustCall(&scheduler.Call{Type: scheduler.Call_SUPPRESS})
	s.decline(offers, 0)
	if ev := s.nextOr(scheduler.Event_OFFERS, 1500*time.Millisecond); ev != nil {
		t.Fatal("offer while suppressed")
	}
	// REVIVE with a role the framework does not have: dropped, still 202.
	s.mustCall(&scheduler.Call{Type: scheduler.Call_REVIVE, Revive: &scheduler.Call_Revive{Roles: []string{"other"}}})
	if ev := s.nextOr(scheduler.Event_OFFERS, time.Second); ev != nil {
		t.Fatal("REVIVE of a foreign role revived")
	}
	s.mustCall(&scheduler.Call{Type: scheduler.Call_REVIVE, Revive: &scheduler.Call_Revive{Roles: []string{role}}})
	s.offers(waitLong)
}

// Offers only to frameworks subscribed to a role; one offer per
// (agent, role); non-MULTI_ROLE frameworks see role "*" and no
// allocation_info.
func TestOfferFormatsAndRoles(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, true))
	info := mesos.FrameworkInfo{User: "root", Name: "legacy"}
	s := subscribe(t, c.MasterURL(), info)
	o := s.offers(waitLong)[0]
	if o.AllocationInfo != nil {
		t.Errorf("non-MULTI_ROLE offer has allocation_info")
	}
	for _, r := range o.Resources {
		if r.GetRole() != "*" || r.AllocationInfo != nil || len(r.Reservations) != 0 {
			t.Errorf("legacy resource %v", r)
		}
	}
	if o.URL.Path == nil || *o.URL.Path != "/slave(1)" || o.Hostname != c.Agents()[0].IP {
		t.Errorf("offer url/hostname: %v %s", o.URL, o.Hostname)
	}
	found := map[string]bool{}
	for _, r := range o.Resources {
		found[r.Name] = true
	}
	for _, n := range []string{"cpus", "mem", "disk", "ports"} {
		if !found[n] {
			t.Errorf("offer lacks %s", n)
		}
	}
}
