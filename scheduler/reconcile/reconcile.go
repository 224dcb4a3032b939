// Package reconcile compares the desired state (the target) with the task
// records and returns what must change, as named sets in the style of
// Nomad's scheduler/reconcile. It is pure: the scheduler applies the result
// (persisting records before acting) and turns Kill into KILL calls.
package reconcile

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

// Agent is what the scheduler knows of an agent.
type Agent struct {
	ID       string
	Hostname string
	Public   bool
	// Gone is true once Mesos said the agent was removed for good.
	Gone bool
	// Unreachable is true after a FAILURE event for the agent, until it
	// offers again.
	Unreachable bool
}

// Input is everything one reconciliation looks at.
type Input struct {
	Target state.Target
	Tasks  state.Tasks
	Agents map[string]Agent
	Now    time.Time
	// Raft is Consul's view of its servers (nil: no Consul server
	// answered). A replacement or a rolling restart goes on only once the
	// previous server is a healthy voter in it.
	Raft *RaftHealth
	// Pause: what the operator paused through the plan API (the next
	// server or client batch of a rolling restart, the next removal).
	Pause Pause
	// LeaveTimeout: how long a departing server's graceful leave may take
	// before the kill and peer removal (zero: LeaveTimeout).
	LeaveTimeout time.Duration
}

// Pause is what the operator holds back (plan interrupt).
type Pause struct {
	Servers, Clients, ScaleDown bool
}

// Kill is one task incarnation to kill, with why.
type Kill struct {
	Name, TaskID, AgentID, Why string
}

// Result is what changes. Tasks is the new set of records; Changed and
// Deleted name the records to persist or remove before acting.
type Result struct {
	Tasks   state.Tasks
	Changed []string
	Deleted []string
	// Place: server slots created (not yet on an agent).
	Place []string
	// Launch: records waiting for an offer (not active, goal running),
	// with why they need one.
	Launch map[string]string
	// Kill: incarnations to kill (restart, replace, stop, rolling update).
	Kill []Kill
	// Update: running tasks launched with another configuration.
	Update []string
	// Replace: servers moved off their agent (permanent failure or the
	// operator's replace): their reservation is abandoned.
	Replace []string
	// Lost: records whose agent is gone.
	Lost []string
	// Old holds the records of replaced servers and forgotten clients as
	// they were, for cleanup in Consul (raft peer removal, force-leave).
	Old map[string]state.Task
	// Release (uninstall): servers whose reservation and volume wait for an
	// offer from their agent to be destroyed, with why.
	Release map[string]string
	// Settling: running servers that the next replacement or rolling
	// restart waits for, with why (not a healthy raft voter yet).
	Settling map[string]string
	// ScaleDown: servers above the configured count, with what their
	// removal waits for or does now. RemovePeer: those whose raft peer
	// must be removed now (name → raft address), before they are killed.
	ScaleDown  map[string]string
	RemovePeer map[string]string
	// Gate: why no server action can start now (Consul's raft view
	// unknown, no leader, the cluster unhealthy or below its failure
	// tolerance), "" when the cluster allows one.
	Gate string
	// Transfer: the rolling restart hands raft leadership over before it
	// restarts the leader (nil: nothing to hand over).
	Transfer *Transfer
	// Leave: servers going away for good (scale-down, replace) whose
	// executor is asked now to leave the Consul cluster gracefully; their
	// records carry LeaveSentAt, written before the MESSAGE is sent.
	Leave []Leave
}

// Transfer is a raft leadership transfer the scheduler asks Consul for
// (POST /v1/operator/raft/transfer-leader?id=ToID through a server).
type Transfer struct {
	From, To     string // task names
	FromID, ToID string // raft IDs
}

// NeedsOffers reports whether anything waits for an offer.
func (r Result) NeedsOffers() bool { return len(r.Launch) > 0 || len(r.Release) > 0 }

// How often the scheduler reads Consul's raft view: RaftPollBusy while a
// server action waits on that view (a restarted server to be a healthy
// voter, a leadership hand-over and its new leader to settle, a closed
// gate, a scale-down or a replacement), RaftPollIdle otherwise. At 3 s a
// read, each step of a rolling restart waited 1.5 s on average for the
// read that shows it done.
const (
	RaftPollBusy = time.Second
	RaftPollIdle = 3 * time.Second
)

