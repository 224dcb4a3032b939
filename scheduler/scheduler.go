// Package scheduler is the dcos-consul Mesos framework: the imperative
// shell around the pure decision packages (state, reconcile, offers, plan).
//
// One goroutine owns the state. It reads the subscription's events in
// batches, applies them with the pure functions, writes every changed
// record to the store, and only then talks to Mesos (ACCEPT, DECLINE,
// KILL, ACKNOWLEDGE, RECONCILE, REVIVE/SUPPRESS): a crash between the write
// and the call is always safe, because reconciliation after a restart
// finds out what happened.
package scheduler

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mesosscheduler "github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/api"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/consulacl"
	"github.com/dcos-consul/dcos-consul/scheduler/offers"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
	"github.com/dcos-consul/dcos-consul/scheduler/plan"
	"github.com/dcos-consul/dcos-consul/scheduler/reconcile"
	"github.com/dcos-consul/dcos-consul/scheduler/secrets"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
	"github.com/dcos-consul/dcos-consul/scheduler/store"
)

// Options tune the scheduler; the zero value is production behaviour.
type Options struct {
	// Store is the state store; nil opens the one cfg names (file or ZooKeeper).
	Store Store
	// Listener serves the HTTP API; nil listens on cfg.APIHost:cfg.APIPort.
	Listener net.Listener
	// ExecutorListener serves the executor channel over TLS
	// (executorchannel.go); nil listens on cfg.ExecutorPort where the API
	// listens.
	ExecutorListener net.Listener
	// Registry receives the metrics; nil makes a private one served on /metrics.
	Registry *prometheus.Registry
	// HeartbeatMisses: the subscription is dropped after this many heartbeat
	// intervals without any event (default 5).
	HeartbeatMisses int
	// HeartbeatInterval overrides the master's advertised interval (tests).
	HeartbeatInterval time.Duration
	// ReconcileInterval is the period of the explicit+implicit
	// reconciliation after the first one (default 5 minutes).
	ReconcileInterval time.Duration
	// CallTimeout bounds one call to the master (default 30 s).
	CallTimeout time.Duration
	// ResubscribeMax caps the re-subscribe backoff (default 2 s;
	// resubscribeBackoff).
	ResubscribeMax time.Duration
	// EvictAfter: a server without an agent of its own for this long stops
	// a client to take its agent (default 30 s).
	EvictAfter time.Duration
	// PeerRemovalTimeout bounds how long a replacement waits for the old
	// server's raft peer removal (default 2 minutes).
	PeerRemovalTimeout time.Duration
	// LeaveTimeout bounds the wait for a departing server's graceful
	// leave before the kill and peer removal (reconcile.LeaveTimeout when
	// zero; tests whose stand-in executors ignore the leave MESSAGE set
	// it short).
	LeaveTimeout time.Duration
	// Now and NewID make time and IDs deterministic in tests.
	Now   func() time.Time
	NewID func() string

	// Rand is the source of the generated secrets (nil: crypto/rand).
	Rand io.Reader

	apiURL      string                                // the plain API's advertised URL (set by RunWith)
	executorURL string                                // the executor channel's https URL (set by RunWith)
	mesosAuth   mesosAuth                             // Authorization toward the master, nil for none (set by RunWith)
	onStart     func(*Scheduler)                      // tests: the scheduler once loaded
	consul      consulAdmin                           // tests: a fake Consul
	masterState func(context.Context) ([]byte, error) // tests: the master's /master/state
	adoptWait   map[string]string                     // unexplained reservations at start (set by RunWith)
}

