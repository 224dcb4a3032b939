// Package plan reports deployment progress in the DC/OS SDK's plan shape
// (plans, phases, steps, each with a status and a message saying what it
// waits for). It is a pure function of the target and the task records.
package plan

import (
	"crypto/sha1"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/reconcile"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// Status strings, as the DC/OS SDK uses them.
const (
	Pending    = "PENDING"
	Prepared   = "PREPARED"
	Starting   = "STARTING"
	Complete   = "COMPLETE"
	Delayed    = "DELAYED"
	Error      = "ERROR"
	InProgress = "IN_PROGRESS"
	Waiting    = "WAITING"
)

// Step is one task's progress.
type Step struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// Phase groups steps.
type Phase struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Status   string `json:"status"`
	Strategy string `json:"strategy"`
	Steps    []Step `json:"steps"`
}

// Plan is one plan.
type Plan struct {
	Name     string   `json:"-"`
	Status   string   `json:"status"`
	Strategy string   `json:"strategy"`
	Phases   []Phase  `json:"phases"`
	Errors   []string `json:"errors"`
}

// Input is what progress is computed from.
type Input struct {
	// sorted is Tasks.Sorted(), computed once by Build for every plan
	// (at 10,000 tasks each sort costs milliseconds, and Build runs at
	// every published snapshot).
	sorted []state.Task

	Target state.Target
	Tasks  state.Tasks
	// Launch: records waiting for an offer, with why (reconcile.Result).
	Launch map[string]string
	// Waiting: the latest reason an offer did not suit a record.
	Waiting map[string]string
	// Blocked: records held back (e.g. reconciliation), with why.
	Blocked map[string]string
	// Settling: running servers that a replacement or a rolling restart
	// waits for (not a healthy raft voter yet), with why (reconcile.Result).
	Settling map[string]string
	// ScaleDown: servers above the configured count being removed, with
	// what each waits for or does (reconcile.Result).
	ScaleDown map[string]string
	// Gate: why no server action can start now (reconcile.Result.Gate):
	// the servers waiting for their turn in a rolling restart say it.
	Gate string
	// Agents known from offers, for client steps not launched yet.
	Agents map[string]reconcile.Agent
	Now    time.Time
	// Uninstall: Release is what waits for an offer (reconcile.Result)
	// and Deregistered says the framework is torn down and the state gone.
	Release      map[string]string
	Deregistered bool
	// ACLBootstrapped: the scheduler's ACL bootstrap succeeded since it
	// started (the first phase of turning ACLs on waits for it).
	ACLBootstrapped bool
	// Control: the plans and phases the operator paused.
	Control Control
	// Errors are problems of the whole deployment, such as configuration
	// changes refused at start; the deploy plan lists them first and its
	// status is ERROR while there are any, as in the DC/OS SDK.
	Errors []string
}

// Names of the plans.
const (
	Deploy   = "deploy"
	Recovery = "recovery"
)

// Build returns the deploy, recovery, update and decommission plans.
func Build(in Input) map[string]Plan {
	if in.Target.Uninstall {
		return map[string]Plan{Deploy: uninstall(in)}
	}
	in.sorted = in.Tasks.Sorted()
	out := map[string]Plan{Deploy: deploy(in), Recovery: recovery(in), Update: update(in), Decommission: decommission(in)}
	for name, p := range out {
		out[name] = paused(p, in.Control)
	}
	return out
}

// paused marks the plan and phases the operator interrupted: WAITING
// (the SDK's status of an interrupted element) unless complete, and each
// step that has not started says so.
func paused(p Plan, c Control) Plan {
	for i, ph := range p.Phases {
		if !c.IsInterrupted(p.Name, ph.Name) || ph.Status == Complete {
			continue
		}
		ph.Status = Waiting
		steps := append([]Step(nil), ph.Steps...)
		for j, s := range steps {
			if s.Status == Pending {
				steps[j].Message = s.Message + "; paused by the operator (plan continue)"
			}
		}
		ph.Steps = steps
		p.Phases[i] = ph
	}
	if c.Interrupted[p.Name] && p.Status != Complete && p.Status != Error {
		p.Status = Waiting
	}
	return p
}

