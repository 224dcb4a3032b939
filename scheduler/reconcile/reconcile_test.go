package reconcile

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

var now = time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC)

func target(mod ...func(*config.Config)) state.Target {
	c := config.Defaults()
	for _, m := range mod {
		m(&c)
	}
	return state.TargetFrom(c)
}

func srv(i int, st string) state.Task {
	tg := target()
	return state.Task{Name: state.ServerName(i), Role: taskspec.RoleServer, Index: i, TaskID: fmt.Sprintf("%s__%d", state.ServerName(i), i),
		AgentID: fmt.Sprint("S", i), Hostname: fmt.Sprint("h", i), IP: fmt.Sprint("10.0.0.", i), State: st, ConfigID: tg.ServerConfigID, Ports: tg.Ports,
		Reservation: &state.Reservation{ID: fmt.Sprint("r", i), PersistenceID: fmt.Sprint("p", i), Confirmed: true}}
}

func cli(agent string, st string) state.Task {
	tg := target()
	return state.Task{Name: state.ClientName(agent), Role: taskspec.RoleClient, TaskID: state.ClientName(agent) + "__1", AgentID: agent, State: st, ConfigID: tg.ClientConfigID}
}

func tasks(ts ...state.Task) state.Tasks {
	out := state.Tasks{}
	for _, t := range ts {
		out[t.Name] = t
	}
	return out
}

func keys(m map[string]string) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return fmt.Sprint(sortStrings(out))
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func kills(r Result) string {
	var out []string
	for _, k := range r.Kill {
		out = append(out, k.Name)
	}
	return fmt.Sprint(out)
}