func (o *Options) defaults() {
	if o.HeartbeatMisses <= 0 {
		o.HeartbeatMisses = 5
	}
	if o.ReconcileInterval <= 0 {
		o.ReconcileInterval = 5 * time.Minute
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 30 * time.Second
	}
	if o.PeerRemovalTimeout <= 0 {
		o.PeerRemovalTimeout = 2 * time.Minute
	}
	if o.EvictAfter <= 0 {
		o.EvictAfter = 30 * time.Second
	}
	if o.ResubscribeMax <= 0 {
		o.ResubscribeMax = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewID == nil {
		o.NewID = func() string { return uuid.NewString() }
	}
}

// Run runs the scheduler until ctx is done: it opens the state store that
// cfg names, serves the API on cfg.APIPort and keeps a subscription to the
// Mesos master. It returns nil after ctx is cancelled, or the error that
// stopped it (a broken state store, an unusable configuration).
func Run(ctx context.Context, cfg config.Config, log *zap.Logger) error {
	return RunWith(ctx, cfg, log, Options{})
}

// RunWith is Run with options (tests and the dev command).
func RunWith(ctx context.Context, cfg config.Config, log *zap.Logger, opts Options) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if _, err := offers.ExecutorFile(cfg.ExecutorURI); err != nil {
		return fmt.Errorf("config: %s: %w", config.EnvExecutorURI, err)
	}
	opts.defaults()
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("service", cfg.ServiceName))
	auth, err := readAuth(cfg, log)
	if err != nil {
		return err
	}
	opts.mesosAuth = auth.mesos
	st := opts.Store
	if st == nil {
		s, err := store.Open(ctx, store.Config{ZK: cfg.ZK, Dir: cfg.StateDir, Service: cfg.ServiceName, Logger: log, ZKAuth: auth.zk})
		if err != nil {
			return fmt.Errorf("open the state store: %w", err)
		}
		defer s.Close()
		st = s
	}
	adoptWait, err := adoptPrevious(ctx, cfg, st, log, opts.masterState, opts.Now())
	if err != nil {
		return err
	}
	ln := opts.Listener
	if ln == nil {
		l, err := apiListen(cfg)
		if err != nil {
			return err
		}
		ln = l
	}
	opts.apiURL = advertisedURL(cfg, ln, log)
	eln := opts.ExecutorListener
	if eln == nil {
		l, err := executorListen(cfg, ln)
		if err != nil {
			_ = ln.Close()
			return err
		}
		eln = l
	}
	opts.executorURL = "https://" + advertisedAddr(cfg, eln, cfg.ExecutorPort, nil)
	opts.adoptWait = adoptWait
	s, err := newScheduler(ctx, cfg, log, st, opts)
	if err != nil {
		_ = ln.Close()
		_ = eln.Close()
		return err
	}
	s.adoptWait, s.adoptUntil = adoptWait, opts.Now().Add(adoptWindow)
	if s.snap, err = newSnapshots(cfg, s.Snapshot, opts.Now, log.Named("backup")); err != nil {
		_ = ln.Close()
		_ = eln.Close()
		return err
	}
	s.snap.acl = func() (bool, consulacl.Tokens) {
		sec, tg := s.secrets.Get(), s.Snapshot().Target
		t := consulacl.Tokens{Management: sec.ManagementToken, Scheduler: sec.SchedulerToken, Agent: sec.AgentToken}
		if tg.Secondary {
			t.SecondaryDC, t.Replication = tg.Datacenter, sec.ReplicationToken
		}
		if s.aclTokensWithheld() {
			// ACLs are being turned on and the management token does not
			// exist in Consul yet: snapshots go anonymously (default allow),
			// and there is no ACL state to restore.
			return false, consulacl.Tokens{}
		}
		return tg.ACL, t
	}
	s.snap.clientsTLS, s.snap.queueRestarts = s.clientsTLS, s.queueRestoreRestarts
	go s.snap.loop(ctx)
	h := s.httpHandler(s.metrics.registry)
	srv := &http.Server{Handler: s.plainGate(h), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("API server stopped", zap.Error(err))
		}
	}()
	log.Info("scheduler API listening", zap.String("address", ln.Addr().String()))
	// Real time, not opts.Now: executors check the certificate's validity
	// against their clocks.
	cc := &channelCert{hosts: channelHosts(opts.executorURL), ca: func() pki.CA { return s.secrets.Get().ActiveCA() },
		now: time.Now, log: log.Named("executor-channel")}
	if _, err := cc.get(nil); err != nil {
		log.Error("the executor channel has no certificate yet: executors cannot fetch their secrets until it has", zap.Error(err))
	}
	esrv := &http.Server{Handler: executorOnly(h), ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(log.Named("executor-channel")),
		TLSConfig: &tls.Config{GetCertificate: cc.get, MinVersion: tls.VersionTLS12}}
	go func() {
		if err := esrv.ServeTLS(eln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("executor channel stopped", zap.Error(err))
		}
	}()
	log.Info("executor channel listening (TLS, the executor routes only)", zap.String("address", eln.Addr().String()),
		zap.String("url", opts.executorURL))
	defer func() {
		// A stop is a failover, not an uninstall: no task is touched, and
		// the process must go at once (Marathon starts the next scheduler
		// only then). Shutdown alone waits up to 5 s for connections that
		// were opened but sent nothing yet (health checkers, pre-dialled
		// clients): requests in flight get a moment, then everything is
		// closed.
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
		if err := esrv.Shutdown(sctx); err != nil {
			_ = esrv.Close()
		}
	}()
	go s.securityLoop(ctx)
	if opts.onStart != nil {
		opts.onStart(s)
	}
	err = s.loop(ctx)
	close(s.done)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// shutdownGrace is how long API requests in flight get when the scheduler
