package dev

import (
	"strings"
	"testing"
)

func TestStatusLine(t *testing.T) {
	s := Status{Agents: 5, Tasks: map[string]int{"staging": 2, "running": 3}, Plan: "IN_PROGRESS", Steps: 5, StepsDone: 3}
	if got, want := s.Line(), "agents 5 | tasks: 3 running, 2 staging | no leader yet | deploy in progress 3/5"; got != want {
		t.Errorf("Line() = %q, want %q", got, want)
	}
	s.Leader, s.Plan = "127.0.0.2:8300", "COMPLETE"
	if !s.Ready() || !strings.Contains(s.Line(), "leader elected (127.0.0.2:8300)") {
		t.Errorf("ready status: %v %q", s.Ready(), s.Line())
	}
	s = Status{Tasks: map[string]int{}, Err: "scheduler: not answering (connection refused)"}
	if got := s.Line(); !strings.Contains(got, "tasks: none yet") || !strings.HasSuffix(got, "connection refused)") {
		t.Errorf("Line() = %q", got)
	}
	if sum := Summary(Status{Leader: "l", ConsulHTTP: "127.0.0.2:8500", Agents: 5}, "http://127.0.0.1:9", "http://127.0.0.1:5050", "127.0.0.1:61053", "/w"); !strings.Contains(sum, "http://127.0.0.1:9/ ") ||
		!strings.Contains(sum, "dig @127.0.0.1 -p 61053 _http._consul-server-0._tcp.consul.mesos SRV") {
		t.Errorf("summary:\n%s", sum)
	}
}
