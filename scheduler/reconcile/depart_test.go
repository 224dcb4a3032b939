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
		{func(t *state.Task) { t.LeaveSentAt = now }, now.Add(LeaveResendEvery - time.Second), departWaitLeave},
		{func(*state.Task) {}, now.Add(LeaveResendEvery), departResendLeave}, // no sign of it: the MESSAGE may be lost
		{func(t *state.Task) { t.LeaveResentAt = now.Add(LeaveResendEvery) }, now.Add(LeaveResendEvery + time.Second), departWaitLeave},
		{func(t *state.Task) { t.State = "TASK_KILLING" }, now.Add(LeaveTimeout - time.Second), departWaitLeave}, // leaving
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

// TestLeaveResent: Mesos delivers a MESSAGE at most once. A server asked
// to leave that still runs LeaveResendEvery after the last request is
// asked again (the record says when, the first request's time stays for
// the fallback deadline); one whose executor started leaving
// (TASK_KILLING) is not; the fallback still comes LeaveTimeout after the
// first request.
func TestLeaveResent(t *testing.T) {
	replace := func(f func(*state.Task)) state.Tasks {
		ts := []state.Task{srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING")}
		ts[0].Goal = state.GoalReplace
		f(&ts[0])
		return tasks(ts...)
	}
	scaleDown := func(f func(*state.Task)) state.Tasks {
		ts := []state.Task{srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING"), srv(3, "TASK_RUNNING")}
		ts[3].Goal = state.GoalDecommission
		f(&ts[3])
		return tasks(ts...)
	}
	first := now.Add(-LeaveResendEvery)
	for _, c := range []struct {
		name     string
		ts       state.Tasks
		who      string
		again    bool
		kill     bool
		resentAt time.Time
	}{
		{name: "replace: still running after LeaveResendEvery: asked again", who: "consul-server-0", again: true, resentAt: now,
			ts: replace(func(t *state.Task) { t.LeaveSentAt = first })},
		{name: "replace: asked a moment ago: waits", who: "consul-server-0", resentAt: now.Add(-time.Second),
			ts: replace(func(t *state.Task) { t.LeaveSentAt, t.LeaveResentAt = now.Add(-30*time.Second), now.Add(-time.Second) })},
		{name: "replace: resent LeaveResendEvery ago, still running: asked again", who: "consul-server-0", again: true, resentAt: now,
			ts: replace(func(t *state.Task) { t.LeaveSentAt, t.LeaveResentAt = now.Add(-2*LeaveResendEvery), first })},
		{name: "replace: its executor is leaving (TASK_KILLING): not asked again", who: "consul-server-0",
			ts: replace(func(t *state.Task) { t.LeaveSentAt, t.State = now.Add(-30*time.Second), "TASK_KILLING" })},
		{name: "replace: the fallback deadline counts from the first request", who: "consul-server-0", kill: true, resentAt: now.Add(-time.Second),
			ts: replace(func(t *state.Task) { t.LeaveSentAt, t.LeaveResentAt = now.Add(-LeaveTimeout), now.Add(-time.Second) })},
		{name: "scale-down: still running after LeaveResendEvery: asked again", who: "consul-server-3", again: true, resentAt: now,
			ts: scaleDown(func(t *state.Task) { t.LeaveSentAt = first })},
		{name: "scale-down: its executor is leaving: not asked again", who: "consul-server-3",
			ts: scaleDown(func(t *state.Task) { t.LeaveSentAt, t.State = first, "TASK_KILLING" })},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg := target()
			var list []state.Task
			for _, x := range c.ts {
				list = append(list, x)
			}
			led1 := func(m map[string]*RaftServer) { // neither departing server leads
				for n, x := range m {
					x.Leader = n == "consul-server-1"
				}
			}
			r := Reconcile(Input{Target: tg, Tasks: c.ts, Now: now, Raft: raftOf(now, led1, list...)})
			leaves := r.Leave
			switch {
			case c.again && (len(leaves) != 1 || leaves[0].Name != c.who || !leaves[0].Again):
				t.Fatalf("leave MESSAGEs %+v, want %s again (scale-down %v, settling %v)", leaves, c.who, r.ScaleDown, r.Settling)
			case !c.again && len(leaves) != 0:
				t.Fatalf("leave MESSAGEs %+v, want none", leaves)
			}
			rec := r.Tasks[c.who]
			if !rec.LeaveResentAt.Equal(c.resentAt) || !rec.LeaveSentAt.Equal(c.ts[c.who].LeaveSentAt) {
				t.Errorf("record: sent %s, resent %s; want sent %s, resent %s", rec.LeaveSentAt, rec.LeaveResentAt, c.ts[c.who].LeaveSentAt, c.resentAt)
			}
			if killed := kills(r) == "["+c.who+"]"; killed != c.kill {
				t.Errorf("kill %s, want %s killed: %v", kills(r), c.who, c.kill)
			}
		})
	}
}

// TestLeaveResendAfter: every LeaveResendEvery, at most a third of the
// fallback timeout (a short one in tests still gets resends before it).
func TestLeaveResendAfter(t *testing.T) {
	if got := leaveResendAfter(LeaveTimeout); got != LeaveResendEvery {
		t.Errorf("with %s: %s", LeaveTimeout, got)
	}
	if got := leaveResendAfter(9 * time.Second); got != 3*time.Second {
		t.Errorf("with 9s: %s", got)
	}
	s := srv(0, "TASK_RUNNING")
	s.LeaveSentAt = now.Add(-3 * time.Second)
	if step, why := leaveWait(s, now, 9*time.Second); step != departResendLeave || !strings.Contains(why, "again") {
		t.Errorf("3 s after the request with a 9 s timeout: %v %q", step, why)
	}
}
