package reconcile

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// RaftServer is one server in Consul's raft configuration, with
// autopilot's verdict on its health.
type RaftServer struct {
	ID      string // raft ID (the Consul node ID)
	Name    string // Consul node name (the task name)
	Address string // raft address ip:port
	Leader  bool
	Voter   bool
	Healthy bool
}

// RaftHealth is Consul's view of its servers as the scheduler last read
// it (autopilot server health through a running server's HTTP API).
//
// The gate fails closed: a nil *RaftHealth (no Consul server answered) or
// one with Err (a server answered without a view: no leader, ACLs hiding
// the raft configuration) lets no server action go on; the reason is what
// the plan's steps say.
type RaftHealth struct {
	// At is when the scheduler started reading it (its own clock).
	At time.Time
	// Err: Consul gave no usable view; nothing counts as a healthy voter.
	Err     string
	Servers []RaftServer
	// Healthy and FailureTolerance are autopilot's verdict on the whole
	// cluster (every server healthy; how many voters could fail without
	// an outage).
	Healthy          bool
	FailureTolerance int
	// LeaderSince is when the scheduler first read the current leader
	// leading, in an unbroken run of reads that all showed it (zero:
	// unknown). See LeaderSettleWait.
	LeaderSince time.Time
}

// LeaderSettle is how long, per unit of raft_multiplier, a new raft
// leader must have led in the scheduler's reads before a server is
// stopped. Right after a leadership transfer the old leader, now a
// follower, can win an election again before the new leader's
// heartbeats settle (the availability test on a loaded machine saw the
// old leader back at a higher term 1.7 s after a transfer, and killed
// moments later: two voters down for an instant). Consul's heartbeat
// and election timeouts are 1 s per unit of raft_multiplier.
const LeaderSettle = 3 * time.Second

// HealthLag is how long after a server's task is RUNNING a read of
// Consul's raft view must start to count as a view of that incarnation.
// Autopilot refreshes each server's health every 2 s (Consul's
// ServerHealthInterval) and answers from its last refresh, so a read
// just after a restart can show the health of the incarnation that was
// stopped, draining and healthy; one second more covers the refresh's own
// round of RaftStats calls. (With a read every 3 s this was rarely hit;
// reading every second, the scheduler's simulation test restarted a second
// server while the first was held a non-voter.)
const HealthLag = 3 * time.Second

// CarryLeaderSince sets h.LeaderSince from the previous view: kept when
// both show the same leader, else the new view's read time (zero without
// a leader).
func (h *RaftHealth) CarryLeaderSince(prev *RaftHealth) {
	l, ok := h.Leader()
	if !ok {
		h.LeaderSince = time.Time{}
		return
	}
	if p, pok := prev.Leader(); pok && p.ID == l.ID && !prev.LeaderSince.IsZero() {
		h.LeaderSince = prev.LeaderSince
		return
	}
	h.LeaderSince = h.At
}

// LeaderSettleWait says why a server must not be stopped yet because the
// raft leader is new (it has led for less than LeaderSettle per unit of
// multiplier in the scheduler's reads), or "".
func (h *RaftHealth) LeaderSettleWait(multiplier int) string {
	if h == nil || h.LeaderSince.IsZero() {
		return ""
	}
	if multiplier < 1 {
		multiplier = 1
	}
	settle := LeaderSettle * time.Duration(multiplier)
	// Judged on the reads, not on now: a read settle after the first one
	// must still show it leading.
	if led := h.At.Sub(h.LeaderSince); led < settle {
		l, _ := h.Leader()
		return fmt.Sprintf("the raft leader %s has led for %s only in the scheduler's reads; waiting for a read that shows it leading for %s (a leadership just handed over can bounce back)",
			l.Name, led.Round(100*time.Millisecond), settle)
	}
	return ""
}

// NoConsul is the reason every server action waits when no Consul server
// answered the scheduler.
const NoConsul = "no Consul server answered the scheduler's raft read (the view is unknown: server actions wait)"

// viewWait says why the view cannot be used, or "".
func (h *RaftHealth) viewWait() string {
	if h == nil {
		return NoConsul
	}
	if h.Err != "" {
		return "waiting for Consul's raft configuration: " + h.Err
	}
	return ""
}

// Leader is the server that leads raft in this view, if any.
func (h *RaftHealth) Leader() (RaftServer, bool) {
	if h == nil || h.Err != "" {
		return RaftServer{}, false
	}
	for _, s := range h.Servers {
		if s.Leader {
			return s, true
		}
	}
	return RaftServer{}, false
}

// WantTolerance is the failure tolerance a cluster of n servers has when
// every server is a healthy voter; a server action waits for it.
func WantTolerance(n int) int {
	if n < 1 {
		return 0
	}
	return (n - 1) / 2
}

