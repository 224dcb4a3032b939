package executor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/executor/consulagent"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// consulAgent is what the executor needs of a running Consul agent
// (*consulagent.Agent; tests substitute it).
type consulAgent interface {
	Ready(ctx context.Context) error
	Health() consulagent.Health
	Leave(ctx context.Context) error
	// Drain readies a server for a stop in place (consulagent.Drain).
	Drain() error
	// Leads: the server is the raft leader now (consulagent.Leads).
	Leads() bool
	// HoldForHandOver: a leading server holds the requests that need the
	// leader until it no longer leads, at most hold
	// (consulagent.HoldForHandOver); it says whether it leads.
	HoldForHandOver(hold time.Duration) bool
	Stop()
	Done() <-chan struct{}
	Err() error
	NodeID() string
	AddJoinAddrs(addrs []string)
}

// startFunc starts a Consul agent (consulagent.Start).
type startFunc func(ctx context.Context, spec taskspec.Spec, env consulagent.Env, log *zap.Logger) (consulAgent, error)

func startConsul(ctx context.Context, spec taskspec.Spec, env consulagent.Env, log *zap.Logger) (consulAgent, error) {
	a, err := consulagent.Start(ctx, spec, env, log)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// taskEvent is what a task runner reports; the executor loop turns each
// into a status update.
type taskEvent struct {
	taskID  mesos.TaskID
	state   mesos.TaskState
	message string
	healthy *bool
	reason  *mesos.TaskStatus_Reason
	nodeID  string
	// left: the outcome of a graceful leave the scheduler asked for
	// (taskspec.Leave), on the terminal event; nil otherwise.
	left *bool
}

// killRequest asks a task runner to stop its agent gracefully within grace.
type killRequest struct {
	grace time.Duration
	why   string
	// leave: the scheduler's leave MESSAGE (the server goes away for
	// good): leave gracefully even as a server, and label the outcome.
	leave bool
}

// taskRunner runs one task's Consul agent in its own goroutine and reports
// its life as taskEvents: STARTING, RUNNING (healthy or not), RUNNING again
// when Consul's health changes, and one terminal event.
type taskRunner struct {
	id    mesos.TaskID
	spec  taskspec.Spec
	env   consulagent.Env
	start startFunc
	log   *zap.Logger
	out   chan<- taskEvent

	healthEvery time.Duration
	kill        chan killRequest // buffered 1
	// stopWait bounds the wait for the agent's shutdown (Config.AgentStopWait).
	stopWait time.Duration
	// drainWait: how long a server stopped in place drains (Config.DrainWait);
	// drainPoll: how often it checks meanwhile that it does not lead.
	drainWait, drainPoll time.Duration

	joinMu    sync.Mutex
	agent     consulAgent // set once started
	joinAddrs []string    // handed over before the agent started
	hardStop  context.CancelFunc
	ctx       context.Context
	done      chan struct{}
	renewing  atomic.Bool // a TLS renewal (renewTLS) is under way
}

func newTaskRunner(id mesos.TaskID, spec taskspec.Spec, env consulagent.Env, start startFunc, out chan<- taskEvent, log *zap.Logger) *taskRunner {
	ctx, cancel := context.WithCancel(context.Background())
	return &taskRunner{
		id: id, spec: spec, env: env, start: start, out: out,
		log:         log.With(zap.String("task_id", id.Value)),
		healthEvery: time.Second,
		stopWait:    DefaultAgentStopWait,
		drainWait:   DefaultDrainWait,
		drainPoll:   250 * time.Millisecond,
		kill:        make(chan killRequest, 1),
		ctx:         ctx,
		hardStop:    cancel,
		done:        make(chan struct{}),
	}
}

// addJoinAddrs hands the agent more serf LAN addresses to join (the
// scheduler's join MESSAGE); before the agent starts they are kept for it.
func (r *taskRunner) addJoinAddrs(addrs []string) {
	r.joinMu.Lock()
	a := r.agent
	if a == nil {
		r.joinAddrs = append(r.joinAddrs, addrs...)
	}
	r.joinMu.Unlock()
	if a != nil {
		a.AddJoinAddrs(addrs)
	}
}

// holdForHandOver is the scheduler's hand-over request for this task's
// server: it says whether the server leads and holds its requests now
// (false before the agent has started).
func (r *taskRunner) holdForHandOver(hold time.Duration) bool {
	r.joinMu.Lock()
	a := r.agent
	r.joinMu.Unlock()
	if a == nil || r.spec.Role != taskspec.RoleServer {
		return false
	}
	return a.HoldForHandOver(hold)
}

// requestKill asks for a graceful stop; later requests are ignored.
func (r *taskRunner) requestKill(k killRequest) {
	select {
	case r.kill <- k:
	default:
	}
}

// stopNow stops the agent without a graceful leave and waits (bounded) for
// the runner to end. For an executor that must exit now.
func (r *taskRunner) stopNow(wait time.Duration) {
	r.hardStop()
	select {
	case <-r.done:
	case <-time.After(wait):
		r.log.Warn("task runner did not stop in time")
	}
}

func (r *taskRunner) emit(ev taskEvent) {
	ev.taskID = r.id
	select {
	case r.out <- ev:
	case <-r.ctx.Done():
		// The executor is exiting; it reads no more events.
	}
}

func boolp(b bool) *bool { return &b }

func reasonp(r mesos.TaskStatus_Reason) *mesos.TaskStatus_Reason { return &r }

func (r *taskRunner) run() {
	defer close(r.done)
	role := string(r.spec.Role)
	r.emit(taskEvent{state: mesos.TASK_STARTING,
		message: fmt.Sprintf("starting the Consul %s agent %s on %s", role, r.spec.NodeName, r.env.BindIP)})

	// A kill during start or readiness cancels them.
	startCtx, cancelStart := context.WithCancel(r.ctx)
	defer cancelStart()
	killedEarly := make(chan killRequest, 1)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		select {
		case k := <-r.kill:
			killedEarly <- k
			cancelStart()
		case <-startCtx.Done():
		}
	}()
	// stopWatching ends the watcher and returns the kill it saw, or one that
	// arrived since.
	stopWatching := func() *killRequest {
		cancelStart()
		<-watching
		select {
		case k := <-killedEarly:
			return &k
		default:
		}
		select {
		case k := <-r.kill:
			return &k
		default:
			return nil
		}
	}

	began := time.Now()
	agent, err := r.start(startCtx, r.spec, r.env, r.log)
	if err != nil {
		k := stopWatching()
		switch {
		case r.ctx.Err() != nil:
		case k != nil:
			r.emit(taskEvent{state: mesos.TASK_KILLED, reason: reasonp(mesos.REASON_TASK_KILLED_DURING_LAUNCH),
				message: "killed while the Consul agent was starting: " + k.why})
		default:
			r.emit(taskEvent{state: mesos.TASK_FAILED, message: "the Consul agent could not start: " + err.Error()})
		}
		return
	}
	r.joinMu.Lock()
	r.agent = agent
	early := r.joinAddrs
	r.joinAddrs = nil
	r.joinMu.Unlock()
	if len(early) > 0 {
		agent.AddJoinAddrs(early)
	}
	err = agent.Ready(startCtx)
	k := stopWatching()
	switch {
	case r.ctx.Err() != nil:
		agent.Stop()
		return
	case k != nil:
		prefix := ""
		if err != nil {
			prefix = "killed before the Consul agent was ready"
		}
		r.stopForKill(agent, k, prefix)
		return
	case err != nil:
		agent.Stop()
		r.emit(taskEvent{state: mesos.TASK_FAILED, message: "the Consul agent stopped before it was ready: " + err.Error()})
		return
	}
	h := agent.Health()
	r.log.Info("consul agent ready", zap.Duration("since_start", time.Since(began)), zap.Bool("healthy", h.Healthy))
	r.emit(taskEvent{state: mesos.TASK_RUNNING, healthy: boolp(h.Healthy), nodeID: agent.NodeID(),
		message: "Consul agent is up and joined: " + h.Message})
	healthy := h.Healthy
	syncCtx, stopSync := context.WithCancel(r.ctx)
	defer stopSync()
	startSnapshotSync(syncCtx, r.spec, r.env, r.id.Value, r.log)

	tick := time.NewTicker(r.healthEvery)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			agent.Stop()
			return
		case k := <-r.kill:
			r.stopForKill(agent, &k, "")
			return
		case <-agent.Done():
			msg := "the Consul agent stopped unexpectedly"
			if err := agent.Err(); err != nil {
				msg += ": " + err.Error()
			}
			r.emit(taskEvent{state: mesos.TASK_FAILED, message: msg})
			return
		case <-tick.C:
			h := agent.Health()
			if h.Healthy != healthy {
				healthy = h.Healthy
				r.log.Info("consul health changed", zap.Bool("healthy", healthy), zap.String("why", h.Message))
				r.emit(taskEvent{state: mesos.TASK_RUNNING, healthy: boolp(healthy), nodeID: agent.NodeID(),
					reason: reasonp(mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED), message: h.Message})
			}
		}
	}
}

