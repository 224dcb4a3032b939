package scheduler

import (
	"strings"
	"testing"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

func TestSecretsLostAtStart(t *testing.T) {
	adopted := state.Tasks{"consul-server-0": {Name: "consul-server-0", Role: taskspec.RoleServer, Adopted: "task x was live with no record"}}
	placed := state.Tasks{"consul-server-0": {Name: "consul-server-0", Role: taskspec.RoleServer}}
	adoptedClient := state.Tasks{"consul-client-a": {Name: "consul-client-a", Role: taskspec.RoleClient, Adopted: "live"}}
	unexplained := map[string]string{"agent-1": "host-1"}
	cases := []struct {
		name             string
		records          state.Tasks
		unexplained      map[string]string
		acl, gossip, tls bool
		lost             bool
		why              string
	}{
		{"adopted server, defaults", adopted, nil, true, true, false, true, "consul-server-0 were adopted"},
		{"unexplained reservations (framework removed)", nil, unexplained, true, false, false, true, "1 agents hold reservations"},
		{"TLS only", adopted, nil, false, false, true, true, "adopted"},
		{"a new service", nil, nil, true, true, true, false, ""},
		{"records from before secrets existed (upgrade)", placed, nil, true, true, false, false, ""},
		{"only clients adopted", adoptedClient, nil, true, true, false, false, ""},
		{"nothing secret in use", adopted, unexplained, false, false, false, false, ""},
	}
	for _, tc := range cases {
		lost, why := secretsLostAtStart(tc.records, tc.unexplained, tc.acl, tc.gossip, tc.tls)
		if lost != tc.lost || !strings.Contains(why, tc.why) {
			t.Errorf("%s: lost %v (%q), want %v ~%q", tc.name, lost, why, tc.lost, tc.why)
		}
	}
}

func TestLostBlockedHoldsAllButServers(t *testing.T) {
	tasks := state.Tasks{
		"consul-server-1": {Name: "consul-server-1", Role: taskspec.RoleServer},
		"consul-client-a": {Name: "consul-client-a", Role: taskspec.RoleClient},
	}
	launch := map[string]string{"consul-server-1": "relaunch", "consul-client-a": "place", "consul-client-b": "place"}
	if got := lostBlocked("", launch, tasks); len(got) != 0 {
		t.Fatalf("not lost: %v", got)
	}
	got := lostBlocked("lost", launch, tasks)
	if _, ok := got["consul-server-1"]; ok || len(got) != 2 || !strings.Contains(got["consul-client-a"], "secrets") {
		t.Fatalf("lost: %v, want both clients held and the server (which presents its volume's copy) free", got)
	}
}
