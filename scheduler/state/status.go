package state

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// IsTerminal reports whether a Mesos task state is final for an incarnation.
// TASK_UNKNOWN (only ever a reconciliation answer: the master does not know
// the task) counts as terminal here: the incarnation is gone.
func IsTerminal(state string) bool {
	switch state {
	case "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST",
		"TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR", "TASK_UNKNOWN":
		return true
	}
	return false
}

// revivable states may be followed by a live state for the same task ID
// (a partitioned agent that comes back).
func revivable(state string) bool {
	return state == "TASK_LOST" || state == "TASK_UNKNOWN" || state == "TASK_UNREACHABLE"
}

// Outcome says what ApplyStatus did with an update, for logs and tests.
type Outcome string

const (
	Applied Outcome = "applied"
	Stale   Outcome = "stale"   // an older incarnation, or a state already superseded
	Ignored Outcome = "ignored" // no change
)

// ApplyStatus returns the record after a status update for it, and what it
// did. Updates for another incarnation (task ID) are stale; a terminal
// state is final except after LOST/UNKNOWN/UNREACHABLE (a partitioned
// agent that comes back).
func ApplyStatus(t Task, st mesos.TaskStatus, now time.Time) (Task, Outcome) {
	if st.TaskID.Value != t.TaskID || t.TaskID == "" {
		return t, Stale
	}
	newState := st.GetState().String()
	if IsTerminal(t.State) && !revivable(t.State) {
		return t, Stale
	}
	if IsTerminal(t.State) && revivable(t.State) && IsTerminal(newState) && newState == t.State {
		return t, Ignored
	}
	old := t
	if t.Reservation != nil {
		r := *t.Reservation // never mutate the caller's record
		t.Reservation = &r
	}
	t.State = newState
	t.Reason = ""
	if st.Reason != nil {
		t.Reason = st.GetReason().String()
	}
	t.Message = TruncateMessage(st.GetMessage())
	if st.Healthy != nil {
		h := st.GetHealthy()
		t.Healthy = &h
	} else if newState != old.State {
		t.Healthy = nil
	}
	if st.AgentID != nil && t.AgentID == "" {
		t.AgentID = st.AgentID.Value
	}
	switch newState {
	case "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING":
		if t.Reservation != nil {
			t.Reservation.Confirmed = true
		}
	}
	if newState == "TASK_RUNNING" {
		// Replacement stays until the server is a healthy raft voter
		// (reconcile clears it).
		if old.State != "TASK_RUNNING" {
			t.RunningSince = now
		}
		t.Failures = 0
		t.FailingSince = time.Time{}
	}
	if newState != "TASK_RUNNING" {
		t.RunningSince = time.Time{}
	}
	if IsTerminal(newState) || newState == "TASK_UNREACHABLE" {
		if t.FailingSince.IsZero() {
			t.FailingSince = now
		}
		if IsTerminal(newState) && !(newState == "TASK_KILLED" && t.Goal != GoalRunning) {
			t.Failures++
		}
	}
	if IsTerminal(newState) && !IsTerminal(old.State) {
		t.Left = leftLabel(st)
	}
	if t.State == old.State && t.Message == old.Message && t.Reason == old.Reason && boolEq(t.Healthy, old.Healthy) &&
		(t.Reservation == nil || t.Reservation.Confirmed == old.Reservation.Confirmed) {
		return old, Ignored
	}
	t.UpdatedAt = now
	return t, Applied
}

// leftLabel: a terminal status that says the agent left the Consul
// cluster gracefully (taskspec.LabelLeft "true", from an executor that
// was asked to leave).
func leftLabel(st mesos.TaskStatus) bool {
	for _, l := range st.GetLabels().GetLabels() {
		if l.Key == taskspec.LabelLeft {
			return l.GetValue() == "true"
		}
	}
	return false
}

func boolEq(a, b *bool) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Describe is a one-line human summary of a record's state.
func (t Task) Describe() string {
	if !t.Launched() {
		return "not launched"
	}
	s := fmt.Sprintf("%s on %s", t.State, t.Hostname)
	if t.Reason != "" {
		s += " (" + t.Reason + ")"
	}
	if t.Message != "" {
		s += ": " + t.Message
	}
	return s
}

// MaxMessage bounds a status message as stored in a task record (1 KiB):
// the message is free text from the executor, the agent or the master, and
// an unbounded one would make the record (and every flush carrying it)
// larger than the store accepts. What is cut is noted in the message.
const MaxMessage = 1024

// TruncateMessage returns msg cut to at most MaxMessage bytes, on a UTF-8
// boundary, with a note saying how much was cut.
func TruncateMessage(msg string) string {
	if len(msg) <= MaxMessage {
		return msg
	}
	note := fmt.Sprintf(" …[%d bytes truncated]", len(msg))
	cut := MaxMessage - len(note)
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	note = fmt.Sprintf(" …[%d bytes truncated]", len(msg)-cut)
	return strings.ToValidUTF8(msg[:cut], "") + note
}
