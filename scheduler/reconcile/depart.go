package reconcile

import (
	"fmt"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// LeaveTimeout is how long the scheduler waits, after asking a departing
// server's executor to leave, for the task to end with its report
// (state.Task.Left); then it falls back on the kill and the peer removal
// through the operator API. LeaveWithin bounds the leave itself in the
// executor (a Consul server's graceful leave: the WAN and LAN pools'
// broadcasts, leave_drain_time, the wait for its raft removal).
const (
	LeaveTimeout = 45 * time.Second
	LeaveWithin  = 30 * time.Second
	// LeaveResendEvery is how long the scheduler waits for a sign that
	// the executor got the leave MESSAGE (the task leaves TASK_RUNNING:
	// the executor reports TASK_KILLING as it starts leaving) before it
	// sends the MESSAGE again: Mesos delivers a MESSAGE at most once, and
	// without a resend one lost MESSAGE cost the graceful leave (the
	// fallback's peer removal and kill followed). At most a third of the
	// fallback timeout, so resends fit before it.
	LeaveResendEvery = 12 * time.Second
)

// Leave asks a running server's executor to leave the Consul cluster
// gracefully before it goes away for good (a framework MESSAGE,
// taskspec.Leave).
type Leave struct {
	Name, TaskID, AgentID, Why string
	// Again: the MESSAGE was sent before and no sign of it came (it was
	// lost, or the executor was not subscribed yet).
	Again bool
}

// departStep is the next step of a server that goes away for good:
// departing → leave sent → left (or timed out) → killed → pruned.
type departStep int

const (
	// departHold: nothing now (the quorum gate refuses the leave).
	departHold departStep = iota
	// departLeave: ask its executor to leave now.
	departLeave
	// departWaitLeave: asked; waiting for the task to end with its report.
	departWaitLeave
	// departResendLeave: asked, but the task still runs as if it had not
	// been: ask again (the MESSAGE may have been lost).
	departResendLeave
	// departKill: no graceful leave (not running, or no report in time):
	// the peer is removed through the operator API and the task killed,
	// as before leaves existed.
	departKill
	// departEnded: the incarnation is over (Left says whether it left).
	departEnded
)

// depart decides the next step of t, a server that goes away for good,
// with why (for the plan and the logs); timeout bounds the wait for its
// leave (zero: LeaveTimeout). It is pure.
func depart(t state.Task, h *RaftHealth, tg state.Target, now time.Time, timeout time.Duration) (departStep, string) {
	if timeout <= 0 {
		timeout = LeaveTimeout
	}
	switch {
	case !t.Active():
		if t.Left {
			return departEnded, "left the Consul cluster gracefully and ended"
		}
		return departEnded, "ended without a graceful leave"
	case !t.LeaveSentAt.IsZero():
		if waited := now.Sub(t.LeaveSentAt); waited < timeout {
			return leaveWait(t, now, timeout)
		}
		return departKill, fmt.Sprintf("no report of its graceful leave within %s (executor gone, or older than the leave MESSAGE): removing its peer and killing it", timeout)
	case !t.Running():
		return departKill, t.State + ": no graceful leave possible; removing its peer and killing it"
	}
	if why := leaveGate(t, h, tg); why != "" {
		return departHold, why
	}
	if t.PeerRemoved {
		return departLeave, "raft peer removed; asking its executor to leave the Consul cluster gracefully (LAN and WAN)"
	}
	return departLeave, "asking its executor to leave the Consul cluster gracefully (LAN and WAN; the raft leader removes its peer)"
}

// leaveWait decides (pure) while a server asked to leave has time left
// before the fallback: it waits, or the leave MESSAGE is sent again when
// the task still runs (TASK_RUNNING: its executor did not start leaving,
// which it reports with TASK_KILLING) leaveResendAfter(timeout) after the
// last send. A MESSAGE the executor got twice is harmless: it is already
// leaving.
func leaveWait(t state.Task, now time.Time, timeout time.Duration) (departStep, string) {
	waited := now.Sub(t.LeaveSentAt)
	last := t.LeaveSentAt
	if t.LeaveResentAt.After(last) {
		last = t.LeaveResentAt
	}
	if t.Running() && now.Sub(last) >= leaveResendAfter(timeout) {
		return departResendLeave, fmt.Sprintf("asking its executor again to leave the Consul cluster gracefully: still running %s after the last request "+
			"(first asked %s ago; a MESSAGE is delivered at most once); the kill and peer removal follow if it has not ended within %s",
			now.Sub(last).Round(time.Second), waited.Round(time.Second), timeout)
	}
	again := ""
	if !t.LeaveResentAt.IsZero() {
		again = fmt.Sprintf(", again %s ago", now.Sub(t.LeaveResentAt).Round(time.Second))
	}
	return departWaitLeave, fmt.Sprintf("leaving the Consul cluster gracefully (asked %s ago%s; the kill and peer removal follow if it has not ended within %s)",
		waited.Round(time.Second), again, timeout)
}

// leaveResendAfter is how long after a leave MESSAGE with no sign of it
// the next is sent: LeaveResendEvery, at most a third of the fallback
// timeout.
func leaveResendAfter(timeout time.Duration) time.Duration {
	if q := timeout / 3; q < LeaveResendEvery {
		return q
	}
	return LeaveResendEvery
}

// leaveGate is the quorum gate of a graceful leave: the leader removes a
// leaving server's peer at once, whatever that does to quorum, so it is
// asked only while the healthy voters left would form a quorum of the
// configuration without it. A single server has nothing to keep.
func leaveGate(t state.Task, h *RaftHealth, tg state.Target) string {
	if tg.Servers <= 1 && t.Index == 0 {
		return ""
	}
	if t.PeerRemoved {
		return "" // no raft peer any more: its leave changes no quorum
	}
	if w := h.viewWait(); w != "" {
		return "its graceful leave waits: " + w
	}
	self, member := h.find(t, tg)
	voters, healthy := 0, 0
	for _, s := range h.Servers {
		if !s.Voter {
			continue
		}
		voters++
		if s.Healthy && !(member && s.Address == self.Address) {
			healthy++
		}
	}
	remaining := voters
	if member && self.Voter {
		remaining--
	}
	if remaining < 1 {
		return "its graceful leave waits: it is the last raft voter"
	}
	if quorum := remaining/2 + 1; healthy < quorum {
		return fmt.Sprintf("its graceful leave waits: it would leave %d healthy voters of %d (quorum %d)", healthy, remaining, quorum)
	}
	return ""
}