// RaftPollEvery is how long after a read the scheduler reads Consul's
// raft view again, given the last reconciliation.
func (r Result) RaftPollEvery() time.Duration {
	if len(r.Settling) > 0 || r.Transfer != nil || r.Gate != "" || len(r.ScaleDown) > 0 ||
		len(r.RemovePeer) > 0 || len(r.Replace) > 0 {
		return RaftPollBusy
	}
	for _, n := range r.Update {
		if r.Tasks[n].Role == taskspec.RoleServer {
			return RaftPollBusy
		}
	}
	return RaftPollIdle
}

// Waits is what server actions wait for in this result, one line: the
// gate, then each settling server with its reason, sorted ("" when
// nothing waits). The scheduler logs it when it changes, so each wait of
// a rolling restart or replacement shows in the log with its reason.
func (r Result) Waits() string {
	var parts []string
	if r.Gate != "" {
		parts = append(parts, "gate: "+r.Gate)
	}
	names := make([]string, 0, len(r.Settling))
	for n := range r.Settling {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		parts = append(parts, n+": "+r.Settling[n])
	}
	return strings.Join(parts, "; ")
}

// Backoff is the delay before relaunching a task that failed n times in a row.
func Backoff(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	d := time.Second << uint(n-2)
	if d > time.Minute || d <= 0 {
		d = time.Minute
	}
	return d
}