// stopForKill ends the task on a KILL (or the executor's shutdown). A
// client leaves the cluster gracefully. A server stops WITHOUT leaving: a
// server that leaves is removed from the raft configuration and would come
// back as a non-voter waiting for autopilot, while one that just stops
// keeps its raft membership and data on its volume and is a voter again as
// soon as it has caught up (Consul's upgrade guidance). A server that goes
// away for good (scale-down, replace, uninstall) has its raft peer removed
// and its node force-left by the scheduler, through the Consul operator
// API, under the quorum gate.
func (r *taskRunner) stopForKill(agent consulAgent, k *killRequest, prefix string) {
	if k.leave {
		r.emit(taskEvent{state: mesos.TASK_KILLING, message: "leaving the Consul cluster for good (the scheduler's request): " + k.why})
		if d := r.drainBeforeLeave(agent); d != "" {
			prefix = joinPrefix(prefix, d)
		}
		r.leave(agent, k, prefix)
		return
	}
	if r.spec.Role != taskspec.RoleServer {
		r.emit(taskEvent{state: mesos.TASK_KILLING, message: "leaving the Consul cluster: " + k.why})
		r.leave(agent, k, prefix)
		return
	}
	r.emit(taskEvent{state: mesos.TASK_KILLING, message: "stopping the Consul server without leaving (raft membership and data stay on the volume): " + k.why})
	drained := r.drain(agent, k.grace)
	began := time.Now()
	_, stopped := r.bounded(func() error { agent.Stop(); return nil }, r.stopWait)
	took := time.Since(began).Round(time.Millisecond)
	msg := fmt.Sprintf("the Consul server stopped in %v without leaving; it keeps its raft membership and data on its volume", took)
	if !stopped {
		msg = fmt.Sprintf("the Consul server did not finish its shutdown within %v (it did not leave); the executor exits, which ends it", r.stopWait)
	}
	msg = drained + "; " + msg
	if prefix != "" {
		msg = prefix + "; " + msg
	}
	r.log.Info("task killed", zap.String("why", k.why), zap.Duration("stop", took), zap.Bool("left", false), zap.Bool("shutdown_hung", !stopped))
	r.emit(taskEvent{state: mesos.TASK_KILLED, message: msg})
}