// stops.
const shutdownGrace = 500 * time.Millisecond

// Scheduler is the running framework.
type Scheduler struct {
	cfg   config.Config
	log   *zap.Logger
	store Store
	opts  Options

	target      state.Target
	frameworkID string
	tasks       state.Tasks
	agents      map[string]reconcile.Agent
	agentAttrs  map[string]map[string]string
	// waiting is the latest reason an offer did not suit a record.
	waiting map[string]string
	// reconciling: task ID → agent ID of records not yet answered by the
	// explicit reconciliation since the last SUBSCRIBED.
	reconciling    map[string]string
	reconcileNext  time.Time
	reconcileDelay time.Duration
	periodicNext   time.Time
	lastKill       map[string]time.Time
	suppressed     *bool
	wanted         map[string]bool // names in Launch at the last revive
	last           reconcile.Result

	dirty   map[string]bool
	deleted map[string]bool
	// undo holds the persisted version of every record changed since the
	// last successful flush (nil: it did not exist), so that a failed
	// write leaves memory equal to the store.
	undo map[string]*state.Task

	subscribed     bool
	subscribeCount int
	deregistered   bool // uninstall finished
	// refused: configuration changes not applied at start, one line each
	// (deploy plan errors, /v1/health).
	refused []string
	// tlsWhy is what the rollouts (TLS, gossip, ACLs) last waited for
	// (logged on change).
	tlsWhy string
	// aclBootstrapped: this scheduler's ACL bootstrap succeeded (aclLoop);
	// read by the loop (the ACL rollout's first phase waits for it) and by
	// the Consul callers (ACL tokens withheld until then in that phase).
	aclBootstrapped atomic.Bool
	lastPublish     time.Time
	publishCost     time.Duration // how long the last publish took
	lastJoinMessage time.Time
	caller          *caller
	sender          *sender // the live subscription's; nil before the first
	cmds            chan func()

	metrics *metrics
	consul  consulAdmin
	// peerRemoval: replaced servers whose old raft peer is being removed
	// (name → raft address); their placement waits.
	peerRemoval map[string]string
	// raft is Consul's latest view of its servers (nil: no server
	// answered); raftNext is when to read it again, raftPolling while a
	// read is under way.
	raft        *reconcile.RaftHealth
	raftNext    time.Time
	raftPolling bool
	// removalWhy: why a scale-down's raft peer removal has not succeeded.
	removalWhy map[string]string
	raftDenied bool
	// adoptWait: agents holding reservations no record explained at
	// start (agent ID → hostname); new servers wait for them until
	// adoptUntil (adoptBlocked).
	adoptWait  map[string]string
	adoptUntil time.Time
	// transferring: a raft leadership transfer is under way; transferNext
	// is the earliest next one, transferWhy the last failure.
	transferring bool
	transferNext time.Time
	transferWhy  string
	transferDone time.Time // when the last transfer succeeded
	// ask: the hand-over request to the leader's executor (handover.go).
	ask handOverAsk
	// lastWaits is the last logged reconcile.Result.Waits.
	lastWaits string
	// autopilotFor: the server count autopilot was configured for;
	// autopilotBusy while a write is under way.
	autopilotFor  int
	autopilotBusy bool
	autopilotNext time.Time
	// control: the plans and phases the operator paused (stored).
	control plan.Control
	done    chan struct{} // closed when the loop has returned

	// secrets: the gossip keyring, the executor credential key and the
	// operator token (scheduler/secrets).
	secrets  *secrets.Holder
	rotateMu sync.Mutex // one rotation (gossip key, management token) at a time
	// presented: server name → the copy it presented while the secrets
	// were lost (secrets.SameCopy), under rotateMu (lostsecrets.go).
	presented map[string]string

	snap *snapshots // Consul snapshots (backup plan, snapshot commands)

	quorum quorumWatch // lost-quorum detection (recover_quorum.go)

	tlsRenew certRenewals // in-place TLS certificate renewals (certrenew.go)

	mu   sync.RWMutex
	view api.View
}

