// Package adopt decides what a scheduler that starts with no framework ID
// (its state was lost: ZooKeeper wiped, STATE_ZK changed) takes over from
// the master: the previous framework of this service, which Mesos keeps
// for its failover timeout (a week) with every task still running, and
// those tasks as records. Re-subscribing with that framework ID is Mesos's
// own failover; a new framework could neither see nor kill those tasks,
// and their reservations would never be offered while they run.
//
// It is a pure function of the master's state document (GET
// /master/state) and the target.
package adopt

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// MasterState is what adoption reads of GET /master/state.
type MasterState struct {
	Frameworks []Framework `json:"frameworks"`
	Slaves     []Agent     `json:"slaves"`
}

// Framework is one registered framework (not a completed one).
type Framework struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	Principal        string   `json:"principal"`
	Role             string   `json:"role"`
	Roles            []string `json:"roles"`
	Active           bool     `json:"active"`
	Connected        bool     `json:"connected"`
	RegisteredTime   float64  `json:"registered_time"`
	ReregisteredTime float64  `json:"reregistered_time"`
	Tasks            []Task   `json:"tasks"`
	UnreachableTasks []Task   `json:"unreachable_tasks"`
}

// Task is one task of a framework.
type Task struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	SlaveID   string `json:"slave_id"`
	State     string `json:"state"`
	Resources struct {
		Ports string `json:"ports"`
	} `json:"resources"`
	Labels   []Label  `json:"labels"`
	Statuses []Status `json:"statuses"`
}

// Label is a task label.
type Label struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Status is one status of a task, for its timestamp.
type Status struct {
	State     string  `json:"state"`
	Timestamp float64 `json:"timestamp"`
}

// Agent is one agent (slave).
type Agent struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	PID      string `json:"pid"` // slave(1)@IP:PORT
	// ReservedResources: role → quantities ("disk": 256, "ports": "[...]").
	ReservedResources map[string]map[string]any `json:"reserved_resources"`
}

// ReservedAgents are the agents holding resources reserved for role where
// no server record is placed (agent ID → hostname): their reservations may
// be servers' volumes that only an offer can show (labels are not in the
// master's state). Fresh server placements wait for them a while, so that
// a server is adopted onto its volume rather than placed anew elsewhere.
func ReservedAgents(ms MasterState, role string, records state.Tasks) map[string]string {
	placed := map[string]bool{}
	for _, t := range records {
		if t.Role == taskspec.RoleServer && t.AgentID != "" {
			placed[t.AgentID] = true
		}
	}
	out := map[string]string{}
	for _, a := range ms.Slaves {
		if placed[a.ID] || !nonZero(a.ReservedResources[role]) {
			continue
		}
		out[a.ID] = a.Hostname
	}
	return out
}

func nonZero(q map[string]any) bool {
	for _, v := range q {
		switch x := v.(type) {
		case float64:
			if x != 0 {
				return true
			}
		case string:
			if x != "" && x != "[]" && x != "{}" {
				return true
			}
		}
	}
	return false
}

// Result is what to adopt. FrameworkID is "" when there is nothing to
// adopt; Why says what was found either way.
type Result struct {
	FrameworkID string
	Tasks       state.Tasks
	Why         string
}

// configIDLabel is the task label carrying the configuration ID a task was
// launched with (scheduler/offers sets it).
const configIDLabel = "dcos_consul_config_id"

// Decide picks the previous framework of this service and turns its live
// tasks into records.
func Decide(ms MasterState, tg state.Target, now time.Time) Result {
	var cands []Framework
	for _, f := range ms.Frameworks {
		if f.Name == tg.ServiceName && hasRole(f, tg.Role) && (f.Principal == "" || f.Principal == tg.Principal) {
			cands = append(cands, f)
		}
	}
	if len(cands) == 0 {
		return Result{Why: fmt.Sprintf("no registered framework named %q with role %q: registering a new framework", tg.ServiceName, tg.Role)}
	}
	// The most recently (re)registered one: the last scheduler's.
	sort.SliceStable(cands, func(i, j int) bool { return lastSeen(cands[i]) > lastSeen(cands[j]) })
	f := cands[0]
	agents := map[string]Agent{}
	for _, a := range ms.Slaves {
		agents[a.ID] = a
	}
	ts := state.Tasks{}
	for _, t := range append(append([]Task(nil), f.Tasks...), f.UnreachableTasks...) {
		rec, ok := record(t, f.ID, agents, tg, now)
		if !ok {
			continue
		}
		if old, dup := ts[rec.Name]; dup && !newer(rec, old) {
			continue // the other incarnation is killed as a leftover
		}
		ts[rec.Name] = rec
	}
	conn := "disconnected"
	if f.Connected {
		conn = "connected"
	}
	why := fmt.Sprintf("framework %s (%q, %s) is this service's previous framework: re-subscribing as it and adopting %d live tasks",
		f.ID, f.Name, conn, len(ts))
	if len(cands) > 1 {
		var others []string
		for _, c := range cands[1:] {
			others = append(others, c.ID)
		}
		why += fmt.Sprintf(" (the most recently registered of %d; not %s)", len(cands), strings.Join(others, ", "))
	}
	return Result{FrameworkID: f.ID, Tasks: ts, Why: why}
}

