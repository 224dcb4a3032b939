package scheduler

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/apierrors"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"
)

// sender sends the calls of each batch off the event loop, in two lanes
// that do not wait for each other: operations (ACCEPT, DECLINE, KILL,
// RECONCILE, ...) and acknowledgements, each lane's batches in order, a
// few calls of a batch at once. Acknowledgements have a lane of their own
// because the agents resend every update that is not acknowledged within
// 10 s (then 20 s, 40 s, ...): queued behind the 10,000 ACCEPTs of one
// allocation cycle, the acknowledgements of the first TASK_STARTINGs waited
// for the last ACCEPT, every agent resent its update, each resent update
// was acknowledged again in the same queue, and a deploy's cost grew with
// the square of the agents (issue 8). An acknowledgement is queued only
// once its update is written, so it never needs an earlier batch's
// operations to go first.
//
// A master that accepts connections and then stalls holds the sender,
// never the loop: heartbeats, the watchdog and the API go on, and the loop
// drops the subscription when stalledFor grows too long. Calls still queued
// then are dropped with it: offers die with the subscription and the agents
// resend every update that was not acknowledged.
type sender struct {
	call     func(ctx context.Context, c *scheduler.Call) error
	log      *zap.Logger
	parallel int
	timeout  time.Duration

	ops, acks    chan []*scheduler.Call
	busy         atomic.Int64 // lanes with a batch under way
	lastAnswer   atomic.Int64 // unix nanoseconds of the last call the master answered (or of a batch's start)
	failingSince atomic.Int64 // unix nanoseconds of the first unanswered call since the last answer; 0 if none
	pending      atomic.Int64 // batches queued or under way, both lanes
}

// senderQueue is how many batches each lane holds before the loop takes
// the master for stuck.
const senderQueue = 1024

func newSender(call func(context.Context, *scheduler.Call) error, timeout time.Duration, log *zap.Logger) *sender {
	return &sender{call: call, log: log, parallel: 8, timeout: timeout,
		ops: make(chan []*scheduler.Call, senderQueue), acks: make(chan []*scheduler.Call, senderQueue)}
}

// enqueue adds a batch's operations and acknowledgements; false when a
// lane is full (the master has not taken the last thousand batches).
func (s *sender) enqueue(ops, acks []*scheduler.Call) bool {
	return s.put(s.ops, ops) && s.put(s.acks, acks)
}

func (s *sender) put(lane chan []*scheduler.Call, cs []*scheduler.Call) bool {
	if len(cs) == 0 {
		return true
	}
	s.pending.Add(1)
	select {
	case lane <- cs:
		return true
	default:
		s.pending.Add(-1)
		return false
	}
}

// stalledFor is how long the master has answered no call while calls
// were waiting: since the first call that got no answer (timed out,
// connection refused or cut) after the last answered one, or, while a
// batch is under way, since the last answer (a long batch of thousands of
// ACCEPTs that the master answers one after the other is no stall).
func (s *sender) stalledFor(now time.Time) time.Duration {
	var d time.Duration
	if since := s.failingSince.Load(); since != 0 {
		d = now.Sub(time.Unix(0, since))
	}
	if s.busy.Load() != 0 {
		if quiet := now.Sub(time.Unix(0, s.lastAnswer.Load())); quiet > d {
			d = quiet
		}
	}
	return d
}

// answered tells a call the master answered (even with an error status)
// from one it never answered.
func answered(err error) bool {
	var apiErr *apierrors.Error
	var protoErr httpcli.ProtocolError
	return err == nil || errors.As(err, &apiErr) || errors.As(err, &protoErr)
}

// idle waits until every queued batch is sent, or ctx ends.
func (s *sender) idle(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for s.pending.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// run sends until ctx ends.
func (s *sender) run(ctx context.Context) {
	go s.lane(ctx, s.acks)
	s.lane(ctx, s.ops)
}

func (s *sender) lane(ctx context.Context, q <-chan []*scheduler.Call) {
	for {
		select {
		case <-ctx.Done():
			return
		case cs := <-q:
			if s.busy.Add(1) == 1 {
				s.lastAnswer.Store(time.Now().UnixNano())
			}
			s.sendGroup(ctx, cs)
			s.busy.Add(-1)
			s.pending.Add(-1)
		}
	}
}
func (s *sender) sendGroup(ctx context.Context, cs []*scheduler.Call) {
	sem := make(chan struct{}, s.parallel)
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func(c *scheduler.Call) {
			defer wg.Done()
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, s.timeout)
			defer cancel()
			err := s.call(cctx, c)
			if ctx.Err() != nil {
				return
			}
			if answered(err) {
				s.lastAnswer.Store(time.Now().UnixNano())
				s.failingSince.Store(0)
			} else {
				s.failingSince.CompareAndSwap(0, time.Now().UnixNano())
			}
			if err != nil {
				s.log.Warn("call to the master failed", zap.Stringer("call", c.GetType()), zap.Error(err))
			}
		}(c)
	}
	wg.Wait()
}
