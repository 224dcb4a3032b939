package reconcile

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// TestRollingRestartFollowersFirstLeaderLast: followers restart one at a
// time in index order; the leader goes last, after its leadership is
// handed to a healthy voter already on the new configuration.
func TestRollingRestartFollowersFirstLeaderLast(t *testing.T) {
	tg := target(func(c *config.Config) { c.ServerMem = 2048 })
	updated := func(i int) state.Task { s := srv(i, "TASK_RUNNING"); s.ConfigID = tg.ServerConfigID; return s }
	leaderIs := func(name string) func(map[string]*RaftServer) {
		return func(m map[string]*RaftServer) {
			for n, s := range m {
				s.Leader = n == name
			}
		}
	}
	for _, c := range []struct {
		name     string
		ts       []state.Task
		leader   string
		kill     string
		transfer string
		gate     string
		led      time.Duration // the leader's run in the reads (0: unknown)
	}{
		{name: "leader is server-0: server-1 first", ts: []state.Task{srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING")},
			leader: "consul-server-0", kill: "[consul-server-1]"},
		{name: "leader is server-1: server-0 first", ts: []state.Task{srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING")},
			leader: "consul-server-1", kill: "[consul-server-0]"},
		{name: "only the leader left: hand over to server-0 first", ts: []state.Task{updated(0), updated(1), srv(2, "TASK_RUNNING")},
			leader: "consul-server-2", kill: "[]", transfer: "consul-server-2->consul-server-0 (id-consul-server-0)", gate: "handing raft leadership"},
		{name: "handed over: the old leader restarts as a follower", ts: []state.Task{updated(0), updated(1), srv(2, "TASK_RUNNING")},
			leader: "consul-server-0", kill: "[consul-server-2]"},
		{name: "handed over, but the new leader is in one read only: the old leader waits", ts: []state.Task{updated(0), updated(1), srv(2, "TASK_RUNNING")},
			leader: "consul-server-0", led: time.Second, kill: "[]", gate: "restarting consul-server-2 waits: the raft leader consul-server-0 has led for 1s only"},
		{name: "handed over, the new leader in reads 3 s apart: the old leader restarts", ts: []state.Task{updated(0), updated(1), srv(2, "TASK_RUNNING")},
			leader: "consul-server-0", led: 3 * time.Second, kill: "[consul-server-2]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts := tasks(c.ts...)
			h := raftOf(now, leaderIs(c.leader), c.ts...)
			if c.led > 0 {
				h.LeaderSince = now.Add(-c.led)
			}
			r := Reconcile(Input{Target: tg, Tasks: ts, Now: now, Raft: h})
			if got := kills(r); got != c.kill {
				t.Errorf("kill %s, want %s", got, c.kill)
			}
			tr := ""
			if r.Transfer != nil {
				tr = fmt.Sprintf("%s->%s (%s)", r.Transfer.From, r.Transfer.To, r.Transfer.ToID)
			}
			if tr != c.transfer {
				t.Errorf("transfer %q, want %q", tr, c.transfer)
			}
			if !strings.Contains(r.Gate, c.gate) || (c.gate == "" && r.Gate != "") {
				t.Errorf("gate %q, want %q", r.Gate, c.gate)
			}
		})
	}
}

// TestGateFailsClosed: when Consul's view is unknown, unreadable,
// leaderless, unhealthy or below its failure tolerance, no server is
// restarted or removed, and the gate says why.
func TestGateFailsClosed(t *testing.T) {
	three := []state.Task{srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING")}
	noLeader := raftOf(now, func(m map[string]*RaftServer) {
		for _, s := range m {
			s.Leader = false
		}
	}, three...)
	lowTolerance := raftOf(now, nil, three...)
	lowTolerance.FailureTolerance = 0
	unhealthy := raftOf(now, nil, three...)
	unhealthy.Healthy = false
	for _, c := range []struct {
		name string
		raft *RaftHealth
		gate string
	}{
		{"no Consul server answers", nil, "no Consul server answered"},
		{"ACLs hide the raft view", &RaftHealth{At: now, Err: "Permission denied"}, "Permission denied"},
		{"no leader", noLeader, "no raft leader"},
		{"autopilot unhealthy", unhealthy, "unhealthy"},
		{"failure tolerance below the count's", lowTolerance, "failure tolerance is 0, below the 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := Reconcile(Input{Target: target(func(c *config.Config) { c.ServerMem = 2048 }), Tasks: tasks(three...), Now: now, Raft: c.raft})
			if len(up.Kill) != 0 || !strings.Contains(up.Gate, c.gate) {
				t.Errorf("rolling restart: kill %s gate %q, want nothing killed and %q", kills(up), up.Gate, c.gate)
			}
			five := append(append([]state.Task(nil), three...), srv(3, "TASK_RUNNING"), srv(4, "TASK_RUNNING"))
			down := Reconcile(Input{Target: target(), Tasks: tasks(five...), Now: now, Raft: c.raft})
			if len(down.RemovePeer) != 0 || len(down.Kill) != 0 {
				t.Errorf("scale-down: remove %v kill %s, want nothing", down.RemovePeer, kills(down))
			}
			if w := DisruptionWait(target(), tasks(three...), c.raft, "consul-server-0"); !strings.Contains(w, c.gate) && c.name != "autopilot unhealthy" && c.name != "failure tolerance below the count's" {
				t.Errorf("operator gate %q, want %q", w, c.gate)
			}
		})
	}
	if g := Reconcile(Input{Target: target(func(c *config.Config) { c.ServerMem = 2048 }), Tasks: tasks(three...), Now: now,
		Raft: raftOf(now, nil, three...)}); g.Gate != "" || len(g.Kill) != 1 {
		t.Errorf("a healthy cluster: gate %q kill %s, want one server restarted", g.Gate, kills(g))
	}
}

// TestOperatorGate: an operator's replace of two servers in a row: the
// second is refused while the first is being replaced or is not a
// healthy voter yet; accepted once it is.
func TestOperatorGate(t *testing.T) {
	tg := target()
	s0, s1, s2 := srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING")
	if w := DisruptionWait(tg, tasks(s0, s1, s2), raftOf(now, nil, s0, s1, s2), "consul-server-1"); w != "" {
		t.Fatalf("a healthy cluster refuses: %s", w)
	}
	replacing := s0
	replacing.Goal = state.GoalReplace
	if w := DisruptionWait(tg, tasks(replacing, s1, s2), raftOf(now, nil, s0, s1, s2), "consul-server-1"); !strings.Contains(w, "consul-server-0 is being replaced") {
		t.Errorf("second replace while the first is killed: %q", w)
	}
	moved := s0
	moved.Replacement, moved.IP, moved.RunningSince = true, "10.0.0.50", now.Add(-5*1e9)
	nonVoter := raftOf(now, func(m map[string]*RaftServer) { m["consul-server-0"].Voter = false }, moved, s1, s2)
	if w := DisruptionWait(tg, tasks(moved, s1, s2), nonVoter, "consul-server-1"); !strings.Contains(w, "consul-server-0 is not a healthy raft voter") {
		t.Errorf("second replace while the first is a non-voter: %q", w)
	}
	if w := DisruptionWait(tg, tasks(moved, s1, s2), raftOf(now, nil, moved, s1, s2), "consul-server-1"); w != "" {
		t.Errorf("second replace once the first is a healthy voter: %q", w)
	}
	one := target(func(c *config.Config) { c.ServerCount = 1 })
	if w := DisruptionWait(one, tasks(s0), nil, "consul-server-0"); w != "" {
		t.Errorf("a single server cannot do better: %q", w)
	}
}

// TestClientsRollInBatches: 5 % of 40 clients = 2 at a time; the next
// batch waits until the previous one runs and is healthy again.
func TestClientsRollInBatches(t *testing.T) {
	tg := target(func(c *config.Config) { c.ClientMem = 1024 })
	var ts []state.Task
	for i := 0; i < 40; i++ {
		ts = append(ts, cli(fmt.Sprintf("S%02d", i), "TASK_RUNNING"))
	}
	r := Reconcile(Input{Target: tg, Tasks: tasks(ts...), Now: now, Raft: nil})
	if len(r.Kill) != 2 || len(r.Update) != 40 {
		t.Fatalf("first batch: kill %s (update %d), want 2 of 40", kills(r), len(r.Update))
	}
	back := ts[0]
	back.ConfigID, back.TaskID, back.State = tg.ClientConfigID, back.TaskID+"x", "TASK_STAGING"
	ts[0] = back
	r = Reconcile(Input{Target: tg, Tasks: tasks(ts...), Now: now})
	if len(r.Kill) != 0 {
		t.Fatalf("while a restarted client is not back: kill %s, want none", kills(r))
	}
	back.State = "TASK_RUNNING"
	ts[0] = back
	r = Reconcile(Input{Target: tg, Tasks: tasks(ts...), Now: now})
	if len(r.Kill) != 2 {
		t.Fatalf("previous batch back: kill %s, want the next 2", kills(r))
	}
	for _, c := range []struct{ n, pct, want int }{{40, 5, 2}, {10, 5, 1}, {0, 5, 1}, {10000, 5, 500}, {10, 100, 10}, {10, 0, 1}} {
		if got := ClientBatch(c.n, c.pct); got != c.want {
			t.Errorf("ClientBatch(%d, %d) = %d, want %d", c.n, c.pct, got, c.want)
		}
	}
}

func TestAutopilotWant(t *testing.T) {
	for n, want := range map[int]uint{1: 1, 3: 2, 5: 3, 7: 4} {
		if q, cleanup := AutopilotWant(n); q != want || cleanup {
			t.Errorf("AutopilotWant(%d) = %d, %v; want %d, false", n, q, cleanup, want)
		}
	}
}

// TestOperatorRestartOfTheLeaderHandsOver: a pod restart of the raft
// leader asks for a leadership transfer first; once another server leads,
// the old leader is killed.
func TestOperatorRestartOfTheLeaderHandsOver(t *testing.T) {
	s0, s1, s2 := srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING")
	restarting := s2
	restarting.Goal = state.GoalRestart
	r := Reconcile(Input{Target: target(), Tasks: tasks(s0, s1, restarting), Now: now, Raft: raftOf(now, nil, s0, s1, s2)}) // s2 leads
	if r.Transfer == nil || r.Transfer.From != "consul-server-2" || r.Transfer.To != "consul-server-0" || len(r.Kill) != 0 {
		t.Fatalf("transfer %+v kill %s, want a hand-over from consul-server-2 and no kill yet", r.Transfer, kills(r))
	}
	led := raftOf(now, func(m map[string]*RaftServer) { m["consul-server-2"].Leader, m["consul-server-0"].Leader = false, true }, s0, s1, s2)
	r = Reconcile(Input{Target: target(), Tasks: tasks(s0, s1, restarting), Now: now, Raft: led})
	if r.Transfer != nil || kills(r) != "[consul-server-2]" {
		t.Fatalf("after the hand-over: transfer %+v kill %s", r.Transfer, kills(r))
	}
}

// TestHandOverToTheLongestRunning: leadership goes to the healthy voter
// that has run the longest, not to one restarted seconds ago.
func TestHandOverToTheLongestRunning(t *testing.T) {
	s0, s1, s2 := srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING")
	s0.RunningSince = now.Add(-3 * time.Second) // just restarted
	s1.RunningSince = now.Add(-time.Hour)
	restarting := s2
	restarting.Goal = state.GoalRestart
	r := Reconcile(Input{Target: target(), Tasks: tasks(s0, s1, restarting), Now: now, Raft: raftOf(now, nil, s0, s1, s2)}) // s2 leads
	if r.Transfer == nil || r.Transfer.To != "consul-server-1" {
		t.Fatalf("transfer %+v, want to consul-server-1 (running for an hour, not consul-server-0 restarted 3 s ago)", r.Transfer)
	}
}
