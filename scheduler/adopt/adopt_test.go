package adopt

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

var now = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func target() state.Target {
	c := config.Defaults()
	c.ExecutorURI = "http://x/dcos-consul"
	return state.TargetFrom(c)
}

func task(id, agent, st, ports string) Task {
	t := Task{ID: id, Name: state.NameOfTaskID(id), SlaveID: agent, State: st,
		Labels: []Label{{Key: "dcos_consul_config_id", Value: "cfg-1"}}, Statuses: []Status{{State: st, Timestamp: 1.7e9}}}
	t.Resources.Ports = ports
	return t
}

func TestDecide(t *testing.T) {
	tg := target() // service "consul", role consul-role, principal consul-principal
	agents := []Agent{{ID: "S1", Hostname: "a1", PID: "slave(1)@10.0.0.1:5051"}, {ID: "S2", Hostname: "a2", PID: "slave(1)@10.0.0.2:5051"}}
	ours := Framework{ID: "F-old", Name: "consul", Principal: "consul-principal", Roles: []string{"consul-role"}, RegisteredTime: 100,
		Tasks: []Task{
			task("consul-server-0__a", "S1", "TASK_RUNNING", "[8300-8302, 8501-8501, 8503-8503, 8600-8600]"),
			task("consul-server-0__stale", "S1", "TASK_STAGING", "[8300-8302]"),
			task("consul-client-s2__b", "S2", "TASK_RUNNING", "[8301-8301, 8501-8501, 8503-8503, 8600-8600]"),
			task("consul-server-1__c", "S2", "TASK_FINISHED", "[8300-8302]"),
			task("someone-else__d", "S2", "TASK_RUNNING", ""),
		},
		UnreachableTasks: []Task{task("consul-server-2__e", "S3", "TASK_UNREACHABLE", "[8300-8302]")},
	}
	other := Framework{ID: "F-other", Name: "consul-dc2", Principal: "consul-principal", Roles: []string{"consul-role"}, RegisteredTime: 200}
	wrongPrincipal := Framework{ID: "F-p", Name: "consul", Principal: "intruder", Roles: []string{"consul-role"}, RegisteredTime: 300}
	older := Framework{ID: "F-older", Name: "consul", Principal: "consul-principal", Role: "consul-role", RegisteredTime: 50}

	r := Decide(MasterState{Frameworks: []Framework{other, wrongPrincipal, older, ours}, Slaves: agents}, tg, now)
	if r.FrameworkID != "F-old" || !strings.Contains(r.Why, "not F-older") {
		t.Fatalf("framework %q: %s", r.FrameworkID, r.Why)
	}
	if len(r.Tasks) != 3 {
		t.Fatalf("records %v", r.Tasks)
	}
	s0 := r.Tasks["consul-server-0"]
	if s0.TaskID != "consul-server-0__a" || s0.Role != taskspec.RoleServer || s0.Index != 0 || s0.AgentID != "S1" || s0.Hostname != "a1" ||
		s0.IP != "10.0.0.1" || s0.ConfigID != "cfg-1" || !s0.Running() || s0.Reservation != nil || s0.Ports != tg.Ports ||
		!strings.Contains(s0.Adopted, "F-old") {
		t.Fatalf("server record %+v", s0)
	}
	c := r.Tasks["consul-client-s2"]
	if c.Role != taskspec.RoleClient || c.Ports.SerfWAN != -1 || c.Ports.Server != tg.Ports.Server || c.Ports.HTTP != tg.Ports.HTTP {
		t.Fatalf("client record %+v", c)
	}
	if u := r.Tasks["consul-server-2"]; u.State != "TASK_UNREACHABLE" || u.FailingSince != now {
		t.Fatalf("unreachable record %+v", u)
	}

	for name, ms := range map[string]MasterState{
		"nothing registered":     {},
		"only another service":   {Frameworks: []Framework{other}},
		"only another principal": {Frameworks: []Framework{wrongPrincipal}},
	} {
		if r := Decide(ms, tg, now); r.FrameworkID != "" || !strings.Contains(r.Why, "registering a new framework") {
			t.Errorf("%s: adopted %q (%s)", name, r.FrameworkID, r.Why)
		}
	}
}

// The recorded master state of a real Mesos 1.11 master parses, and its
// framework (named consul-fixture) is found by its name and role.
func TestRealMasterState(t *testing.T) {
	b, err := os.ReadFile("/work/shared/mesos-transcripts/07-master-state.json")
	if err != nil {
		t.Skip("transcript not available:", err)
	}
	var ms MasterState
	if err := json.Unmarshal(b, &ms); err != nil {
		t.Fatal(err)
	}
	c := config.Defaults()
	c.ServiceName, c.ExecutorURI = "consul-fixture", "http://x/dcos-consul"
	r := Decide(ms, state.TargetFrom(c), now)
	if r.FrameworkID != ms.Frameworks[0].ID {
		t.Fatalf("framework %q: %s", r.FrameworkID, r.Why)
	}
}

func TestReservedAgents(t *testing.T) {
	ms := MasterState{Slaves: []Agent{
		{ID: "S1", Hostname: "a1", ReservedResources: map[string]map[string]any{"consul-role": {"disk": 256.0, "ports": "[8300-8302]"}}},
		{ID: "S2", Hostname: "a2", ReservedResources: map[string]map[string]any{"consul-role": {"disk": 256.0}}},
		{ID: "S3", Hostname: "a3", ReservedResources: map[string]map[string]any{"consul-role": {"disk": 0.0, "cpus": 0.0, "ports": "[]"}}},
		{ID: "S4", Hostname: "a4", ReservedResources: map[string]map[string]any{"other-role": {"disk": 100.0}}},
		{ID: "S5", Hostname: "a5"},
	}}
	recs := state.Tasks{"consul-server-0": {Name: "consul-server-0", Role: taskspec.RoleServer, AgentID: "S2"}}
	got := ReservedAgents(ms, "consul-role", recs)
	if len(got) != 1 || got["S1"] != "a1" {
		t.Fatalf("reserved agents %v", got)
	}
}
