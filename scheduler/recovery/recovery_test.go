package recovery

import (
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/plan"
)

func up(name string, index uint64, leader string) Server {
	return Server{Name: name, Reachable: true, LastIndex: index, Leader: leader, NodeID: "id-" + name, RaftAddr: name + ":8300"}
}

func down(name string) Server { return Server{Name: name, Err: "connection refused"} }

func TestAssess(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := 30 * time.Second
	led := Quorum{SeenLeader: true}
	cases := []struct {
		name      string
		prev      Quorum
		at        time.Duration // after t0
		servers   []Server
		lost      bool
		since     time.Duration // LeaderlessSince after t0; -1: zero
		survivors string
		say       string
	}{
		{"healthy", Quorum{}, 0, []Server{up("s0", 9, "s1"), up("s1", 9, "s1"), up("s2", 9, "s1")}, false, -1, "s0,s1,s2", "leader s1"},
		{"a leader with a minority answering is not lost", led, 0, []Server{up("s0", 9, "s0"), down("s1"), down("s2")}, false, -1, "s0", "leader s0"},
		{"leaderless, majority answers: an election", led, time.Hour, []Server{up("s0", 9, ""), up("s1", 8, ""), down("s2")}, false, time.Hour, "s0,s1", "election"},
		{"leaderless, minority, under the threshold", led, 10 * time.Second, []Server{up("s0", 9, ""), down("s1"), down("s2")}, false, 10 * time.Second, "s0", "after 30s"},
		{"leaderless since earlier, minority, past the threshold",
			Quorum{SeenLeader: true, LeaderlessSince: t0}, 31 * time.Second, []Server{down("s0"), up("s1", 7, ""), down("s2")}, true, 0, "s1", "QUORUM LOST"},
		{"exactly the threshold counts as lost",
			Quorum{SeenLeader: true, LeaderlessSince: t0}, 30 * time.Second, []Server{up("s0", 5, ""), down("s1"), down("s2")}, true, 0, "s0", "recover --confirm"},
		{"no server answers", Quorum{SeenLeader: true, LeaderlessSince: t0}, time.Minute, []Server{down("s0"), down("s1"), down("s2")}, true, 0, "", "No server survives"},
		{"never led, no raft log: not bootstrapped", Quorum{LeaderlessSince: t0}, time.Hour, []Server{up("s0", 0, ""), down("s1"), down("s2")}, false, 0, "s0", "not bootstrapped"},
		{"never seen leading by this scheduler, but a raft log: lost (restart during an outage)",
			Quorum{LeaderlessSince: t0}, time.Minute, []Server{up("s0", 12, ""), down("s1"), down("s2")}, true, 0, "s0", "s0 (raft index 12)"},
		{"five servers, two answer", Quorum{SeenLeader: true, LeaderlessSince: t0}, time.Minute,
			[]Server{up("s0", 3, ""), down("s1"), up("s2", 4, ""), down("s3"), down("s4")}, true, 0, "s2,s0", "lost: s1, s3, s4"},
		{"five servers, three answer without a leader: not lost", Quorum{SeenLeader: true, LeaderlessSince: t0}, time.Hour,
			[]Server{up("s0", 3, ""), down("s1"), up("s2", 4, ""), up("s3", 4, ""), down("s4")}, false, 0, "s2,s3,s0", "a majority is 3"},
		{"a clock going back restarts the leaderless period", Quorum{SeenLeader: true, LeaderlessSince: t0.Add(time.Hour)}, time.Minute,
			[]Server{up("s0", 3, ""), down("s1"), down("s2")}, false, time.Minute, "s0", "after 30s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := Assess(c.prev, Observation{At: t0.Add(c.at), Configured: len(c.servers), Servers: c.servers}, th)
			if q.Lost != c.lost {
				t.Errorf("lost %v, want %v: %s", q.Lost, c.lost, q.Summary)
			}
			var names []string
			for _, s := range q.Survivors {
				names = append(names, s.Name)
			}
			if got := strings.Join(names, ","); got != c.survivors {
				t.Errorf("survivors %q, want %q", got, c.survivors)
			}
			wantSince := time.Time{}
			if c.since >= 0 {
				wantSince = t0.Add(c.since)
			}
			if !q.LeaderlessSince.Equal(wantSince) {
				t.Errorf("leaderless since %v, want %v", q.LeaderlessSince, wantSince)
			}
			if !strings.Contains(q.Summary, c.say) {
				t.Errorf("summary %q does not say %q", q.Summary, c.say)
			}
		})
	}
}

// TestAssessOverTime: a run of observations as the shell makes them: a
// healthy cluster, two servers lost, the threshold passes, recovery
// brings a leader back and the verdict clears by itself.
func TestAssessOverTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		at      time.Duration
		servers []Server
		lost    bool
	}{
		{0, []Server{up("s0", 10, "s0"), up("s1", 10, "s0"), up("s2", 10, "s0")}, false},
		{5 * time.Second, []Server{down("s0"), down("s1"), up("s2", 11, "")}, false},
		{20 * time.Second, []Server{down("s0"), down("s1"), up("s2", 11, "")}, false},
		{35 * time.Second, []Server{down("s0"), down("s1"), up("s2", 11, "")}, true},
		{90 * time.Second, []Server{down("s0"), down("s1"), up("s2", 11, "")}, true},
		{95 * time.Second, []Server{down("s0"), down("s1"), up("s2", 12, "s2")}, false},
		{100 * time.Second, []Server{down("s0"), down("s1"), up("s2", 13, "")}, false}, // leaderless again: the clock restarts
		{131 * time.Second, []Server{down("s0"), down("s1"), up("s2", 13, "")}, true},
	}
	var q Quorum
	for i, s := range steps {
		q = Assess(q, Observation{At: t0.Add(s.at), Configured: 3, Servers: s.servers}, DefaultThreshold)
		if q.Lost != s.lost {
			t.Fatalf("step %d (+%s): lost %v, want %v: %s", i, s.at, q.Lost, s.lost, q.Summary)
		}
	}
	if q.Freshest != "s2" || len(q.LostServers) != 2 {
		t.Fatalf("freshest %q lost %v", q.Freshest, q.LostServers)
	}
}

func TestStep(t *testing.T) {
	lost := Quorum{Lost: true, Summary: "QUORUM LOST: ... recover --confirm"}
	if _, _, ok := Step(Quorum{Summary: "quorum: yes"}, Work{}); ok {
		t.Fatal("a step while quorum is fine and nothing is under way")
	}
	if st, msg, ok := Step(lost, Work{}); !ok || st != "ERROR" || !strings.Contains(msg, "recover --confirm") {
		t.Fatalf("lost: %s %q", st, msg)
	}
	st, msg, ok := Step(lost, Work{Restarting: []string{"s2"}, Replacing: []string{"s0", "s1"}})
	if !ok || st != "IN_PROGRESS" || !strings.Contains(msg, "restarting s2") || !strings.Contains(msg, "replacing the lost s0, s1") {
		t.Fatalf("under way: %s %q", st, msg)
	}
}

func TestStatusesArePlans(t *testing.T) {
	if statusInProgress != plan.InProgress || statusError != plan.Error {
		t.Errorf("recovery's statuses %q, %q are not plan's %q, %q", statusInProgress, statusError, plan.InProgress, plan.Error)
	}
}
