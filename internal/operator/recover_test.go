package operator

import (
	"strings"
	"testing"
)

func TestVerdict(t *testing.T) {
	up := func(name string, idx uint64, leader string) ServerView {
		return ServerView{Name: name, Answered: true, LastIndex: idx, Leader: leader}
	}
	down := func(name string) ServerView { return ServerView{Name: name, Error: "connection refused"} }
	for _, c := range []struct {
		name  string
		n     int
		views []ServerView
		lost  bool
		want  string
	}{
		{"healthy", 3, []ServerView{up("s0", 9, "10.0.0.1:8300"), up("s1", 9, "10.0.0.1:8300"), down("s2")}, false, "quorum: yes"},
		{"electing", 3, []ServerView{up("s0", 9, ""), up("s1", 9, ""), down("s2")}, false, "an election"},
		{"two of three lost", 3, []ServerView{down("s0"), up("s1", 41, ""), down("s2")}, true, "survivors: s1; the freshest raft log is s1's (index 41)"},
		{"three of five lost", 5, []ServerView{up("s0", 40, ""), up("s1", 42, ""), down("s2"), down("s3"), down("s4")}, true, "only 2 of 5"},
		{"none answers", 3, []ServerView{down("s0"), down("s1"), down("s2")}, true, "survivors: none"},
	} {
		v := Verdict(c.n, c.views)
		if v.Lost != c.lost || !strings.Contains(v.Summary, c.want) {
			t.Errorf("%s: lost %v, %q; want %v, %q", c.name, v.Lost, v.Summary, c.lost, c.want)
		}
	}
	if v := Verdict(5, []ServerView{up("s0", 40, ""), up("s1", 42, "")}); v.Freshest != "s1" {
		t.Fatalf("freshest %q", v.Freshest)
	}
}