// Reconcile computes the result. It never mutates in.Tasks.
func Reconcile(in Input) Result {
	r := Result{Tasks: in.Tasks.Clone(), Launch: map[string]string{}, Release: map[string]string{}, Old: map[string]state.Task{},
		Settling: map[string]string{}, ScaleDown: map[string]string{}, RemovePeer: map[string]string{}}
	changed := map[string]bool{}
	set := func(t state.Task) { r.Tasks[t.Name] = t; changed[t.Name] = true }
	if in.Target.Uninstall {
		uninstall(in, &r, set)
		for n := range changed {
			if _, ok := r.Tasks[n]; ok {
				r.Changed = append(r.Changed, n)
			}
		}
		sort.Strings(r.Changed)
		sort.Strings(r.Deleted)
		return r
	}

	// Server slots.
	for i := 0; i < in.Target.Servers; i++ {
		name := state.ServerName(i)
		if _, ok := r.Tasks[name]; !ok {
			set(state.Task{Name: name, Role: taskspec.RoleServer, Index: i, UpdatedAt: in.Now})
			r.Place = append(r.Place, name)
		}
	}

	names := make([]string, 0, len(r.Tasks))
	for n := range r.Tasks {
		names = append(names, n)
	}
	sort.Strings(names)

	// A replacement is done once it runs and is a healthy raft voter;
	// until then the next one waits.
	serverReplacing := false
	for _, n := range names {
		t := r.Tasks[n]
		if t.Role != taskspec.RoleServer || !t.Replacement || t.Index >= in.Target.Servers {
			continue
		}
		if t.Running() && t.Goal == state.GoalRunning {
			why := in.Raft.VoterWait(t, in.Target)
			if why == "" {
				t.Replacement = false
				set(t)
				continue
			}
			r.Settling[n] = "replacement " + why
		}
		serverReplacing = true
	}

	for _, n := range names {
		t := r.Tasks[n]
		agent, known := in.Agents[t.AgentID]
		agentGone := t.AgentID != "" && known && agent.Gone
		gone := agentGone || t.State == "TASK_GONE_BY_OPERATOR"

		// Clients that should not exist any more. A client whose agent
		// stays unreachable longer than ReplaceAfter is forgotten (and a
		// new one starts if the agent comes back).
		if t.Role == taskspec.RoleClient {
			lostTooLong := t.State == "TASK_UNREACHABLE" && !t.FailingSince.IsZero() && in.Target.ReplaceAfter > 0 &&
				in.Now.Sub(t.FailingSince) >= in.Target.ReplaceAfter
			gone = gone || lostTooLong
			if !in.Target.ClientsEnabled || (agent.Public && !in.Target.ClientsOnPublic) || gone {
				if gone {
					r.Lost = append(r.Lost, n)
					r.Old[n] = t
				}
				if t.Active() && !gone {
					t.Goal = state.GoalStop
					set(t)
					r.Kill = append(r.Kill, Kill{n, t.TaskID, t.AgentID, "clients are not wanted on this agent any more"})
					continue
				}
				delete(r.Tasks, n)
				r.Deleted = append(r.Deleted, n)
				continue
			}
		}
		// Servers above the configured count are left alone: scaling
		// down needs raft peer removal first (not automatic yet).

		switch t.Goal {
		case state.GoalStop:
			if t.Active() {
				r.Kill = append(r.Kill, Kill{n, t.TaskID, t.AgentID, "stopping"})
			} else {
				delete(r.Tasks, n)
				r.Deleted = append(r.Deleted, n)
			}
			continue
		case state.GoalRestart:
			if t.Active() {
				if w := leaderSettling(in, t); w != "" {
					r.Gate = "restarting " + n + " waits: " + w
					continue
				}
				if tr := handOver(in, r.Tasks, t, ""); tr != nil && r.Transfer == nil {
					// The leader: hand its leadership over first.
					r.Transfer = tr
					r.Gate = fmt.Sprintf("handing raft leadership from %s to %s before restarting %s", tr.From, tr.To, tr.From)
					continue
				}
				r.Kill = append(r.Kill, Kill{n, t.TaskID, t.AgentID, "restart requested"})
				continue
			}
			t.Goal = state.GoalRunning
			t.Failures = 0
			set(t)
		case state.GoalReplace:
			if t.Active() && !gone {
				if t.Role == taskspec.RoleServer && replaceLeave(in, &r, set, t) {
					continue
				}
				r.Kill = append(r.Kill, Kill{n, t.TaskID, t.AgentID, "replace requested"})
				continue
			}
			if t.Role == taskspec.RoleClient {
				delete(r.Tasks, n)
				r.Deleted = append(r.Deleted, n)
				continue
			}
			r.Old[n] = t
			t = moved(t, in.Now, in.Target)
			set(t)
			r.Replace = append(r.Replace, n)
		}

		// Permanent failure of a server: agent gone, or failing longer
		// than ReplaceAfter. One replacement at a time.
		if t.Role == taskspec.RoleServer && t.AgentID != "" && !serverReplacing && t.Index < in.Target.Servers {
			failingTooLong := !t.FailingSince.IsZero() && in.Target.ReplaceAfter > 0 &&
				in.Now.Sub(t.FailingSince) >= in.Target.ReplaceAfter && !t.Running()
			// Outage recovery: a server lost when the operator confirmed
			// it is replaced once the survivors have a leader.
			_, led := in.Raft.Leader()
			unreachable := t.State == "TASK_UNREACHABLE"
			if t.RecoverReplace && led && t.Active() && !unreachable {
				// It came back with the raft data of before the recovery:
				// stopped, then replaced.
				r.Kill = append(r.Kill, Kill{n, t.TaskID, t.AgentID, "lost when the outage recovery was confirmed: replaced by a new server"})
				serverReplacing = true
				continue
			}
			lostAtRecovery := t.RecoverReplace && led && (!t.Active() || unreachable)
			if gone || failingTooLong || lostAtRecovery {
				if gone {
					r.Lost = append(r.Lost, n)
				}
				r.Old[n] = t
				t = moved(t, in.Now, in.Target)
				set(t)
				r.Replace = append(r.Replace, n)
				serverReplacing = true
			}
		}

		if t.Role == taskspec.RoleServer && t.Index >= in.Target.Servers {
			continue
		}
		if t.RecoverReplace && t.AgentID != "" {
			// Waits for its turn to be replaced; never relaunched on its
			// old data (its peer is gone from the survivors' raft).
			continue
		}
		if len(t.RecoverPeers) > 0 && t.Running() && t.Goal == state.GoalRunning {
			t.RecoverPeers = nil // the incarnation started with them runs
			set(t)
		}
		if !t.Active() {
			why := "not launched yet"
			if t.Launched() {
				why = fmt.Sprintf("last incarnation ended %s", t.State)
				if t.Reason != "" {
					why += " (" + t.Reason + ")"
				}
			}
			if t.AgentID != "" {
				why += "; relaunching on the same agent " + hostOrID(t)
			}
			if wait := Backoff(t.Failures) - in.Now.Sub(t.UpdatedAt); t.Failures > 1 && wait > 0 {
				why = fmt.Sprintf("%s; delayed %s after %d failures", why, wait.Round(time.Second), t.Failures)
			}
			r.Launch[n] = why
		}
	}

	// Rolling configuration update: one server at a time, followers first
	// and the leader last (after handing its leadership over), only while
	// every server runs as a healthy raft voter and the cluster is healthy
	// with its full failure tolerance; clients in batches.
	allServersRunning := true
	var settling []string
	for i := 0; i < in.Target.Servers; i++ {
		t := r.Tasks[state.ServerName(i)]
		if !t.Running() || t.Goal != state.GoalRunning {
			allServersRunning = false
			continue
		}
		if why := in.Raft.VoterWait(t, in.Target); why != "" {
			allServersRunning = false
			settling = append(settling, t.Name)
			if _, ok := r.Settling[t.Name]; !ok {
				r.Settling[t.Name] = why
			}
		}
	}
	if why := in.Raft.ClusterWait(in.Target); why != "" {
		allServersRunning = false
		r.Gate = why
	}
	serverUpdating := rollServers(in, &r, set, names, allServersRunning)
	rollClients(in, &r, set, names)

	scaleDown(in, &r, set, allServersRunning && !serverUpdating && !serverReplacing && !serverWaitingUpdate(r.Update, r.Tasks))

	if !serverUpdating && !serverWaitingUpdate(r.Update, r.Tasks) && len(r.ScaleDown) == 0 {
		// Nothing waits on servers that are merely settling after a
		// deploy: only replacements keep their reason.
		for _, n := range settling {
			if !r.Tasks[n].Replacement {
				delete(r.Settling, n)
			}
		}
	}

	for n := range changed {
		if _, ok := r.Tasks[n]; ok {
			r.Changed = append(r.Changed, n)
		}
	}
	sort.Strings(r.Changed)
	sort.Strings(r.Deleted)
	sort.Strings(r.Place)
	sort.Strings(r.Update)
	sort.Slice(r.Kill, func(i, j int) bool { return r.Kill[i].Name < r.Kill[j].Name })
	return r
}

