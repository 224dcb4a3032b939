package offers

import (
	"fmt"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/placement"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// checkPlacement applies the server placement constraints (package
// placement) to the agent of offer o. The placed servers' values are those
// recorded when each was placed (state.Task.AgentValues), or, for records
// from before that field, the values last seen in that agent's offers
// (attrs) with the recorded hostname. attrs also gives GROUP_BY the values
// seen in offers.
func checkPlacement(rules [][]string, o mesos.Offer, servers []state.Task, attrs map[string]map[string]string) error {
	cons, err := placement.Compiled(rules)
	if err != nil {
		return fmt.Errorf("stored placement constraints are invalid (fix servers.placement_constraint): %w", err)
	}
	if len(cons) == 0 {
		return nil
	}
	var placed []map[string]string
	for _, s := range servers {
		if s.AgentID == "" || s.Role != taskspec.RoleServer {
			continue
		}
		placed = append(placed, serverValues(s, attrs))
	}
	seen := make([]map[string]string, 0, len(attrs))
	for _, a := range attrs {
		seen = append(seen, a)
	}
	return placement.Check(cons, placement.Values(o), placed, seen)
}

// serverValues are the constraint field values of a placed server's agent.
func serverValues(s state.Task, attrs map[string]map[string]string) map[string]string {
	if len(s.AgentValues) > 0 {
		return s.AgentValues
	}
	v := map[string]string{}
	for k, x := range attrs[s.AgentID] {
		v[k] = x
	}
	if s.Hostname != "" {
		v[placement.FieldHostname], v[placement.FieldAtHost] = s.Hostname, s.Hostname
	}
	return v
}
