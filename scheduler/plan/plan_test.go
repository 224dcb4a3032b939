package plan

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/reconcile"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

var now = time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC)

func target() state.Target { return state.TargetFrom(config.Defaults()) }

func srv(i int, st string) state.Task {
	return state.Task{Name: state.ServerName(i), Role: taskspec.RoleServer, Index: i, TaskID: fmt.Sprint("t", i), AgentID: fmt.Sprint("S", i),
		Hostname: fmt.Sprint("h", i), State: st, ConfigID: target().ServerConfigID}
}

func build(tasks state.Tasks, waiting map[string]string, agents map[string]reconcile.Agent) map[string]Plan {
	r := reconcile.Reconcile(reconcile.Input{Target: target(), Tasks: tasks, Now: now})
	return Build(Input{Target: target(), Tasks: r.Tasks, Launch: r.Launch, Waiting: waiting, Agents: agents, Now: now})
}

func TestDeployPlan(t *testing.T) {
	cases := []struct {
		name    string
		tasks   state.Tasks
		waiting map[string]string
		agents  map[string]reconcile.Agent
		status  string
		server  []string
		client  []string
		message string
	}{
		{name: "nothing yet", tasks: state.Tasks{}, status: Pending, server: []string{Pending, Pending, Pending},
			waiting: map[string]string{"consul-server-1": "offer from h9 does not fit: mem 10 MB offered"}, message: "mem 10 MB offered"},
		{name: "starting", tasks: state.Tasks{"consul-server-0": srv(0, "TASK_STAGING"), "consul-server-1": srv(1, "TASK_RUNNING")}, status: InProgress,
			server: []string{Starting, Complete, Pending}},
		{name: "deployed with a client pending on a known agent", tasks: state.Tasks{"consul-server-0": srv(0, "TASK_RUNNING"), "consul-server-1": srv(1, "TASK_RUNNING"), "consul-server-2": srv(2, "TASK_RUNNING")},
			agents: map[string]reconcile.Agent{"S0": {ID: "S0"}, "S7": {ID: "S7", Hostname: "h7"}, "S8": {ID: "S8", Public: true}},
			status: InProgress, server: []string{Complete, Complete, Complete}, client: []string{Pending}, message: "waiting for an offer from agent h7"},
		{name: "complete", tasks: state.Tasks{"consul-server-0": srv(0, "TASK_RUNNING"), "consul-server-1": srv(1, "TASK_RUNNING"), "consul-server-2": srv(2, "TASK_RUNNING"),
			"consul-client-s7": {Name: "consul-client-s7", Role: taskspec.RoleClient, TaskID: "c", AgentID: "S7", State: "TASK_RUNNING", ConfigID: target().ClientConfigID}},
			agents: map[string]reconcile.Agent{"S7": {ID: "S7"}}, status: Complete, server: []string{Complete, Complete, Complete}, client: []string{Complete}},
		{name: "repeated TASK_ERROR is an error", tasks: state.Tasks{"consul-server-0": func() state.Task {
			s := srv(0, "TASK_ERROR")
			s.Failures, s.Message = 3, "bad resources"
			return s
		}()}, status: Error, server: []string{Error, Pending, Pending}, message: "bad resources"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := build(c.tasks, c.waiting, c.agents)[Deploy]
			if p.Status != c.status {
				t.Errorf("status %s, want %s", p.Status, c.status)
			}
			var got []string
			for _, s := range p.Phases[0].Steps {
				got = append(got, s.Status)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.server) {
				t.Errorf("server steps %v, want %v", got, c.server)
			}
			got = nil
			for _, s := range p.Phases[1].Steps {
				got = append(got, s.Status)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.client) {
				t.Errorf("client steps %v, want %v", got, c.client)
			}
			if c.message != "" {
				all := fmt.Sprint(p)
				if !strings.Contains(all, c.message) {
					t.Errorf("plan does not explain %q: %s", c.message, all)
				}
			}
			if p.Errors == nil {
				t.Error("errors must be a list, not null")
			}
		})
	}
}

func TestRecoveryPlanListsRelaunches(t *testing.T) {
	tasks := state.Tasks{"consul-server-0": srv(0, "TASK_FAILED"), "consul-server-1": srv(1, "TASK_RUNNING"), "consul-server-2": srv(2, "TASK_RUNNING")}
	p := build(tasks, nil, nil)[Recovery]
	if len(p.Phases[0].Steps) != 1 || p.Phases[0].Steps[0].Name != "consul-server-0:[server]" || p.Status != Pending {
		t.Fatalf("recovery %+v", p)
	}
	if !strings.Contains(p.Phases[0].Steps[0].Message, "same agent h0") {
		t.Fatalf("message %q", p.Phases[0].Steps[0].Message)
	}
	if p := build(state.Tasks{"consul-server-0": srv(0, "TASK_RUNNING")}, nil, nil)[Recovery]; p.Status != Complete || len(p.Phases[0].Steps) != 0 {
		t.Fatalf("idle recovery %+v", p)
	}
}

