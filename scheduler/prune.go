package scheduler

import (
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/scheduler/reconcile"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// pruned counts what one pruning dropped, for the log.
type pruned struct {
	Kills, Agents, Attrs int
}

// pruneMaps drops the entries of the scheduler's long-lived maps whose
// subject is gone, so that they do not grow with churn:
//   - lastKill: a kill older than killRepeat no longer holds back a repeat
//     (the entry has no effect any more);
//   - agents: an agent Mesos removed (Gone) or lost (Unreachable) that no
//     task record names: neither reconcile nor the plan looks at it (it is
//     noted again if it offers again);
//   - agentAttrs: the attributes of an agent no longer in agents.
//
// It changes the maps in place and says how many entries it dropped.
func pruneMaps(now time.Time, tasks state.Tasks, lastKill map[string]time.Time,
	agents map[string]reconcile.Agent, agentAttrs map[string]map[string]string) pruned {
	var p pruned
	for id, at := range lastKill {
		if now.Sub(at) >= killRepeat {
			delete(lastKill, id)
			p.Kills++
		}
	}
	used := make(map[string]bool, len(tasks))
	for _, t := range tasks {
		if t.AgentID != "" {
			used[t.AgentID] = true
		}
	}
	for id, a := range agents {
		if (a.Gone || a.Unreachable) && !used[id] {
			delete(agents, id)
			p.Agents++
		}
	}
	for id := range agentAttrs {
		if _, ok := agents[id]; !ok {
			delete(agentAttrs, id)
			p.Attrs++
		}
	}
	return p
}

// prune runs pruneMaps over the scheduler's maps, on the event loop (the
// maps are the loop's): after each reconciliation (applyReconcile).
func (s *Scheduler) prune(now time.Time) {
	p := pruneMaps(now, s.tasks, s.lastKill, s.agents, s.agentAttrs)
	if p != (pruned{}) {
		s.log.Debug("pruned state of things that are gone",
			zap.Int("kills", p.Kills), zap.Int("agents", p.Agents), zap.Int("agent_attributes", p.Attrs))
	}
}