// scaleDown removes servers above the configured count, the highest
// index first and one at a time: raft peer removal (through Consul, only
// while the others keep quorum), then the kill, then the record goes (its
// reservation and volume, explained by no record any more, are destroyed
// and unreserved at the agent's next offer). A removal starts only while
// every remaining server runs and is a healthy voter, and no replacement
// or rolling restart is under way.
func scaleDown(in Input, r *Result, set func(state.Task), settled bool) {
	var surplus []state.Task
	for _, t := range r.Tasks {
		if t.Role == taskspec.RoleServer && t.Index >= in.Target.Servers {
			surplus = append(surplus, t)
		}
	}
	if len(surplus) == 0 {
		return
	}
	sort.Slice(surplus, func(i, j int) bool { return surplus[i].Index > surplus[j].Index })
	cur := surplus[0]
	for _, t := range surplus {
		if t.Goal == state.GoalDecommission {
			cur = t // one already under way goes first
			break
		}
	}
	for _, t := range surplus {
		if t.Name != cur.Name {
			r.ScaleDown[t.Name] = "waiting for the removal of " + cur.Name + " (servers are removed one at a time, the highest first)"
		}
	}
	n := cur.Name
	if cur.Goal != state.GoalDecommission {
		if in.Pause.ScaleDown {
			r.ScaleDown[n] = "paused by the operator (plan continue)"
			return
		}
		if !settled {
			r.ScaleDown[n] = "waiting for the remaining servers to run and be healthy raft voters, and for any replacement or rolling restart to finish"
			return
		}
		cur.Goal = state.GoalDecommission
		set(cur)
	}
	step, why := depart(cur, in.Raft, in.Target, in.Now, in.LeaveTimeout)
	if cur.Active() && !cur.Left && step != departKill {
		scaleDownDepart(in, r, set, cur, step, why)
		return
	}
	scaleDownEnd(in, r, cur)
}

