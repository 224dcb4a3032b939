package scheduler

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dcos-consul/dcos-consul/scheduler/adopt"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

func TestAdoptPreviousStoresRecordsThenTheFrameworkID(t *testing.T) {
	ctx := context.Background()
	cfg := config.Defaults()
	cfg.ExecutorURI = "http://x/dcos-consul"
	ms := adopt.MasterState{
		Slaves: []adopt.Agent{{ID: "S1", Hostname: "a1", PID: "slave(1)@10.0.0.1:5051"}},
		Frameworks: []adopt.Framework{{ID: "F-old", Name: cfg.ServiceName, Principal: cfg.Principal, Roles: []string{cfg.Role},
			Tasks: []adopt.Task{{ID: "consul-server-0__a", Name: "consul-server-0", SlaveID: "S1", State: "TASK_RUNNING"}}}},
	}
	b, _ := json.Marshal(ms)
	read := func(context.Context) ([]byte, error) { return b, nil }
	now := time.Now()

	st := newMemStore()
	if _, err := adoptPrevious(ctx, cfg, st, zaptest.NewLogger(t), read, now); err != nil {
		t.Fatal(err)
	}
	p, err := load(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if p.FrameworkID != "F-old" || p.Tasks["consul-server-0"].TaskID != "consul-server-0__a" {
		t.Fatalf("stored %q %+v", p.FrameworkID, p.Tasks)
	}

	// A stored framework ID: the master is not even asked.
	asked := false
	if _, err := adoptPrevious(ctx, cfg, st, zaptest.NewLogger(t), func(context.Context) ([]byte, error) { asked = true; return b, nil }, now); err != nil || asked {
		t.Fatalf("asked %v err %v", asked, err)
	}

	// A record written before the framework ID (a crash in between) is
	// kept; uninstall never adopts.
	st = newMemStore()
	mine := state.Task{Name: "consul-server-0", TaskID: "consul-server-0__mine"}
	if err := saveTasks(ctx, st, state.Tasks{mine.Name: mine}, []string{mine.Name}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := adoptPrevious(ctx, cfg, st, zaptest.NewLogger(t), read, now); err != nil {
		t.Fatal(err)
	}
	if p, _ := load(ctx, st); p.FrameworkID != "F-old" || p.Tasks["consul-server-0"].TaskID != "consul-server-0__mine" {
		t.Fatalf("stored %q %+v", p.FrameworkID, p.Tasks)
	}
	un := cfg
	un.Uninstall = true
	st = newMemStore()
	if _, err := adoptPrevious(ctx, un, st, zaptest.NewLogger(t), read, now); err != nil {
		t.Fatal(err)
	}
	if p, _ := load(ctx, st); p.FrameworkID != "" {
		t.Fatal("uninstall adopted a framework")
	}

	// An unreadable master: a new framework registers.
	st = newMemStore()
	if _, err := adoptPrevious(ctx, cfg, st, zaptest.NewLogger(t), func(context.Context) ([]byte, error) {
		return nil, &masterAnswer{"401 Unauthorized"}
	}, now); err != nil {
		t.Fatal(err)
	}
	if p, _ := load(ctx, st); p.FrameworkID != "" {
		t.Fatal("adopted without a master state")
	}
}
