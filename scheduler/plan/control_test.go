package plan

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/reconcile"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

func TestControlInterruptContinue(t *testing.T) {
	var c Control
	c, changed, err := c.Interrupt(Update, "server")
	if err != nil || !changed || c.Pause() != (reconcile.Pause{Servers: true}) {
		t.Fatalf("interrupt update/server: %v %v %+v", changed, err, c.Pause())
	}
	if _, changed, _ := c.Interrupt(Update, "server"); changed {
		t.Errorf("a second interrupt changed something (want 208)")
	}
	if _, _, err := c.Interrupt(Recovery, ""); !errors.As(err, new(ErrNotPausable)) {
		t.Errorf("recovery interrupt: %v, want not pausable", err)
	}
	if _, _, err := c.Interrupt(Deploy, "nope"); err == nil {
		t.Errorf("unknown phase interrupted")
	}
	c, _, _ = c.Interrupt(Deploy, "")
	if p := c.Pause(); !p.Servers || !p.Clients || !p.ScaleDown {
		t.Errorf("deploy interrupted: pause %+v, want everything", p)
	}
	c, changed = c.Continue(Deploy, "client")
	if p := c.Pause(); !changed || !p.Servers || p.Clients || !p.ScaleDown {
		t.Errorf("deploy/client continued: pause %+v", p)
	}
	c, _ = c.Continue(Deploy, "")
	c, _ = c.Continue(Update, "")
	if p := c.Pause(); p != (reconcile.Pause{}) {
		t.Errorf("all continued: pause %+v", p)
	}
	if _, changed := c.Continue(Update, ""); changed {
		t.Errorf("continue of a running plan changed something (want 208)")
	}
}

// TestStartRestarts: `start` restarts a complete deploy or update plan
// (or phase) as the DC/OS SDK does, and only proceeds otherwise; a
// complete plan whose steps are not pods has nothing to run again.
func TestStartRestarts(t *testing.T) {
	for _, c := range []struct {
		plan, status string
		want         bool
	}{
		{Deploy, Complete, true},
		{Update, Complete, true},
		{Update, InProgress, false},
		{Update, Waiting, false},
		{Update, Pending, false},
		{Recovery, Complete, false},
		{Decommission, Complete, false},
	} {
		if got := StartRestarts(c.plan, c.status); got != c.want {
			t.Errorf("StartRestarts(%s, %s) = %v, want %v", c.plan, c.status, got, c.want)
		}
	}
}

// TestUpdateAndDecommissionPlans: the update plan lists every task with
// its rollout status and says WAITING when paused; the decommission plan
// has a phase per server being removed.
func TestUpdateAndDecommissionPlans(t *testing.T) {
	cfg := config.Defaults()
	cfg.ServerCount = 2
	tg := state.TargetFrom(cfg)
	srv := func(i int, cid string) state.Task {
		return state.Task{Name: state.ServerName(i), Role: "server", Index: i, TaskID: "t", State: "TASK_RUNNING", ConfigID: cid}
	}
	ts := state.Tasks{}
	for _, t := range []state.Task{srv(0, tg.ServerConfigID), srv(1, "old"), srv(2, tg.ServerConfigID)} {
		ts[t.Name] = t
	}
	ctl, _, _ := Control{}.Interrupt(Update, "")
	plans := Build(Input{Target: tg, Tasks: ts, Control: ctl, ScaleDown: map[string]string{"consul-server-2": "removing its raft peer"}})
	up := plans[Update]
	if up.Status != Waiting || up.Phases[0].Status != Waiting || len(up.Phases[0].Steps) != 2 {
		t.Fatalf("update plan %+v", up)
	}
	if st := up.Phases[0].Steps[1]; st.Status != Pending || !strings.Contains(st.Message, "paused by the operator") {
		t.Errorf("stale server step %+v", st)
	}
	dec := plans[Decommission]
	if len(dec.Phases) != 1 || dec.Phases[0].Name != "decommission-consul-server-2" || len(dec.Phases[0].Steps) != 3 {
		t.Fatalf("decommission plan %+v", dec)
	}
	if _, err := Find(plans, Update, "", "consul-server-1"); !errors.Is(err, ErrMissingPhase) {
		t.Errorf("step without phase: %v", err)
	}
	e, err := Find(plans, Update, "server", "consul-server-1")
	if err != nil || e.Step == nil || StepTask(e.Step.Name) != "consul-server-1" {
		t.Errorf("find step: %+v %v", e, err)
	}
	if _, err := Find(plans, "nope", "", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown plan: %v", err)
	}
}

// TestDecommissionPlanShowsTheGracefulLeave: the leave step of a removed
// server is complete once it left gracefully, and says so; after a
// fallback peer removal it says that instead.
func TestDecommissionPlanShowsTheGracefulLeave(t *testing.T) {
	cfg := config.Defaults()
	cfg.ServerCount = 1
	tg := state.TargetFrom(cfg)
	for _, c := range []struct {
		mod  func(*state.Task)
		want string
	}{
		{func(t *state.Task) { t.Left, t.State = true, "TASK_KILLED" }, "left the Consul cluster gracefully"},
		{func(t *state.Task) { t.Left, t.PeerRemoved, t.State = true, true, "TASK_KILLED" }, "raft peer removed through the Consul operator API, then left"},
		{func(t *state.Task) { t.PeerRemoved, t.State = true, "TASK_KILLED" }, "raft peer removed through the Consul operator API"},
		{func(t *state.Task) { t.PeerRemoved, t.LeaveSentAt = true, time.Now().Add(-time.Hour) }, "raft peer removed through the Consul operator API"},
		{func(t *state.Task) { t.PeerRemoved = true }, "STARTING: waiting"},
	} {
		gone := state.Task{Name: "consul-server-1", Role: "server", Index: 1, TaskID: "t", State: "TASK_RUNNING", Goal: state.GoalDecommission}
		c.mod(&gone)
		ts := state.Tasks{gone.Name: gone,
			"consul-server-0": {Name: "consul-server-0", Role: "server", TaskID: "t0", State: "TASK_RUNNING", ConfigID: tg.ServerConfigID}}
		dec := Build(Input{Target: tg, Tasks: ts, Now: time.Now(), ScaleDown: map[string]string{gone.Name: "waiting"}})[Decommission]
		leave := dec.Phases[0].Steps[0]
		if w, ok := strings.CutPrefix(c.want, "STARTING: "); ok {
			if leave.Status != Starting || leave.Message != w {
				t.Errorf("leave step %+v, want starting saying %q (peer removed, the graceful leave follows)", leave, w)
			}
			continue
		}
		if leave.Status != Complete || !strings.Contains(leave.Message, c.want) {
			t.Errorf("leave step %+v, want complete saying %q", leave, c.want)
		}
	}
}