// scaleDownEnd is the end of a server scaled down that did not leave in
// time or cannot (not running), or that has ended: the fallback peer
// removal (the leader handing over first), the kill, then, once a raft
// read after the kill shows the peer gone, the record goes.
func scaleDownEnd(in Input, r *Result, cur state.Task) {
	n := cur.Name
	switch {
	case !cur.PeerRemoved && cur.Launched() && cur.IP != "" && !cur.Left:
		// The fallback when it did not leave (its executor is gone or did
		// not answer): the leader first hands its leadership over, since
		// removing the leader's own peer makes it step down into an
		// election.
		if w := leaderSettling(in, cur); w != "" {
			r.ScaleDown[n] = w
			return
		}
		if tr := handOver(in, r.Tasks, cur, ""); tr != nil {
			if r.Transfer == nil {
				r.Transfer = tr
			}
			r.ScaleDown[n] = fmt.Sprintf("handing raft leadership from %s to %s before removing its peer", tr.From, tr.To)
			return
		}
		// Also for a server that is down: a dead peer counts against
		// quorum until it is removed.
		port := cur.Ports.Server
		if port <= 0 {
			port = in.Target.Ports.Server
		}
		addr := net.JoinHostPort(cur.IP, strconv.Itoa(port))
		r.RemovePeer[n] = addr
		r.ScaleDown[n] = "removing its raft peer " + addr + " through the Consul operator API (only while the other servers keep quorum), then killing it"
	case cur.Active() && cur.Left:
		r.Kill = append(r.Kill, Kill{n, cur.TaskID, cur.AgentID, "scaling servers down: it left the cluster"})
		r.ScaleDown[n] = "left the Consul cluster; killing " + cur.TaskID
	case cur.Active():
		r.Kill = append(r.Kill, Kill{n, cur.TaskID, cur.AgentID, "scaling servers down: its raft peer is removed"})
		r.ScaleDown[n] = "raft peer removed; killing " + cur.TaskID + " (" + cur.Describe() + "), then its volume and reservation are destroyed"
	default:
		// Consul's leader adds an alive server it finds in serf back to
		// raft: between the peer removal and the kill it can re-add it,
		// and once killed it would stay a dead voter counting against
		// quorum (the availability test saw it). The record goes only
		// when a raft read after the kill shows the peer gone; otherwise
		// the peer is removed again (a dead server is not re-added).
		if addr := raftAddr(cur, in.Target); addr != "" {
			if w := in.Raft.viewWait(); w != "" || !in.Raft.At.After(cur.UpdatedAt) || !in.Raft.At.After(cur.PeerRemovedAt) {
				if w == "" {
					w = "waiting for Consul's raft configuration read after the kill"
				}
				r.ScaleDown[n] = "killed; checking that its raft peer " + addr + " is gone: " + w
				return
			}
			if _, present := in.Raft.find(cur, in.Target); present {
				r.RemovePeer[n] = addr
				r.ScaleDown[n] = "killed, but its raft peer " + addr + " is back in the configuration (Consul re-added it before the kill): removing it again"
				return
			}
		}
		delete(r.Tasks, n)
		r.Deleted = append(r.Deleted, n)
		delete(r.ScaleDown, n)
		if cur.IP != "" && !cur.Left {
			r.Old[n] = cur // force-left: it stopped without leaving
		}
	}
}

// scaleDownDepart is the graceful way of a server scaled down: the
// leader first hands its leadership over; then its raft peer is removed
// through the operator API (RemoveServer's own quorum check applies),
// so the voters shrink while every one of them is healthy and the
// failure tolerance never dips (leaving first kept it a voter marked
// "left" in serf until the leader removed it: 4 voters, one leaving,
// tolerance 0 on the way from 5 to 3, as the availability test saw);
// then the server leaves the LAN and WAN pools gracefully and its task
// ends. Nothing moves while the quorum gate holds it. A leave asked
// before its peer was removed (a scheduler of an older version) goes on.
func scaleDownDepart(in Input, r *Result, set func(state.Task), cur state.Task, step departStep, why string) {
	n := cur.Name
	if step == departHold {
		r.ScaleDown[n] = why
		return
	}
	if !cur.PeerRemoved && cur.LeaveSentAt.IsZero() {
		if w := leaderSettling(in, cur); w != "" {
			r.ScaleDown[n] = w
			return
		}
		if tr := handOver(in, r.Tasks, cur, ""); tr != nil {
			if r.Transfer == nil {
				r.Transfer = tr
			}
			r.ScaleDown[n] = fmt.Sprintf("handing raft leadership from %s to %s before its peer is removed", tr.From, tr.To)
			return
		}
		if addr := raftAddr(cur, in.Target); addr != "" {
			r.RemovePeer[n] = addr
			r.ScaleDown[n] = "removing its raft peer " + addr + " through the Consul operator API (only while the others keep quorum) " +
				"before it leaves, so the voters shrink while all of them are healthy; then it leaves the gossip pools gracefully"
			return
		}
	}
	if step == departLeave && cur.PeerRemoved {
		if w := peerGoneWait(in, r, cur); w != "" {
			r.ScaleDown[n] = w
			return
		}
	}
	r.ScaleDown[n] = why
	if step == departLeave || step == departResendLeave {
		r.Leave = append(r.Leave, leaveSent(&cur, step, in.Now, "scaling servers down to "+strconv.Itoa(in.Target.Servers)))
		set(cur)
	}
}

// peerGoneWait holds the leave of a server whose raft peer was removed
// until a raft read begun after the removal shows the peer gone, and
// removes it again when it is back: Consul's leader adds an alive server
// it finds in serf back to raft (its reconcile, every 60 s or on a serf
// event), and one that then left as a voter cost the failure tolerance
// until the leader removed it (7.5 s at tolerance 1 of 2 in an
// availability run's 7→5). It returns why it waits, or "".
func peerGoneWait(in Input, r *Result, cur state.Task) string {
	addr := raftAddr(cur, in.Target)
	if addr == "" {
		return ""
	}
	if w := in.Raft.viewWait(); w != "" {
		return "raft peer removed; before it leaves, " + w
	}
	if !in.Raft.At.After(cur.PeerRemovedAt) {
		return "raft peer removed; waiting for a raft read begun after the removal before it leaves"
	}
	if _, present := in.Raft.find(cur, in.Target); present {
		r.RemovePeer[cur.Name] = addr
		return "its raft peer " + addr + " is back in the configuration (Consul's leader re-added the alive server): removing it again before it leaves"
	}
	return ""
}