func newScheduler(ctx context.Context, cfg config.Config, log *zap.Logger, st Store, opts Options) (*Scheduler, error) {
	opts.defaults()
	p, err := load(ctx, st)
	if err != nil {
		return nil, err
	}
	s := &Scheduler{
		cfg: cfg, log: log, store: st, opts: opts,
		frameworkID: p.FrameworkID,
		tasks:       p.Tasks,
		agents:      map[string]reconcile.Agent{},
		agentAttrs:  map[string]map[string]string{},
		waiting:     map[string]string{},
		reconciling: map[string]string{},
		lastKill:    map[string]time.Time{},
		wanted:      map[string]bool{},
		dirty:       map[string]bool{},
		deleted:     map[string]bool{},
		undo:        map[string]*state.Task{},
		peerRemoval: map[string]string{},
		removalWhy:  map[string]string{},
		// Until Consul has been asked, nothing counts as a healthy voter
		// (nil would mean "no Consul answered": running is enough).
		raft:    &reconcile.RaftHealth{Err: "not read yet"},
		done:    make(chan struct{}),
		consul:  opts.consul,
		cmds:    make(chan func()),
		metrics: newMetrics(opts.Registry),
	}
	if s.consul == nil {
		s.consul = httpConsul{log: log, anonymous: s.aclTokensWithheld}
	}
	if err := s.loadSecrets(ctx); err != nil {
		return nil, err
	}
	s.target = state.TargetFrom(cfg)
	switch {
	case cfg.Uninstall:
		// Uninstall what was deployed, as it was deployed.
		if p.Target != nil {
			s.target = *p.Target
			s.target.Uninstall = true
		}
		if s.frameworkID == "" && len(s.tasks) == 0 {
			// Opening the store made its nodes again (or a previous
			// uninstall stopped before removing them): remove them.
			if err := destroyState(ctx, st, log); err != nil {
				return nil, err
			}
			s.deregistered = true
			log.Info("uninstall: nothing is left of this service")
		} else {
			log.Warn("uninstall: killing every task, destroying volumes and reservations, then tearing down the framework",
				zap.Int("tasks", len(s.tasks)))
		}
	default:
		if p.Target != nil {
			upgraded, names := state.UpgradeConfigIDs(*p.Target, s.tasks)
			p.Target = &upgraded
			if len(names) > 0 {
				// Written before anything uses them.
				if err := saveTasks(ctx, st, s.tasks, names, nil); err != nil {
					return nil, fmt.Errorf("write the records' configuration IDs: %w", err)
				}
				log.Info("records carried over to per-role configuration IDs", zap.Int("tasks", len(names)))
			}
		}
		d := state.DecideStart(p.Config, p.Target, cfg)
		s.target = d.Target
		s.refused = d.Refused
		switch {
		case d.Err != nil:
			log.Error("configuration change refused: the service keeps running with its current configuration (see /v1/plans/deploy errors)",
				zap.Error(d.Err))
		case p.Target == nil:
		case !d.Change.None():
			log.Info("configuration changed", zap.String("change", d.Change.String()),
				zap.Bool("restart_servers", d.Change.RestartServers()), zap.Bool("restart_clients", d.Change.RestartClients()),
				zap.Int("servers_from", d.Change.ServersFrom), zap.Int("servers_to", d.Change.ServersTo))
		}
		if d.Write {
			// The configuration first: a crash between the two writes
			// leaves the old target with the new configuration, and the
			// next start derives the target from it again.
			if err := putJSON(ctx, st, keyConfig, d.Config); err != nil {
				return nil, fmt.Errorf("write the configuration: %w", err)
			}
			if err := putJSON(ctx, st, keyTarget, s.target); err != nil {
				return nil, fmt.Errorf("write the target configuration: %w", err)
			}
		}
	}
	s.target.Secrets = s.secretsAccess()
	for _, t := range s.tasks {
		if t.AgentID != "" {
			s.agents[t.AgentID] = reconcile.Agent{ID: t.AgentID, Hostname: t.Hostname}
		}
	}
	s.control = p.Control
	if !cfg.Uninstall {
		if err := recordConfiguration(ctx, st, s.target); err != nil {
			return nil, err
		}
	}
	log.Info("scheduler state loaded", zap.String("framework_id", s.frameworkID), zap.Int("tasks", len(s.tasks)),
		zap.String("config_id", s.target.ConfigID), zap.Int("servers", s.target.Servers))
	s.last = s.reconcile(opts.Now())
	s.publish()
	return s, nil
}