// drainBeforeLeave has a server that goes away for good refuse client
// requests with "try a different server" (consulagent.Drain) for the
// rest of its life, before its graceful leave: once it has left (and
// after a scale-down's peer removal) it knows no raft leader, and a
// write sent to it waited for one until Consul's RPC hold timeout
// (writes of 2 s through such a server on dev, "No cluster leader"). A
// leader does not drain (a write it refuses is not retried). It says
// what it did, "" when nothing.
func (r *taskRunner) drainBeforeLeave(agent consulAgent) string {
	if r.spec.Role != taskspec.RoleServer || agent.Leads() {
		return ""
	}
	if err := agent.Drain(); err != nil {
		r.log.Warn("the Consul server could not be drained before its leave; leaving anyway", zap.Error(err))
		return "not drained before the leave: " + err.Error()
	}
	return "client requests sent to the other servers from the leave on"
}

func joinPrefix(prefix, s string) string {
	if prefix == "" {
		return s
	}
	return prefix + "; " + s
}

// drain has a server refuse client requests with Consul's "try a
// different server" for drainWait (at most half the kill's grace) before
// it stops: requests in flight through it finish and its busy clients
// move to another server, instead of failing the writes that meet the
// stop (consulagent.Drain). It says what it did, for the KILLED message.
func (r *taskRunner) drain(agent consulAgent, grace time.Duration) string {
	wait := r.drainWait
	if wait > grace/2 {
		wait = grace / 2
	}
	if wait <= 0 {
		return "not drained (no drain wait)"
	}
	// A leader does not drain (consulagent.Leads): the scheduler hands
	// leadership over before it stops one; a single server, or one the
	// handover missed, stops at once, as before the drain existed.
	if agent.Leads() {
		r.log.Info("the Consul server leads: not drained before its stop")
		return "not drained (it is the raft leader)"
	}
	if err := agent.Drain(); err != nil {
		r.log.Warn("the Consul server could not be drained; stopping it anyway", zap.Error(err))
		return "not drained: " + err.Error()
	}
	return r.drainWaitNotLeading(agent, wait)
}

