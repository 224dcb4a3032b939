package consulagent

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul-net-rpc/net/rpc"
	"github.com/hashicorp/consul/agent/rpc/middleware"
	"github.com/hashicorp/consul/agent/structs"
	"go.uber.org/zap"
)

// A leader's writes are held while its raft leadership is handed over.
//
// hashicorp/raft v1.5.0 (Consul 1.16.1's pin) stops the leader taking
// writes only until its TimeoutNow reaches the target; from then until
// the target's RequestVote makes it step down, it appends client writes
// again. One of them replicated to the third server first is enough for
// that server to refuse the target its vote (the target's log is one entry
// short): the hand-over fails, no server leads until an ordinary election
// (1-3 s), and the write itself fails ("leadership lost while committing
// log"). Writes that reach the leader while the transfer waits for the
// target to catch up fail at once ("leadership transfer in progress").
// (raft v1.6.1, hashicorp/raft PR 581, keeps the leader from writing
// until it has stepped down.)
//
// So the scheduler asks the leader's executor first (taskspec.HandOver):
// the server holds every RPC that would reach raft through its leader
// (writes, and reads that must be answered by the leader) from then
// until it no longer leads, or at most for the hold. Released, each runs
// as Consul runs it on a follower: forwarded to the new leader, after
// waiting for one if need be (Consul's RPC hold timeout). A client sees
// a write take a moment longer, not fail. Everything else passes: stale
// reads, Status.* (raft stats, the leader) and the operator's raft and
// autopilot reads, which the hand-over itself and the scheduler's quorum
// gate use. The leader's own background writes (coordinate batches, session
// expiry) do not go through RPC and are not held.

// heldInHandOver decides (pure) whether an RPC waits while the server's
// leadership is handed over: one that reaches raft through the leader.
func heldInHandOver(method string, args any) bool {
	if strings.HasPrefix(method, "Status.") {
		return false
	}
	info, ok := args.(structs.RPCInfo)
	if !ok {
		return false
	}
	if info.IsRead() {
		return !info.AllowStaleRead() && !strings.HasPrefix(method, "Operator.")
	}
	return true
}

// writeFence holds RPCs (heldInHandOver) while it is up.
type writeFence struct {
	mu    sync.Mutex
	up    chan struct{} // closed when the fence comes down; nil while down
	until time.Time
	held  atomic.Int64 // RPCs held by the current fence
}

// raise puts the fence up (or keeps it up) until at most until; it says
// whether it was down.
func (f *writeFence) raise(until time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if until.After(f.until) {
		f.until = until
	}
	if f.up != nil {
		return false
	}
	f.up = make(chan struct{})
	f.held.Store(0)
	return true
}

// lower takes the fence down; it returns how many RPCs it held.
func (f *writeFence) lower() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.up != nil {
		close(f.up)
		f.up = nil
	}
	f.until = time.Time{}
	return f.held.Load()
}

// wait blocks while the fence is up, at most until its deadline.
func (f *writeFence) wait() {
	f.mu.Lock()
	up, until := f.up, f.until
	f.mu.Unlock()
	if up == nil {
		return
	}
	f.held.Add(1)
	t := time.NewTimer(time.Until(until))
	defer t.Stop()
	select {
	case <-up:
	case <-t.C:
	}
}

// interceptor wraps Consul's own net/rpc interceptor (its request
// metrics) with the fence.
func (f *writeFence) interceptor(recorder *middleware.RequestRecorder) rpc.ServerServiceCallInterceptor {
	inner := middleware.GetNetRPCInterceptor(recorder)
	return func(method string, argv, replyv reflect.Value, handler func() error) {
		if argv.IsValid() && argv.CanInterface() && heldInHandOver(method, argv.Interface()) {
			f.wait()
		}
		inner(method, argv, replyv, handler)
	}
}

// handOverPoll is how often a server holding its writes checks whether it
// still leads.
const handOverPoll = 10 * time.Millisecond

// HoldForHandOver readies a leading server for a leadership transfer: it
// holds the RPCs that reach raft through the leader until the server no
// longer leads, at most for hold (a transfer that never comes or fails).
// It returns at once, saying whether the server leads now; a server that
// does not lead holds nothing.
func (a *Agent) HoldForHandOver(hold time.Duration) bool {
	if a.fence == nil || !a.Leads() {
		return false
	}
	if !a.fence.raise(time.Now().Add(hold)) {
		return true // already held; the deadline is extended
	}
	a.log.Info("raft leadership is about to be handed over: requests that need the leader are held until this server no longer leads",
		zap.Duration("at_most", hold))
	go a.holdUntilFollower(hold)
	return true
}

// holdUntilFollower lowers the fence once the server no longer leads, or
// after hold.
func (a *Agent) holdUntilFollower(hold time.Duration) {
	began := time.Now()
	deadline := time.NewTimer(hold)
	defer deadline.Stop()
	tick := time.NewTicker(handOverPoll)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			n := a.fence.lower()
			a.log.Warn("still the raft leader at the end of the hold: held requests go on here",
				zap.Duration("held_for", hold), zap.Int64("requests", n))
			return
		case <-a.done:
			a.fence.lower()
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			leader := a.raftLeader(ctx)
			cancel()
			if leader == a.rpcAddr {
				continue
			}
			n := a.fence.lower()
			a.log.Info("no longer the raft leader: held requests go on to the new leader",
				zap.String("leader", leader), zap.Duration("held_for", time.Since(began).Round(time.Millisecond)), zap.Int64("requests", n))
			return
		}
	}
}