func (s *Scheduler) now() time.Time { return s.opts.Now() }

// reconcile runs the pure reconciliation over the current state.
func (s *Scheduler) reconcile(now time.Time) reconcile.Result {
	return reconcile.Reconcile(reconcile.Input{Target: s.target, Tasks: s.tasks, Agents: s.agents, Now: now, Raft: s.raft,
		Pause: s.control.Pause(), LeaveTimeout: s.opts.LeaveTimeout})
}

// waitsShape is a Waits line without its figures ("asked 3s ago", "led
// for 2s"): the log says what server actions wait for when that changes,
// not every second as its figures do.
// Task names keep their index ("consul-server-4").
func waitsShape(w string) string { return figures.ReplaceAllString(w, "${1}#") }

var figures = regexp.MustCompile(`(^|[\s(:=,])[0-9]+(\.[0-9]+)*`)

// applyReconcile adopts a reconciliation result's records.
func (s *Scheduler) applyReconcile(r reconcile.Result) {
	for _, n := range r.Changed {
		s.setTask(r.Tasks[n])
	}
	for _, n := range r.Deleted {
		s.deleteTask(n)
	}
	for _, n := range r.Replace {
		s.log.Warn("server replaced: it will be placed on another agent and its old reservation destroyed", zap.String("task", n))
		s.metrics.replacements.Inc()
	}
	if len(r.Old) > 0 {
		s.forceLeave(r.Old)
	}
	if w := r.Waits(); waitsShape(w) != waitsShape(s.lastWaits) {
		if w == "" {
			s.log.Info("server actions no longer wait")
		} else {
			s.log.Info("server actions wait", zap.String("waits", w))
		}
		s.lastWaits = w
	}
	s.last = r
	s.prune(s.now()) // records just deleted may free their agents' entries
}

func (s *Scheduler) touch(name string) {
	if _, ok := s.undo[name]; ok {
		return
	}
	if t, ok := s.tasks[name]; ok {
		c := t
		s.undo[name] = &c
	} else {
		s.undo[name] = nil
	}
}

// rollback forgets every change not written to the store.
func (s *Scheduler) rollback() {
	for name, prev := range s.undo {
		if prev == nil {
			delete(s.tasks, name)
		} else {
			s.tasks[name] = *prev
		}
	}
	s.undo = map[string]*state.Task{}
	s.dirty = map[string]bool{}
	s.deleted = map[string]bool{}
	s.last = s.reconcile(s.now())
}

func (s *Scheduler) setTask(t state.Task) {
	s.touch(t.Name)
	s.tasks[t.Name] = t
	s.dirty[t.Name] = true
	delete(s.deleted, t.Name)
}

func (s *Scheduler) deleteTask(name string) {
	if _, ok := s.tasks[name]; !ok {
		return
	}
	s.touch(name)
	delete(s.tasks, name)
	delete(s.dirty, name)
	delete(s.waiting, name)
	s.deleted[name] = true
}