// drainWaitNotLeading waits out a drain, and ends it early (the stop
// follows) if the server becomes the raft leader meanwhile.
func (r *taskRunner) drainWaitNotLeading(agent consulAgent, wait time.Duration) string {
	began := time.Now()
	tick := time.NewTicker(r.drainPoll)
	defer tick.Stop()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		select {
		case <-deadline.C:
			r.log.Info("consul server drained before its stop", zap.Duration("drain", wait))
			return fmt.Sprintf("client requests drained to the other servers for %v", wait)
		case <-agent.Done():
			return "drain cut short: the agent stopped"
		case <-r.ctx.Done():
			return "drain cut short: the executor is ending"
		case <-tick.C:
			if agent.Leads() {
				took := time.Since(began).Round(time.Millisecond)
				r.log.Warn("the draining Consul server became the raft leader: stopping it now", zap.Duration("drained", took))
				return fmt.Sprintf("drain ended after %v: the server became the raft leader", took)
			}
		}
	}
}

// leave gracefully leaves within the kill's grace and reports TASK_KILLED.
func (r *taskRunner) leave(agent consulAgent, k *killRequest, prefix string) {
	ctx, cancel := context.WithTimeout(r.ctx, k.grace)
	defer cancel()
	began := time.Now()
	err, stopped := r.bounded(func() error { return agent.Leave(ctx) }, k.grace+r.stopWait)
	if !stopped {
		err = fmt.Errorf("the Consul agent did not finish its leave and shutdown within %v; the executor exits, which ends it", k.grace+r.stopWait)
	}
	took := time.Since(began).Round(time.Millisecond)
	msg := fmt.Sprintf("the Consul agent left the cluster gracefully in %v and stopped", took)
	if err != nil {
		msg = fmt.Sprintf("the Consul agent stopped; its graceful leave did not complete: %v", err)
		if errors.Is(err, context.DeadlineExceeded) {
			msg = fmt.Sprintf("the Consul agent stopped; its graceful leave did not finish within %v", k.grace)
		}
	}
	if prefix != "" {
		msg = prefix + "; " + msg
	}
	r.log.Info("task killed", zap.String("why", k.why), zap.Duration("leave", took), zap.Error(err))
	ev := taskEvent{state: mesos.TASK_KILLED, message: msg}
	if k.leave {
		ev.left = boolp(err == nil)
	}
	r.emit(ev)
}

// bounded runs f and waits for it at most d. It reports f's error and
// whether f returned in time; f keeps running otherwise (a Consul
// shutdown that hangs), and the executor, which ends once the task's
// terminal update is acknowledged, takes it down with its process.
func (r *taskRunner) bounded(f func() error, d time.Duration) (error, bool) {
	done := make(chan error, 1)
	go func() { done <- f() }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-done:
		return err, true
	case <-t.C:
		r.log.Error("the Consul agent's shutdown did not return in time; reporting the task ended anyway", zap.Duration("waited", d))
		return nil, false
	}
}
