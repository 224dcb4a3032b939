package scheduler

import (
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/reconcile"
)

// Before it asks Consul to hand raft leadership over, the scheduler asks
// the leader's executor to hold the requests that need the leader until
// it no longer leads (taskspec.HandOver; consulagent.HoldForHandOver says
// why: with raft v1.5.0 a write taken by the old leader during the
// transfer can make the transfer fail). The executor answers with a
// MESSAGE; the transfer starts when the answer arrives. Mesos delivers
// MESSAGEs at most once: the request is repeated, and after
// handOverAsks requests without an answer (an executor from before the
// request, or messages lost) the transfer goes on without the hold.
const (
	// handOverHold bounds how long the leader holds requests: the
	// transfer must start within it.
	handOverHold = 3 * time.Second
	// handOverAskEvery: a request unanswered this long is repeated.
	handOverAskEvery = time.Second
	// handOverFresh: an answer counts only this long after its request
	// was sent (the hold began when the request arrived, later).
	handOverFresh = 2 * time.Second
	handOverAsks  = 3
)

// handOverAsk is the hand-over request under way.
type handOverAsk struct {
	TaskID  string // the leader's task
	Seq     int64
	SentAt  time.Time
	Asks    int
	ReadyAt time.Time // the executor's answer to Seq arrived
	Leads   bool
}

// handOverStep is what the scheduler does next for a hand-over.
type handOverStep int

const (
	handOverWait     handOverStep = iota // an answer may still come
	handOverSend                         // send (again) the request
	handOverTransfer                     // the leader holds: transfer now
	handOverUnheld                       // no answer: transfer without the hold
)

// nextHandOverStep decides (pure) the next step of the hand-over of
// taskID's leadership, given the request under way.
func nextHandOverStep(a handOverAsk, taskID string, now time.Time) handOverStep {
	if a.TaskID != taskID || a.Seq == 0 {
		return handOverSend
	}
	if !a.ReadyAt.IsZero() && now.Sub(a.SentAt) < handOverFresh {
		return handOverTransfer
	}
	if now.Sub(a.SentAt) < handOverAskEvery {
		return handOverWait
	}
	if a.Asks >= handOverAsks {
		return handOverUnheld
	}
	return handOverSend
}

// handOver moves the leadership transfer the last reconciliation asked
// for (reconcile.Result.Transfer) one step on.
func (s *Scheduler) handOver(now time.Time, out *outbox) {
	tr := s.last.Transfer
	if tr == nil {
		s.ask = handOverAsk{}
		return
	}
	// One transfer at a time, and after one a view read since it.
	if s.transferring || now.Before(s.transferNext) || (s.raft != nil && s.raft.At.Before(s.transferDone)) {
		return
	}
	from, ok := s.tasks[tr.From]
	if !ok || from.AgentID == "" || from.TaskID == "" {
		return
	}
	switch nextHandOverStep(s.ask, from.TaskID, now) {
	case handOverSend:
		s.askHandOver(tr, from.AgentID, from.TaskID, now, out)
	case handOverTransfer:
		s.startTransfer(tr, true)
	case handOverUnheld:
		s.log.Warn("the leader's executor did not answer the hand-over request (an executor from before it, or MESSAGEs lost): handing leadership over without holding its requests",
			zap.String("from", tr.From), zap.Int("requests", s.ask.Asks))
		s.startTransfer(tr, false)
	}
}

// askHandOver sends the leader's executor the hand-over request.
func (s *Scheduler) askHandOver(tr *reconcile.Transfer, agentID, taskID string, now time.Time, out *outbox) {
	a := s.ask
	if a.TaskID != taskID {
		a = handOverAsk{TaskID: taskID}
	}
	a.Seq = now.UnixNano()
	a.SentAt, a.ReadyAt = now, time.Time{}
	a.Asks++
	data, err := taskspec.EncodeHandOver(a.Seq, tr.To, handOverHold)
	if err != nil {
		s.log.Error("hand-over message", zap.Error(err))
		return
	}
	s.ask = a
	s.log.Info("asking the raft leader's executor to hold the requests that need the leader before handing leadership over",
		zap.String("from", tr.From), zap.String("to", tr.To), zap.Int64("seq", a.Seq), zap.Int("request", a.Asks))
	out.add(calls.Message(agentID, taskID, data))
}

// onExecutorMessage handles a MESSAGE from an executor: the answer to a
// hand-over request starts the transfer at once.
func (s *Scheduler) onExecutorMessage(executorID string, data []byte, now time.Time, out *outbox) {
	m, err := taskspec.DecodeHandOverReady(data)
	if err != nil {
		s.log.Info("executor message", zap.String("executor", executorID), zap.ByteString("data", data))
		return
	}
	if m.TaskID != s.ask.TaskID || m.Seq != s.ask.Seq {
		s.log.Info("a stale hand-over answer ignored", zap.String("task_id", m.TaskID), zap.Int64("seq", m.Seq))
		return
	}
	s.ask.ReadyAt, s.ask.Leads = now, m.Leads
	s.log.Info("the raft leader's executor holds the requests that need the leader", zap.String("task_id", m.TaskID),
		zap.Bool("leads", m.Leads), zap.Duration("answered_in", now.Sub(s.ask.SentAt)))
	s.handOver(now, out)
}
