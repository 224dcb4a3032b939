package executor

import (
	"bytes"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

// ledger is the executor's reliable-delivery bookkeeping, a plain data
// structure without I/O: the tasks it was given, their latest state, and
// every status update the agent has not acknowledged yet. A SUBSCRIBE
// lists what the ledger holds, so nothing is lost across a reconnect.
type ledger struct {
	tasks   map[string]*taskRecord
	order   []string // task IDs in launch order
	unacked []executor.Call_Update
}

type taskRecord struct {
	info     mesos.TaskInfo
	state    mesos.TaskState
	anyAcked bool // the agent acknowledged at least one update of the task
	terminal bool
}

func newLedger() *ledger { return &ledger{tasks: map[string]*taskRecord{}} }

// launched records a task the agent handed over; false when it is already
// known (a redelivered LAUNCH).
func (l *ledger) launched(info mesos.TaskInfo) bool {
	id := info.TaskID.Value
	if _, ok := l.tasks[id]; ok {
		return false
	}
	l.tasks[id] = &taskRecord{info: info, state: mesos.TASK_STAGING}
	l.order = append(l.order, id)
	return true
}

// known reports whether the task was launched here.
func (l *ledger) known(id mesos.TaskID) bool {
	_, ok := l.tasks[id.Value]
	return ok
}

// state is the latest state the executor reported for the task.
func (l *ledger) state(id mesos.TaskID) (mesos.TaskState, bool) {
	t, ok := l.tasks[id.Value]
	if !ok {
		return 0, false
	}
	return t.state, true
}

// terminal reports whether the task has reached a terminal state.
func (l *ledger) terminal(id mesos.TaskID) bool {
	t, ok := l.tasks[id.Value]
	return ok && t.terminal
}

// record adds an update about to be sent; it stays unacknowledged until
// acknowledged names its uuid.
func (l *ledger) record(u executor.Call_Update) {
	st := u.Status
	if t, ok := l.tasks[st.TaskID.Value]; ok && st.State != nil {
		t.state = *st.State
		t.terminal = isTerminal(*st.State)
	}
	l.unacked = append(l.unacked, u)
}

// acknowledged removes the update with uuid; false when it is not pending
// (a duplicate ACKNOWLEDGED, or one for an update of an earlier run).
func (l *ledger) acknowledged(taskID mesos.TaskID, uuid []byte) bool {
	for i, u := range l.unacked {
		if u.Status.TaskID.Value == taskID.Value && bytes.Equal(u.Status.UUID, uuid) {
			l.unacked = append(l.unacked[:i:i], l.unacked[i+1:]...)
			if t, ok := l.tasks[taskID.Value]; ok {
				t.anyAcked = true
			}
			return true
		}
	}
	return false
}

// subscription is what a SUBSCRIBE must list: every task for which no
// update has been acknowledged yet (else the agent would take a task it
// still thinks is STAGING as lost), and every unacknowledged update, in
// the order they were sent.
func (l *ledger) subscription() (tasks []mesos.TaskInfo, updates []executor.Call_Update) {
	for _, id := range l.order {
		if t := l.tasks[id]; !t.anyAcked {
			tasks = append(tasks, t.info)
		}
	}
	updates = append(updates, l.unacked...)
	return tasks, updates
}

// pending is the number of unacknowledged updates.
func (l *ledger) pending() int { return len(l.unacked) }

// live is the number of tasks not in a terminal state.
func (l *ledger) live() int {
	n := 0
	for _, t := range l.tasks {
		if !t.terminal {
			n++
		}
	}
	return n
}

// finished: the executor had tasks, all are terminal and the agent has
// every update. Nothing is left for this executor to do.
func (l *ledger) finished() bool {
	return len(l.tasks) > 0 && l.live() == 0 && len(l.unacked) == 0
}

func isTerminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
		mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}
