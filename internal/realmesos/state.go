package realmesos

import (
	"fmt"
	"sort"
)

// State is what the harness reads of a real master's GET /master/state.
type State struct {
	ID                  string      `json:"id"`
	Leader              string      `json:"leader"`
	Slaves              []Slave     `json:"slaves"`
	Frameworks          []Framework `json:"frameworks"`
	CompletedFrameworks []Framework `json:"completed_frameworks"`
}

// Slave is an agent as /master/state lists it.
type Slave struct {
	ID                string                    `json:"id"`
	Hostname          string                    `json:"hostname"`
	Active            bool                      `json:"active"`
	ReservedResources map[string]map[string]any `json:"reserved_resources"`
}

// Framework is a framework as /master/state lists it.
type Framework struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	Active           bool   `json:"active"`
	Connected        bool   `json:"connected"`
	Tasks            []Task `json:"tasks"`
	UnreachableTasks []Task `json:"unreachable_tasks"`
	CompletedTasks   []Task `json:"completed_tasks"`
}

// Task is a task as /master/state lists it.
type Task struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	State      string `json:"state"`
	SlaveID    string `json:"slave_id"`
	ExecutorID string `json:"executor_id"`
	Statuses   []struct {
		State   string `json:"state"`
		Healthy *bool  `json:"healthy"`
		Labels  []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"labels"`
	} `json:"statuses"`
}

// Healthy is the task's latest health as its executor reported it (the
// `healthy` of its last status; DC/OS shows it), nil if never reported.
func (t Task) Healthy() *bool {
	if len(t.Statuses) == 0 {
		return nil
	}
	return t.Statuses[len(t.Statuses)-1].Healthy
}

// FrameworksNamed returns the registered frameworks called name.
func (st *State) FrameworksNamed(name string) []Framework {
	var out []Framework
	for _, f := range st.Frameworks {
		if f.Name == name {
			out = append(out, f)
		}
	}
	return out
}

// FrameworkIDs returns the IDs of every framework called name the master
// knows, registered or completed (torn down).
func (st *State) FrameworkIDs(name string) []string {
	var out []string
	for _, fs := range [][]Framework{st.Frameworks, st.CompletedFrameworks} {
		for _, f := range fs {
			if f.Name == name {
				out = append(out, f.ID)
			}
		}
	}
	sort.Strings(out)
	return out
}

// SlaveHost maps agent IDs to hostnames (the agents' IPs here).
func (st *State) SlaveHost() map[string]string {
	out := map[string]string{}
	for _, s := range st.Slaves {
		out[s.ID] = s.Hostname
	}
	return out
}

// Duplicates reports what must never be seen in the master's state for
// framework name: two registered frameworks of that name, two RUNNING
// tasks with one name, or two active tasks on one agent.
func (st *State) Duplicates(name string) []string {
	var out []string
	fws := st.FrameworksNamed(name)
	if len(fws) > 1 {
		var ids []string
		for _, f := range fws {
			ids = append(ids, f.ID)
		}
		out = append(out, fmt.Sprintf("%d frameworks named %s: %v", len(fws), name, ids))
	}
	for _, f := range fws {
		byName := map[string][]string{}
		byAgent := map[string][]string{}
		for _, t := range f.Tasks {
			switch t.State {
			case "TASK_RUNNING":
				byName[t.Name] = append(byName[t.Name], t.ID)
				fallthrough
			case "TASK_STAGING", "TASK_STARTING", "TASK_KILLING":
				byAgent[t.SlaveID] = append(byAgent[t.SlaveID], t.Name+"("+t.State+")")
			}
		}
		for n, ids := range byName {
			if len(ids) > 1 {
				out = append(out, fmt.Sprintf("%d RUNNING tasks named %s: %v", len(ids), n, ids))
			}
		}
		for a, names := range byAgent {
			if len(names) > 1 {
				out = append(out, fmt.Sprintf("%d tasks on agent %s: %v", len(names), a, names))
			}
		}
	}
	sort.Strings(out)
	return out
}

// NonZero drops the zero quantities of a resources object (scalars are
// numbers, ranges such as ports strings like "[31000-31000]").
func NonZero(r map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range r {
		if v != 0.0 && v != "" && v != "[]" {
			out[k] = v
		}
	}
	return out
}