// replaceLeave takes a server being replaced through its graceful
// departure: leadership handed over when it leads, then its executor asked
// to leave (through the quorum gate), then a wait for the task to end. It
// reports false when the server is to be killed now (it left, or the
// leave did not happen in time: the old peer is then removed and its node
// pruned before the replacement is placed, as without leaves).
func replaceLeave(in Input, r *Result, set func(state.Task), t state.Task) bool {
	step, why := depart(t, in.Raft, in.Target, in.Now, in.LeaveTimeout)
	if step == departKill {
		return false
	}
	if step == departHold {
		r.Settling[t.Name] = "being replaced: " + why
		return true
	}
	if w := leaderSettling(in, t); w != "" && t.LeaveSentAt.IsZero() {
		r.Settling[t.Name] = "being replaced: " + w
		return true
	}
	if tr := handOver(in, r.Tasks, t, ""); tr != nil {
		if r.Transfer == nil {
			r.Transfer = tr
			r.Gate = fmt.Sprintf("handing raft leadership from %s to %s before it leaves for its replacement", tr.From, tr.To)
		}
		return true
	}
	r.Settling[t.Name] = "being replaced: " + why
	if step == departLeave || step == departResendLeave {
		r.Leave = append(r.Leave, leaveSent(&t, step, in.Now, "replace requested"))
		set(t)
	}
	return true
}

// leaveSent records on t that its leave MESSAGE is sent now (the first,
// or again) and returns the MESSAGE to send.
func leaveSent(t *state.Task, step departStep, now time.Time, why string) Leave {
	if step == departResendLeave {
		t.LeaveResentAt = now
	} else {
		t.LeaveSentAt = now
	}
	return Leave{Name: t.Name, TaskID: t.TaskID, AgentID: t.AgentID, Why: why, Again: step == departResendLeave}
}

// serverWaitingUpdate: a server waits for its turn in a rolling restart.
func serverWaitingUpdate(update []string, ts state.Tasks) bool {
	for _, n := range update {
		if ts[n].Role == taskspec.RoleServer {
			return true
		}
	}
	return false
}

// moved abandons a server's agent and reservation so it is placed anew.
func moved(t state.Task, now time.Time, tg state.Target) state.Task {
	peer := t.OldPeer // an earlier move not cleaned up yet
	if t.IP != "" && !(t.Left && tg.Servers <= 1) {
		// (The only server that left gracefully has no other server to
		// remove its peer through, and its raft data goes with its
		// volume: nothing to wait for.)
		port := t.Ports.Server
		if port <= 0 {
			port = tg.Ports.Server
		}
		peer = net.JoinHostPort(t.IP, strconv.Itoa(port))
	}
	return state.Task{Name: t.Name, Role: t.Role, Index: t.Index, Failures: 0, UpdatedAt: now,
		Replacement: true, OldPeer: peer, Message: replacedMessage(t)}
}

func hostOrID(t state.Task) string {
	if t.Hostname != "" {
		return t.Hostname
	}
	return t.AgentID
}

// uninstall: kill every task; forget clients and servers without a
// reservation; servers with one wait for their agent's offer (Release).
func uninstall(in Input, r *Result, set func(state.Task)) {
	names := make([]string, 0, len(r.Tasks))
	for n := range r.Tasks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := r.Tasks[n]
		if t.Active() && t.State != "TASK_UNREACHABLE" {
			if t.Goal != state.GoalStop {
				t.Goal = state.GoalStop
				set(t)
			}
			why := "uninstalling"
			if t.Role == taskspec.RoleServer {
				w, leaving := uninstallLeave(in, r, set, t)
				if leaving {
					continue
				}
				why += ": " + w
			}
			r.Kill = append(r.Kill, Kill{n, t.TaskID, t.AgentID, why})
			continue
		}
		agent := in.Agents[t.AgentID]
		if t.Role == taskspec.RoleServer && t.Reservation != nil && t.Reservation.Confirmed && t.AgentID != "" && !agent.Gone {
			r.Release[n] = "destroying volume " + t.Reservation.PersistenceID + " and unreserving on " + hostOrID(t)
			continue
		}
		if t.Role == taskspec.RoleServer && t.Reservation == nil && t.Adopted != "" && t.AgentID != "" && !agent.Gone {
			// Adopted from a running task: its reservation is known by its
			// label only, once offered.
			r.Release[n] = "destroying the volume of the reservation labelled " + n + " and unreserving on " + hostOrID(t)
			continue
		}
		delete(r.Tasks, n)
		r.Deleted = append(r.Deleted, n)
	}
}

