package reconcile

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// TestReplaceLeavesFirst: an operator's replace of a running server goes
// departing → leave sent → ended (left, or the timeout's kill) → moved,
// with leadership handed over first when it leads and the leave held by
// the quorum gate.
func TestReplaceLeavesFirst(t *testing.T) {
	three := []state.Task{srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING")}
	with := func(f func(*state.Task)) state.Tasks {
		out := append([]state.Task(nil), three...)
		out[0].Goal = state.GoalReplace
		f(&out[0])
		return tasks(out...)
	}
	led2 := raftOf(now, nil, three...) // the last one leads
	led0 := raftOf(now, func(m map[string]*RaftServer) { m["consul-server-2"].Leader, m["consul-server-0"].Leader = false, true }, three...)
	for _, c := range []struct {
		name                          string
		ts                            state.Tasks
		raft                          *RaftHealth
		leave, kill, replace, settles string
		transfer                      string
	}{
		{name: "a follower is asked to leave, not killed", ts: with(func(*state.Task) {}), raft: led2,
			leave: "[consul-server-0]", settles: "asking its executor to leave"},
		{name: "the leader hands its leadership over first", ts: with(func(*state.Task) {}), raft: led0,
			transfer: "consul-server-0->consul-server-1"},
		{name: "leaving: waits", ts: with(func(t *state.Task) { t.LeaveSentAt, t.State = now.Add(-5*time.Second), "TASK_KILLING" }), raft: led2,
			settles: "leaving the Consul cluster gracefully"},
		{name: "no report in time: killed (then its peer is removed and its node pruned)", raft: led2,
			ts: with(func(t *state.Task) { t.LeaveSentAt = now.Add(-LeaveTimeout - time.Second) }), kill: "[consul-server-0]"},
		{name: "not running: killed at once", ts: with(func(t *state.Task) { t.State = "TASK_STAGING" }), raft: led2, kill: "[consul-server-0]"},
		{name: "left and ended: moved", ts: with(func(t *state.Task) { t.LeaveSentAt, t.Left, t.State = now.Add(-5*time.Second), true, "TASK_KILLED" }),
			raft: raftOf(now, nil, three[1:]...), replace: "[consul-server-0]"},
		{name: "the quorum gate holds the leave", ts: with(func(*state.Task) {}),
			raft: raftOf(now, func(m map[string]*RaftServer) { m["consul-server-1"].Healthy = false }, three...), settles: "it would leave 1 healthy voters of 2 (quorum 2)"},
		{name: "no raft view: the leave waits", ts: with(func(*state.Task) {}), raft: nil, settles: "its graceful leave waits: " + NoConsul},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := Reconcile(Input{Target: target(), Tasks: c.ts, Now: now, Raft: c.raft})
			var leaves []string
			for _, l := range r.Leave {
				leaves = append(leaves, l.Name)
			}
			tr := ""
			if r.Transfer != nil {
				tr = r.Transfer.From + "->" + r.Transfer.To
			}
			for what, got := range map[string][2]string{
				"leave":    {fmt.Sprint(leaves), orEmpty(c.leave)},
				"kill":     {kills(r), orEmpty(c.kill)},
				"replace":  {fmt.Sprint(r.Replace), orEmpty(c.replace)},
				"transfer": {tr, c.transfer},
			} {
				if got[0] != got[1] {
					t.Errorf("%s %s, want %s", what, got[0], got[1])
				}
			}
			if !strings.Contains(r.Settling["consul-server-0"], c.settles) {
				t.Errorf("settling %q, want it to say %q", r.Settling["consul-server-0"], c.settles)
			}
			if c.leave != "" && !r.Tasks["consul-server-0"].LeaveSentAt.Equal(now) {
				t.Errorf("the record does not say when the leave was sent: %+v", r.Tasks["consul-server-0"])
			}
			if c.replace != "" && r.Tasks["consul-server-0"].Left {
				t.Errorf("the new incarnation's record still says Left")
			}
		})
	}
}

// TestDepartStateMachine walks one server through the steps.
func TestDepartStateMachine(t *testing.T) {
	tg := target()
	s := srv(0, "TASK_RUNNING")
	h := raftOf(now, nil, srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING"))
	steps := []struct {
		mod  func(*state.Task)
		at   time.Time
		want departStep
	}{
		{func(*state.Task) {}, now, departLeave},
		{func(t *state.Task) { t.LeaveSentAt = now }, now.Add(LeaveTimeout - time.Second), departWaitLeave},
		{func(*state.Task) {}, now.Add(LeaveTimeout), departKill},
		{func(t *state.Task) { t.State, t.Left = "TASK_KILLED", true }, now.Add(LeaveTimeout), departEnded},
	}
	for i, st := range steps {
		st.mod(&s)
		if got, why := depart(s, h, tg, st.at, 0); got != st.want || why == "" {
			t.Fatalf("step %d: %v (%q), want %v", i, got, why, st.want)
		}
	}
	if got, _ := depart(srv(0, "TASK_UNREACHABLE"), h, tg, now, 0); got != departKill {
		t.Errorf("an unreachable server: %v, want departKill (no leave possible)", got)
	}
}

// TestReplacingTheOnlyServerThatLeftWaitsForNoPeerRemoval: a single
// server that left gracefully has no other server to remove its peer
// through (the removal would wait out PeerRemovalTimeout): none is asked.
func TestReplacingTheOnlyServerThatLeftWaitsForNoPeerRemoval(t *testing.T) {
	tg := target(func(c *config.Config) { c.ServerCount = 1 })
	for _, left := range []bool{true, false} {
		s := srv(0, "TASK_KILLED")
		s.Goal, s.Left = state.GoalReplace, left
		r := Reconcile(Input{Target: tg, Tasks: tasks(s), Now: now})
		if got := r.Tasks["consul-server-0"].OldPeer; (got == "") != left {
			t.Errorf("left %v: old peer %q", left, got)
		}
	}
}
