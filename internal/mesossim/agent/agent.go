package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
)

// Real Mesos agent defaults (mesos-api.md section 9).
const (
	DefaultPort                   = 5051
	DefaultExecutorShutdownGrace  = 5 * time.Second
	DefaultStatusUpdateRetry      = 10 * time.Second
	MaxStatusUpdateRetry          = 10 * time.Minute
	DefaultExecutorRegisterTimout = time.Minute
	DefaultRecoveryTimeout        = 15 * time.Minute
	DefaultSubscriptionBackoffMax = 2 * time.Second
	MaxSubscriptionBackoff        = 15 * time.Second // the executor re-registration timeout's cap
	DefaultExecutorHeartbeat      = 30 * time.Minute
)

var nopLogger = zap.NewNop()

// Agent is one simulated Mesos agent. All state sits behind mu; calls to the
// Master are queued under mu and delivered, in order, by a drainer goroutine
// that exists only while there is something to deliver (so an idle agent
// costs no goroutine).
type Agent struct {
	cfg    Config
	master Master
	log    *zap.Logger

	mu          sync.Mutex
	frameworks  map[string]*framework
	streams     map[streamKey]*updateStream
	partitioned bool
	// restarting: the simulated agent process is down or recovering
	// (Restart); like a partition, nothing reaches the master.
	restarting   bool
	recovering   bool // listening again, waiting for executors to re-subscribe
	restartTimer *time.Timer
	stopped      bool
	started      bool
	// held are master notifications (executor terminations) that could not
	// be delivered during a partition; they go out at Reregistered().
	held []func()

	outbox   []func()
	draining bool
	drained  *sync.Cond // signalled when the outbox empties

	ln    net.Listener
	srv   *http.Server
	procs sync.WaitGroup // executor process waiters and fetch/launch goroutines
	// ctx ends with Stop, cancelling downloads in progress.
	ctx    context.Context
	cancel context.CancelFunc

	fetchMu sync.Mutex // serialises the fetcher cache
}

type framework struct {
	info      mesos.FrameworkInfo
	executors map[string]*executor
	// terminated are ended executor runs whose tasks' terminal updates are
	// not acknowledged yet; they still count in Executors() (as a real
	// agent reports them when it re-registers) and go with the last ack.
	terminated []*executor
	// terminating: ShutdownFramework was called; no more status updates.
	terminating bool
}