// uninstallLeave takes a running server through its graceful leave before
// an uninstall kills it: every server at once, with no quorum gate (the
// whole datacenter goes), so that the LAN and WAN pools record it as left.
// Killed without a leave, a server stays a failed member of the other
// datacenters' WAN pool (reconnect_timeout_wan: 72 h), its datacenter
// listed and every request forwarded there failing. It reports whether
// the server is leaving, and otherwise why it is to be killed now (not
// running, or no report of its leave in time).
func uninstallLeave(in Input, r *Result, set func(state.Task), t state.Task) (string, bool) {
	step, why := uninstallDepart(t, in.Now, in.LeaveTimeout)
	switch step {
	case departLeave, departResendLeave:
		r.Leave = append(r.Leave, leaveSent(&t, step, in.Now, "uninstalling: the whole datacenter goes"))
		set(t)
		return why, true
	case departWaitLeave:
		return why, true
	}
	return why, false
}

// uninstallDepart is depart for an uninstall (pure): no quorum gate and no
// peer removal, only the leave and, failing it, the kill.
func uninstallDepart(t state.Task, now time.Time, timeout time.Duration) (departStep, string) {
	if timeout <= 0 {
		timeout = LeaveTimeout
	}
	switch {
	case !t.LeaveSentAt.IsZero() && now.Sub(t.LeaveSentAt) < timeout:
		return leaveWait(t, now, timeout)
	case !t.LeaveSentAt.IsZero():
		return departKill, fmt.Sprintf("no report of its graceful leave within %s: killing it", timeout)
	case !t.Running():
		return departKill, t.State + ": no graceful leave possible; killing it"
	}
	return departLeave, "asking its executor to leave the Consul cluster gracefully (LAN and WAN) before the uninstall kills it"
}

// rollServers restarts the servers launched with another configuration,
// one at a time while settled: followers in index order, then the
// leader, whose leadership first goes to a healthy voter already on the
// new configuration (Result.Transfer). It reports whether a server restart
// was started now.
func rollServers(in Input, r *Result, set func(state.Task), names []string, settled bool) bool {
	var stale []state.Task
	for _, n := range names {
		t, ok := r.Tasks[n]
		if !ok || t.Role != taskspec.RoleServer || t.Index >= in.Target.Servers || !t.Running() || t.Goal != state.GoalRunning ||
			!needsRestart(t, in.Target.ServerConfigID) {
			continue
		}
		stale = append(stale, t)
		r.Update = append(r.Update, n)
	}
	if len(stale) == 0 || !settled {
		return false
	}
	if in.Pause.Servers {
		r.Gate = "the rolling restart of servers is paused by the operator (plan continue)"
		return false
	}
	sort.SliceStable(stale, func(i, j int) bool {
		li, lj := in.Raft.IsLeader(stale[i], in.Target), in.Raft.IsLeader(stale[j], in.Target)
		if li != lj {
			return lj // followers first
		}
		return stale[i].Index < stale[j].Index
	})
	t := stale[0]
	if in.Raft.IsLeader(t, in.Target) && in.Target.Servers > 1 {
		if tr := handOver(in, r.Tasks, t, in.Target.ServerConfigID); tr != nil {
			r.Transfer = tr
			r.Gate = fmt.Sprintf("handing raft leadership from %s to %s (restarted, a healthy voter) before restarting %s", t.Name, tr.To, t.Name)
			return false
		}
		r.Gate = "waiting for a restarted server to be a healthy voter to hand raft leadership to"
		return false
	}
	if w := leaderSettling(in, t); w != "" {
		r.Gate = "restarting " + t.Name + " waits: " + w
		return false
	}
	why := restartWhy(t, in.Target.ServerConfigID) + " (rolling restart)"
	t.Goal = state.GoalRestart
	t.RestartQueued, t.RestartWhy = false, ""
	set(t)
	r.Kill = append(r.Kill, Kill{t.Name, t.TaskID, t.AgentID, why})
	return true
}

// needsRestart: a running task waits for its turn in a rolling restart,
// because it runs another configuration than configID or the operator
// restarted its plan or phase.
func needsRestart(t state.Task, configID string) bool {
	return (t.ConfigID != "" && t.ConfigID != configID) || t.RestartQueued
}