func TestUninstallPlan(t *testing.T) {
	c := config.Defaults()
	c.Uninstall = true
	tg := state.TargetFrom(c)
	s0 := srv(0, "TASK_RUNNING")
	s0.Reservation = &state.Reservation{ID: "r0", Confirmed: true}
	p := Build(Input{Target: tg, Tasks: state.Tasks{"consul-server-0": s0}, Now: now})[Deploy]
	if p.Status != InProgress || p.Phases[0].Name != "kill-tasks" || p.Phases[1].Steps[0].Name != "unreserve-r0" || p.Phases[2].Name != "deregister-service" {
		t.Fatalf("%+v", p)
	}
	if m := p.Phases[0].Steps[0].Message; !strings.HasPrefix(m, "killing ") {
		t.Errorf("kill step before any leave: %q", m)
	}
	s0.LeaveSentAt = now.Add(-7 * time.Second)
	p = Build(Input{Target: tg, Tasks: state.Tasks{"consul-server-0": s0}, Now: now})[Deploy]
	if st := p.Phases[0].Steps[0]; st.Status != Starting || !strings.HasPrefix(st.Message, "leaving the Consul cluster (LAN and WAN pools) gracefully before its task ends (asked 7s ago)") {
		t.Errorf("kill step of a leaving server: %s %q", st.Status, st.Message)
	}
	p = Build(Input{Target: tg, Tasks: state.Tasks{}, Now: now})[Deploy]
	if p.Status == Complete {
		t.Fatalf("complete before deregistering: %s", p.Status)
	}
	p = Build(Input{Target: tg, Tasks: state.Tasks{}, Now: now, Deregistered: true})[Deploy]
	if p.Status != Complete {
		t.Fatalf("deregistered: %s", p.Status)
	}
}

// TestDeployPlanErrors: a refused configuration change is listed in the
// deploy plan's errors and makes it ERROR, though every task runs.
func TestDeployPlanErrors(t *testing.T) {
	tasks := state.Tasks{"consul-server-0": srv(0, "TASK_RUNNING"), "consul-server-1": srv(1, "TASK_RUNNING"), "consul-server-2": srv(2, "TASK_RUNNING")}
	p := Build(Input{Target: target(), Tasks: tasks, Now: now})[Deploy]
	if p.Status != Complete || len(p.Errors) != 0 {
		t.Fatalf("without errors: %s %v", p.Status, p.Errors)
	}
	refused := `consul.datacenter (CONSUL_DATACENTER) cannot change from "dc1" to "dc2": ...`
	p = Build(Input{Target: target(), Tasks: tasks, Now: now, Errors: []string{refused}})[Deploy]
	if p.Status != Error || len(p.Errors) != 1 || p.Errors[0] != refused {
		t.Fatalf("with a refused change: %s %v", p.Status, p.Errors)
	}
	if p.Phases[0].Status != Complete {
		t.Errorf("the servers' phase is %s: the refusal is the plan's, not the steps'", p.Phases[0].Status)
	}
}

// TestSettlingServersAreStarting: a server that runs but is not a healthy
// raft voter yet is STARTING with the reason, and a server waiting for
// its turn in the rolling restart says whom it waits for.
func TestSettlingServersAreStarting(t *testing.T) {
	tg := state.TargetFrom(func() config.Config { c := config.Defaults(); c.UI = false; return c }())
	s0 := srv(0, "TASK_RUNNING")
	s0.ConfigID = tg.ServerConfigID
	tasks := state.Tasks{"consul-server-0": s0, "consul-server-1": srv(1, "TASK_RUNNING"), "consul-server-2": srv(2, "TASK_RUNNING")}
	why := "running; a raft non-voter at 10.0.0.0:8300 until autopilot promotes it (stable and caught up)"
	p := Build(Input{Target: tg, Tasks: tasks, Now: now, Settling: map[string]string{"consul-server-0": why}})[Deploy]
	steps := p.Phases[0].Steps
	if steps[0].Status != Starting || !strings.Contains(steps[0].Message, "healthy raft voter: "+why) {
		t.Errorf("settling server: %+v", steps[0])
	}
	if steps[1].Status != Pending || !strings.Contains(steps[1].Message, "first waiting for consul-server-0 (running; a raft non-voter") {
		t.Errorf("next server: %+v", steps[1])
	}
	if p.Status != InProgress {
		t.Errorf("plan %s", p.Status)
	}
}

