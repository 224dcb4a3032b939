package dev

import (
	"strings"
	"testing"
	"time"
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
	// The DNS port the scheduler gave the agents (dev --env CONSUL_PORT_DNS=...).
	if sum := Summary(Status{Leader: "l", ConsulHTTP: "127.0.0.2:8500", ConsulDNSPort: 8653}, "http://127.0.0.1:9", "http://127.0.0.1:5050", "127.0.0.1:61053", "/w"); !strings.Contains(sum, "dig @127.0.0.2 -p 8653 consul.service.consul") {
		t.Errorf("summary with a moved DNS port:\n%s", sum)
	}
	// TLS (the default): HTTPS, where the CA is, and the https named port.
	if sum := Summary(Status{Leader: "l", ConsulHTTP: "https://127.0.0.2:8501", Agents: 5}, "http://127.0.0.1:9", "http://127.0.0.1:5050", "127.0.0.1:61053", "/w"); !strings.Contains(sum, "Consul HTTP API   https://127.0.0.2:8501   (TLS: curl --cacert <(curl -s http://127.0.0.1:9/v1/tls/ca))") ||
		!strings.Contains(sum, "dig @127.0.0.1 -p 61053 _https._consul-server-0._tcp.consul.mesos SRV") || !strings.Contains(sum, "dig @127.0.0.2 -p 8600") {
		t.Errorf("summary with TLS:\n%s", sum)
	}
}

// TestConsoleView: piped, a line per change and the summary once; on a
// terminal, the line redrawn in place with a spinner; quiet, the summary
// only; a warning once when Consul is not up in time.
func TestConsoleView(t *testing.T) {
	t0 := time.Unix(1000, 0)
	starting := Status{Agents: 5, Tasks: map[string]int{"staging": 5}, Plan: "IN_PROGRESS", Steps: 5}
	up := Status{Agents: 5, Tasks: map[string]int{"running": 5}, Leader: "127.0.0.3:8300", Plan: "COMPLETE", Steps: 5, StepsDone: 5}
	run := func(con Console, ss ...Status) string {
		var b strings.Builder
		con.Out = &b
		v := &view{con: con, start: t0, readyTimeout: 10 * time.Second, notReady: "see the log",
			summary: func(s Status) string { return "Consul is up: SUMMARY\n" }}
		for i, s := range ss {
			v.update(t0.Add(time.Duration(i)*time.Second), s)
		}
		return b.String()
	}
	piped := run(Console{}, starting, starting, up, up)
	if strings.Count(piped, "tasks: 5 staging") != 1 || strings.Count(piped, "leader elected") != 1 ||
		strings.Count(piped, "Consul is up after 2s: SUMMARY") != 1 || strings.Contains(piped, "\r") {
		t.Errorf("piped:\n%q", piped)
	}
	live := run(Console{Live: true, Width: 40}, starting, up)
	if !strings.Contains(live, "\r\033[K⠋ agents 5") || !strings.Contains(live, "…") || strings.Count(live, "SUMMARY") != 1 {
		t.Errorf("live:\n%q", live)
	}
	quiet := run(Console{Quiet: true}, starting, up)
	if quiet != "\nConsul is up after 1s: SUMMARY\n\n" {
		t.Errorf("quiet:\n%q", quiet)
	}
	var late []Status
	for i := 0; i < 15; i++ {
		late = append(late, starting)
	}
	if got := run(Console{Quiet: true}, late...); strings.Count(got, "No Consul leader after 10s: see the log.") != 1 {
		t.Errorf("not up in time:\n%q", got)
	}
	// A leader for 30 s with a client still on its way: the summary anyway.
	leaderOnly := up
	leaderOnly.Plan = "IN_PROGRESS"
	var slow []Status
	for i := 0; i < 33; i++ {
		slow = append(slow, leaderOnly)
	}
	if got := run(Console{Quiet: true}, slow...); strings.Count(got, "SUMMARY") != 1 {
		t.Errorf("leader without a complete deployment:\n%q", got)
	}
}