func restartWhy(t state.Task, configID string) string {
	if t.ConfigID != "" && t.ConfigID != configID {
		return "configuration changed"
	}
	if t.RestartWhy != "" {
		return t.RestartWhy
	}
	return "restart requested through the plan API"
}

// ClientBatch is how many clients a rolling restart restarts at once:
// percent of the clients (default 5), at least 1.
func ClientBatch(clients, percent int) int {
	if percent <= 0 {
		percent = 5
	}
	b := clients * percent / 100
	if b < 1 {
		b = 1
	}
	return b
}

// rollClients restarts the clients launched with another configuration in
// batches (state.Target.ClientBatchPercent): the next batch starts only
// when every client of the previous one runs again on the new
// configuration and is healthy (joined).
func rollClients(in Input, r *Result, set func(state.Task), names []string) {
	var stale []state.Task
	clients, inFlight := 0, 0
	for _, n := range names {
		t, ok := r.Tasks[n]
		if !ok || t.Role != taskspec.RoleClient || t.Goal == state.GoalStop {
			continue
		}
		clients++
		onNew := t.ConfigID == in.Target.ClientConfigID
		switch {
		case t.Goal == state.GoalRestart:
			inFlight++
		case onNew && t.Launched() && (!t.Running() || (t.Healthy != nil && !*t.Healthy)) && t.Failures == 0:
			inFlight++ // restarted, not back (joined) yet
		case t.Running() && t.Goal == state.GoalRunning && needsRestart(t, in.Target.ClientConfigID):
			stale = append(stale, t)
			r.Update = append(r.Update, n)
		}
	}
	room := ClientBatch(clients, in.Target.ClientBatchPercent)
	if inFlight > 0 || in.Pause.Clients {
		room = 0 // the previous batch is not back yet
	}
	for _, t := range stale {
		if room == 0 {
			break
		}
		room--
		why := restartWhy(t, in.Target.ClientConfigID) + " (rolling restart, clients in batches)"
		t.Goal = state.GoalRestart
		t.RestartQueued, t.RestartWhy = false, ""
		set(t)
		r.Kill = append(r.Kill, Kill{t.Name, t.TaskID, t.AgentID, why})
	}
}

// handOver is the leadership transfer to ask for before stopping t, if t
// leads raft: to the other configured server that is a healthy voter (and
// runs configID, when given) and has run the longest, the lowest index
// among equals. A server restarted seconds ago can be a healthy voter
// already (autopilot judges contact and log, not age); handed leadership
// at once under load it failed to heartbeat and the cluster went through
// two more elections and a 5 s write gap (the availability test): the
// longest-running one is the safest new leader. nil when t does not lead
// or no server can take over.
func handOver(in Input, ts state.Tasks, t state.Task, configID string) *Transfer {
	if t.Role != taskspec.RoleServer || in.Target.Servers <= 1 || !in.Raft.IsLeader(t, in.Target) {
		return nil
	}
	from, _ := in.Raft.find(t, in.Target)
	if from.ID == "" {
		return nil
	}
	var best *Transfer
	var bestSince time.Time
	for i := 0; i < in.Target.Servers; i++ {
		o, ok := ts[state.ServerName(i)]
		if !ok || o.Name == t.Name || !o.Running() || (configID != "" && o.ConfigID != configID) {
			continue
		}
		to, ok := in.Raft.find(o, in.Target)
		if !ok || !to.Voter || !to.Healthy || to.ID == "" {
			continue
		}
		if best == nil || o.RunningSince.Before(bestSince) {
			best = &Transfer{From: t.Name, To: o.Name, FromID: from.ID, ToID: to.ID}
			bestSince = o.RunningSince
		}
	}
	return best
}

// leaderSettling says why server t must not be stopped (killed, asked to
// leave, its peer removed) yet because the raft leader is new, or "".
func leaderSettling(in Input, t state.Task) string {
	if t.Role != taskspec.RoleServer || in.Target.Servers <= 1 {
		return ""
	}
	return in.Raft.LeaderSettleWait(in.Target.RaftMultiplier)
}

// replacedMessage says where a replaced server was and, when it had a
// volume there, that its data goes with it.
func replacedMessage(t state.Task) string {
	msg := "replaced; was on " + hostOrID(t)
	if t.Role == taskspec.RoleServer && t.Reservation != nil && t.Reservation.PersistenceID != "" {
		msg += "; its volume " + t.Reservation.PersistenceID + " there (with its data) is destroyed when that agent offers it: the new server starts empty and rejoins"
	}
	return msg
}