// New validates cfg, fills in the real Mesos defaults and returns an agent
// that does nothing until Start.
func New(cfg Config, m Master) (*Agent, error) {
	if cfg.ID.Value == "" {
		return nil, errors.New("agent: Config.ID is required")
	}
	if m == nil {
		return nil, errors.New("agent: a Master is required")
	}
	if cfg.IP == "" {
		cfg.IP = "127.0.0.1"
	}
	if net.ParseIP(cfg.IP).To4() == nil {
		return nil, fmt.Errorf("agent %s: IP %q is not an IPv4 address", cfg.ID.Value, cfg.IP)
	}
	if cfg.Hostname == "" {
		cfg.Hostname = cfg.IP
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if !cfg.InProcess && cfg.WorkDir == "" {
		return nil, fmt.Errorf("agent %s: Config.WorkDir is required unless InProcess", cfg.ID.Value)
	}
	if cfg.WorkDir != "" {
		abs, err := filepath.Abs(cfg.WorkDir)
		if err != nil {
			return nil, fmt.Errorf("agent %s: work dir: %w", cfg.ID.Value, err)
		}
		cfg.WorkDir = abs
	}
	if cfg.ExecutorShutdownGrace <= 0 {
		cfg.ExecutorShutdownGrace = DefaultExecutorShutdownGrace
	}
	if cfg.StatusUpdateRetry <= 0 {
		cfg.StatusUpdateRetry = DefaultStatusUpdateRetry
	}
	if cfg.StatusUpdateRetryMax <= 0 {
		cfg.StatusUpdateRetryMax = MaxStatusUpdateRetry
	}
	if cfg.StatusUpdateRetryMax < cfg.StatusUpdateRetry {
		cfg.StatusUpdateRetryMax = cfg.StatusUpdateRetry
	}
	if cfg.ExecutorRegisterTimout <= 0 {
		cfg.ExecutorRegisterTimout = DefaultExecutorRegisterTimout
	}
	if cfg.RecoveryTimeout <= 0 {
		cfg.RecoveryTimeout = DefaultRecoveryTimeout
	}
	if cfg.SubscriptionBackoffMax <= 0 {
		cfg.SubscriptionBackoffMax = DefaultSubscriptionBackoffMax
	}
	if cfg.SubscriptionBackoffMax > MaxSubscriptionBackoff {
		cfg.SubscriptionBackoffMax = MaxSubscriptionBackoff
	}
	if cfg.ExecutorHeartbeat <= 0 {
		cfg.ExecutorHeartbeat = DefaultExecutorHeartbeat
	}
	log := cfg.Logger
	if log == nil {
		log = nopLogger
	} else {
		log = log.With(zap.String("agent", cfg.ID.Value))
	}
	a := &Agent{cfg: cfg, master: m, log: log}
	a.drained = sync.NewCond(&a.mu)
	a.ctx, a.cancel = context.WithCancel(context.Background())
	return a, nil
}

// Config returns the agent's configuration with defaults filled in.
func (a *Agent) Config() Config { return a.cfg }

// Endpoint is the executor API address, IP:PORT (MESOS_AGENT_ENDPOINT).
func (a *Agent) Endpoint() string {
	return net.JoinHostPort(a.cfg.IP, strconv.Itoa(a.cfg.Port))
}

// PID is the agent's libprocess id, slave(1)@IP:PORT.
func (a *Agent) PID() string { return "slave(1)@" + a.Endpoint() }

// Start listens on IP:Port and serves POST /api/v1/executor. It does
// nothing for an InProcess agent.
func (a *Agent) Start() error {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return errors.New("agent: Start after Stop")
	}
	if a.started {
		a.mu.Unlock()
		return nil
	}
	a.started = true
	a.mu.Unlock()
	if a.cfg.InProcess {
		return nil
	}
	for _, d := range []string{a.slaveDir(), a.volumesDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("agent %s: %w", a.cfg.ID.Value, err)
		}
	}
	return a.listen()
}

// listen serves the executor API on IP:Port.
func (a *Agent) listen() error {
	ln, err := net.Listen("tcp", a.Endpoint())
	if err != nil {
		return fmt.Errorf("agent %s: listen on %s: %w", a.cfg.ID.Value, a.Endpoint(), err)
	}
	mux := http.NewServeMux()
	h := http.HandlerFunc(a.serveExecutorAPI)
	mux.Handle("/api/v1/executor", h)
	mux.Handle("/slave(1)/api/v1/executor", h)
	for _, p := range []string{"/state", "/state.json", "/slave(1)/state", "/slave(1)/state.json"} {
		mux.HandleFunc(p, a.serveState)
	}
	mux.HandleFunc("/files/browse", a.serveBrowse)
	mux.HandleFunc("/files/read", a.serveRead)
	mux.HandleFunc("/files/download", a.serveDownload)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		ln.Close()
		return errors.New("agent: stopped")
	}
	a.ln, a.srv = ln, srv
	a.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	a.log.Info("agent serving the executor API", zap.String("endpoint", a.Endpoint()))
	return nil
}

// event logs at Info for agents with real executors and at Debug for
// in-process ones (thousands of them would drown the log).
func (a *Agent) event(msg string, fields ...zap.Field) {
	if a.cfg.InProcess {
		a.log.Debug(msg, fields...)
		return
	}
	a.log.Info(msg, fields...)
}

func execFields(e *executor) []zap.Field {
	return []zap.Field{zap.String("framework", e.fwID.Value), zap.String("executor", e.info.ExecutorID.Value),
		zap.String("container", e.containerID)}
}

