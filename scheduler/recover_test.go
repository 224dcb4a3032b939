package scheduler

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/api"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/recovery"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// TestRecoverMarksTheLostServers: with the scheduler's verdict saying
// quorum is lost, an empty request restarts the survivor with a peers.json
// naming it and marks the two lost servers to be replaced, all written to
// the store before it answers; a verdict with a leader refuses.
func TestRecoverMarksTheLostServers(t *testing.T) {
	ctx := context.Background()
	tg := state.TargetFrom(config.Defaults())
	srv := func(i int, st string) state.Task {
		return state.Task{Name: state.ServerName(i), Role: taskspec.RoleServer, Index: i, TaskID: state.ServerName(i) + "__1",
			AgentID: "a" + string(rune('0'+i)), State: st, IP: "10.0.0." + string(rune('1'+i)), Ports: tg.Ports,
			Reservation: &state.Reservation{ID: "r", PersistenceID: "p", Confirmed: true}}
	}
	st := newMemStore()
	s := &Scheduler{target: tg, log: zap.NewNop(), store: st, metrics: newMetrics(nil),
		tasks: state.Tasks{}, dirty: map[string]bool{}, deleted: map[string]bool{}, undo: map[string]*state.Task{}}
	for i, ts := range []string{"TASK_UNREACHABLE", "TASK_LOST", "TASK_RUNNING"} {
		s.tasks[srv(i, ts).Name] = srv(i, ts)
	}
	t0 := time.Unix(1000, 0)
	obs := func(leader string) recovery.Observation {
		return recovery.Observation{At: t0.Add(time.Minute), Configured: 3, Servers: []recovery.Server{{Name: "consul-server-0"}, {Name: "consul-server-1"},
			{Name: "consul-server-2", Reachable: true, NodeID: "id-2", RaftAddr: "10.0.0.3:8300", LastIndex: 40, Leader: leader}}}
	}
	s.quorum.verdict = recovery.Assess(recovery.Quorum{SeenLeader: true, LeaderlessSince: t0}, obs(""), recovery.DefaultThreshold)
	if !s.quorum.verdict.Lost {
		t.Fatalf("verdict %s", s.quorum.verdict.Summary)
	}
	res, err := s.recoverOnLoop(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Survivors, ",") != "consul-server-2" || len(res.Peers) != 1 || res.Peers[0].ID != "id-2" ||
		strings.Join(res.Replaced, ",") != "consul-server-0,consul-server-1" {
		t.Fatalf("result %+v", res)
	}
	stored, err := load(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if s2 := stored.Tasks["consul-server-2"]; s2.Goal != state.GoalRestart || len(s2.RecoverPeers) != 1 || s2.RecoverReplace {
		t.Fatalf("survivor stored as %+v", s2)
	}
	for _, n := range []string{"consul-server-0", "consul-server-1"} {
		if !stored.Tasks[n].RecoverReplace {
			t.Fatalf("%s not marked to be replaced in the store", n)
		}
	}
	if w := recoveryWork(s.tasks, tg); strings.Join(w.Restarting, ",") != "consul-server-2" || len(w.Replacing) != 2 {
		t.Fatalf("work %+v", w)
	}

	s.quorum.verdict = recovery.Assess(s.quorum.verdict, obs("10.0.0.3:8300"), recovery.DefaultThreshold)
	if _, err := s.recoverOnLoop(ctx, nil, nil); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("with a leader seen: %v", err)
	}
}
