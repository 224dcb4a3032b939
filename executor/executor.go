// Package executor is dcos-consul's custom Mesos executor: it speaks the v1
// HTTP executor API to its agent (mesos-go) and runs the task's Consul
// agent in-process (package consulagent).
//
// One executor runs one task. Its life: SUBSCRIBE; LAUNCH → TASK_STARTING,
// the Consul agent starts, TASK_RUNNING once its HTTP API answers and it
// has joined the LAN pool, then TASK_RUNNING again (healthy true/false)
// whenever Consul's own health changes; KILL or SHUTDOWN → TASK_KILLING
// (for frameworks with TASK_KILLING_STATE), a graceful leave, TASK_KILLED;
// the executor exits once the agent has acknowledged its last update.
//
// Updates are kept until the agent acknowledges them and are listed again
// in every re-SUBSCRIBE. When the agent goes away, a checkpointing
// framework's executor re-subscribes with backoff for up to the recovery
// timeout (the Consul agent keeps running); any other executor exits.
package executor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpexec"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/executor/consulagent"
	"github.com/dcos-consul/dcos-consul/internal/mesoscodec"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

const apiPath = "/api/v1/executor"

// Run is the `dcos-consul executor` command: it reads the environment a
// Mesos agent gives its executors and runs until the task is over (killed,
// failed, SHUTDOWN), the agent is lost for good, or ctx ends (treated as a
// SHUTDOWN). It returns nil after a normal end.
func Run(ctx context.Context, log *zap.Logger) error {
	cfg, err := FromEnv()
	if err != nil {
		return err
	}
	log.Info("executor starting",
		zap.String("framework_id", cfg.FrameworkID), zap.String("executor_id", cfg.ExecutorID),
		zap.String("agent", cfg.AgentEndpoint), zap.String("bind_ip", cfg.BindIP),
		zap.Bool("checkpoint", cfg.Checkpoint), zap.Duration("recovery_timeout", cfg.RecoveryTimeout),
		zap.Duration("shutdown_grace", cfg.ShutdownGracePeriod), zap.Bool("executor_authentication", cfg.AuthToken != ""))
	return newExecutor(cfg, log, startConsul).run(ctx)
}

// connection is one live subscription: its event stream and the poster
// that sends updates on it.
type connection struct {
	events chan executor.Event
	ended  chan error // the stream ended, with why
	cancel context.CancelFunc
	poster *poster
}

type subscribeResult struct {
	conn *connection
	sent map[string]bool // uuids of the updates the SUBSCRIBE listed
	err  error
}

type executorLoop struct {
	cfg   Config
	log   *zap.Logger
	start startFunc

	http       *httpcli.Client
	sender     calls.Sender // non-streaming calls
	subscriber calls.Sender // SUBSCRIBE (own connection)

	ledger     *ledger
	runners    map[string]*taskRunner
	taskEvents chan taskEvent

	killingState bool // the framework understands TASK_KILLING

	conn          *connection
	subscribing   bool
	everConnected bool
	lostAt        time.Time // when the last connection (or the first attempt) began to fail
	attempt       int
	lastEvent     time.Time
	hbFailures    int
	hbResults     chan error

	shutdown     bool      // SHUTDOWN received (or ctx ended)
	exitDeadline time.Time // zero: none yet
	exitErr      error
}

func newExecutor(cfg Config, log *zap.Logger, start startFunc) *executorLoop {
	cfg = cfg.withDefaults()
	endpoint := url.URL{Scheme: "http", Host: cfg.AgentEndpoint, Path: apiPath}
	cli := httpcli.New(
		httpcli.Endpoint(endpoint.String()),
		httpcli.Do(httpcli.With(
			httpcli.Timeout(cfg.CallTimeout),
			// The agent is local: never through an http_proxy that an
			// agent's --executor_environment_variables may carry.
			httpcli.Transport(func(t *http.Transport) { t.Proxy = nil }),
			httpcli.WrapRoundTripper(func(rt http.RoundTripper) http.RoundTripper { return withAuth(rt, cfg.AuthToken) }),
		)),
	)
	cli.With(mesoscodec.Options(cli)...) // protobuf; events of any size; newer enum values kept
	opts := executor.CallOptions{calls.Framework(cfg.FrameworkID), calls.Executor(cfg.ExecutorID)}
	return &executorLoop{
		cfg:        cfg,
		log:        log,
		start:      start,
		http:       cli,
		sender:     calls.SenderWith(httpexec.NewSender(cli.Send), opts...),
		subscriber: calls.SenderWith(httpexec.NewSender(cli.Send, httpcli.Close(true)), opts...),
		ledger:     newLedger(),
		runners:    map[string]*taskRunner{},
		taskEvents: make(chan taskEvent, 16),
		hbResults:  make(chan error, 4),
	}
}