// Stop kills every executor (its whole process group), closes the listener
// and every executor stream, and stops all timers. Nothing reaches the
// master afterwards. Stop waits (bounded) for the processes to be reaped.
func (a *Agent) Stop() {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return
	}
	a.stopped = true
	srv := a.srv
	var pgids, groups []int // groups: every run's, ended ones included
	for _, fw := range a.frameworks {
		for _, e := range fw.executors {
			e.stopTimers()
			if e.sub != nil {
				e.sub.close()
				e.sub = nil
			}
			if e.pid > 0 && !e.exited {
				pgids = append(pgids, e.pid)
			}
			if e.pid > 0 {
				groups = append(groups, e.pid)
			}
		}
	}
	for _, s := range a.streams {
		s.stopTimer()
	}
	if a.restartTimer != nil {
		a.restartTimer.Stop()
	}
	a.outbox = nil
	a.held = nil
	a.mu.Unlock()
	a.cancel()

	for _, pg := range pgids {
		_ = syscall.Kill(-pg, syscall.SIGKILL)
	}
	if srv != nil {
		_ = srv.Close()
	}
	// Every process is SIGKILLed and every fetch cancelled, so this ends
	// quickly; the bound is for a wedged machine, and a Stop that returns
	// with something still writing into a sandbox is logged.
	done := make(chan struct{})
	go func() { a.procs.Wait(); close(done) }()
	select {
	case <-done:
		// A SIGKILLed process is torn down in milliseconds: 5 s is for a
		// loaded machine (and bounds the wait should an ended run's process
		// group ID have been reused).
		if !groupsGone(groups, time.Now().Add(groupWait)) {
			a.log.Warn("agent stopped with processes of its executors' groups still running", zap.Duration("waited", groupWait))
		}
	case <-time.After(stopWait):
		a.log.Warn("agent stopped with executor processes or fetches still running", zap.Duration("waited", stopWait))
	}
}

// stopWait bounds how long Stop waits for executor processes and fetches;
// groupWait how long it then waits for the rest of their process groups.
const (
	stopWait  = 60 * time.Second
	groupWait = 5 * time.Second
)

// SetPartitioned cuts (true) or restores (false) the agent's link to the
// master. While cut, no status update, executor message or executor
// termination reaches the master; updates keep queueing and retrying.
func (a *Agent) SetPartitioned(p bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.partitioned = p
}

// Reregistered tells the agent it (re)registered with a master (master
// restart, healed partition, framework re-subscribed): held executor
// terminations are delivered and the head update of every task stream is
// sent again at once, with the current latest state.
func (a *Agent) Reregistered() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped || a.offline() {
		return
	}
	a.resendAll()
}

// offline: the master cannot be reached. Caller holds mu.
func (a *Agent) offline() bool { return a.partitioned || a.restarting }

// resendAll delivers held notifications and resends every stream head.
// Caller holds mu.
func (a *Agent) resendAll() {
	for _, f := range a.held {
		a.emit(f)
	}
	a.held = nil
	keys := make([]streamKey, 0, len(a.streams))
	for k := range a.streams {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].fw != keys[j].fw {
			return keys[i].fw < keys[j].fw
		}
		return keys[i].task < keys[j].task
	})
	for _, k := range keys {
		s := a.streams[k]
		if len(s.pending) > 0 {
			s.backoff = a.cfg.StatusUpdateRetry
			a.forwardHead(s)
		}
	}
}

// emit queues a call to the master; it runs after mu is released, in order.
// Caller holds mu.
func (a *Agent) emit(f func()) {
	if a.stopped {
		return
	}
	a.outbox = append(a.outbox, f)
	if !a.draining {
		a.draining = true
		go a.drain()
	}
}

func (a *Agent) drain() {
	a.mu.Lock()
	for len(a.outbox) > 0 {
		f := a.outbox[0]
		a.outbox[0] = nil
		a.outbox = a.outbox[1:]
		a.mu.Unlock()
		f()
		a.mu.Lock()
	}
	a.outbox = nil
	a.draining = false
	a.drained.Broadcast()
	a.mu.Unlock()
}