func TestReconcile(t *testing.T) {
	running3 := []state.Task{srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING")}
	cases := []struct {
		name                         string
		tg                           state.Target
		tasks                        state.Tasks
		agents                       map[string]Agent
		place, launch, kill, replace string
		deleted, lost, update        string
	}{
		{name: "fresh install places every server", tg: target(), tasks: tasks(),
			place: "[consul-server-0 consul-server-1 consul-server-2]", launch: "[consul-server-0 consul-server-1 consul-server-2]", kill: "[]"},
		{name: "steady state needs nothing", tg: target(), tasks: tasks(append(running3, cli("S9", "TASK_RUNNING"))...),
			launch: "[]", kill: "[]"},
		{name: "a failed server is relaunched in place", tg: target(), tasks: tasks(srv(0, "TASK_FAILED"), running3[1], running3[2]),
			launch: "[consul-server-0]", kill: "[]"},
		{name: "five servers", tg: target(func(c *config.Config) { c.ServerCount = 5 }), tasks: tasks(running3...),
			place: "[consul-server-3 consul-server-4]", launch: "[consul-server-3 consul-server-4]", kill: "[]"},
		{name: "clients disabled: running clients are stopped", tg: target(func(c *config.Config) { c.ClientsEnabled = false }),
			tasks:  tasks(append(running3, cli("S9", "TASK_RUNNING"), cli("S8", "TASK_KILLED"))...),
			launch: "[]", kill: "[consul-client-s9]", deleted: "[consul-client-s8]"},
		{name: "client on a gone agent is forgotten", tg: target(), tasks: tasks(append(running3, cli("S9", "TASK_GONE_BY_OPERATOR"))...),
			launch: "[]", kill: "[]", deleted: "[consul-client-s9]", lost: "[consul-client-s9]"},
		{name: "client unreachable longer than replace_after is forgotten", tg: target(), tasks: tasks(append(running3, func() state.Task {
			c := cli("S9", "TASK_UNREACHABLE")
			c.FailingSince = now.Add(-11 * time.Minute)
			return c
		}(), func() state.Task {
			c := cli("S8", "TASK_UNREACHABLE")
			c.FailingSince = now.Add(-time.Minute)
			return c
		}())...), launch: "[]", kill: "[]", deleted: "[consul-client-s9]", lost: "[consul-client-s9]"},
		{name: "client on a public agent when not allowed", tg: target(), tasks: tasks(append(running3, cli("S9", "TASK_RUNNING"))...),
			agents: map[string]Agent{"S9": {ID: "S9", Public: true}}, launch: "[]", kill: "[consul-client-s9]"},
		{name: "server on a gone agent is replaced", tg: target(), tasks: tasks(srv(0, "TASK_GONE_BY_OPERATOR"), running3[1], running3[2]),
			launch: "[consul-server-0]", kill: "[]", replace: "[consul-server-0]", lost: "[consul-server-0]"},
		{name: "only one server replaced at a time", tg: target(), tasks: tasks(srv(0, "TASK_GONE_BY_OPERATOR"), srv(1, "TASK_GONE_BY_OPERATOR"), running3[2]),
			launch: "[consul-server-0 consul-server-1]", kill: "[]", replace: "[consul-server-0]", lost: "[consul-server-0]"},
		{name: "next replacement waits until the previous one runs", tg: target(), tasks: tasks(func() state.Task {
			s := srv(0, "TASK_STARTING")
			s.Replacement = true
			return s
		}(), srv(1, "TASK_GONE_BY_OPERATOR"), running3[2]), launch: "[consul-server-1]", kill: "[]"},
		{name: "server failing longer than replace_after is replaced", tg: target(), tasks: tasks(func() state.Task {
			s := srv(0, "TASK_UNREACHABLE")
			s.FailingSince = now.Add(-11 * time.Minute)
			return s
		}(), running3[1], running3[2]), launch: "[consul-server-0]", kill: "[]", replace: "[consul-server-0]"},
		{name: "server failing briefly is kept", tg: target(), tasks: tasks(func() state.Task {
			s := srv(0, "TASK_FAILED")
			s.FailingSince = now.Add(-time.Minute)
			return s
		}(), running3[1], running3[2]), launch: "[consul-server-0]", kill: "[]"},
		{name: "restart requested kills", tg: target(), tasks: tasks(func() state.Task { s := srv(0, "TASK_RUNNING"); s.Goal = state.GoalRestart; return s }(), running3[1], running3[2]),
			launch: "[]", kill: "[consul-server-0]"},
		{name: "restart done relaunches in place", tg: target(), tasks: tasks(func() state.Task { s := srv(0, "TASK_KILLED"); s.Goal = state.GoalRestart; return s }(), running3[1], running3[2]),
			launch: "[consul-server-0]", kill: "[]"},
		{name: "replace requested kills then moves", tg: target(), tasks: tasks(func() state.Task { s := srv(0, "TASK_KILLED"); s.Goal = state.GoalReplace; return s }(), running3[1], running3[2]),
			launch: "[consul-server-0]", kill: "[]", replace: "[consul-server-0]"},
		{name: "config change: one server at a time (a follower first), clients in batches", tg: target(func(c *config.Config) { c.Datacenter = "dc2" }),
			tasks: tasks(append(running3, cli("S8", "TASK_RUNNING"), cli("S9", "TASK_RUNNING"))...), launch: "[]",
			kill: "[consul-client-s8 consul-server-0]", update: "[consul-client-s8 consul-client-s9 consul-server-0 consul-server-1 consul-server-2]"},
		{name: "config change waits while a server is unhealthy", tg: target(func(c *config.Config) { c.Datacenter = "dc2" }),
			tasks: tasks(func() state.Task {
				s := srv(0, "TASK_RUNNING")
				f := false
				s.Healthy = &f
				return s
			}(), running3[1], running3[2]), launch: "[]", kill: "[]", update: "[consul-server-0 consul-server-1 consul-server-2]"},
		{name: "config change waits while a server is down", tg: target(func(c *config.Config) { c.Datacenter = "dc2" }),
			tasks: tasks(srv(0, "TASK_FAILED"), running3[1], running3[2]), launch: "[consul-server-0]", kill: "[]", update: "[consul-server-1 consul-server-2]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := fmt.Sprint(c.tasks)
			r := Reconcile(Input{Target: c.tg, Tasks: c.tasks, Agents: c.agents, Now: now, Raft: viewOf(c.tasks)})
			if fmt.Sprint(c.tasks) != before {
				t.Fatal("Reconcile mutated its input")
			}
			check := func(what, got, want string) {
				if want == "" {
					want = "[]"
				}
				if got != want {
					t.Errorf("%s = %s, want %s", what, got, want)
				}
			}
			check("place", fmt.Sprint(r.Place), c.place)
			check("launch", keys(r.Launch), c.launch)
			check("kill", kills(r), c.kill)
			check("replace", fmt.Sprint(r.Replace), c.replace)
			check("deleted", fmt.Sprint(r.Deleted), c.deleted)
			check("lost", fmt.Sprint(r.Lost), c.lost)
			check("update", fmt.Sprint(r.Update), c.update)
			for _, n := range r.Replace {
				if tk := r.Tasks[n]; tk.AgentID != "" || tk.Reservation != nil || tk.TaskID != "" {
					t.Errorf("replaced %s still tied to its agent: %+v", n, tk)
				}
				if tk, old := r.Tasks[n], c.tasks[n]; tk.OldPeer != old.IP+":8300" || !tk.Replacement || r.Old[n].TaskID != old.TaskID {
					t.Errorf("replaced %s: old peer %q, want %s:8300", n, tk.OldPeer, old.IP)
				}
			}
			for _, n := range r.Changed {
				if _, ok := r.Tasks[n]; !ok {
					t.Errorf("changed %s is not in the result", n)
				}
			}
		})
	}
}