// flush writes every changed record. Nothing is sent to Mesos before it
// returns nil.
func (s *Scheduler) flush(ctx context.Context) error {
	if len(s.dirty) == 0 && len(s.deleted) == 0 {
		return nil
	}
	changed := make([]string, 0, len(s.dirty))
	for n := range s.dirty {
		changed = append(changed, n)
	}
	deleted := make([]string, 0, len(s.deleted))
	for n := range s.deleted {
		deleted = append(deleted, n)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	start := time.Now()
	if err := saveTasks(wctx, s.store, s.tasks, changed, deleted); err != nil {
		s.metrics.storeErrors.Inc()
		s.rollback()
		return fmt.Errorf("state store: %w", err)
	}
	s.undo = map[string]*state.Task{}
	s.metrics.storeWrite.Observe(time.Since(start).Seconds())
	s.dirty = map[string]bool{}
	s.deleted = map[string]bool{}
	return nil
}

// maybePublish publishes at most every 200 ms (building the plans of
// 10,000 tasks for every batch of updates would dominate the loop), and
// never more than a tenth of the loop's time (publishDue).
func (s *Scheduler) maybePublish() {
	if publishDue(time.Since(s.lastPublish), s.publishCost) {
		s.publish()
	}
}

// publishDue: a snapshot is due 200 ms after the last one, or ten times
// as long as the last one took if that is longer. A snapshot of 10,000
// tasks costs 0.1-0.3 s on a loaded machine: published every 200 ms it
// took the loop's whole time, the updates waited, their acknowledgements
// came later than the agents' 10 s retry and the resent updates made the
// deploy slower still (issue 8).
func publishDue(since, cost time.Duration) bool {
	every := 200 * time.Millisecond
	if 10*cost > every {
		every = 10 * cost
	}
	return since >= every
}

// publish makes a snapshot for the API and the metrics.
func (s *Scheduler) publish() {
	s.lastPublish = time.Now()
	defer func() { s.publishCost = time.Since(s.lastPublish) }()
	now := s.now()
	blocked := s.blocked()
	plans := plan.Build(plan.Input{Target: s.target, Tasks: s.tasks, Launch: s.last.Launch, Waiting: s.waiting,
		Blocked: blocked, Agents: s.agents, Now: now, Release: s.last.Release, Deregistered: s.deregistered, Settling: s.last.Settling,
		ScaleDown: s.scaleDownView(), Gate: s.gateView(), Control: s.control,
		Errors: s.planErrors(), ACLBootstrapped: s.aclBootstrapped.Load()})
	if s.snap != nil && !s.target.Uninstall {
		plans[backupPlan] = s.snap.plan()
	}
	plans[plan.Recovery] = s.withOutage(plans[plan.Recovery])
	v := api.View{FrameworkID: s.frameworkID, Subscribed: s.subscribed, Target: s.target, Tasks: s.tasks.Sorted(), Plans: plans,
		ConfigErrors: s.refused, Quorum: s.quorumView(), SecretsLost: s.secretsLostView()}
	s.mu.Lock()
	if s.view.Err != "" && s.subscribed {
		v.Err = ""
	} else {
		v.Err = s.view.Err
	}
	s.view = v
	s.mu.Unlock()
	s.metrics.observe(v)
}

func (s *Scheduler) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.view.Err = ""
	} else {
		s.view.Err = err.Error()
	}
}

// Snapshot implements api.Source.
func (s *Scheduler) Snapshot() api.View {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.view
}

// Restart implements api.Source.
func (s *Scheduler) Restart(ctx context.Context, pod string) ([]string, error) {
	return s.command(ctx, pod, state.GoalRestart)
}

// Replace implements api.Source.
func (s *Scheduler) Replace(ctx context.Context, pod string) ([]string, error) {
	return s.command(ctx, pod, state.GoalReplace)
}

// errStopping answers operator commands that arrive while the scheduler
// stops.
var errStopping = errors.New("the scheduler is stopping; retry when it is back")

func (s *Scheduler) command(ctx context.Context, pod string, goal state.Goal) ([]string, error) {
	var names []string
	err := s.inLoop(ctx, func() error {
		var err error
		names, err = s.podCommand(ctx, pod, goal)
		return err
	})
	return names, err
}

