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
	slow.enqueue(batch)
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
