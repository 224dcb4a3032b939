package state

import (
	"fmt"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// scaleTasks are records as a 10,000-agent deploy holds them: n servers
// and clients named after agent IDs, every field filled as when running.
func scaleTasks(servers, clients int) Tasks {
	ts := Tasks{}
	now := time.Now()
	for i := 0; i < servers; i++ {
		n := ServerName(i)
		ts[n] = Task{Name: n, Role: taskspec.RoleServer, Index: i, TaskID: n + "__6f1c1c52-3b43-4a55-9f7e-0f0c7f5f2f1d",
			AgentID: fmt.Sprintf("a1b2c3-S%d", i), Hostname: "10.0.0.1", IP: "10.0.0.1", State: "TASK_RUNNING",
			Reservation: &Reservation{}, ConfigID: "91b3ab081eb4fa20", Goal: GoalRunning, LaunchedAt: now, UpdatedAt: now}
	}
	for i := 0; i < clients; i++ {
		n := ClientName(fmt.Sprintf("7a5dff30-4dc9-42c9-a2c4-b8de528c92fb-S%d", i))
		ts[n] = Task{Name: n, Role: taskspec.RoleClient, TaskID: n + "__b07285df-c2ac-457d-8674-7b1947b195fe",
			AgentID: fmt.Sprintf("7a5dff30-4dc9-42c9-a2c4-b8de528c92fb-S%d", i), Hostname: "127.6.4.55", IP: "127.6.4.55",
			State: "TASK_RUNNING", ConfigID: "91b3ab081eb4fa20", Goal: GoalRunning, LaunchedAt: now, UpdatedAt: now}
	}
	return ts
}

// TestSortedOrder: servers first by index, then every other record by
// name, whatever the map order; each record exactly once.
func TestSortedOrder(t *testing.T) {
	ts := scaleTasks(5, 500)
	// Servers whose index order differs from their name order.
	ts["consul-server-10"] = Task{Name: "consul-server-10", Role: taskspec.RoleServer, Index: 10}
	ts["consul-server-9"] = Task{Name: "consul-server-9", Role: taskspec.RoleServer, Index: 9}
	for round := 0; round < 3; round++ { // Go's map order differs each time
		s := ts.Sorted()
		if len(s) != len(ts) {
			t.Fatalf("%d records sorted, want %d", len(s), len(ts))
		}
		seen := map[string]bool{}
		for i, rec := range s {
			if seen[rec.Name] {
				t.Fatalf("%s twice", rec.Name)
			}
			seen[rec.Name] = true
			if m := ts[rec.Name]; rec.TaskID != m.TaskID || rec.AgentID != m.AgentID || rec.Index != m.Index {
				t.Fatalf("record %s differs from the map's", rec.Name)
			}
			if i == 0 {
				continue
			}
			p := s[i-1]
			switch {
			case p.Role == taskspec.RoleServer && rec.Role == taskspec.RoleServer:
				if p.Index >= rec.Index {
					t.Fatalf("server %s (index %d) before %s (index %d)", p.Name, p.Index, rec.Name, rec.Index)
				}
			case p.Role != taskspec.RoleServer && rec.Role == taskspec.RoleServer:
				t.Fatalf("client %s before server %s", p.Name, rec.Name)
			case p.Role != taskspec.RoleServer && p.Name >= rec.Name:
				t.Fatalf("%s before %s", p.Name, rec.Name)
			}
		}
	}
}

// BenchmarkSorted10000: every API snapshot sorts the records three times
// (the view, the deploy plan, the recovery plan); at 10,000 agents this was
// the largest part of the scheduler's snapshot cost (internal/scale).
func BenchmarkSorted10000(b *testing.B) {
	ts := scaleTasks(3, 9997)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if len(ts.Sorted()) != len(ts) {
			b.Fatal("length")
		}
	}
}