func hasRole(f Framework, role string) bool {
	if f.Role == role {
		return true
	}
	for _, r := range f.Roles {
		if r == role {
			return true
		}
	}
	return false
}

func lastSeen(f Framework) float64 {
	if f.ReregisteredTime > f.RegisteredTime {
		return f.ReregisteredTime
	}
	return f.RegisteredTime
}

// newer: a running incarnation wins, then the latest status.
func newer(a, b state.Task) bool {
	if a.Running() != b.Running() {
		return a.Running()
	}
	return a.UpdatedAt.After(b.UpdatedAt)
}

// record is the record of one live task of ours; false for anything else.
func record(t Task, fwID string, agents map[string]Agent, tg state.Target, now time.Time) (state.Task, bool) {
	name := state.NameOfTaskID(t.ID)
	if name == "" || state.IsTerminal(t.State) || t.SlaveID == "" {
		return state.Task{}, false
	}
	rec := state.Task{Name: name, TaskID: t.ID, AgentID: t.SlaveID, State: t.State, UpdatedAt: now, LaunchedAt: now}
	if i, ok := state.ServerIndex(name); ok {
		rec.Role, rec.Index = taskspec.RoleServer, i
	} else if strings.HasPrefix(name, state.ClientPrefix) {
		rec.Role = taskspec.RoleClient
	} else {
		return state.Task{}, false
	}
	a := agents[t.SlaveID]
	rec.Hostname = a.Hostname
	rec.IP = agentIP(a)
	rec.Ports = portsIn(tg.Ports, t.Resources.Ports, rec.Role)
	for _, l := range t.Labels {
		if l.Key == configIDLabel {
			rec.ConfigID = l.Value
		}
	}
	if n := len(t.Statuses); n > 0 {
		if ts := t.Statuses[n-1].Timestamp; ts > 0 {
			rec.UpdatedAt = time.Unix(0, int64(ts*1e9)).UTC()
		}
	}
	switch t.State {
	case "TASK_RUNNING":
		rec.RunningSince = now
	case "TASK_UNREACHABLE":
		rec.FailingSince = now
	}
	rec.Adopted = fmt.Sprintf("task %s of framework %s on %s was live with no record (the scheduler's state was lost): adopted with its framework; its reservation is adopted when an offer carries it",
		t.ID, fwID, hostOr(rec))
	return rec, true
}

// agentIP is the address in the agent's PID (what offers carry), else its
// hostname.
func agentIP(a Agent) string {
	if i := strings.LastIndex(a.PID, "@"); i >= 0 {
		if h, _, err := net.SplitHostPort(a.PID[i+1:]); err == nil && h != "" {
			return h
		}
	}
	return a.Hostname
}

func hostOr(t state.Task) string {
	if t.Hostname != "" {
		return t.Hostname
	}
	return t.AgentID
}

// portsIn keeps the target's ports that the task's port ranges hold
// ("[8300-8302, 8500-8500]"); the others are -1 (not used), as offers
// records them.
func portsIn(want taskspec.Ports, ranges string, role taskspec.Role) taskspec.Ports {
	type rng struct{ b, e int }
	var have []rng
	for _, part := range strings.Split(strings.Trim(ranges, "[] "), ",") {
		b, e, ok := strings.Cut(strings.TrimSpace(part), "-")
		if !ok {
			e = b
		}
		bi, err1 := strconv.Atoi(strings.TrimSpace(b))
		ei, err2 := strconv.Atoi(strings.TrimSpace(e))
		if err1 == nil && err2 == nil {
			have = append(have, rng{bi, ei})
		}
	}
	keep := func(p int) int {
		if p <= 0 {
			return p
		}
		for _, r := range have {
			if p >= r.b && p <= r.e {
				return p
			}
		}
		return -1
	}
	out := taskspec.Ports{Server: keep(want.Server), SerfLAN: keep(want.SerfLAN), SerfWAN: keep(want.SerfWAN),
		HTTP: keep(want.HTTP), HTTPS: keep(want.HTTPS), GRPC: keep(want.GRPC), DNS: keep(want.DNS), GRPCTLS: keep(want.GRPCTLS)}
	if role == taskspec.RoleClient && out.Server < 0 {
		out.Server = want.Server // a client's spec names it without using it (offers.clientPorts)
	}
	return out
}