// run is the executor's single event loop: it alone touches the ledger and
// the connection state; the stream reader, the poster, heartbeats and task
// runners talk to it through channels.
func (e *executorLoop) run(ctx context.Context) error {
	subResults := make(chan subscribeResult, 1)
	reconnect := time.NewTimer(0) // first SUBSCRIBE at once
	defer reconnect.Stop()
	heartbeat := time.NewTicker(e.cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	exitTimer := time.NewTimer(time.Hour)
	exitTimer.Stop()
	defer exitTimer.Stop()
	e.lostAt = time.Now()
	ctxDone := ctx.Done()

	defer e.closeConn()
	defer e.stopRunners()

	for {
		if e.done() {
			return e.exitErr
		}
		if !e.exitDeadline.IsZero() {
			exitTimer.Reset(time.Until(e.exitDeadline))
		}
		var events <-chan executor.Event
		var ended <-chan error
		if e.conn != nil {
			events, ended = e.conn.events, e.conn.ended
		}
		select {
		case <-ctxDone:
			ctxDone = nil
			e.log.Info("executor asked to stop (signal): shutting down like on SHUTDOWN")
			e.beginShutdown("the executor process was asked to stop")

		case <-reconnect.C:
			if e.conn == nil && !e.subscribing {
				e.subscribing = true
				tasks, updates := e.ledger.subscription()
				go e.subscribe(tasks, updates, subResults)
			}

		case r := <-subResults:
			e.subscribing = false
			if r.err != nil {
				e.log.Warn("SUBSCRIBE failed", zap.Error(r.err), zap.Int("attempt", e.attempt))
				if wait, ok := e.retryAfter(); ok {
					reconnect.Reset(wait)
				} else {
					e.giveUp(r.err)
				}
				continue
			}
			e.conn = r.conn
			e.everConnected = true
			e.attempt = 0
			e.hbFailures = 0
			e.lastEvent = time.Now()
			e.log.Info("subscribed to the agent", zap.Int("unacknowledged_updates", len(r.sent)))
			// Updates made while the SUBSCRIBE was on its way go out now.
			_, pending := e.ledger.subscription()
			for _, u := range pending {
				if !r.sent[string(u.Status.UUID)] {
					e.conn.poster.enqueue(u)
				}
			}

		case ev := <-events:
			e.lastEvent = time.Now()
			e.handle(ev)

		case err := <-ended:
			e.closeConn()
			e.lostAt = time.Now()
			e.log.Warn("lost the agent connection", zap.Error(err))
			if e.done() {
				continue
			}
			if wait, ok := e.retryAfter(); ok {
				reconnect.Reset(wait)
			} else {
				e.giveUp(err)
			}

		case ev := <-e.taskEvents:
			e.taskEvent(ev)

		case <-heartbeat.C:
			if e.conn != nil {
				if time.Since(e.lastEvent) > e.cfg.EventTimeout {
					e.log.Warn("no event from the agent for too long: reconnecting", zap.Duration("event_timeout", e.cfg.EventTimeout))
					e.conn.cancel()
					continue
				}
				go e.sendHeartbeat()
			}

		case err := <-e.hbResults:
			if err == nil {
				e.hbFailures = 0
				continue
			}
			e.hbFailures++
			e.log.Warn("HEARTBEAT call failed", zap.Error(err), zap.Int("in_a_row", e.hbFailures))
			if e.hbFailures >= 2 && e.conn != nil {
				e.log.Warn("agent does not answer heartbeats: reconnecting")
				e.conn.cancel()
			}

		case <-exitTimer.C:
			if !e.exitDeadline.IsZero() && !time.Now().Before(e.exitDeadline) {
				if e.conn == nil && !e.shutdown && e.canReconnect() {
					// The agent is away (restarting): the last updates
					// must still reach it, or the task ends up FAILED
					// (executor terminated) instead of what it is.
					e.log.Info("waiting for the agent to come back to deliver the last updates", zap.Int("unacknowledged", e.ledger.pending()))
					e.exitDeadline = time.Now().Add(e.cfg.AckWait)
					continue
				}
				e.log.Warn("exiting before the agent acknowledged every update", zap.Int("unacknowledged", e.ledger.pending()))
				return e.exitErr
			}
		}
	}
}

// done: the executor has nothing left to do.
func (e *executorLoop) done() bool {
	if e.ledger.finished() {
		return true
	}
	// SHUTDOWN with no task, or a task that never got an update out.
	return e.shutdown && e.ledger.live() == 0 && (e.ledger.pending() == 0 || e.conn == nil && !e.canReconnect())
}

// retryAfter says how long to wait before the next SUBSCRIBE, or false
// when the executor must give up on the agent.
func (e *executorLoop) retryAfter() (time.Duration, bool) {
	if !e.canReconnect() {
		return 0, false
	}
	e.attempt++
	wait := 250 * time.Millisecond << min(e.attempt, 10)
	if wait > e.cfg.SubscriptionBackoffMax {
		wait = e.cfg.SubscriptionBackoffMax
	}
	return wait, true
}

func (e *executorLoop) canReconnect() bool {
	if !e.everConnected {
		return time.Since(e.lostAt) < e.cfg.InitialSubscribeTimeout
	}
	return e.cfg.Checkpoint && time.Since(e.lostAt) < e.cfg.RecoveryTimeout
}

// giveUp ends the executor after the agent is lost for good: the Consul
// agent leaves gracefully first (the agent will not come back for it).
func (e *executorLoop) giveUp(cause error) {
	why := "the framework does not checkpoint, so the executor cannot outlive its agent connection"
	switch {
	case !e.everConnected:
		why = fmt.Sprintf("could not subscribe to the agent within %v", e.cfg.InitialSubscribeTimeout)
	case e.cfg.Checkpoint:
		why = fmt.Sprintf("could not re-subscribe to the agent within the recovery timeout %v", e.cfg.RecoveryTimeout)
	}
	e.log.Error("giving up on the agent", zap.String("why", why), zap.Error(cause))
	e.exitErr = fmt.Errorf("executor: %s: %w", why, cause)
	for _, r := range e.runners {
		r.requestKill(killRequest{grace: e.cfg.ShutdownGracePeriod, why: "the executor lost its Mesos agent"})
	}
	e.shutdown = true
	e.setExitDeadline(time.Now().Add(e.cfg.ShutdownGracePeriod + time.Second))
}

func (e *executorLoop) setExitDeadline(t time.Time) {
	if e.exitDeadline.IsZero() || t.Before(e.exitDeadline) {
		e.exitDeadline = t
	}
}

// subscribe opens a subscription listing the tasks and updates the agent
// has not acknowledged (taken from the ledger by the loop).
func (e *executorLoop) subscribe(tasks []mesos.TaskInfo, updates []executor.Call_Update, out chan<- subscribeResult) {
	call := calls.Subscribe(tasks, updates)
	sent := map[string]bool{}
	for _, u := range updates {
		sent[string(u.Status.UUID)] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := e.subscriber.Send(ctx, calls.NonStreaming(call))
	if err != nil {
		if resp != nil {
			resp.Close()
		}
		cancel()
		out <- subscribeResult{err: err}
		return
	}
	c := &connection{
		events: make(chan executor.Event, 16),
		ended:  make(chan error, 1),
		cancel: func() { cancel(); resp.Close() },
		poster: newPoster(e.sender, e.cfg.CallTimeout, e.log),
	}
	go c.poster.run(ctx)
	go func() {
		for {
			var ev executor.Event
			if err := resp.Decode(&ev); err != nil {
				if ctx.Err() != nil {
					err = errors.New("connection closed by the executor")
				}
				c.ended <- err
				return
			}
			select {
			case c.events <- ev:
			case <-ctx.Done():
				c.ended <- errors.New("connection closed by the executor")
				return
			}
		}
	}()
	out <- subscribeResult{conn: c, sent: sent}
}

func (e *executorLoop) closeConn() {
	if e.conn != nil {
		e.conn.cancel()
		e.conn = nil
	}
}

func (e *executorLoop) sendHeartbeat() {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.CallTimeout)
	defer cancel()
	resp, err := e.sender.Send(ctx, calls.NonStreaming(calls.Heartbeat()))
	if resp != nil {
		resp.Close()
	}
	e.hbResults <- err
}

// handle reacts to one event from the agent.
func (e *executorLoop) handle(ev executor.Event) {
	switch ev.Type {
	case executor.Event_SUBSCRIBED:
		s := ev.GetSubscribed()
		e.killingState = false
		if s != nil {
			for _, c := range s.FrameworkInfo.Capabilities {
				if c.Type == mesos.FrameworkInfo_Capability_TASK_KILLING_STATE {
					e.killingState = true
				}
			}
		}
		fields := []zap.Field{zap.Bool("task_killing_state", e.killingState)}
		if s != nil {
			fields = append(fields, zap.String("agent_id", s.AgentInfo.GetID().GetValue()),
				zap.String("agent_host", s.AgentInfo.Hostname))
		}
		e.log.Info("SUBSCRIBED", fields...)
	case executor.Event_LAUNCH:
		if l := ev.GetLaunch(); l != nil {
			e.launch(l.Task)
		}
	case executor.Event_LAUNCH_GROUP:
		if lg := ev.GetLaunchGroup(); lg != nil {
			e.log.Warn("LAUNCH_GROUP refused: one task per executor", zap.Int("tasks", len(lg.TaskGroup.Tasks)))
			for _, t := range lg.TaskGroup.Tasks {
				e.ledger.launched(t)
				e.refuse(t.TaskID, mesos.REASON_TASK_GROUP_INVALID,
					"the dcos-consul executor runs exactly one task (one Consul agent) and does not accept task groups (LAUNCH_GROUP)")
			}
		}
	case executor.Event_KILL:
		if k := ev.GetKill(); k != nil {
			e.kill(k.TaskID, e.killGrace(k), "KILL from the scheduler")
		}
	case executor.Event_ACKNOWLEDGED:
		if a := ev.GetAcknowledged(); a != nil {
			if !e.ledger.acknowledged(a.TaskID, a.UUID) {
				e.log.Debug("ACKNOWLEDGED for an update that is not pending", zap.String("task_id", a.TaskID.Value))
			}
		}
	case executor.Event_MESSAGE:
		var data []byte
		if m := ev.GetMessage(); m != nil {
			data = m.Data
		}
		e.message(data)
	case executor.Event_SHUTDOWN:
		e.log.Info("SHUTDOWN from the agent")
		e.beginShutdown("SHUTDOWN from the agent")
	case executor.Event_ERROR:
		msg := ""
		if er := ev.GetError(); er != nil {
			msg = er.Message
		}
		e.log.Error("ERROR event from the agent: re-subscribing", zap.String("message", msg))
		if e.conn != nil {
			e.conn.cancel()
		}
	case executor.Event_HEARTBEAT:
		e.log.Debug("HEARTBEAT")
	default:
		e.log.Warn("unknown event ignored", zap.String("type", ev.Type.String()))
	}
}

// message handles a scheduler MESSAGE: join addresses, a TLS
// certificate renewal, a graceful leave (the server goes away for good)
// or a request for the secrets copy; anything else is logged and ignored.
func (e *executorLoop) message(data []byte) {
	kind, err := taskspec.MessageKind(data)
	if err == nil && kind == taskspec.KindLeave {
		m, err := taskspec.DecodeLeave(data)
		if err != nil {
			e.log.Warn("MESSAGE from the scheduler ignored", zap.Int("bytes", len(data)), zap.Error(err))
			return
		}
		e.log.Info("MESSAGE: leave the Consul cluster for good", zap.String("why", m.Why), zap.Duration("within", m.Within()))
		for id, r := range e.runners {
			if !e.ledger.terminal(mesos.TaskID{Value: id}) {
				r.requestKill(killRequest{grace: m.Within(), why: m.Why, leave: true})
			}
		}
		return
	}
	if err == nil && kind == taskspec.KindTLSRenew {
		m, err := taskspec.DecodeTLSRenew(data)
		if err != nil {
			e.log.Warn("MESSAGE from the scheduler ignored", zap.Int("bytes", len(data)), zap.Error(err))
			return
		}
		e.log.Info("MESSAGE: renew the server's TLS certificate in place", zap.String("scheduler", m.SchedulerURL))
		client, err := channelClient(m.SchedulerURL, m.CACert)
		if err != nil {
			e.log.Warn("MESSAGE from the scheduler ignored", zap.Error(err))
			return
		}
		for _, r := range e.runners {
			r.renewTLS(m.SchedulerURL, client)
		}
		return
	}
	if err == nil && kind == taskspec.KindSecretsCopy {
		m, err := taskspec.DecodeSecretsCopyRequest(data)
		if err != nil {
			e.log.Warn("MESSAGE from the scheduler ignored", zap.Int("bytes", len(data)), zap.Error(err))
			return
		}
		if m.Refresh {
			e.log.Info("MESSAGE: the scheduler's secrets changed; refreshing the copy on this server's volume", zap.String("scheduler", m.SchedulerURL))
		} else {
			e.log.Warn("MESSAGE: the scheduler lost its secrets with its state; presenting the copy on this server's volume", zap.String("scheduler", m.SchedulerURL))
		}
		client, err := channelClient(m.SchedulerURL, m.CACert)
		if err != nil {
			e.log.Warn("MESSAGE from the scheduler ignored", zap.Error(err))
			return
		}
		for _, r := range e.runners {
			r.copyAsked(m, client)
		}
		return
	}
	if err == nil && kind == taskspec.KindHandOver {
		e.handOver(data)
		return
	}
	u, err := taskspec.DecodeJoinUpdate(data)
	if err != nil {
		e.log.Warn("MESSAGE from the scheduler ignored", zap.Int("bytes", len(data)), zap.Error(err))
		return
	}
	e.log.Info("MESSAGE: join addresses from the scheduler", zap.Strings("join_addrs", u.JoinAddrs))
	for _, r := range e.runners {
		r.addJoinAddrs(u.JoinAddrs)
	}
}

// handOver answers the scheduler's hand-over request (taskspec.HandOver):
// the server, if it leads, holds the requests that need the leader, and
// the executor says so in a MESSAGE back; the scheduler then asks Consul
// for the transfer. Mesos delivers neither MESSAGE for sure: the
// scheduler asks again, and transfers without the hold after a few tries.
func (e *executorLoop) handOver(data []byte) {
	m, err := taskspec.DecodeHandOver(data)
	if err != nil {
		e.log.Warn("MESSAGE from the scheduler ignored", zap.Int("bytes", len(data)), zap.Error(err))
		return
	}
	for id, r := range e.runners {
		if e.ledger.terminal(mesos.TaskID{Value: id}) {
			continue
		}
		leads := r.holdForHandOver(m.Hold())
		e.log.Info("MESSAGE: raft leadership is to be handed over", zap.String("task_id", id), zap.String("to", m.To),
			zap.Int64("seq", m.Seq), zap.Bool("leads", leads), zap.Duration("hold", m.Hold()))
		reply, err := taskspec.EncodeHandOverReady(m.Seq, id, leads)
		if err != nil {
			e.log.Error("hand-over answer", zap.Error(err))
			return
		}
		go e.sendMessage(reply)
	}
}

// sendMessage sends the scheduler a MESSAGE through the agent (best effort).
func (e *executorLoop) sendMessage(data []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.CallTimeout)
	defer cancel()
	resp, err := e.sender.Send(ctx, calls.NonStreaming(calls.Message(data)))
	if resp != nil {
		resp.Close()
	}
	if err != nil {
		e.log.Warn("MESSAGE to the scheduler not sent", zap.Error(err))
	}
}

