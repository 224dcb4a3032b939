package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// raftOf builds Consul's view: every listed server a healthy voter unless
// mod says otherwise, the last one the leader; autopilot's cluster health
// and failure tolerance follow from the servers'.
func raftOf(at time.Time, mod func(map[string]*RaftServer), servers ...state.Task) *RaftHealth {
	h := &RaftHealth{At: at}
	m := map[string]*RaftServer{}
	for i, t := range servers {
		m[t.Name] = &RaftServer{ID: "id-" + t.Name, Name: t.Name, Address: t.IP + ":8300", Voter: true, Healthy: true, Leader: i == len(servers)-1}
	}
	if mod != nil {
		mod(m)
	}
	healthy := 0
	for _, t := range servers {
		if s := m[t.Name]; s != nil {
			h.Servers = append(h.Servers, *s)
			if s.Voter && s.Healthy {
				healthy++
			}
		}
	}
	h.Healthy = healthy == len(h.Servers)
	if h.FailureTolerance = healthy - (len(h.Servers)/2 + 1); h.FailureTolerance < 0 {
		h.FailureTolerance = 0
	}
	return h
}

// viewOf is a healthy view of the running servers of ts (nil-free input
// for tests about other things than the gate).
func viewOf(ts state.Tasks) *RaftHealth {
	var running []state.Task
	for _, t := range ts.Sorted() {
		if t.Role == taskspec.RoleServer && t.Running() {
			running = append(running, t)
		}
	}
	return raftOf(now, nil, running...)
}

// TestReplacementWaitsForAHealthyVoter: issue 4's "each replacement waits
// for the previous one to become a healthy voter", and the rolling
// restart's next server likewise.
func TestReplacementWaitsForAHealthyVoter(t *testing.T) {
	running := func(i int) state.Task {
		s := srv(i, "TASK_RUNNING")
		s.RunningSince = now.Add(-time.Minute)
		return s
	}
	replaced := func() state.Task { // server 0: moved, now running on a new agent
		s := running(0)
		s.Replacement = true
		s.IP = "10.0.0.50"
		s.RunningSince = now.Add(-5 * time.Second)
		return s
	}
	gone := srv(1, "TASK_GONE_BY_OPERATOR")
	newConfig := target(func(c *config.Config) { c.UI = false })
	oldOn0 := func() state.Task {
		s := running(0)
		s.ConfigID = newConfig.ServerConfigID
		s.RunningSince = now.Add(-5 * time.Second)
		return s
	}

	for _, c := range []struct {
		name    string
		tg      state.Target
		tasks   state.Tasks
		raft    *RaftHealth
		replace string // servers moved now
		kill    string
		cleared bool   // consul-server-0's Replacement flag cleared
		waiting string // consul-server-0's Settling reason contains
	}{
		{name: "replacement a non-voter: the next waits", tg: target(), tasks: tasks(replaced(), gone, running(2)),
			raft:    raftOf(now, func(m map[string]*RaftServer) { m["consul-server-0"].Voter = false }, replaced(), running(2)),
			waiting: "non-voter"},
		{name: "replacement a voter not healthy yet: the next waits", tg: target(), tasks: tasks(replaced(), gone, running(2)),
			raft:    raftOf(now, func(m map[string]*RaftServer) { m["consul-server-0"].Healthy = false }, replaced(), running(2)),
			waiting: "not healthy yet"},
		{name: "replacement not in the raft configuration yet", tg: target(), tasks: tasks(replaced(), gone, running(2)),
			raft: raftOf(now, nil, running(2)), waiting: "not in Consul's raft configuration"},
		{name: "view read before the replacement ran", tg: target(), tasks: tasks(replaced(), gone, running(2)),
			raft: raftOf(now.Add(-10*time.Second), nil, replaced(), running(2)), waiting: "started 3s after it started"},
		{name: "view read 1 s after the replacement ran: autopilot's health can be its predecessor's", tg: target(), tasks: tasks(replaced(), gone, running(2)),
			raft: raftOf(now.Add(-4*time.Second), nil, replaced(), running(2)), waiting: "autopilot's health can be that old"},
		{name: "no leader: nothing counts", tg: target(), tasks: tasks(replaced(), gone, running(2)),
			raft: &RaftHealth{At: now, Err: "No cluster leader"}, waiting: "No cluster leader"},
		{name: "replacement a healthy voter: done, the next one goes", tg: target(), tasks: tasks(replaced(), gone, running(2)),
			raft: raftOf(now, nil, replaced(), running(2)), cleared: true, replace: "[consul-server-1]"},
		{name: "no Consul answers: everything waits (the gate fails closed)", tg: target(), tasks: tasks(replaced(), gone, running(2)),
			raft: nil, waiting: "no Consul server answered"},
		{name: "rolling restart: the restarted server is a non-voter, the next waits", tg: newConfig,
			tasks:   tasks(oldOn0(), running(1), running(2)),
			raft:    raftOf(now, func(m map[string]*RaftServer) { m["consul-server-0"].Voter = false }, running(0), running(1), running(2)),
			waiting: "non-voter"},
		{name: "rolling restart: the restarted server is a healthy voter, the next restarts", tg: newConfig,
			tasks: tasks(oldOn0(), running(1), running(2)),
			raft:  raftOf(now, nil, running(0), running(1), running(2)), kill: "[consul-server-1]"},
		{name: "rolling restart: a server unhealthy in raft (not the restarted one) holds it too", tg: newConfig,
			tasks: tasks(oldOn0(), running(1), running(2)),
			raft:  raftOf(now, func(m map[string]*RaftServer) { m["consul-server-2"].Healthy = false }, running(0), running(1), running(2))},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := Reconcile(Input{Target: c.tg, Tasks: c.tasks, Now: now, Raft: c.raft})
			if got, want := fmtOr(r.Replace), orEmpty(c.replace); got != want {
				t.Errorf("replace %s, want %s", got, want)
			}
			if got, want := kills(r), orEmpty(c.kill); got != want {
				t.Errorf("kill %s, want %s", got, want)
			}
			if c.tasks["consul-server-0"].Replacement {
				if cleared := !r.Tasks["consul-server-0"].Replacement; cleared != c.cleared {
					t.Errorf("replacement flag cleared %v, want %v", cleared, c.cleared)
				}
			}
			why := r.Settling["consul-server-0"]
			if c.waiting == "" && why != "" {
				t.Errorf("settling %q, want nothing", why)
			}
			if c.waiting != "" && !strings.Contains(why, c.waiting) {
				t.Errorf("settling %q, want it to say %q (all: %v)", why, c.waiting, r.Settling)
			}
		})
	}
}

