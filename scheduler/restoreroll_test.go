package scheduler

import (
	"strings"
	"testing"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

func TestClientRollAfterRestore(t *testing.T) {
	a, b, c := "aa:01", "bb:02", "cc:03"
	for _, x := range []struct {
		name          string
		tls           bool
		before, after caRoots
		roll          bool
		why           string
	}{
		{"no TLS: nothing to renew, even with other roots", false, caRoots{IDs: []string{a}}, caRoots{IDs: []string{b}}, false, "without TLS"},
		{"same roots (a snapshot of this cluster)", true, caRoots{IDs: []string{a}}, caRoots{IDs: []string{a}}, false, "kept Consul's CA roots (aa:01)"},
		{"roots added, none gone: every client certificate still verifies", true, caRoots{IDs: []string{a}}, caRoots{IDs: []string{a, b}}, false, "kept"},
		{"another install's CA", true, caRoots{IDs: []string{a}}, caRoots{IDs: []string{b}}, true, "aa:01 no longer listed; now bb:02"},
		{"one of two roots gone (a client may hold a certificate of it)", true, caRoots{IDs: []string{a, b}}, caRoots{IDs: []string{b, c}}, true, "aa:01 no longer listed"},
		{"roots unreadable before", true, caRoots{Err: "connection refused"}, caRoots{IDs: []string{a}}, true, "before the restore (connection refused)"},
		{"roots unreadable after", true, caRoots{IDs: []string{a}}, caRoots{Err: "500 no leader"}, true, "after the restore (500 no leader)"},
		{"no roots before (no certificate was signed)", true, caRoots{}, caRoots{IDs: []string{a}}, false, "kept Consul's CA roots (none)"},
	} {
		roll, why := clientRollAfterRestore(x.tls, x.before, x.after)
		if roll != x.roll || !strings.Contains(why, x.why) {
			t.Errorf("%s: roll %v (%s), want %v with %q", x.name, roll, why, x.roll, x.why)
		}
	}
}

func TestRestoreRestarts(t *testing.T) {
	cli := func(name, st string, f func(*state.Task)) state.Task {
		t := state.Task{Name: name, Role: taskspec.RoleClient, TaskID: name + "__1", State: st}
		if f != nil {
			f(&t)
		}
		return t
	}
	ts := []state.Task{
		{Name: "consul-server-0", Role: taskspec.RoleServer, TaskID: "s0__1", State: "TASK_RUNNING"},
		cli("consul-client-a", "TASK_RUNNING", nil),
		cli("consul-client-b", "TASK_STARTING", nil), // launching: may hold a certificate of the old CA
		cli("consul-client-c", "TASK_FAILED", nil),   // its next launch gets the restored CA's
		cli("consul-client-d", "TASK_RUNNING", func(t *state.Task) { t.Goal = state.GoalRestart }),
		cli("consul-client-e", "TASK_RUNNING", func(t *state.Task) { t.Goal = state.GoalStop }),
		cli("consul-client-f", "TASK_RUNNING", func(t *state.Task) { t.RestartQueued = true }),
		cli("consul-client-g", "", func(t *state.Task) { t.TaskID = "" }), // never launched
	}
	got := restoreRestarts(ts, "the CA changed")
	var names []string
	for _, q := range got {
		names = append(names, q.Name)
		if !q.RestartQueued || q.RestartWhy != "the CA changed" {
			t.Errorf("%s: queued %v, why %q", q.Name, q.RestartQueued, q.RestartWhy)
		}
	}
	if strings.Join(names, " ") != "consul-client-a consul-client-b" {
		t.Fatalf("queued %v, want the running and the launching client", names)
	}
	if ts[1].RestartQueued {
		t.Fatal("the input records were changed")
	}
}