// launch starts the task's Consul agent, or refuses the task.
func (e *executorLoop) launch(t mesos.TaskInfo) {
	log := e.log.With(zap.String("task_id", t.TaskID.Value))
	if e.ledger.known(t.TaskID) {
		log.Info("LAUNCH for a task already launched here: ignored")
		return
	}
	busy := len(e.runners) > 0 || e.ledger.live() > 0
	e.ledger.launched(t)
	if e.shutdown {
		e.refuse(t.TaskID, mesos.REASON_EXECUTOR_TERMINATED, "the executor is shutting down")
		return
	}
	if busy {
		e.refuse(t.TaskID, mesos.REASON_TASK_INVALID,
			"the dcos-consul executor runs exactly one task (one Consul agent); launch this task with a new executor ID")
		return
	}
	spec, err := taskspec.Decode(t.Data)
	if err != nil {
		log.Error("bad task spec", zap.Error(err))
		e.refuse(t.TaskID, mesos.REASON_TASK_INVALID, err.Error())
		return
	}
	env := consulagent.Env{BindIP: e.cfg.BindIP, Sandbox: e.cfg.Sandbox}
	log.Info("LAUNCH", zap.String("role", string(spec.Role)), zap.String("node_name", spec.NodeName),
		zap.String("config_id", spec.ConfigID))
	start := e.start
	if spec.Secrets != nil {
		client, err := channelClient(spec.Secrets.URL, spec.Secrets.CACert)
		if err != nil {
			log.Error("bad task spec", zap.Error(err))
			e.refuse(t.TaskID, mesos.REASON_TASK_INVALID, err.Error())
			return
		}
		start = withSecrets(start, t.TaskID.Value, client)
	}
	r := newTaskRunner(t.TaskID, spec, env, start, e.taskEvents, e.log)
	r.stopWait = e.cfg.AgentStopWait
	r.drainWait = e.cfg.DrainWait
	e.runners[t.TaskID.Value] = r
	go r.run()
}

