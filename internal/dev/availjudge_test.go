package dev

import (
	"strings"
	"testing"
	"time"
)

// TestJudgeLeaders checks the availability test's leader invariant on
// hand-made samples (no cluster).
func TestJudgeLeaders(t *testing.T) {
	const a, b, c = "10.0.0.1", "10.0.0.2", "10.0.0.3"
	la, lb := a+":8300", b+":8300"
	t0 := time.Unix(1000, 0)
	ok := func(l string, term uint64) probe { return probe{leader: l, term: term} }
	none := probe{}
	down := probe{down: true}
	slow := probe{unknown: true}
	sample := func(i int, members []string, pa, pb, pc probe) leaderSample {
		return leaderSample{at: t0.Add(time.Duration(i) * 100 * time.Millisecond), members: members,
			probes: map[string]probe{a: pa, b: pb, c: pc}}
	}
	all := []string{a, b, c}
	for _, tc := range []struct {
		name       string
		samples    []leaderSample
		violations int
		changes    int
		excused    int
		noLeader   time.Duration
	}{
		{"a follower restarts: one voter down, then back without a leader, then caught up", []leaderSample{
			sample(0, all, ok(la, 2), ok(la, 2), ok(la, 2)),
			sample(1, all, ok(la, 2), ok(la, 2), down),
			sample(2, all, ok(la, 2), ok(la, 2), none),
			sample(3, all, ok(la, 2), ok(la, 2), ok(la, 2)),
		}, 0, 0, 0, 0},
		{"two voters down at once", []leaderSample{
			sample(0, all, ok(la, 2), ok(la, 2), ok(la, 2)),
			sample(1, all, ok(la, 2), down, down),
			sample(2, all, ok(la, 2), ok(la, 2), ok(la, 2)),
		}, 1, 0, 0, 0},
		{"the handover: two without a leader while it moves from a to b", []leaderSample{
			sample(0, all, ok(la, 2), ok(la, 2), ok(la, 2)),
			sample(1, all, none, none, ok(la, 2)),
			sample(2, all, none, none, none),
			sample(3, all, ok(lb, 3), ok(lb, 3), ok(lb, 3)),
		}, 0, 1, 2, 100 * time.Millisecond},
		{"an election that re-elects the same leader in a new term is a change", []leaderSample{
			sample(0, all, ok(la, 2), ok(la, 2), ok(la, 2)),
			sample(1, all, ok(la, 2), none, none),
			sample(2, all, ok(la, 3), ok(la, 3), ok(la, 3)),
		}, 0, 1, 1, 0},
		{"two without a leader, same leader and term around: not a handover", []leaderSample{
			sample(0, all, ok(la, 2), ok(la, 2), ok(la, 2)),
			sample(1, all, ok(la, 2), none, down),
			sample(2, all, ok(la, 2), ok(la, 2), ok(la, 2)),
		}, 1, 0, 0, 0},
		{"a server removed from the configuration before it is killed is no voter", []leaderSample{
			sample(0, all, ok(la, 2), ok(la, 2), ok(la, 2)),
			sample(1, []string{a, b}, ok(la, 2), ok(la, 2), down),
			sample(2, []string{a, b}, ok(la, 2), none, down),
		}, 0, 0, 0, 0},
		{"an unanswered probe says nothing", []leaderSample{
			sample(0, all, ok(la, 2), ok(la, 2), ok(la, 2)),
			sample(1, all, ok(la, 2), slow, down),
			sample(2, all, ok(la, 2), ok(la, 2), ok(la, 2)),
		}, 0, 0, 0, 0},
		{"membership unknown: not judged", []leaderSample{
			sample(0, all, ok(la, 2), ok(la, 2), ok(la, 2)),
			sample(1, nil, none, down, down),
			sample(2, all, ok(la, 2), ok(la, 2), ok(la, 2)),
		}, 0, 0, 0, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := judgeLeaders(tc.samples)
			if len(v.Violations) != tc.violations || v.Changes != tc.changes || v.Excused != tc.excused || v.NoLeader != tc.noLeader {
				t.Errorf("got violations %d (%s), changes %d, excused %d, no leader %s; want %d, %d, %d, %s",
					len(v.Violations), strings.Join(v.Violations, "; "), v.Changes, v.Excused, v.NoLeader,
					tc.violations, tc.changes, tc.excused, tc.noLeader)
			}
		})
	}
}