// TestScaleDownPhase: servers being removed have a phase of their own,
// the highest first, saying what each waits for.
func TestScaleDownPhase(t *testing.T) {
	tasks := state.Tasks{}
	for i := 0; i < 5; i++ {
		tasks[state.ServerName(i)] = srv(i, "TASK_RUNNING")
	}
	s4 := tasks["consul-server-4"]
	s4.Goal = state.GoalDecommission
	tasks["consul-server-4"] = s4
	p := Build(Input{Target: target(), Tasks: tasks, Now: now, ScaleDown: map[string]string{
		"consul-server-4": "removing its raft peer", "consul-server-3": "waiting for the removal of consul-server-4"}})[Deploy]
	if len(p.Phases) != 3 || p.Phases[1].Name != "scale-down" {
		t.Fatalf("phases %+v", p.Phases)
	}
	st := p.Phases[1].Steps
	if len(st) != 2 || st[0].Name != "remove-consul-server-4" || st[0].Status != Starting || st[1].Status != Pending {
		t.Fatalf("steps %+v", st)
	}
	if p.Status != InProgress || len(p.Phases[0].Steps) != 3 {
		t.Fatalf("plan %s, %d server steps", p.Status, len(p.Phases[0].Steps))
	}
}

func TestDeployPlanListsWhatWasAdopted(t *testing.T) {
	tg := state.TargetFrom(config.Defaults())
	ts := state.Tasks{"consul-server-0": {Name: "consul-server-0", Role: taskspec.RoleServer, State: "TASK_RUNNING",
		Adopted: "reservation r0 (volume p0) of consul-server-0 was found with no record"}}
	p := Build(Input{Target: tg, Tasks: ts})[Deploy]
	if len(p.Phases) == 0 || p.Phases[0].Name != "adopt" || len(p.Phases[0].Steps) != 1 ||
		p.Phases[0].Steps[0].Name != "adopt-consul-server-0" || !strings.Contains(p.Phases[0].Steps[0].Message, "reservation r0") {
		t.Fatalf("phases %+v", p.Phases)
	}
	if p := Build(Input{Target: tg, Tasks: state.Tasks{}})[Deploy]; p.Phases[0].Name == "adopt" {
		t.Fatal("an adopt phase with nothing adopted")
	}
}

// TestAdoptPhaseCompletesAndReadsDone: an adoption still waiting for its
// server is in progress and says so; once the server runs, the step and
// the phase are COMPLETE and read "done".
func TestAdoptPhaseCompletesAndReadsDone(t *testing.T) {
	tg := state.TargetFrom(config.Defaults())
	rec := state.Task{Name: "consul-server-0", Role: taskspec.RoleServer, TaskID: "consul-server-0__2", State: "TASK_STAGING",
		Reservation: &state.Reservation{ID: "r0", PersistenceID: "p0", Confirmed: true},
		Adopted:     "reservation r0 (volume p0) of consul-server-0 was found with no record"}
	ph := Build(Input{Target: tg, Tasks: state.Tasks{rec.Name: rec}})[Deploy].Phases[0]
	if ph.Name != "adopt" || ph.Status != InProgress || !strings.Contains(ph.Steps[0].Message, "waiting for consul-server-0 to run on its volume p0 (now TASK_STAGING)") {
		t.Fatalf("adoption under way: %+v", ph)
	}
	rec.State = "TASK_RUNNING"
	ph = Build(Input{Target: tg, Tasks: state.Tasks{rec.Name: rec}})[Deploy].Phases[0]
	if ph.Status != Complete || ph.Steps[0].Status != Complete || !strings.HasPrefix(ph.Steps[0].Message, "done: ") ||
		!strings.Contains(ph.Steps[0].Message, "consul-server-0 runs on its volume p0") {
		t.Fatalf("adoption done: %+v", ph)
	}
}

