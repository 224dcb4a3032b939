package state

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

var t0 = time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC)

func status(id string, st mesos.TaskState, reason *mesos.TaskStatus_Reason, healthy *bool) mesos.TaskStatus {
	s := mesos.TaskStatus{TaskID: mesos.TaskID{Value: id}, State: &st, Reason: reason, Healthy: healthy}
	return s
}

func reason(r mesos.TaskStatus_Reason) *mesos.TaskStatus_Reason { return &r }
func boolp(b bool) *bool                                        { return &b }

func TestApplyStatus(t *testing.T) {
	base := Task{Name: "consul-server-0", Role: taskspec.RoleServer, TaskID: "consul-server-0__a", AgentID: "S1", State: "TASK_STAGING",
		Reservation: &Reservation{ID: "r", PersistenceID: "p"}}
	cases := []struct {
		name      string
		from      func(Task) Task
		st        mesos.TaskStatus
		outcome   Outcome
		state     string
		failures  int
		confirmed bool
		failing   bool
	}{
		{"starting confirms the reservation", nil, status("consul-server-0__a", mesos.TASK_STARTING, nil, nil), Applied, "TASK_STARTING", 0, true, false},
		{"running", nil, status("consul-server-0__a", mesos.TASK_RUNNING, nil, nil), Applied, "TASK_RUNNING", 0, true, false},
		{"older incarnation is stale", nil, status("consul-server-0__old", mesos.TASK_FAILED, nil, nil), Stale, "TASK_STAGING", 0, false, false},
		{"executor terminated counts a failure", nil, status("consul-server-0__a", mesos.TASK_FAILED, reason(mesos.REASON_EXECUTOR_TERMINATED), nil), Applied, "TASK_FAILED", 1, false, true},
		{"terminal is final", func(t Task) Task { t.State = "TASK_FAILED"; return t }, status("consul-server-0__a", mesos.TASK_RUNNING, nil, nil), Stale, "TASK_FAILED", 0, false, false},
		{"lost then running again (partition healed)", func(t Task) Task { t.State = "TASK_LOST"; t.FailingSince = t0; return t }, status("consul-server-0__a", mesos.TASK_RUNNING, nil, nil), Applied, "TASK_RUNNING", 0, true, false},
		{"unreachable starts the failing clock", func(t Task) Task { t.State = "TASK_RUNNING"; return t }, status("consul-server-0__a", mesos.TASK_UNREACHABLE, nil, nil), Applied, "TASK_UNREACHABLE", 0, false, true},
		{"killed on purpose is no failure", func(t Task) Task { t.State = "TASK_KILLING"; t.Goal = GoalRestart; return t }, status("consul-server-0__a", mesos.TASK_KILLED, nil, nil), Applied, "TASK_KILLED", 0, false, true},
		{"killed by someone else is a failure", func(t Task) Task { t.State = "TASK_RUNNING"; return t }, status("consul-server-0__a", mesos.TASK_KILLED, nil, nil), Applied, "TASK_KILLED", 1, false, true},
		{"reconciliation unknown ends the incarnation", nil, status("consul-server-0__a", mesos.TASK_UNKNOWN, reason(mesos.REASON_RECONCILIATION), nil), Applied, "TASK_UNKNOWN", 1, false, true},
		{"same state again is ignored", func(t Task) Task { t.State = "TASK_RUNNING"; return t }, status("consul-server-0__a", mesos.TASK_RUNNING, nil, nil), Applied, "TASK_RUNNING", 0, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			from := base
			from.Reservation = &Reservation{ID: "r", PersistenceID: "p"}
			if c.from != nil {
				from = c.from(from)
			}
			before := *from.Reservation
			got, out := ApplyStatus(from, c.st, t0)
			if out != c.outcome {
				t.Fatalf("outcome %s, want %s", out, c.outcome)
			}
			if *from.Reservation != before {
				t.Fatal("ApplyStatus mutated its input")
			}
			if got.State != c.state || got.Failures != c.failures || got.Reservation.Confirmed != c.confirmed || got.FailingSince.IsZero() == c.failing {
				t.Fatalf("got state %s failures %d confirmed %v failingSince %v", got.State, got.Failures, got.Reservation.Confirmed, got.FailingSince)
			}
		})
	}
}

func TestApplyStatusHealthAndReason(t *testing.T) {
	tk := Task{TaskID: "x__1", State: "TASK_RUNNING"}
	got, out := ApplyStatus(tk, status("x__1", mesos.TASK_RUNNING, nil, boolp(true)), t0)
	if out != Applied || got.Healthy == nil || !*got.Healthy || !got.UpdatedAt.Equal(t0) {
		t.Fatalf("%+v %s", got, out)
	}
	got2, out := ApplyStatus(got, status("x__1", mesos.TASK_RUNNING, nil, boolp(true)), t0.Add(time.Second))
	if out != Ignored || !got2.UpdatedAt.Equal(t0) {
		t.Fatalf("duplicate update changed the record: %s", out)
	}
	got3, _ := ApplyStatus(got, status("x__1", mesos.TASK_FAILED, reason(mesos.REASON_EXECUTOR_TERMINATED), nil), t0)
	if got3.Reason != "REASON_EXECUTOR_TERMINATED" || got3.Healthy != nil {
		t.Fatalf("%+v", got3)
	}
}