func fmtOr(s []string) string { return "[" + strings.Join(s, " ") + "]" }

func orEmpty(s string) string {
	if s == "" {
		return "[]"
	}
	return s
}

// TestSettlingOnlyWhenSomethingWaits: servers that are not voters yet
// right after a first deploy hold nothing up and are not reported.
func TestSettlingOnlyWhenSomethingWaits(t *testing.T) {
	s0, s1, s2 := srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING")
	r := Reconcile(Input{Target: target(), Tasks: tasks(s0, s1, s2), Now: now,
		Raft: raftOf(now, func(m map[string]*RaftServer) { m["consul-server-2"].Voter = false }, s0, s1, s2)})
	if len(r.Settling) != 0 || len(r.Kill) != 0 {
		t.Fatalf("settling %v kill %v", r.Settling, r.Kill)
	}
}

func TestCarryLeaderSince(t *testing.T) {
	three := []state.Task{srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING")}
	leads := func(at time.Time, name string) *RaftHealth {
		return raftOf(at, func(m map[string]*RaftServer) {
			for n, s := range m {
				s.Leader = n == name
			}
		}, three...)
	}
	t0 := now.Add(-10 * time.Second)
	first := leads(t0, "consul-server-0")
	first.CarryLeaderSince(nil)
	if !first.LeaderSince.Equal(t0) {
		t.Fatalf("first view: leader since %v, want its read time %v", first.LeaderSince, t0)
	}
	same := leads(t0.Add(3*time.Second), "consul-server-0")
	same.CarryLeaderSince(first)
	if !same.LeaderSince.Equal(t0) {
		t.Errorf("same leader: since %v, want kept %v", same.LeaderSince, t0)
	}
	moved := leads(t0.Add(6*time.Second), "consul-server-1")
	moved.CarryLeaderSince(same)
	if !moved.LeaderSince.Equal(t0.Add(6 * time.Second)) {
		t.Errorf("new leader: since %v, want the read time", moved.LeaderSince)
	}
	none := &RaftHealth{At: t0.Add(7 * time.Second), Err: "no leader"}
	none.CarryLeaderSince(moved)
	if !none.LeaderSince.IsZero() {
		t.Errorf("no leader: since %v, want zero", none.LeaderSince)
	}
	back := leads(t0.Add(8*time.Second), "consul-server-1")
	back.CarryLeaderSince(none)
	if !back.LeaderSince.Equal(t0.Add(8 * time.Second)) {
		t.Errorf("leader after a read without one: since %v, want the read time (the run of reads was broken)", back.LeaderSince)
	}
}

func TestLeaderSettleWait(t *testing.T) {
	three := []state.Task{srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING")}
	for _, c := range []struct {
		name       string
		led        time.Duration // At - LeaderSince
		since      bool
		multiplier int
		wait       bool
	}{
		{name: "unknown since: no wait", since: false, wait: false},
		{name: "new leader, one read", since: true, led: 0, wait: true},
		{name: "led 2.9 s in the reads", since: true, led: 2900 * time.Millisecond, wait: true},
		{name: "led 3 s in the reads", since: true, led: 3 * time.Second, wait: false},
		{name: "raft_multiplier 5: 3 s is not enough", since: true, led: 3 * time.Second, multiplier: 5, wait: true},
		{name: "raft_multiplier 5: 15 s", since: true, led: 15 * time.Second, multiplier: 5, wait: false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := raftOf(now, nil, three...)
			if c.since {
				h.LeaderSince = now.Add(-c.led)
			}
			w := h.LeaderSettleWait(c.multiplier)
			if (w != "") != c.wait {
				t.Errorf("wait %q, want a wait: %v", w, c.wait)
			}
			if c.wait && !strings.Contains(w, "consul-server-2") {
				t.Errorf("wait %q does not name the leader", w)
			}
		})
	}
}

// The raft view is read every second while a server action waits on it,
// every 3 s otherwise (clients rolling, nothing to do).
func TestRaftPollEvery(t *testing.T) {
	server := state.Task{Name: state.ServerName(0), Role: taskspec.RoleServer}
	client := state.Task{Name: "consul-client-a1", Role: taskspec.RoleClient}
	tasks := state.Tasks{server.Name: server, client.Name: client}
	for _, tc := range []struct {
		name string
		r    Result
		want time.Duration
	}{
		{"nothing to do", Result{Tasks: tasks}, RaftPollIdle},
		{"a client rolling", Result{Tasks: tasks, Update: []string{client.Name}}, RaftPollIdle},
		{"a server rolling", Result{Tasks: tasks, Update: []string{client.Name, server.Name}}, RaftPollBusy},
		{"a restarted server settling", Result{Tasks: tasks, Settling: map[string]string{server.Name: "not a voter yet"}}, RaftPollBusy},
		{"a hand-over", Result{Tasks: tasks, Transfer: &Transfer{From: server.Name, To: "consul-server-1"}}, RaftPollBusy},
		{"the gate shut", Result{Tasks: tasks, Gate: "no leader"}, RaftPollBusy},
		{"a scale-down", Result{Tasks: tasks, ScaleDown: map[string]string{server.Name: "removing its peer"}}, RaftPollBusy},
		{"a peer to remove", Result{Tasks: tasks, RemovePeer: map[string]string{server.Name: "127.0.0.1:8300"}}, RaftPollBusy},
		{"a replacement", Result{Tasks: tasks, Replace: []string{server.Name}}, RaftPollBusy},
	} {
		if got := tc.r.RaftPollEvery(); got != tc.want {
			t.Errorf("%s: every %s, want %s", tc.name, got, tc.want)
		}
	}
}
