package scheduler

import (
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/reconcile"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

func TestPruneMapsDropsWhatIsGone(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tasks := state.Tasks{"consul-server-0": {Name: "consul-server-0", AgentID: "lost-with-task"}}
	lastKill := map[string]time.Time{"old": now.Add(-killRepeat), "recent": now.Add(-time.Second)}
	agents := map[string]reconcile.Agent{
		"live":           {ID: "live"},
		"gone":           {ID: "gone", Gone: true},
		"unreachable":    {ID: "unreachable", Unreachable: true},
		"lost-with-task": {ID: "lost-with-task", Unreachable: true},
	}
	attrs := map[string]map[string]string{"live": {}, "gone": {}, "unreachable": {}, "never-an-agent": {}}
	p := pruneMaps(now, tasks, lastKill, agents, attrs)
	if p != (pruned{Kills: 1, Agents: 2, Attrs: 3}) {
		t.Errorf("pruned %+v", p)
	}
	if _, ok := lastKill["recent"]; !ok || len(lastKill) != 1 {
		t.Errorf("lastKill %v: want only the kill still holding back a repeat", lastKill)
	}
	if len(agents) != 2 || agents["live"].ID == "" || agents["lost-with-task"].ID == "" {
		t.Errorf("agents %v: want the live one and the one a record names", agents)
	}
	if len(attrs) != 1 || attrs["live"] == nil {
		t.Errorf("attrs %v", attrs)
	}
	// Nothing more to drop: a second pass is a no-op.
	if p := pruneMaps(now, tasks, lastKill, agents, attrs); p != (pruned{}) {
		t.Errorf("second pass pruned %+v", p)
	}
}
