package agent

import (
	"bytes"
	"time"

	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// The reliable status-update pipeline (mesos-api.md 5.5 and fact 4): one
// stream per task; only the head goes to the master; it is resent with the
// agent's current latest state every StatusUpdateRetry (doubling up to
// StatusUpdateRetryMax) until the master relays the scheduler's ack.

type streamKey struct{ fw, task string }

type updateStream struct {
	key     streamKey
	fw      mesos.FrameworkID
	pending []mesos.TaskStatus
	latest  mesos.TaskState
	seen    [][]byte // uuids received, for duplicate detection
	backoff time.Duration
	timer   *time.Timer
	gen     uint64 // bumps on every (re)arm so stale timers do nothing
}

func (s *updateStream) stopTimer() {
	s.gen++
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}

func (s *updateStream) has(id []byte) bool {
	for _, u := range s.seen {
		if bytes.Equal(u, id) {
			return true
		}
	}
	return false
}

// isDuplicate reports whether a task's stream already received this uuid.
// Caller holds mu.
func (a *Agent) isDuplicate(fw, task string, id []byte) bool {
	s := a.streams[streamKey{fw, task}]
	return s != nil && s.has(id)
}

// enqueueUpdate appends an update (with uuid) to its task's stream and
// forwards it if it is the head. latest is the agent's current state of the
// task. Caller holds mu.
func (a *Agent) enqueueUpdate(fw mesos.FrameworkID, st mesos.TaskStatus, latest mesos.TaskState) {
	if f := a.framework(fw.Value); f != nil && f.terminating {
		return // no status updates for a terminating framework
	}
	k := streamKey{fw.Value, st.TaskID.Value}
	if a.streams == nil {
		a.streams = make(map[streamKey]*updateStream)
	}
	s := a.streams[k]
	if s == nil {
		s = &updateStream{key: k, fw: fw}
		a.streams[k] = s
	}
	if s.has(st.UUID) {
		return
	}
	s.seen = append(s.seen, st.UUID)
	s.pending = append(s.pending, st)
	s.latest = latest
	if len(s.pending) == 1 {
		s.backoff = a.cfg.StatusUpdateRetry
		a.forwardHead(s)
	}
}

// forwardHead sends the head update (unless partitioned) and arms the retry
// timer. Caller holds mu.
func (a *Agent) forwardHead(s *updateStream) {
	s.stopTimer()
	if a.stopped || len(s.pending) == 0 {
		return
	}
	if !a.offline() {
		head, latest, agentID, fw := s.pending[0], s.latest, a.cfg.ID, s.fw
		a.emit(func() { a.master.StatusUpdate(agentID, fw, head, latest) })
	}
	gen := s.gen
	d := s.backoff
	s.timer = time.AfterFunc(d, func() { a.retry(s, gen) })
}

func (a *Agent) retry(s *updateStream, gen uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped || s.gen != gen || a.streams[s.key] != s {
		return
	}
	s.backoff *= 2
	if s.backoff > a.cfg.StatusUpdateRetryMax {
		s.backoff = a.cfg.StatusUpdateRetryMax
	}
	a.forwardHead(s)
}

// Acknowledge is the scheduler's acknowledgement relayed by the master. It
// must match the head of the task's stream; anything else is ignored, as a
// real agent does. A matching ack pops the head and forwards the next
// update at once; an acked terminal update ends the task on this agent.
func (a *Agent) Acknowledge(fw mesos.FrameworkID, task mesos.TaskID, id []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := streamKey{fw.Value, task.Value}
	s := a.streams[k]
	if s == nil || len(s.pending) == 0 || !bytes.Equal(s.pending[0].UUID, id) {
		return
	}
	head := s.pending[0]
	s.pending[0] = mesos.TaskStatus{}
	s.pending = s.pending[1:]
	s.stopTimer()
	if isTerminal(head.GetState()) {
		delete(a.streams, k)
		a.taskDone(fw.Value, task.Value)
		a.maybeForgetFramework(fw.Value)
		return
	}
	if len(s.pending) > 0 {
		s.backoff = a.cfg.StatusUpdateRetry
		a.forwardHead(s)
	}
}

// dropStreams forgets every pending update of a framework. Caller holds mu.
func (a *Agent) dropStreams(fw string) {
	for k, s := range a.streams {
		if k.fw == fw {
			s.stopTimer()
			delete(a.streams, k)
		}
	}
}

// agentStatus builds an agent-generated update (SOURCE_AGENT, with uuid, no
// container_status), as for executor termination or kills before delivery.
func (a *Agent) agentStatus(e *executor, task mesos.TaskID, state mesos.TaskState, reason mesos.TaskStatus_Reason, msg string) mesos.TaskStatus {
	st := mesos.TaskStatus{
		TaskID:    task,
		State:     state.Enum(),
		Source:    mesos.SOURCE_AGENT.Enum(),
		Reason:    reason.Enum(),
		AgentID:   &mesos.AgentID{Value: a.cfg.ID.Value},
		Timestamp: nowSeconds(),
		UUID:      newUUID(),
	}
	if msg != "" {
		st.Message = &msg
	}
	if e != nil {
		id := e.info.ExecutorID
		st.ExecutorID = &id
	}
	return st
}

// agentUpdate records an agent-generated update for a task: the task's
// state at the agent changes and the update joins its stream. Caller holds mu.
func (a *Agent) agentUpdate(fw mesos.FrameworkID, e *executor, task mesos.TaskID, state mesos.TaskState, reason mesos.TaskStatus_Reason, msg string) {
	st := a.agentStatus(e, task, state, reason, msg)
	if e != nil {
		if t := e.tasks[task.Value]; t != nil {
			t.state = state
			t.statuses = append(t.statuses, st)
		}
	}
	a.enqueueUpdate(fw, st, state)
}

// lostOrDropped is TASK_DROPPED for partition-aware frameworks, else TASK_LOST.
func lostOrDropped(info mesos.FrameworkInfo) mesos.TaskState {
	if partitionAware(info) {
		return mesos.TASK_DROPPED
	}
	return mesos.TASK_LOST
}

func isTerminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
		mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

func newUUID() []byte {
	u := uuid.New()
	return u[:]
}

// validUUID is stout's UUID::fromBytes check: 16 bytes with a known version.
func validUUID(b []byte) bool {
	if len(b) != 16 {
		return false
	}
	v := b[6] >> 4
	return v >= 1 && v <= 5
}