func TestLaunchReasonsExplain(t *testing.T) {
	s := srv(0, "TASK_FAILED")
	s.Reason, s.Failures, s.UpdatedAt = "REASON_EXECUTOR_TERMINATED", 3, now
	r := Reconcile(Input{Target: target(), Tasks: tasks(s, srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING")), Now: now})
	why := r.Launch["consul-server-0"]
	for _, want := range []string{"TASK_FAILED", "REASON_EXECUTOR_TERMINATED", "same agent h0", "delayed 2s after 3 failures"} {
		if !strings.Contains(why, want) {
			t.Errorf("reason %q lacks %q", why, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{0: 0, 1: 0, 2: time.Second, 3: 2 * time.Second, 8: time.Minute, 100: time.Minute} {
		if got := Backoff(n); got != want {
			t.Errorf("Backoff(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestUninstall(t *testing.T) {
	tg := target(func(c *config.Config) { c.Uninstall = true })
	unconfirmed := srv(2, "TASK_UNKNOWN")
	unconfirmed.Reservation.Confirmed = false
	r := Reconcile(Input{Target: tg, Tasks: tasks(srv(0, "TASK_RUNNING"), srv(1, "TASK_KILLED"), unconfirmed,
		srv(3, "TASK_STAGING"), cli("S8", "TASK_RUNNING"), cli("S9", "TASK_FINISHED")), Now: now})
	// The running server leaves the Consul cluster first (no WAN pool
	// keeps it as failed); one not running yet is killed at once, as are
	// the clients (which leave on every stop).
	if kills(r) != "[consul-client-s8 consul-server-3]" {
		t.Errorf("kill %s", kills(r))
	}
	if len(r.Leave) != 1 || r.Leave[0].Name != "consul-server-0" || r.Leave[0].Again || !r.Tasks["consul-server-0"].LeaveSentAt.Equal(now) {
		t.Errorf("leave %+v, leave sent at %v", r.Leave, r.Tasks["consul-server-0"].LeaveSentAt)
	}
	leaving := tasks(r.Tasks["consul-server-0"])
	for _, c := range []struct {
		after       time.Duration
		kill, leave string
	}{
		{5 * time.Second, "[]", "[]"},                       // leaving: nothing
		{LeaveResendEvery, "[]", "[consul-server-0 again]"}, // still TASK_RUNNING: asked again
		{LeaveTimeout, "[consul-server-0]", "[]"},           // no report in time: killed
	} {
		in := Input{Target: tg, Tasks: leaving, Now: now.Add(c.after)}
		r := Reconcile(in)
		var ls []string
		for _, l := range r.Leave {
			ls = append(ls, l.Name+map[bool]string{true: " again"}[l.Again])
		}
		if kills(r) != c.kill || fmt.Sprint(ls) != c.leave {
			t.Errorf("%s after the leave: kill %s leave %v, want %s %s", c.after, kills(r), ls, c.kill, c.leave)
		}
		if len(r.Kill) == 1 && !strings.Contains(r.Kill[0].Why, "no report of its graceful leave within") {
			t.Errorf("the fallback kill does not say why: %q", r.Kill[0].Why)
		}
	}
	left := r.Tasks["consul-server-0"]
	left.State, left.Left = "TASK_FINISHED", true
	if r := Reconcile(Input{Target: tg, Tasks: tasks(left), Now: now.Add(time.Second)}); kills(r) != "[]" || keys(r.Release) != "[consul-server-0]" {
		t.Errorf("left: kill %s release %s, want its volume released", kills(r), keys(r.Release))
	}
	if keys(r.Release) != "[consul-server-1]" || len(r.Launch) != 0 || len(r.Place) != 0 {
		t.Errorf("release %s launch %v place %v", keys(r.Release), r.Launch, r.Place)
	}
	if fmt.Sprint(r.Deleted) != "[consul-client-s9 consul-server-2]" {
		t.Errorf("deleted %v", r.Deleted)
	}
	if r.Tasks["consul-server-0"].Goal != state.GoalStop || !r.NeedsOffers() {
		t.Errorf("goal %s needs offers %v", r.Tasks["consul-server-0"].Goal, r.NeedsOffers())
	}
}

// TestRollingRestartPerRole: a server-only change restarts servers (one
// at a time) and no client; a client-only change restarts clients only;
// the log level restarts nothing (config.CheckUpdate's effects).
func TestRollingRestartPerRole(t *testing.T) {
	all := tasks(srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING"), cli("S8", "TASK_RUNNING"), cli("S9", "TASK_RUNNING"))
	for _, c := range []struct {
		name         string
		change       func(*config.Config)
		update, kill string
	}{
		{"server memory", func(c *config.Config) { c.ServerMem = 2048 },
			"[consul-server-0 consul-server-1 consul-server-2]", "[consul-server-0]"},
		{"raft multiplier", func(c *config.Config) { c.RaftMultiplier = 5 },
			"[consul-server-0 consul-server-1 consul-server-2]", "[consul-server-0]"},
		{"client memory", func(c *config.Config) { c.ClientMem = 1024 },
			"[consul-client-s8 consul-client-s9]", "[consul-client-s8]"},
		{"log level", func(c *config.Config) { c.LogLevel = "debug" }, "[]", "[]"},
	} {
		r := Reconcile(Input{Target: target(c.change), Tasks: all, Now: now, Raft: viewOf(all)})
		if got := fmt.Sprint(r.Update); got != c.update {
			t.Errorf("%s: update %s, want %s", c.name, got, c.update)
		}
		if got := kills(r); got != c.kill {
			t.Errorf("%s: kill %s, want %s", c.name, got, c.kill)
		}
	}
}

// TestScaleDown: servers above the count go the highest first, one at a
// time: raft peer removal, then kill, then the record goes.
func TestScaleDown(t *testing.T) {
	tg := target(func(c *config.Config) { c.ServerCount = 3 })
	five := []state.Task{srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING"), srv(3, "TASK_RUNNING"), srv(4, "TASK_RUNNING")}
	with := func(i int, f func(*state.Task)) []state.Task {
		out := append([]state.Task(nil), five...)
		f(&out[i])
		return out
	}
	led0 := raftOf(now, func(m map[string]*RaftServer) { m["consul-server-4"].Leader, m["consul-server-0"].Leader = false, true }, five...)
	killed4 := five[4]
	killed4.Goal, killed4.PeerRemoved, killed4.State, killed4.UpdatedAt = state.GoalDecommission, true, "TASK_KILLED", now.Add(-time.Second)
	for _, c := range []struct {
		name                        string
		tasks                       []state.Task
		raft                        *RaftHealth
		removePeer, kill, deleted   string
		decommissioning, why4, why3 string
		transfer, leave, old        string
	}{
		{name: "starts with the highest: its raft peer is removed first, while every voter is healthy", tasks: five, raft: led0,
			removePeer: "[consul-server-4]", decommissioning: "consul-server-4", why4: "removing its raft peer 10.0.0.4:8300 through the Consul operator API (only while the others keep quorum) before it leaves",
			why3: "waiting for the removal of consul-server-4"},
		{name: "the leader hands its leadership over before its peer is removed", tasks: five, transfer: "consul-server-4->consul-server-0",
			decommissioning: "consul-server-4", why4: "handing raft leadership from consul-server-4 to consul-server-0 before its peer is removed"},
		{name: "peer removed: asked to leave gracefully", raft: raftOf(now, func(m map[string]*RaftServer) { m["consul-server-0"].Leader = true }, five[:4]...),
			tasks: with(4, func(t *state.Task) { t.Goal, t.PeerRemoved = state.GoalDecommission, true }),
			leave: "[consul-server-4]", why4: "raft peer removed; asking its executor to leave the Consul cluster gracefully"},
		{name: "peer removed: the leave waits for a raft read begun after the removal", raft: raftOf(now, func(m map[string]*RaftServer) { m["consul-server-0"].Leader = true }, five[:4]...),
			tasks: with(4, func(t *state.Task) { t.Goal, t.PeerRemoved, t.PeerRemovedAt = state.GoalDecommission, true, now }),
			why4:  "raft peer removed; waiting for a raft read begun after the removal before it leaves"},
		{name: "peer removed, but Consul's leader re-added it: removed again, no leave", raft: raftOf(now, func(m map[string]*RaftServer) { m["consul-server-0"].Leader = true }, five...),
			tasks: with(4, func(t *state.Task) {
				t.Goal, t.PeerRemoved, t.PeerRemovedAt = state.GoalDecommission, true, now.Add(-5*time.Second)
			}),
			removePeer: "[consul-server-4]", why4: "its raft peer 10.0.0.4:8300 is back in the configuration (Consul's leader re-added the alive server): removing it again before it leaves"},
		{name: "peer removed: its leave is not held by the quorum gate (it changes no quorum)",
			raft: raftOf(now, func(m map[string]*RaftServer) {
				m["consul-server-1"].Healthy, m["consul-server-2"].Healthy = false, false
			}, five[:4]...),
			tasks: with(4, func(t *state.Task) { t.Goal, t.PeerRemoved = state.GoalDecommission, true }),
			leave: "[consul-server-4]", why4: "raft peer removed; asking its executor to leave"},
		{name: "a leave asked before its peer was removed (older scheduler) goes on", raft: led0,
			tasks: with(4, func(t *state.Task) {
				t.Goal, t.LeaveSentAt, t.State = state.GoalDecommission, now.Add(-time.Second), "TASK_RUNNING"
			}),
			why4: "leaving the Consul cluster gracefully (asked 1s ago"},
		{name: "leaving: waits for the task to end, no kill, no peer removal", raft: led0,
			tasks: with(4, func(t *state.Task) {
				t.Goal, t.LeaveSentAt, t.State = state.GoalDecommission, now.Add(-10*time.Second), "TASK_KILLING"
			}),
			why4: "leaving the Consul cluster gracefully (asked 10s ago"},
		{name: "no report within the timeout: the peer is removed through the API", raft: led0,
			tasks:      with(4, func(t *state.Task) { t.Goal, t.LeaveSentAt = state.GoalDecommission, now.Add(-LeaveTimeout) }),
			removePeer: "[consul-server-4]", why4: "removing its raft peer 10.0.0.4:8300"},
		{name: "left and ended: the record goes with no force-leave once a raft read shows the peer gone", raft: raftOf(now, nil, five[:4]...),
			tasks: with(4, func(t *state.Task) {
				t.Goal, t.LeaveSentAt, t.Left, t.State, t.UpdatedAt = state.GoalDecommission, now.Add(-10*time.Second), true, "TASK_KILLED", now.Add(-time.Second)
			}),
			deleted: "[consul-server-4]", why3: "waiting for the removal of consul-server-4"},
		{name: "left, but its peer is still there: removed through the API", raft: raftOf(now, nil, append(five[:4:4], killed4)...),
			tasks: with(4, func(t *state.Task) {
				t.Goal, t.LeaveSentAt, t.Left, t.State, t.UpdatedAt = state.GoalDecommission, now.Add(-10*time.Second), true, "TASK_KILLED", now.Add(-time.Second)
			}),
			removePeer: "[consul-server-4]", why4: "is back in the configuration"},
		{name: "ended without leaving: force-left after the peer check", raft: raftOf(now, nil, five[:4]...),
			tasks: with(4, func(t *state.Task) {
				t.Goal, t.LeaveSentAt, t.PeerRemoved, t.State, t.UpdatedAt = state.GoalDecommission, now.Add(-time.Minute), true, "TASK_KILLED", now.Add(-time.Second)
			}),
			deleted: "[consul-server-4]", old: "[consul-server-4]"},
		{name: "the quorum gate holds the leave while the others could not keep quorum without it",
			raft: raftOf(now, func(m map[string]*RaftServer) {
				m["consul-server-1"].Healthy, m["consul-server-2"].Healthy = false, false
			}, five...),
			tasks: with(4, func(t *state.Task) { t.Goal = state.GoalDecommission }),
			why4:  "it would leave 2 healthy voters of 4 (quorum 3)"},
		{name: "killed, but Consul re-added its peer: removed again", raft: raftOf(now, nil, append(five[:4:4], killed4)...),
			tasks: with(4, func(t *state.Task) { *t = killed4 }), removePeer: "[consul-server-4]", why4: "is back in the configuration"},
		{name: "killed: the record waits for a raft read after the kill", raft: raftOf(now.Add(-time.Second), nil, five[:4]...),
			tasks: with(4, func(t *state.Task) { *t = killed4 }), why4: "read after the kill"},
		{name: "peer removed, no report of the leave within the timeout: kill",
			tasks: with(4, func(t *state.Task) {
				t.Goal, t.PeerRemoved, t.LeaveSentAt = state.GoalDecommission, true, now.Add(-LeaveTimeout)
			}),
			kill: "[consul-server-4]", why4: "raft peer removed; killing"},
		{name: "peer removed, not running: kill", tasks: with(4, func(t *state.Task) {
			t.Goal, t.PeerRemoved, t.State = state.GoalDecommission, true, "TASK_STAGING"
		}),
			kill: "[consul-server-4]", why4: "raft peer removed; killing"},
		{name: "killed: the record goes", tasks: with(4, func(t *state.Task) { t.Goal, t.PeerRemoved, t.State = state.GoalDecommission, true, "TASK_KILLED" }),
			deleted: "[consul-server-4]", why3: "waiting for the removal of consul-server-4", old: "[consul-server-4]"},
		{name: "a dead surplus server's peer is removed too", tasks: with(4, func(t *state.Task) { t.State = "TASK_FAILED" }),
			removePeer: "[consul-server-4]", decommissioning: "consul-server-4"},
		{name: "waits while a remaining server is down", tasks: with(1, func(t *state.Task) { t.State = "TASK_FAILED" }),
			why4: "waiting for the remaining servers"},
		{name: "waits while a remaining server is no healthy voter", tasks: five,
			raft: &RaftHealth{At: now, Servers: []RaftServer{{Address: "10.0.0.0:8300", Voter: true, Healthy: true}, {Address: "10.0.0.1:8300", Voter: true, Healthy: true}}},
			why4: "healthy raft voters"},
		{name: "one under way goes on even if others are unsettled", tasks: with(4, func(t *state.Task) { t.Goal = state.GoalDecommission; t.State = "TASK_FAILED" }),
			removePeer: "[consul-server-4]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			raft := c.raft
			if raft == nil {
				raft = viewOf(tasks(c.tasks...))
			}
			r := Reconcile(Input{Target: tg, Tasks: tasks(c.tasks...), Now: now, Raft: raft})
			tr := ""
			if r.Transfer != nil {
				tr = r.Transfer.From + "->" + r.Transfer.To
			}
			if tr != c.transfer {
				t.Errorf("transfer %q, want %q", tr, c.transfer)
			}
			if got := keys(r.RemovePeer); got != orEmpty(c.removePeer) {
				t.Errorf("remove peer %s, want %s", got, orEmpty(c.removePeer))
			}
			if got := kills(r); got != orEmpty(c.kill) {
				t.Errorf("kill %s, want %s", got, orEmpty(c.kill))
			}
			var leaves []string
			for _, l := range r.Leave {
				leaves = append(leaves, l.Name)
				if l.TaskID != r.Tasks[l.Name].TaskID || !r.Tasks[l.Name].LeaveSentAt.Equal(now) {
					t.Errorf("leave %+v: the record does not say it was sent now: %+v", l, r.Tasks[l.Name])
				}
			}
			if got := fmt.Sprint(leaves); got != orEmpty(c.leave) {
				t.Errorf("leave %s, want %s", got, orEmpty(c.leave))
			}
			var old []string
			for n := range r.Old {
				old = append(old, n)
			}
			if got := fmt.Sprint(old); got != orEmpty(c.old) {
				t.Errorf("old (force-left) %s, want %s", got, orEmpty(c.old))
			}
			if got := fmt.Sprint(r.Deleted); got != orEmpty(c.deleted) {
				t.Errorf("deleted %s, want %s", got, orEmpty(c.deleted))
			}
			if c.decommissioning != "" && r.Tasks[c.decommissioning].Goal != state.GoalDecommission {
				t.Errorf("%s goal %q", c.decommissioning, r.Tasks[c.decommissioning].Goal)
			}
			if !strings.Contains(r.ScaleDown["consul-server-4"], c.why4) || !strings.Contains(r.ScaleDown["consul-server-3"], c.why3) {
				t.Errorf("scale-down reasons %v", r.ScaleDown)
			}
			_, l3 := r.Launch["consul-server-3"]
			_, l4 := r.Launch["consul-server-4"]
			if l3 || l4 || len(r.Replace) != 0 {
				t.Errorf("a surplus server is relaunched or replaced: launch %v replace %v", r.Launch, r.Replace)
			}
		})
	}
}

// TestScaleDownShowsWhomItWaitsFor: a server that is no healthy voter
// yet keeps its reason while a scale-down waits for it.
func TestScaleDownShowsWhomItWaitsFor(t *testing.T) {
	tg := target(func(c *config.Config) { c.ServerCount = 3 })
	ts := tasks(srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING"), srv(3, "TASK_RUNNING"))
	r := Reconcile(Input{Target: tg, Tasks: ts, Now: now, Raft: &RaftHealth{At: now, Servers: []RaftServer{
		{Address: "10.0.0.0:8300", Voter: true, Healthy: true}, {Address: "10.0.0.1:8300", Voter: true, Healthy: true},
		{Address: "10.0.0.2:8300", Voter: false}, {Address: "10.0.0.3:8300", Voter: true, Healthy: true}}}})
	if len(r.RemovePeer) != 0 || !strings.Contains(r.ScaleDown["consul-server-3"], "healthy raft voters") {
		t.Fatalf("remove %v, scale-down %v", r.RemovePeer, r.ScaleDown)
	}
	if !strings.Contains(r.Settling["consul-server-2"], "non-voter") {
		t.Fatalf("settling %v", r.Settling)
	}
}

// TestRestartQueued: pods queued by a plan restart (same configuration)
// roll like a configuration change: one server at a time, the kill
// clears the mark; a client batch; nothing while Consul's view is unknown.
func TestRestartQueued(t *testing.T) {
	queued := func(ts ...state.Task) []state.Task {
		for i := range ts {
			ts[i].RestartQueued = true
		}
		return ts
	}
	all := tasks(queued(srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING"), cli("S8", "TASK_RUNNING"), cli("S9", "TASK_RUNNING"))...)
	tg := target(func(*config.Config) {})
	r := Reconcile(Input{Target: tg, Tasks: all, Now: now, Raft: viewOf(all)})
	if got := fmt.Sprint(r.Update); got != "[consul-client-s8 consul-client-s9 consul-server-0 consul-server-1 consul-server-2]" {
		t.Errorf("update %s", got)
	}
	if got := kills(r); got != "[consul-client-s8 consul-server-0]" {
		t.Errorf("kill %s, want one server and one client", got)
	}
	if k := r.Tasks["consul-server-0"]; k.RestartQueued || k.Goal != state.GoalRestart {
		t.Errorf("consul-server-0 after its kill: queued %v goal %s", k.RestartQueued, k.Goal)
	}
	for _, k := range r.Kill {
		if !strings.Contains(k.Why, "restart requested through the plan API") {
			t.Errorf("kill %s: %s", k.Name, k.Why)
		}
	}
	r = Reconcile(Input{Target: tg, Tasks: all, Now: now, Raft: nil})
	for _, k := range r.Kill {
		if strings.HasPrefix(k.Name, "consul-server-") {
			t.Errorf("%s killed while Consul's raft view is unknown", k.Name)
		}
	}
}

// TestRestartQueuedWithReason: clients the scheduler queued itself (after
// a snapshot restore that replaced Consul's CA) roll in batches like a
// plan restart; the kill says the scheduler's reason and clears it.
func TestRestartQueuedWithReason(t *testing.T) {
	why := "the snapshot restore replaced Consul's CA roots"
	var cs []state.Task
	for _, a := range []string{"S6", "S7", "S8", "S9"} {
		c := cli(a, "TASK_RUNNING")
		c.RestartQueued, c.RestartWhy = true, why
		cs = append(cs, c)
	}
	all := tasks(append([]state.Task{srv(0, "TASK_RUNNING"), srv(1, "TASK_RUNNING"), srv(2, "TASK_RUNNING")}, cs...)...)
	tg := target(func(*config.Config) {})
	r := Reconcile(Input{Target: tg, Tasks: all, Now: now, Raft: viewOf(all)})
	if got := kills(r); got != "[consul-client-s6]" {
		t.Fatalf("kill %s, want one client (a batch of 5 %% of 4, at least 1) and no server", got)
	}
	if r.Kill[0].Why != why+" (rolling restart, clients in batches)" {
		t.Errorf("kill why %q", r.Kill[0].Why)
	}
	if k := r.Tasks["consul-client-s6"]; k.RestartQueued || k.RestartWhy != "" || k.Goal != state.GoalRestart {
		t.Errorf("after its kill: queued %v why %q goal %s", k.RestartQueued, k.RestartWhy, k.Goal)
	}
	if k := r.Tasks["consul-client-s7"]; !k.RestartQueued || k.RestartWhy != why {
		t.Errorf("the next client lost its mark: queued %v why %q", k.RestartQueued, k.RestartWhy)
	}
}