// The states of a command inLoop hands the loop.
const (
	cmdQueued int32 = iota
	cmdRunning
	cmdAbandoned
)

// inLoop runs f on the loop's goroutine (which owns the state) and waits
// for it. Callers read what f wrote once inLoop returns, so inLoop never
// returns while f may still run: a caller that gives up (ctx ended, the
// loop stopped) before the loop took f up abandons it, and the loop then
// skips it; once f has started, inLoop waits for it to finish (the loop
// runs it to the end before it stops). A caller that returned early while
// f ran later had raced with it (the race detector saw
// refreshCopiesOnStart read the servers f was still appending).
func (s *Scheduler) inLoop(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	var st atomic.Int32
	cmd := func() {
		if st.CompareAndSwap(cmdQueued, cmdRunning) {
			done <- f()
		}
	}
	select {
	case s.cmds <- cmd:
	case <-s.done:
		return errStopping
	case <-ctx.Done():
		return fmt.Errorf("the scheduler is busy: %w", ctx.Err())
	}
	select {
	case err := <-done:
		return err
	case <-s.done:
	case <-ctx.Done():
	}
	if st.CompareAndSwap(cmdQueued, cmdAbandoned) {
		if err := ctx.Err(); err != nil {
			return err
		}
		return errStopping
	}
	return <-done
}

// podCommand sets a pod's goal (restart, replace) through the quorum gate
// and writes it (on the loop).
func (s *Scheduler) podCommand(ctx context.Context, pod string, goal state.Goal) ([]string, error) {
	t, ok := s.tasks[pod]
	if !ok {
		return nil, fmt.Errorf("%w %q (GET /v1/pod lists the pods)", api.ErrUnknownPod, pod)
	}
	if t.Goal == state.GoalStop {
		return nil, fmt.Errorf("pod %q is being stopped", pod)
	}
	if t.Goal == state.GoalDecommission || (t.Role == taskspec.RoleServer && t.Index >= s.target.Servers) {
		return nil, fmt.Errorf("pod %q is being removed: servers are scaled down to %d", pod, s.target.Servers)
	}
	if !t.Launched() && goal == state.GoalRestart {
		return nil, fmt.Errorf("pod %q has no task to restart yet", pod)
	}
	if t.Role == taskspec.RoleServer && t.Goal != goal {
		// The quorum gate: refused (409), never carried out at once.
		if why := reconcile.DisruptionWait(s.target, s.tasks, s.raft, pod); why != "" {
			s.log.Warn("operator command refused by the quorum gate", zap.String("pod", pod), zap.String("goal", string(goal)),
				zap.String("why", why))
			return nil, fmt.Errorf("%w: %s %s now could cost Consul its quorum: %s; retry once it is settled",
				api.ErrConflict, strings.ToLower(string(goal)), pod, why)
		}
	}
	t.Goal = goal
	s.setTask(t)
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	s.log.Info("operator command", zap.String("pod", pod), zap.String("goal", string(goal)))
	return []string{pod}, nil
}

// blocked are records that must not launch now, with why.
func (s *Scheduler) blocked() map[string]string {
	out := map[string]string{}
	if !s.subscribed {
		for n := range s.last.Launch {
			out[n] = "waiting for the subscription to the Mesos master"
		}
	}
	for i := 0; i < s.target.Servers; i++ {
		if t, ok := s.tasks[state.ServerName(i)]; ok && t.OldPeer != "" {
			out[t.Name] = "removing the old server's raft peer " + t.OldPeer + " through the Consul operator API first"
			if why := s.removalWhy[t.Name]; why != "" {
				out[t.Name] += ": " + why
			}
		}
	}
	for n, why := range s.adoptBlocked() {
		out[n] = why
	}
	if s.secrets != nil {
		for n, why := range lostBlocked(s.secrets.Lost(), s.last.Launch, s.tasks) {
			out[n] = why
		}
	}
	for id := range s.reconciling {
		if n := state.NameOfTaskID(id); n != "" {
			if t, ok := s.tasks[n]; ok && t.TaskID == id && t.Active() {
				out[n] = "waiting for Mesos to reconcile its last task " + id
			}
		}
	}
	return out
}

