package scheduler

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"
)

// A long batch the master answers call by call is no stall; a master that
// answers nothing is.
func TestSenderStallIsSilenceNotALongBatch(t *testing.T) {
	var answered atomic.Int64
	slow := newSender(func(ctx context.Context, c *scheduler.Call) error {
		time.Sleep(20 * time.Millisecond)
		answered.Add(1)
		return nil
	}, time.Second, zap.NewNop())
	slow.parallel = 1
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go slow.run(ctx)
	batch := make([]*scheduler.Call, 50) // a second of calls, each answered
	for i := range batch {
		batch[i] = &scheduler.Call{Type: scheduler.Call_ACCEPT}
	}
	slow.enqueue(batch, nil)
	time.Sleep(600 * time.Millisecond)
	if d := slow.stalledFor(time.Now()); d > 300*time.Millisecond {
		t.Fatalf("stalled for %s while every call is answered", d)
	}
	if err := slow.idle(ctx); err != nil || answered.Load() != 50 {
		t.Fatalf("idle: %v, %d answered", err, answered.Load())
	}

	silent := newSender(func(ctx context.Context, c *scheduler.Call) error {
		<-ctx.Done()
		return errors.New("timeout")
	}, 200*time.Millisecond, zap.NewNop())
	go silent.run(ctx)
	silent.enqueue([]*scheduler.Call{{Type: scheduler.Call_ACCEPT}}, []*scheduler.Call{{Type: scheduler.Call_ACKNOWLEDGE}})
	time.Sleep(700 * time.Millisecond)
	if d := silent.stalledFor(time.Now()); d < 300*time.Millisecond {
		t.Fatalf("stalled for %s: a master that answers nothing is a stall", d)
	}
}

// Acknowledgements are not held behind a batch of operations that the
// master is slow to take (issue 8: the acknowledgements of a 10,000-agent
// deploy's first updates waited for the last of 10,000 ACCEPTs, and every
// agent resent its update meanwhile).
func TestSenderAcksDoNotWaitForOperations(t *testing.T) {
	release := make(chan struct{})
	acked := make(chan struct{}, 1)
	s := newSender(func(ctx context.Context, c *scheduler.Call) error {
		switch c.GetType() {
		case scheduler.Call_ACCEPT:
			select {
			case <-release:
			case <-ctx.Done():
			}
		case scheduler.Call_ACKNOWLEDGE:
			acked <- struct{}{}
		}
		return nil
	}, time.Minute, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.run(ctx)
	ops := make([]*scheduler.Call, 100)
	for i := range ops {
		ops[i] = &scheduler.Call{Type: scheduler.Call_ACCEPT}
	}
	if !s.enqueue(ops, nil) {
		t.Fatal("enqueue refused")
	}
	if !s.enqueue(nil, []*scheduler.Call{{Type: scheduler.Call_ACKNOWLEDGE}}) {
		t.Fatal("enqueue refused")
	}
	select {
	case <-acked:
	case <-time.After(30 * time.Second):
		t.Fatal("the acknowledgement waited for the operations of an earlier batch")
	}
	if s.pending.Load() == 0 {
		t.Fatal("the operations are still under way: pending must not be 0")
	}
	close(release)
	if err := s.idle(ctx); err != nil {
		t.Fatal(err)
	}
}

// Snapshots take at most a tenth of the loop: one that took 300 ms is not
// due again for 3 s; a cheap one every 200 ms.
func TestPublishDueBoundsTheSnapshotsShare(t *testing.T) {
	cases := []struct {
		since, cost time.Duration
		due         bool
	}{
		{100 * time.Millisecond, time.Millisecond, false},
		{200 * time.Millisecond, time.Millisecond, true},
		{time.Second, 300 * time.Millisecond, false},
		{3 * time.Second, 300 * time.Millisecond, true},
		{200 * time.Millisecond, 0, true},
	}
	for _, c := range cases {
		if got := publishDue(c.since, c.cost); got != c.due {
			t.Errorf("publishDue(%s since the last, which took %s) = %v, want %v", c.since, c.cost, got, c.due)
		}
	}
}