// ClusterWait says why the cluster as a whole is not ready for the next
// server action (a rolling restart's next server, a scale-down, an
// operator's restart or replace), or "": Consul must show its raft view,
// know a leader, and autopilot must report the cluster healthy with its
// full failure tolerance for the configured server count.
func (h *RaftHealth) ClusterWait(tg state.Target) string {
	if w := h.viewWait(); w != "" {
		return w
	}
	if _, ok := h.Leader(); !ok {
		return "Consul has no raft leader"
	}
	if !h.Healthy {
		var bad []string
		for _, s := range h.Servers {
			if !s.Healthy {
				bad = append(bad, s.Name)
			}
		}
		return fmt.Sprintf("autopilot reports the cluster unhealthy (not healthy: %v)", bad)
	}
	if want := WantTolerance(tg.Servers); h.FailureTolerance < want {
		return fmt.Sprintf("autopilot's failure tolerance is %d, below the %d of %d healthy voters", h.FailureTolerance, want, tg.Servers)
	}
	return ""
}

// raftAddr is a task's raft address ("" before it has an IP).
func raftAddr(t state.Task, tg state.Target) string {
	if t.IP == "" {
		return ""
	}
	port := t.Ports.Server
	if port <= 0 {
		port = tg.Ports.Server
	}
	return net.JoinHostPort(t.IP, strconv.Itoa(port))
}

// find is a task's entry in the view.
func (h *RaftHealth) find(t state.Task, tg state.Target) (RaftServer, bool) {
	if h == nil {
		return RaftServer{}, false
	}
	addr := raftAddr(t, tg)
	for _, s := range h.Servers {
		if (addr != "" && s.Address == addr) || (addr == "" && s.Name == t.Name) {
			return s, true
		}
	}
	return RaftServer{}, false
}

// IsLeader reports whether t is the raft leader in this view.
func (h *RaftHealth) IsLeader(t state.Task, tg state.Target) bool {
	s, ok := h.find(t, tg)
	return ok && s.Leader
}

// VoterWait says why a running server is not a healthy raft voter yet,
// or "" when it is. Replacements and rolling restarts wait on it; when
// Consul's view is unknown, it is never "".
func (h *RaftHealth) VoterWait(t state.Task, tg state.Target) string {
	if !t.Running() {
		return "not running"
	}
	if t.Healthy != nil && !*t.Healthy {
		return "running, not healthy yet"
	}
	if w := h.viewWait(); w != "" {
		return "running; " + w
	}
	if h.At.Before(t.RunningSince.Add(HealthLag)) {
		return fmt.Sprintf("running; waiting for a read of Consul's raft view started %s after it started (autopilot's health can be that old)", HealthLag)
	}
	s, ok := h.find(t, tg)
	switch {
	case !ok:
		addr := raftAddr(t, tg)
		if addr == "" {
			addr = t.Name
		}
		return fmt.Sprintf("running; not in Consul's raft configuration yet (%s)", addr)
	case !s.Voter:
		return fmt.Sprintf("running; a raft non-voter at %s until autopilot promotes it (stable and caught up)", s.Address)
	case !s.Healthy:
		return fmt.Sprintf("running; raft voter at %s not healthy yet (autopilot: not stable, behind the leader or out of contact)", s.Address)
	}
	return ""
}

// DisruptionWait is the one quorum gate for stopping a server on purpose
// (an operator's restart or replace, checked before it is accepted): it
// says why stopping name now could cost quorum, or "". Every other
// configured server must run as a healthy raft voter, no other server
// may be restarting, being replaced or removed, and Consul must show a
// healthy cluster with a leader. A single-server service has nothing to
// keep: its only server may always be restarted.
func DisruptionWait(tg state.Target, ts state.Tasks, h *RaftHealth, name string) string {
	if tg.Servers <= 1 {
		return ""
	}
	if w := h.viewWait(); w != "" {
		return w
	}
	if _, ok := h.Leader(); !ok {
		return "Consul has no raft leader"
	}
	for _, t := range ts.Sorted() {
		if t.Role != taskspec.RoleServer || t.Name == name {
			continue
		}
		switch {
		case t.Index >= tg.Servers || t.Goal == state.GoalDecommission:
			return t.Name + " is being removed (scale-down)"
		case t.Goal == state.GoalRestart:
			return t.Name + " is being restarted"
		case t.Goal == state.GoalReplace:
			return t.Name + " is being replaced"
		case t.OldPeer != "" || (t.Replacement && !t.Running()):
			return t.Name + " is being replaced"
		}
		if why := h.VoterWait(t, tg); why != "" {
			return t.Name + " is not a healthy raft voter: " + why
		}
	}
	return ""
}

// AutopilotWant is the autopilot configuration for n servers: min_quorum
// is their quorum, and cleanup_dead_servers is off because the scheduler
// removes the peers of servers that go away for good itself, while a
// server restarted in place is down for a moment and must stay a voter.
func AutopilotWant(n int) (minQuorum uint, cleanupDead bool) {
	if n < 1 {
		n = 1
	}
	return uint(n/2 + 1), false
}