// Quiesce blocks until every queued master notification has been delivered.
// Tests use it to observe a settled agent.
func (a *Agent) Quiesce() {
	a.mu.Lock()
	for a.draining {
		a.drained.Wait()
	}
	a.mu.Unlock()
}

// Executors lists the executor runs: live ones, and terminated ones
// (Terminated set) while some task of theirs still awaits the
// acknowledgement of its terminal update. Sorted by framework, executor ID
// and then live before terminated.
func (a *Agent) Executors() []ExecutorState {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []ExecutorState
	add := func(e *executor) {
		st := ExecutorState{
			Framework:  e.fwID,
			Executor:   e.info.ExecutorID,
			Directory:  e.dir,
			PID:        e.pid,
			Tasks:      make(map[string]mesos.TaskState, len(e.tasks)),
			Terminated: e.state == execTerminated,
		}
		for id, t := range e.tasks {
			st.Tasks[id] = t.state
		}
		out = append(out, st)
	}
	for _, fw := range a.frameworks {
		for _, e := range fw.executors {
			add(e)
		}
		for _, e := range fw.terminated {
			add(e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Framework.Value != out[j].Framework.Value {
			return out[i].Framework.Value < out[j].Framework.Value
		}
		if out[i].Executor.Value != out[j].Executor.Value {
			return out[i].Executor.Value < out[j].Executor.Value
		}
		return !out[i].Terminated && out[j].Terminated
	})
	return out
}

func (a *Agent) framework(id string) *framework {
	if a.frameworks == nil {
		return nil
	}
	return a.frameworks[id]
}

// executorByID finds a live executor. Caller holds mu.
func (a *Agent) executorByID(fw, ex string) *executor {
	f := a.framework(fw)
	if f == nil {
		return nil
	}
	return f.executors[ex]
}

// executorOfTask finds the live executor holding a task. Caller holds mu.
func (a *Agent) executorOfTask(fw, task string) *executor {
	f := a.framework(fw)
	if f == nil {
		return nil
	}
	for _, e := range f.executors {
		if _, ok := e.tasks[task]; ok {
			return e
		}
	}
	return nil
}

// taskDone forgets a task whose terminal update was acknowledged, and a
// terminated executor run once nothing of it is left. Caller holds mu.
func (a *Agent) taskDone(fw, task string) {
	f := a.framework(fw)
	if f == nil {
		return
	}
	if e := a.executorOfTask(fw, task); e != nil {
		delete(e.tasks, task)
		return
	}
	for i, e := range f.terminated {
		if _, ok := e.tasks[task]; ok {
			delete(e.tasks, task)
			if len(e.tasks) == 0 {
				f.terminated = append(f.terminated[:i], f.terminated[i+1:]...)
			}
			return
		}
	}
}

// maybeForgetFramework drops a framework with nothing left on this agent,
// keeping idle agents small. Caller holds mu.
func (a *Agent) maybeForgetFramework(id string) {
	f := a.framework(id)
	if f == nil || len(f.executors) > 0 || len(f.terminated) > 0 {
		return
	}
	for k := range a.streams {
		if k.fw == id {
			return
		}
	}
	delete(a.frameworks, id)
}

func (a *Agent) slaveDir() string {
	return filepath.Join(a.cfg.WorkDir, "slaves", a.cfg.ID.Value)
}

func (a *Agent) volumesDir() string {
	return filepath.Join(a.cfg.WorkDir, "volumes", "roles")
}

func partitionAware(info mesos.FrameworkInfo) bool {
	for _, c := range info.Capabilities {
		if c.Type == mesos.FrameworkInfo_Capability_PARTITION_AWARE {
			return true
		}
	}
	return false
}

func nowSeconds() *float64 {
	t := float64(time.Now().UnixNano()) / 1e9
	return &t
}