// TestUpdatePlanShowsTheTLSRollout: while TLS is being turned on the
// update plan has a tls-rollout phase, one step per phase: the past ones
// complete, the current one saying which tasks it waits for, the next
// ones pending; none once the rollout is over.
func TestUpdatePlanShowsTheTLSRollout(t *testing.T) {
	c := config.Defaults()
	c.TLS, c.Ports.HTTPS = true, config.DefaultHTTPSPort
	tg := state.TargetFrom(c)
	tg.TLSPhase, tg.Ports.HTTP = taskspec.TLSOutgoing, 8500
	tg = tg.WithConfigID()
	tasks := state.Tasks{}
	for i := 0; i < 3; i++ {
		s := srv(i, "TASK_RUNNING")
		s.ConfigID = tg.ServerConfigID
		tasks[s.Name] = s
	}
	s := tasks[state.ServerName(1)]
	s.ConfigID = "old"
	tasks[s.Name] = s
	p := Build(Input{Target: tg, Tasks: tasks, Now: now})[Update]
	if len(p.Phases) != 3 || p.Phases[0].Name != "tls-rollout" || p.Status == Complete {
		t.Fatalf("update plan %s, phases %+v", p.Status, p.Phases)
	}
	steps := p.Phases[0].Steps
	if len(steps) != 3 || steps[0].Status != Complete || steps[1].Status != InProgress || steps[2].Status != Pending {
		t.Fatalf("steps %+v", steps)
	}
	if !strings.Contains(steps[1].Message, "phase 2 of 3") || !strings.Contains(steps[1].Message, "consul-server-1") {
		t.Errorf("the current step does not say what it waits for: %q", steps[1].Message)
	}
	tg.TLSPhase = ""
	if p := Build(Input{Target: tg, Tasks: tasks, Now: now})[Update]; len(p.Phases) != 2 {
		t.Errorf("after the rollout: phases %+v", p.Phases)
	}
}

// TestUpdatePlanSaysWhyAClientWaitsForItsRestart: a client the scheduler
// queued itself (after a snapshot restore) waits in the update plan with
// the scheduler's reason.
func TestUpdatePlanSaysWhyAClientWaitsForItsRestart(t *testing.T) {
	tg := target()
	c := state.Task{Name: "consul-client-s9", Role: taskspec.RoleClient, TaskID: "c9", AgentID: "S9", Hostname: "h9",
		State: "TASK_RUNNING", ConfigID: tg.ClientConfigID, RestartQueued: true, RestartWhy: "the snapshot restore replaced Consul's CA roots"}
	p := Build(Input{Target: tg, Tasks: state.Tasks{c.Name: c}, Now: now})[Update]
	st := p.Phases[len(p.Phases)-1].Steps[0]
	if st.Status != Pending || st.Message != "the snapshot restore replaced Consul's CA roots: waiting for its turn in the rolling restart" {
		t.Fatalf("client step %s: %s", st.Status, st.Message)
	}
}

// TestUpdatePlanShowsTheACLRollout: while ACLs are being turned on the
// update plan has an acl-rollout phase: phase 1 says which servers it
// waits for, then that it waits for the scheduler's ACL bootstrap; the
// next phases are pending with what they do.
func TestUpdatePlanShowsTheACLRollout(t *testing.T) {
	c := config.Defaults()
	c.ACL = true
	tg := state.TargetFrom(c)
	tg.ACLPhase = taskspec.ACLOpen
	tg = tg.WithConfigID()
	tasks := state.Tasks{}
	for i := 0; i < 3; i++ {
		s := srv(i, "TASK_RUNNING")
		s.ConfigID = tg.ServerConfigID
		tasks[s.Name] = s
	}
	s := tasks[state.ServerName(2)]
	s.ConfigID = "old"
	tasks[s.Name] = s
	p := Build(Input{Target: tg, Tasks: tasks, Now: now})[Update]
	if len(p.Phases) != 3 || p.Phases[0].Name != "acl-rollout" || p.Status == Complete {
		t.Fatalf("update plan %s, phases %+v", p.Status, p.Phases)
	}
	steps := p.Phases[0].Steps
	if len(steps) != 3 || steps[0].Status != InProgress || steps[1].Status != Pending || steps[2].Status != Pending {
		t.Fatalf("steps %+v", steps)
	}
	if !strings.Contains(steps[0].Message, "turning ACLs on, phase 1 of 3") || !strings.Contains(steps[0].Message, "consul-server-2") {
		t.Errorf("phase 1 does not say what it waits for: %q", steps[0].Message)
	}
	if !strings.Contains(steps[2].Message, "default policy deny") {
		t.Errorf("phase 3 does not say what it does: %q", steps[2].Message)
	}
	s.ConfigID = tg.ServerConfigID
	tasks[s.Name] = s
	st := Build(Input{Target: tg, Tasks: tasks, Now: now})[Update].Phases[0].Steps[0]
	if st.Status != InProgress || !strings.Contains(st.Message, "waiting for the scheduler's ACL bootstrap") {
		t.Errorf("phase 1 rolled out, no bootstrap: %s %q", st.Status, st.Message)
	}
	tg.ACLPhase = ""
	if p := Build(Input{Target: tg, Tasks: tasks, Now: now})[Update]; len(p.Phases) != 2 {
		t.Errorf("after the rollout: phases %+v", p.Phases)
	}
}