func TestTargetConfigID(t *testing.T) {
	c := config.Defaults()
	a := TargetFrom(c)
	c.ServerCount = 5
	c.ReplaceAfter = time.Hour
	if b := TargetFrom(c); b.ConfigID != a.ConfigID {
		t.Fatal("server count or replace time changed the config id: that would restart every task")
	}
	c.Datacenter = "dc2"
	if b := TargetFrom(c); b.ConfigID == a.ConfigID {
		t.Fatal("datacenter change kept the config id")
	}
	c = config.Defaults()
	c.ServerPlacement = `[["hostname","UNIQUE"]]`
	if p := TargetFrom(c).Placement; len(p) != 1 || p[0][1] != "UNIQUE" {
		t.Fatalf("placement %v", p)
	}
}

// The gRPC TLS port is in the target only with TLS; without, the target's
// ports encode as before it existed, so upgrading the scheduler keeps the
// configuration IDs (no restart) of a cluster without TLS.
func TestTargetGRPCTLSPort(t *testing.T) {
	c := config.Defaults()
	c.TLS, c.Ports.HTTPS, c.Ports.GRPCTLS = false, -1, -1
	plain := TargetFrom(c)
	b, _ := json.Marshal(plain.Ports)
	if plain.Ports.GRPCTLS != 0 || strings.Contains(string(b), "grpc_tls") {
		t.Fatalf("a target without TLS has a gRPC TLS port: %s", b)
	}
	if got := ConfigFromTarget(c, plain).Ports.GRPCTLS; got != -1 {
		t.Fatalf("ConfigFromTarget: gRPC TLS port %d without TLS, want -1", got)
	}
	c.TLS, c.Ports.HTTPS, c.Ports.GRPCTLS = true, config.DefaultHTTPSPort, config.DefaultGRPCTLSPort
	tls := TargetFrom(c)
	if tls.Ports.GRPCTLS != config.DefaultGRPCTLSPort || tls.Ports.HTTP != -1 {
		t.Fatalf("TLS target ports %+v", tls.Ports)
	}
	if l := tls.PortList(); !slices.Contains(l, config.DefaultGRPCTLSPort) {
		t.Fatalf("port list %v misses the gRPC TLS port", l)
	}
	if got := ConfigFromTarget(c, tls).Ports.GRPCTLS; got != config.DefaultGRPCTLSPort {
		t.Fatalf("ConfigFromTarget: gRPC TLS port %d", got)
	}
	if tls.ServerConfigID == plain.ServerConfigID {
		t.Fatal("the gRPC TLS port is not part of the configuration ID")
	}
}

func TestNames(t *testing.T) {
	if ClientName("ABC-S1") != "consul-client-abc-s1" || ServerName(2) != "consul-server-2" {
		t.Fatal("names")
	}
	for id, want := range map[string]string{
		"consul-server-1__u": "consul-server-1", "consul-client-a-s1__u": "consul-client-a-s1",
		"other__u": "", "consul-server-1": "", "__u": "",
	} {
		if got := NameOfTaskID(id); got != want {
			t.Errorf("NameOfTaskID(%q) = %q, want %q", id, got, want)
		}
	}
	ts := Tasks{"consul-client-b": {Name: "consul-client-b", Role: taskspec.RoleClient}, "consul-server-10": {Name: "consul-server-10", Role: taskspec.RoleServer, Index: 10},
		"consul-server-2": {Name: "consul-server-2", Role: taskspec.RoleServer, Index: 2}}
	s := ts.Sorted()
	if s[0].Name != "consul-server-2" || s[1].Name != "consul-server-10" || s[2].Name != "consul-client-b" {
		t.Fatalf("sorted %v", s)
	}
}

func TestApplyStatusStoresABoundedMessage(t *testing.T) {
	from := Task{Name: "consul-server-0", Role: taskspec.RoleServer, TaskID: "consul-server-0__a", AgentID: "S1", State: "TASK_STAGING"}
	st := status("consul-server-0__a", mesos.TASK_FAILED, nil, nil)
	msg := strings.Repeat("m", 2<<20)
	st.Message = &msg
	got, _ := ApplyStatus(from, st, t0)
	if len(got.Message) > MaxMessage || !strings.HasPrefix(got.Message, "mmm") {
		t.Fatalf("stored %d bytes", len(got.Message))
	}
}

// TestApplyStatusLeft: only a terminal status labelled consul_left=true
// marks the record as gone after a graceful leave; "false", no label, or
// a live status do not.
func TestApplyStatusLeft(t *testing.T) {
	running := Task{TaskID: "x__1", State: "TASK_KILLING", Goal: GoalDecommission}
	withLabel := func(st mesos.TaskStatus, v string) mesos.TaskStatus {
		st.Labels = &mesos.Labels{Labels: []mesos.Label{{Key: taskspec.LabelLeft, Value: &v}}}
		return st
	}
	for _, c := range []struct {
		name string
		st   mesos.TaskStatus
		want bool
	}{
		{"killed after a graceful leave", withLabel(status("x__1", mesos.TASK_KILLED, nil, nil), "true"), true},
		{"killed, leave incomplete", withLabel(status("x__1", mesos.TASK_KILLED, nil, nil), "false"), false},
		{"killed without a label", status("x__1", mesos.TASK_KILLED, nil, nil), false},
		{"a live status with the label", withLabel(status("x__1", mesos.TASK_RUNNING, nil, nil), "true"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _ := ApplyStatus(running, c.st, t0)
			if got.Left != c.want {
				t.Fatalf("Left %v, want %v", got.Left, c.want)
			}
		})
	}
}