// update is the configuration rollout: every server (one at a time,
// followers first, the leader last) and every client (in batches) on the
// target configuration; a step is complete once its task runs with it.
func update(in Input) Plan {
	servers := Phase{ID: id("update/server"), Name: "server", Strategy: "serial"}
	clients := Phase{ID: id("update/client"), Name: "client", Strategy: fmt.Sprintf("parallel (batches of %d%%)", batchPercent(in.Target))}
	for _, t := range in.sortedTasks() {
		if t.Role == taskspec.RoleServer && t.Index >= in.Target.Servers || t.Goal == state.GoalStop || !t.Launched() {
			continue
		}
		st := step(in, t.Name, t)
		if t.Role == taskspec.RoleServer {
			servers.Steps = append(servers.Steps, st)
		} else {
			clients.Steps = append(clients.Steps, st)
		}
	}
	servers.Status, clients.Status = aggregate(servers.Steps), aggregate(clients.Steps)
	phases := []Phase{servers, clients}
	if a, ok := aclRollout(in); ok {
		phases = append([]Phase{a}, phases...)
	}
	if g, ok := gossipRollout(in); ok {
		phases = append([]Phase{g}, phases...)
	}
	if tls, ok := tlsRollout(in); ok {
		phases = append([]Phase{tls}, phases...)
	}
	p := Plan{Name: Update, Strategy: "serial", Phases: phases, Errors: []string{}}
	p.Status = aggregatePhases(p.Phases)
	return p
}

// tlsRollout is the phase turning TLS on in a running cluster, while it
// is under way: one step per phase of state.TLSRollout, the current one
// saying what it waits for (its rolling restart is the server and client
// phases of this plan).
func tlsRollout(in Input) (Phase, bool) {
	n := in.Target.TLSPhaseNumber()
	if n == 0 {
		return Phase{}, false
	}
	return rolloutPhase(in, "tls", n, state.TLSPhases, state.TLSPhaseWhat), true
}

// gossipRollout is tlsRollout for turning gossip encryption on.
func gossipRollout(in Input) (Phase, bool) {
	n := in.Target.GossipPhaseNumber()
	if n == 0 {
		return Phase{}, false
	}
	return rolloutPhase(in, "gossip", n, state.GossipPhases, state.GossipPhaseWhat), true
}

// aclRollout is tlsRollout for turning ACLs on.
func aclRollout(in Input) (Phase, bool) {
	n := in.Target.ACLPhaseNumber()
	if n == 0 {
		return Phase{}, false
	}
	return rolloutPhase(in, "acl", n, state.ACLPhases, state.ACLPhaseWhat), true
}

// rolloutPhase is the phase <kind>-rollout at phase n of phases.
func rolloutPhase(in Input, kind string, n, phases int, what func(int) string) Phase {
	ph := Phase{ID: id("update/" + kind), Name: kind + "-rollout", Strategy: "serial"}
	_, _, why := state.Rollouts(in.Target, in.Tasks, in.ACLBootstrapped)
	for i := 1; i <= phases; i++ {
		name := fmt.Sprintf("%s-phase-%d", kind, i)
		st := Step{ID: id("update/" + kind + "/" + name), Name: name, Status: Pending, Message: what(i)}
		switch {
		case i < n:
			st.Status = Complete
		case i == n:
			st.Status = InProgress
			if why != "" {
				st.Message = why
			}
		}
		ph.Steps = append(ph.Steps, st)
	}
	ph.Status = aggregate(ph.Steps)
	return ph
}

func batchPercent(tg state.Target) int {
	if tg.ClientBatchPercent <= 0 {
		return 5
	}
	return tg.ClientBatchPercent
}