// killGrace is the KILL's kill policy grace period, else the task's, else
// the default.
func (e *executorLoop) killGrace(k *executor.Event_Kill) time.Duration {
	if p := k.KillPolicy; p != nil && p.GracePeriod != nil && p.GracePeriod.Nanoseconds > 0 {
		return time.Duration(p.GracePeriod.Nanoseconds)
	}
	if t, ok := e.ledger.tasks[k.TaskID.Value]; ok {
		if p := t.info.KillPolicy; p != nil && p.GracePeriod != nil && p.GracePeriod.Nanoseconds > 0 {
			return time.Duration(p.GracePeriod.Nanoseconds)
		}
	}
	return e.cfg.KillGracePeriod
}

// refuse fails a task at launch.
func (e *executorLoop) refuse(id mesos.TaskID, reason mesos.TaskStatus_Reason, msg string) {
	e.taskEvent(taskEvent{taskID: id, state: mesos.TASK_FAILED, reason: &reason, message: msg})
}

// kill asks a task's agent to leave gracefully within grace.
func (e *executorLoop) kill(id mesos.TaskID, grace time.Duration, why string) {
	log := e.log.With(zap.String("task_id", id.Value))
	r, ok := e.runners[id.Value]
	if !ok || e.ledger.terminal(id) {
		log.Info("KILL for a task that is not running here: nothing to do", zap.Bool("known", e.ledger.known(id)))
		return
	}
	log.Info("killing the task", zap.String("why", why), zap.Duration("grace", grace))
	r.requestKill(killRequest{grace: grace, why: why})
}

