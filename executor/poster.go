package executor

import (
	"context"
	"sync"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"go.uber.org/zap"
)

// poster sends UPDATE calls of one connection, one at a time and in order
// (the agent keeps a task's updates in the order it receives them). A call
// that fails is retried a few times; after that the update simply stays in
// the ledger and goes out with the next SUBSCRIBE.
type poster struct {
	send    calls.Sender
	timeout time.Duration
	log     *zap.Logger

	mu    sync.Mutex
	queue []executor.Call_Update
	wake  chan struct{}
}

const postAttempts = 3

func newPoster(send calls.Sender, timeout time.Duration, log *zap.Logger) *poster {
	return &poster{send: send, timeout: timeout, log: log, wake: make(chan struct{}, 1)}
}

func (p *poster) enqueue(u executor.Call_Update) {
	p.mu.Lock()
	p.queue = append(p.queue, u)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *poster) next() (executor.Call_Update, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 {
		return executor.Call_Update{}, false
	}
	u := p.queue[0]
	p.queue = p.queue[1:]
	return u, true
}

// run posts until ctx (the connection) ends.
func (p *poster) run(ctx context.Context) {
	for {
		u, ok := p.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-p.wake:
				continue
			}
		}
		for attempt := 1; ; attempt++ {
			err := p.post(ctx, u)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			p.log.Warn("UPDATE call failed", zap.String("task_id", u.Status.TaskID.Value),
				zap.String("uuid", uuidString(u.Status.UUID)), zap.Int("attempt", attempt), zap.Error(err))
			if attempt >= postAttempts {
				break // resent with the next SUBSCRIBE
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
	}
}

func (p *poster) post(ctx context.Context, u executor.Call_Update) error {
	cctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	resp, err := p.send.Send(cctx, calls.NonStreaming(calls.Update(u.Status)))
	if resp != nil {
		resp.Close()
	}
	return err
}