// decommission is the scale-down: one phase per server above the
// configured count, the highest first, each leaving the raft
// configuration (peer removal through Consul), then killed, then its
// volume destroyed and its reservation released at its agent's next offer.
func decommission(in Input) Plan {
	var names []string
	for n, t := range in.Tasks {
		if t.Role == taskspec.RoleServer && t.Index >= in.Target.Servers {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool { return in.Tasks[names[i]].Index > in.Tasks[names[j]].Index })
	var phases []Phase
	for _, n := range names {
		t := in.Tasks[n]
		why := in.ScaleDown[n]
		started := t.Goal == state.GoalDecommission
		leave := Step{ID: id("decommission/leave/" + n), Name: "leave-" + n, Status: Pending, Message: why}
		kill := Step{ID: id("decommission/kill/" + n), Name: "kill-" + n, Status: Pending, Message: "after its raft peer is removed and it leaves (or does not in time)"}
		unreserve := Step{ID: id("decommission/unreserve/" + n), Name: "unreserve-" + n, Status: Pending,
			Message: "after the kill: destroy its volume and unreserve at its agent's next offer"}
		leaving := t.Running() && (t.LeaveSentAt.IsZero() || in.Now.Sub(t.LeaveSentAt) < reconcile.LeaveTimeout)
		switch {
		case t.Left && t.PeerRemoved:
			leave.Status, leave.Message = Complete, "raft peer removed through the Consul operator API, then left the Consul cluster gracefully"
			kill.Status, kill.Message = Starting, "its task ended after the leave; "+why
		case t.Left:
			leave.Status, leave.Message = Complete, "left the Consul cluster gracefully (the raft leader removed its peer)"
			kill.Status, kill.Message = Starting, "its task ended after the leave; "+why
		case t.PeerRemoved && leaving:
			leave.Status = Starting // peer removed; the graceful leave of the gossip pools follows
		case t.PeerRemoved:
			leave.Status, leave.Message = Complete, "raft peer removed through the Consul operator API"
			kill.Status, kill.Message = Starting, why
		case started:
			leave.Status = Starting
		}
		phases = append(phases, Phase{ID: id("decommission/" + n), Name: "decommission-" + n, Strategy: "serial",
			Steps: []Step{leave, kill, unreserve}, Status: aggregate([]Step{leave, kill, unreserve})})
	}
	p := Plan{Name: Decommission, Strategy: "serial", Phases: phases, Errors: []string{}}
	if phases == nil {
		p.Phases = []Phase{}
	}
	p.Status = aggregatePhases(p.Phases)
	return p
}

// uninstall is the SDK's uninstall plan: kill-tasks, unreserve-resources,
// deregister-service. Done steps disappear with their records, so the
// plan shows what is left.
func uninstall(in Input) Plan {
	kill := Phase{ID: id("uninstall/kill-tasks"), Name: "kill-tasks", Strategy: "parallel"}
	unreserve := Phase{ID: id("uninstall/unreserve-resources"), Name: "unreserve-resources", Strategy: "parallel"}
	for _, t := range in.sortedTasks() {
		st := Step{ID: id("kill/" + t.Name), Name: "kill-task-" + t.Name, Status: Complete, Message: t.Describe()}
		if t.Active() && t.State != "TASK_UNREACHABLE" {
			st.Status = Starting
			st.Message = "killing " + t.TaskID + ": " + t.Describe()
			if !t.LeaveSentAt.IsZero() {
				st.Message = fmt.Sprintf("leaving the Consul cluster (LAN and WAN pools) gracefully before its task ends (asked %s ago): %s",
					in.Now.Sub(t.LeaveSentAt).Round(time.Second), t.Describe())
			}
		}
		kill.Steps = append(kill.Steps, st)
		if t.Reservation != nil {
			u := Step{ID: id("unreserve/" + t.Reservation.ID), Name: "unreserve-" + t.Reservation.ID, Status: Pending,
				Message: "waiting for the task to end"}
			if why, ok := in.Release[t.Name]; ok {
				u.Message = why + ": waiting for an offer from the agent"
			}
			unreserve.Steps = append(unreserve.Steps, u)
		}
	}
	dereg := Phase{ID: id("uninstall/deregister-service"), Name: "deregister-service", Strategy: "serial",
		Steps: []Step{{ID: id("deregister"), Name: "deregister", Status: Pending, Message: "waiting for every task and reservation to be removed"}}}
	if in.Deregistered {
		dereg.Steps[0].Status, dereg.Steps[0].Message = Complete, "framework torn down and its state deleted"
	}
	kill.Status, unreserve.Status, dereg.Status = aggregate(kill.Steps), aggregate(unreserve.Steps), aggregate(dereg.Steps)
	p := Plan{Name: Deploy, Strategy: "serial", Phases: []Phase{kill, unreserve, dereg}, Errors: []string{}}
	p.Status = aggregatePhases(p.Phases)
	if !in.Deregistered && p.Status == Complete {
		p.Status = InProgress
	}
	if in.Deregistered {
		p.Status = Complete
	}
	return p
}

// adoptPhase lists what was adopted without a record of its own (the
// scheduler's state was lost), one step per record, or nothing. A step is
// done (COMPLETE, "done: ...") once the adopted server runs, its live task
// adopted or relaunched on its adopted volume; until then it is in
// progress and says what it waits for.
func adoptPhase(in Input) []Phase {
	var steps []Step
	for _, t := range in.sortedTasks() {
		if t.Adopted != "" {
			steps = append(steps, adoptStep(t))
		}
	}
	if len(steps) == 0 {
		return nil
	}
	return []Phase{{ID: id("deploy/adopt"), Name: "adopt", Strategy: "parallel", Status: aggregate(steps), Steps: steps}}
}

func adoptStep(t state.Task) Step {
	st := Step{ID: id("adopt/" + t.Name), Name: "adopt-" + t.Name}
	vol := ""
	if t.Reservation != nil && t.Reservation.PersistenceID != "" {
		vol = " on its volume " + t.Reservation.PersistenceID
	}
	if t.Running() {
		st.Status, st.Message = Complete, "done: "+t.Adopted+"; "+t.Name+" runs"+vol
		return st
	}
	st.Status, st.Message = InProgress, t.Adopted+"; waiting for "+t.Name+" to run"+vol
	if t.Launched() {
		st.Message += " (now " + t.State + ")"
	}
	return st
}

func id(s string) string {
	h := sha1.Sum([]byte(s))
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

func deploy(in Input) Plan {
	servers := Phase{ID: id("deploy/server"), Name: "server", Strategy: "parallel"}
	for i := 0; i < in.Target.Servers; i++ {
		name := state.ServerName(i)
		servers.Steps = append(servers.Steps, step(in, name, in.Tasks[name]))
	}
	clients := Phase{ID: id("deploy/client"), Name: "client", Strategy: "parallel"}
	if in.Target.ClientsEnabled {
		seen := map[string]bool{}
		for _, t := range in.sortedTasks() {
			if t.Role != taskspec.RoleClient || t.Goal == state.GoalStop {
				continue
			}
			clients.Steps = append(clients.Steps, step(in, t.Name, t))
			seen[t.AgentID] = true
		}
		used := map[string]bool{}
		for _, t := range in.Tasks {
			if t.AgentID != "" {
				used[t.AgentID] = true
			}
		}
		var pending []string
		for _, a := range in.Agents {
			if a.Gone || a.Unreachable || seen[a.ID] || (a.Public && !in.Target.ClientsOnPublic) || used[a.ID] {
				continue
			}
			pending = append(pending, a.ID)
		}
		sort.Strings(pending)
		for _, a := range pending {
			name := state.ClientName(a)
			msg := "waiting for an offer from agent " + hostOf(in.Agents[a])
			if w := in.Waiting[name]; w != "" {
				msg = w
			}
			clients.Steps = append(clients.Steps, Step{ID: id(name), Name: name + ":[client]", Status: Pending, Message: msg})
		}
	}
	servers.Status = aggregate(servers.Steps)
	clients.Status = aggregate(clients.Steps)
	phases := append(adoptPhase(in), servers)
	if len(in.ScaleDown) > 0 {
		down := Phase{ID: id("deploy/scale-down"), Name: "scale-down", Strategy: "serial"}
		names := make([]string, 0, len(in.ScaleDown))
		for n := range in.ScaleDown {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool { return in.Tasks[names[i]].Index > in.Tasks[names[j]].Index })
		for _, n := range names {
			st := Step{ID: id("scale-down/" + n), Name: "remove-" + n, Status: Pending, Message: in.ScaleDown[n]}
			if in.Tasks[n].Goal == state.GoalDecommission {
				st.Status = Starting
			}
			down.Steps = append(down.Steps, st)
		}
		down.Status = aggregate(down.Steps)
		phases = append(phases, down)
	}
	phases = append(phases, clients)
	p := Plan{Name: Deploy, Strategy: "serial", Phases: phases, Errors: append([]string{}, in.Errors...)}
	p.Status = aggregatePhases(p.Phases)
	if len(in.Errors) > 0 {
		p.Status = Error
	}
	for _, ph := range p.Phases {
		for _, s := range ph.Steps {
			if s.Status == Error {
				p.Errors = append(p.Errors, s.Name+": "+s.Message)
			}
		}
	}
	return p
}

func hostOf(a reconcile.Agent) string {
	if a.Hostname != "" {
		return a.Hostname
	}
	return a.ID
}

// step is the deploy step of one record.
func step(in Input, name string, t state.Task) Step {
	role := "server"
	if strings.HasPrefix(name, state.ClientPrefix) {
		role = "client"
	}
	s := Step{ID: id(name), Name: name + ":[" + role + "]"}
	why := in.Launch[name]
	if w := in.Waiting[name]; w != "" {
		if why != "" {
			why += "; "
		}
		why += "last offer: " + w
	}
	if b := in.Blocked[name]; b != "" {
		why = b
	}
	switch {
	case t.Name == "" || !t.Launched():
		s.Status = Pending
		s.Message = "waiting for an offer"
		if why != "" {
			s.Message = why
		}
	case t.Goal == state.GoalReplace && t.Active() && !t.LeaveSentAt.IsZero():
		s.Status = Prepared
		s.Message = fmt.Sprintf("replace: %s is leaving the Consul cluster gracefully (asked %s), then it is placed anew; %s",
			t.TaskID, t.LeaveSentAt.UTC().Format(time.RFC3339), t.Describe())
	case t.Goal == state.GoalRestart || t.Goal == state.GoalReplace || t.Goal == state.GoalStop:
		s.Status = Prepared
		s.Message = fmt.Sprintf("%s: killing %s, %s", strings.ToLower(string(t.Goal)), t.TaskID, t.Describe())
	case t.Running() && ((t.ConfigID != "" && t.ConfigID != in.Target.ConfigIDOf(t.Role)) || t.RestartQueued):
		s.Status = Pending
		s.Message = fmt.Sprintf("running with configuration %s, target is %s: waiting for its turn in the rolling restart", t.ConfigID, in.Target.ConfigIDOf(t.Role))
		if t.ConfigID == in.Target.ConfigIDOf(t.Role) || t.ConfigID == "" {
			s.Message = "restart requested through the plan API (plan restart): waiting for its turn in the rolling restart"
			if t.RestartWhy != "" {
				s.Message = t.RestartWhy + ": waiting for its turn in the rolling restart"
			}
		}
		if w := settlingSummary(in.Settling); w != "" && t.Role == taskspec.RoleServer {
			s.Message += "; first " + w
		}
		if in.Gate != "" && t.Role == taskspec.RoleServer {
			s.Message += "; waiting: " + in.Gate
		}
	case t.Running() && in.Settling[name] != "":
		s.Status = Starting
		s.Message = "TASK_RUNNING on " + t.Hostname + "; waiting to be a healthy raft voter: " + in.Settling[name]
	case t.Running():
		s.Status = Complete
		s.Message = "TASK_RUNNING on " + t.Hostname
		if t.Healthy != nil && !*t.Healthy {
			s.Message += " (not healthy yet)"
		}
	case t.Active():
		s.Status = Starting
		s.Message = t.Describe()
	case t.State == "TASK_ERROR" && t.Failures >= 3:
		s.Status = Error
		s.Message = fmt.Sprintf("%d launches failed, the last with %s", t.Failures, t.Describe())
	default:
		s.Status = Pending
		if reconcile.Backoff(t.Failures)-in.Now.Sub(t.UpdatedAt) > 0 {
			s.Status = Delayed
		}
		s.Message = t.Describe()
		if why != "" {
			s.Message += "; " + why
		}
	}
	return s
}

// settlingSummary names the servers a rolling restart waits for.
func settlingSummary(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + " (" + m[n] + ")"
	}
	return "waiting for " + strings.Join(parts, ", ") + " to be a healthy raft voter"
}

func aggregate(steps []Step) string {
	if len(steps) == 0 {
		return Complete
	}
	counts := map[string]int{}
	for _, s := range steps {
		counts[s.Status]++
	}
	switch {
	case counts[Error] > 0:
		return Error
	case counts[Complete] == len(steps):
		return Complete
	case counts[Pending]+counts[Delayed] == len(steps):
		return Pending
	default:
		return InProgress
	}
}

func aggregatePhases(ps []Phase) string {
	steps := make([]Step, 0, len(ps))
	for _, p := range ps {
		if len(p.Steps) == 0 {
			continue // an empty phase neither starts nor finishes the plan
		}
		steps = append(steps, Step{Status: p.Status})
	}
	return aggregate(steps)
}

// recovery lists tasks that ran and now need a relaunch or replacement.
func recovery(in Input) Plan {
	ph := Phase{ID: id("recovery/tasks"), Name: "recovery", Strategy: "parallel"}
	for _, t := range in.sortedTasks() {
		recovering := (t.Launched() && !t.Active() && t.Goal != state.GoalStop) ||
			t.Goal == state.GoalRestart || t.Goal == state.GoalReplace || t.Replacement
		if !recovering {
			continue
		}
		ph.Steps = append(ph.Steps, step(in, t.Name, t))
	}
	ph.Status = aggregate(ph.Steps)
	p := Plan{Name: Recovery, Strategy: "serial", Phases: []Phase{ph}, Errors: []string{}}
	p.Status = ph.Status
	return p
}

// sortedTasks is the records in plan order, sorted once per Build.
func (in Input) sortedTasks() []state.Task {
	if in.sorted == nil {
		return in.Tasks.Sorted()
	}
	return in.sorted
}