// beginShutdown kills every task within the shutdown grace period and
// sets the exit deadline just inside it.
func (e *executorLoop) beginShutdown(why string) {
	if e.shutdown {
		return
	}
	e.shutdown = true
	grace := e.cfg.ShutdownGracePeriod
	margin := grace / 5
	if margin < 500*time.Millisecond {
		margin = 500 * time.Millisecond
	}
	leave := grace - margin
	if leave < 500*time.Millisecond {
		leave = 500 * time.Millisecond
	}
	for id := range e.runners {
		if !e.ledger.terminal(mesos.TaskID{Value: id}) {
			e.kill(mesos.TaskID{Value: id}, leave, why)
		}
	}
	e.setExitDeadline(time.Now().Add(grace - 200*time.Millisecond))
}

// taskEvent turns a runner's report into a status update: recorded in the
// ledger first (so a reconnect resends it), then posted if connected.
func (e *executorLoop) taskEvent(ev taskEvent) {
	if ev.state == mesos.TASK_KILLING && !e.killingState {
		return // the framework does not know TASK_KILLING
	}
	if e.ledger.terminal(ev.taskID) {
		e.log.Warn("task event after its terminal update dropped", zap.String("task_id", ev.taskID.Value),
			zap.String("state", ev.state.String()))
		return
	}
	st := e.status(ev)
	upd := executor.Call_Update{Status: st}
	e.ledger.record(upd)
	e.log.Info("status update", zap.String("task_id", ev.taskID.Value), zap.String("state", ev.state.String()),
		zap.Stringp("healthy", healthString(ev.healthy)), zap.String("message", ev.message),
		zap.String("uuid", uuidString(st.UUID)))
	if isTerminal(ev.state) {
		delete(e.runners, ev.taskID.Value)
		if e.ledger.live() == 0 {
			// Nothing left to run: exit once the agent has everything.
			e.setExitDeadline(time.Now().Add(e.cfg.AckWait))
		}
	}
	if e.conn != nil {
		e.conn.poster.enqueue(upd)
	}
}