func putJSON(ctx context.Context, st Store, key string, v any) error {
	b, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	return st.Put(ctx, key, b)
}

func agentHost(o mesos.Offer) string {
	if o.Hostname != "" {
		return o.Hostname
	}
	return o.AgentID.Value
}

func joinNames(ns []string) string { return strings.Join(ns, ",") }

// reconcilingSnapshot and subscriptions are for tests; they read state the
// loop owns, so they go through the command channel.
func (s *Scheduler) reconcilingSnapshot() map[string]string {
	out := make(chan map[string]string, 1)
	s.cmds <- func() {
		m := map[string]string{}
		for k, v := range s.reconciling {
			m[k] = v
		}
		out <- m
	}
	return <-out
}

func (s *Scheduler) subscriptions() int {
	out := make(chan int, 1)
	s.cmds <- func() { out <- s.subscribeCount }
	return <-out
}

// deregister ends an uninstall: TEARDOWN, then the stored state goes.
func (s *Scheduler) deregister(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, s.opts.CallTimeout)
	defer cancel()
	// The last DESTROY and UNRESERVE calls go out before the TEARDOWN.
	if err := s.sender.idle(cctx); err != nil {
		return fmt.Errorf("uninstall: waiting for the last calls to the master: %w", err)
	}
	resp, err := s.caller.Call(cctx, &mesosscheduler.Call{Type: mesosscheduler.Call_TEARDOWN,
		FrameworkID: &mesos.FrameworkID{Value: s.frameworkID}})
	if resp != nil {
		resp.Close()
	}
	if err != nil {
		return fmt.Errorf("uninstall: TEARDOWN: %w", err)
	}
	s.log.Info("uninstall: framework torn down", zap.String("framework_id", s.frameworkID))
	return s.forgetState(ctx)
}

func (s *Scheduler) forgetState(ctx context.Context) error {
	keys, err := s.store.List(ctx, prefixTasks)
	if err != nil {
		return fmt.Errorf("uninstall: list state: %w", err)
	}
	confs, err := s.store.List(ctx, prefixConfigurations)
	if err != nil {
		return fmt.Errorf("uninstall: list configurations: %w", err)
	}
	keys = append(keys, confs...)
	for _, k := range append(keys, keyTarget, keyConfig, keyFrameworkID, keyPlanControl, secrets.Key) {
		if err := s.store.Delete(ctx, k); err != nil {
			return fmt.Errorf("uninstall: delete %s: %w", k, err)
		}
	}
	if err := destroyState(ctx, s.store, s.log); err != nil {
		return err
	}
	s.deregistered = true
	s.log.Info("uninstall complete: the service's state is deleted")
	return nil
}

// destroyer is a store that can remove the service's whole state: the
// ZooKeeper node with its __epoch (and __lock) nodes, or the state file.
type destroyer interface {
	Destroy(ctx context.Context) error
}

// destroyState ends an uninstall: deleting the keys leaves the store's own
// nodes (ZooKeeper's /dcos-service-<name> with __epoch), which must go too.
// The store is closed afterwards: the uninstalled scheduler only serves its
// last view.
func destroyState(ctx context.Context, st Store, log *zap.Logger) error {
	d, ok := st.(destroyer)
	if !ok {
		return nil
	}
	if err := d.Destroy(ctx); err != nil {
		return fmt.Errorf("uninstall: remove the state store's own nodes: %w", err)
	}
	log.Info("uninstall: the state store is removed")
	return nil
}

// scaleDownView is reconcile's scale-down reasons with the latest removal
// error.
func (s *Scheduler) scaleDownView() map[string]string {
	if len(s.last.ScaleDown) == 0 {
		return nil
	}
	out := make(map[string]string, len(s.last.ScaleDown))
	for n, why := range s.last.ScaleDown {
		if e := s.removalWhy[n]; e != "" {
			why += "; " + e
		}
		out[n] = why
	}
	return out
}

// gateView is why the next server action waits, with the last failed
// leadership transfer.
func (s *Scheduler) gateView() string {
	g := s.last.Gate
	if g != "" && s.last.Transfer != nil && s.transferWhy != "" {
		g += "; " + s.transferWhy
	}
	return g
}