func (e *executorLoop) status(ev taskEvent) mesos.TaskStatus {
	id := uuid.New()
	ts := float64(time.Now().UnixNano()) / 1e9
	st := mesos.TaskStatus{
		TaskID:     ev.taskID,
		State:      ev.state.Enum(),
		Source:     mesos.SOURCE_EXECUTOR.Enum(),
		ExecutorID: &mesos.ExecutorID{Value: e.cfg.ExecutorID},
		Timestamp:  &ts,
		UUID:       id[:],
		Healthy:    ev.healthy,
		Reason:     ev.reason,
	}
	if ev.message != "" {
		msg := ev.message
		st.Message = &msg
	}
	var labels []mesos.Label
	if ev.nodeID != "" {
		v := ev.nodeID
		labels = append(labels, mesos.Label{Key: "consul_node_id", Value: &v})
	}
	if ev.left != nil {
		v := fmt.Sprint(*ev.left)
		labels = append(labels, mesos.Label{Key: taskspec.LabelLeft, Value: &v})
	}
	if len(labels) > 0 {
		st.Labels = &mesos.Labels{Labels: labels}
	}
	return st
}

// stopRunners ends every Consul agent still running when the executor
// exits (a deadline passed, or the agent is gone).
func (e *executorLoop) stopRunners() {
	for id, r := range e.runners {
		e.log.Warn("stopping a Consul agent without a graceful leave: the executor is exiting", zap.String("task_id", id))
		r.stopNow(10 * time.Second)
	}
}

func healthString(b *bool) *string {
	if b == nil {
		return nil
	}
	s := fmt.Sprint(*b)
	return &s
}

func uuidString(b []byte) string {
	u, err := uuid.FromBytes(b)
	if err != nil {
		return fmt.Sprintf("%x", b)
	}
	return u.String()
}

// withAuth adds the executor's token to every call to the agent (as
// Mesos's own executors do: Authorization: Bearer); no token, rt as is.
func withAuth(rt http.RoundTripper, token string) http.RoundTripper {
	if token == "" {
		return rt
	}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+token)
		return rt.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
