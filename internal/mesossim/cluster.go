// Package mesossim is a simulated Apache Mesos cluster: a master speaking
// the real v1 scheduler API (with the real master's validation, offers,
// reservations, volumes, status updates, reconciliation and failover) and
// simulated agents (package agent) that run real executor processes.
// See docs/simulator.md.
package mesossim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/freeport"
	"github.com/dcos-consul/dcos-consul/internal/mesossim/agent"
)

// Options configures a simulated cluster. Zero values take the defaults.
type Options struct {
	MasterIP       string // default "127.0.0.1"
	MasterPort     int    // 0 picks a free port (the sim command uses 5050)
	Agents         int    // number of agents started at once
	FirstAgentIP   string // default "127.0.0.2"; agents take consecutive addresses
	AgentPort      int    // 0 picks a free port per agent (the sim command uses 5051)
	AgentResources string // Mesos syntax, default DefaultAgentResources
	// AgentAttributes are given to every agent (Mesos syntax "k:v;k2:v2").
	AgentAttributes string
	WorkDir         string // required unless InProcess
	InProcess       bool   // in-process executors (scale tests)

	AllocationInterval time.Duration // default 1s
	HeartbeatInterval  time.Duration // default 15s
	// AgentPingTimeout is how long a partitioned agent stays registered
	// (disconnected) before the master marks it unreachable: 15s x 5.
	AgentPingTimeout time.Duration
	// AgentReregisterDelay is how long agents take to re-register after a
	// master restart (with ZooKeeper, as on DC/OS, a second or two).
	AgentReregisterDelay time.Duration // default 1s
	// AgentReregisterTimeout is how long a restarted master waits for the
	// agents of its registry to re-register (--agent_reregister_timeout,
	// default 10 min as real Mesos: "allowing 10mins for agents to
	// reregister", 12-master-restart.txt). An agent still missing then is
	// marked unreachable: FAILURE{agent_id} to every framework, and its
	// tasks, which the master never learnt, are TASK_UNREACHABLE (PA) or
	// TASK_LOST to an explicit reconciliation. Until then such tasks get no
	// answer at all.
	AgentReregisterTimeout time.Duration
	// Agent timing knobs passed to every agent (zero = real Mesos defaults).
	ExecutorShutdownGrace  time.Duration
	StatusUpdateRetry      time.Duration
	ExecutorRegisterTimout time.Duration

	// FrameworkCredentials (principal → secret), when set, make the
	// master require HTTP Basic framework authentication on the scheduler
	// API, as a real master with --authenticate_http_frameworks
	// --http_framework_authenticators=basic --credentials=FILE.
	FrameworkCredentials map[string]string
	// FrameworkTokens, when set, also lets a scheduler authenticate with
	// "Authorization: token=<DC/OS token>", as DC/OS Enterprise's master
	// does with its IAM tokens: it returns the token's principal (uid).
	// Modelled on DC/OS, not checked against it.
	FrameworkTokens func(token string) (principal string, ok bool)
	// ExecutorAuthentication makes every agent require its executors'
	// MESOS_EXECUTOR_AUTHENTICATION_TOKEN (see agent.Config).
	ExecutorAuthentication bool

	Logger *zap.Logger
}

// DefaultAgentResources are the resources of each agent unless configured.
const DefaultAgentResources = "cpus:4;mem:8192;disk:20000;ports:[8000-9000,31000-32000]"

// AgentInfo identifies one agent.
type AgentInfo struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	IP       string `json:"ip"`
	Port     int    `json:"port"`
}

// PID is the agent's libprocess id as /master/state shows it.
func (a AgentInfo) PID() string { return "slave(1)@" + net.JoinHostPort(a.IP, strconv.Itoa(a.Port)) }

// Cluster is a running simulated cluster.
type Cluster struct {
	opts Options
	log  *zap.Logger

	mu       sync.Mutex
	m        *master
	srv      *http.Server
	port     int // the master's actual port
	agents   map[string]*agentRecord
	order    []string // agent IDs in registration order
	nextIP   net.IP
	agentSeq int
	closed   bool
	timers   []*time.Timer
	reg      *registry
	cancel   context.CancelFunc
}

// agentRecord is what survives a master restart about one agent: the
// agent itself and what it knows (tasks it launched, checkpointed
// resources = reservations and volumes).
type agentRecord struct {
	info AgentInfo
	cfg  agent.Config
	box  mailbox

	mu      sync.Mutex
	h       simAgent
	total   rlist
	tasks   map[string]*launchedTask // "fw/task"
	removed bool
}

type launchedTask struct {
	fw       string
	fwInfo   mesos.FrameworkInfo
	task     mesos.TaskInfo
	executor mesos.ExecutorInfo
	role     string
}

func (r *agentRecord) handle() simAgent {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.removed {
		return nil
	}
	return r.h
}

func (r *agentRecord) totalResources() rlist {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total.clone()
}

func (r *agentRecord) launchedTasks() []*launchedTask {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*launchedTask, 0, len(r.tasks))
	for _, k := range sortedKeys(r.tasks) {
		out = append(out, r.tasks[k])
	}
	return out
}

// taskStates asks the agent which tasks it still holds, and in what state.
func (r *agentRecord) taskStates() map[string]mesos.TaskState {
	out := map[string]mesos.TaskState{}
	h := r.handle()
	if h == nil {
		return out
	}
	for _, ex := range h.Executors() {
		for id, st := range ex.Tasks {
			out[ex.Framework.Value+"/"+id] = st
		}
	}
	return out
}

// newAgent builds an agent; tests may replace it.
var newAgent = func(cfg agent.Config, m agent.Master) (simAgent, error) {
	a, err := agent.New(cfg, m)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// masterLink is the agent.Master every agent talks to: it reaches whatever
// master incarnation is current (nothing while the master is down).
type masterLink struct{ c *Cluster }

func (l masterLink) current() *master {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	return l.c.m
}

func (l masterLink) StatusUpdate(agentID mesos.AgentID, fw mesos.FrameworkID, update mesos.TaskStatus, latest mesos.TaskState) {
	if m := l.current(); m != nil {
		m.statusUpdate(agentID.Value, fw.Value, update, latest)
	}
}

func (l masterLink) ExecutorTerminated(agentID mesos.AgentID, fw mesos.FrameworkID, ex mesos.ExecutorID, status int32) {
	if m := l.current(); m != nil {
		m.executorTerminated(agentID.Value, fw.Value, ex.Value, status)
	}
}

func (l masterLink) ExecutorMessage(agentID mesos.AgentID, fw mesos.FrameworkID, ex mesos.ExecutorID, data []byte) {
	if m := l.current(); m != nil {
		m.executorMessage(agentID.Value, fw.Value, ex.Value, data)
	}
}

func (o *Options) setDefaults() error {
	if o.MasterIP == "" {
		o.MasterIP = "127.0.0.1"
	}
	if o.FirstAgentIP == "" {
		o.FirstAgentIP = "127.0.0.2"
	}
	if o.AgentResources == "" {
		o.AgentResources = DefaultAgentResources
	}
	if o.AllocationInterval <= 0 {
		o.AllocationInterval = time.Second
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 15 * time.Second
	}
	if o.AgentPingTimeout <= 0 {
		o.AgentPingTimeout = 75 * time.Second
	}
	if o.AgentReregisterDelay <= 0 {
		o.AgentReregisterDelay = time.Second
	}
	if o.AgentReregisterTimeout <= 0 {
		o.AgentReregisterTimeout = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Agents < 0 {
		return errors.New("mesossim: Agents must not be negative")
	}
	if !o.InProcess && o.WorkDir == "" {
		return errors.New("mesossim: WorkDir is required unless InProcess")
	}
	if net.ParseIP(o.MasterIP).To4() == nil {
		return fmt.Errorf("mesossim: MasterIP %q is not an IPv4 address", o.MasterIP)
	}
	if net.ParseIP(o.FirstAgentIP).To4() == nil {
		return fmt.Errorf("mesossim: FirstAgentIP %q is not an IPv4 address", o.FirstAgentIP)
	}
	if _, err := parseResourceString(o.AgentResources); err != nil {
		return fmt.Errorf("mesossim: AgentResources: %w", err)
	}
	if _, err := parseAttributes(o.AgentAttributes); err != nil {
		return fmt.Errorf("mesossim: AgentAttributes: %w", err)
	}
	if o.WorkDir != "" {
		abs, err := filepath.Abs(o.WorkDir)
		if err != nil {
			return fmt.Errorf("mesossim: work dir: %w", err)
		}
		o.WorkDir = abs
	}
	return nil
}

// Start starts a master and o.Agents agents. With a WorkDir that holds a
// previous cluster's registry, that cluster is resumed (same agents,
// reservations and volumes). Cancelling ctx closes the cluster.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	c := &Cluster{
		opts:   o,
		log:    o.Logger.Named("mesossim"),
		agents: map[string]*agentRecord{},
		nextIP: net.ParseIP(o.FirstAgentIP).To4(),
	}
	reg, err := loadRegistry(o.WorkDir)
	if err != nil {
		return nil, err
	}
	c.reg = reg
	c.agentSeq = reg.NextAgent
	if err := c.startMaster(); err != nil {
		return nil, err
	}
	// Resume the agents of the registry, then add new ones.
	if err := c.resumeFromRegistry(); err != nil {
		c.Close()
		return nil, err
	}
	for len(c.agents) < o.Agents {
		if _, err := c.AddAgent(); err != nil {
			c.Close()
			return nil, err
		}
	}
	c.saveRegistry()
	cctx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	go func() {
		<-cctx.Done()
		c.Close()
	}()
	return c, nil
}

func (c *Cluster) startMaster(recovering ...string) error {
	port := c.opts.MasterPort
	c.mu.Lock()
	if c.port != 0 {
		port = c.port
	}
	c.mu.Unlock()
	addr := net.JoinHostPort(c.opts.MasterIP, strconv.Itoa(port))
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // after a restart the port may take a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("mesossim: master listen on %s: %w", addr, err)
	}
	m := newMaster(c, c.opts.MasterIP, ln.Addr().(*net.TCPAddr).Port)
	for _, id := range recovering {
		m.recovering[id] = true
	}
	srv := &http.Server{Handler: m.handler(), ReadHeaderTimeout: 30 * time.Second}
	c.mu.Lock()
	if c.closed { // Close ran during a restart: start nothing it cannot stop
		c.mu.Unlock()
		ln.Close()
		return errors.New("mesossim: cluster closed")
	}
	c.port = ln.Addr().(*net.TCPAddr).Port
	c.m, c.srv = m, srv
	c.mu.Unlock()
	go srv.Serve(ln)
	go m.run()
	c.log.Info("master started", zap.String("url", c.MasterURL()), zap.String("id", m.id))
	return nil
}

// MasterURL is the master's base URL, e.g. "http://127.0.0.1:5050".
func (c *Cluster) MasterURL() string {
	c.mu.Lock()
	port := c.port
	c.mu.Unlock()
	return "http://" + net.JoinHostPort(c.opts.MasterIP, strconv.Itoa(port))
}

// MasterID is the current master incarnation's ID.
func (c *Cluster) MasterID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		return ""
	}
	return c.m.id
}

// Agents lists the agents in registration order.
func (c *Cluster) Agents() []AgentInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]AgentInfo, 0, len(c.order))
	for _, id := range c.order {
		out = append(out, c.agents[id].info)
	}
	return out
}

func nextAddr(ip net.IP) net.IP {
	n := make(net.IP, 4)
	copy(n, ip.To4())
	for i := 3; i >= 0; i-- {
		n[i]++
		if n[i] != 0 {
			break
		}
	}
	return n
}

func parseAttributes(s string) ([]mesos.Attribute, error) {
	var out []mesos.Attribute
	if s == "" {
		return nil, nil
	}
	for _, part := range splitNonEmpty(s, ';') {
		i := indexByte(part, ':')
		if i <= 0 {
			return nil, fmt.Errorf("bad attribute %q: expecting name:value", part)
		}
		name, value := part[:i], part[i+1:]
		if f, err := strconv.ParseFloat(value, 64); err == nil {
			t := mesos.SCALAR
			out = append(out, mesos.Attribute{Name: name, Type: t, Scalar: &mesos.Value_Scalar{Value: f}})
			continue
		}
		t := mesos.TEXT
		out = append(out, mesos.Attribute{Name: name, Type: t, Text: &mesos.Value_Text{Value: value}})
	}
	return out, nil
}

func splitNonEmpty(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == sep {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

func indexByte(s string, b byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return i
		}
	}
	return -1
}

func (c *Cluster) agentConfig(info AgentInfo) (agent.Config, error) {
	res, _ := parseResourceString(c.opts.AgentResources)
	attrs, _ := parseAttributes(c.opts.AgentAttributes)
	cfg := agent.Config{
		ID:                     mesos.AgentID{Value: info.ID},
		Hostname:               info.Hostname,
		IP:                     info.IP,
		Port:                   info.Port,
		Resources:              res,
		Attributes:             attrs,
		InProcess:              c.opts.InProcess,
		ExecutorAuthentication: c.opts.ExecutorAuthentication,
		ExecutorShutdownGrace:  c.opts.ExecutorShutdownGrace,
		StatusUpdateRetry:      c.opts.StatusUpdateRetry,
		ExecutorRegisterTimout: c.opts.ExecutorRegisterTimout,
		Logger:                 c.log.Named("agent").With(zap.String("agent", info.ID), zap.String("ip", info.IP)),
	}
	if c.opts.WorkDir != "" {
		cfg.WorkDir = filepath.Join(c.opts.WorkDir, "agents", info.IP)
	}
	return cfg, nil
}

// startAgent creates and starts the agent of rec and registers it.
func (c *Cluster) startAgent(rec *agentRecord) error {
	h, err := newAgent(rec.cfg, masterLink{c})
	if err != nil {
		return err
	}
	if err := h.Start(); err != nil {
		return fmt.Errorf("mesossim: start agent %s on %s: %w", rec.info.ID, rec.info.IP, err)
	}
	rec.mu.Lock()
	rec.h = h
	rec.mu.Unlock()
	c.mu.Lock()
	c.agents[rec.info.ID] = rec
	c.order = append(c.order, rec.info.ID)
	m := c.m
	c.mu.Unlock()
	if m != nil {
		m.registerAgent(rec)
	}
	return nil
}

// AddAgent starts one more agent (at the next free address) and registers
// it with the master.
func (c *Cluster) AddAgent() (AgentInfo, error) {
	c.mu.Lock()
	if c.closed || c.m == nil {
		c.mu.Unlock()
		return AgentInfo{}, errors.New("mesossim: cluster closed or master restarting")
	}
	ip := c.nextIP
	c.nextIP = nextAddr(ip)
	masterID := c.m.id
	seq := c.agentSeq
	c.agentSeq++
	c.mu.Unlock()
	port := c.opts.AgentPort
	if port == 0 && c.opts.InProcess {
		port = agent.DefaultPort // nothing listens
	} else if port == 0 {
		p, err := freePort(ip.String())
		if err != nil {
			return AgentInfo{}, err
		}
		port = p
	}
	info := AgentInfo{ID: fmt.Sprintf("%s-S%d", masterID, seq), Hostname: ip.String(), IP: ip.String(), Port: port}
	cfg, err := c.agentConfig(info)
	if err != nil {
		return AgentInfo{}, err
	}
	total, _ := parseResourceString(c.opts.AgentResources)
	rec := &agentRecord{info: info, cfg: cfg, total: total, tasks: map[string]*launchedTask{}}
	if err := c.startAgent(rec); err != nil {
		return AgentInfo{}, err
	}
	c.saveRegistry()
	c.log.Info("agent added", zap.String("agent", info.ID), zap.String("ip", info.IP))
	return info, nil
}

func freePort(ip string) (int, error) {
	return freeport.One(ip)
}

func (c *Cluster) record(id string) (*agentRecord, *master, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := c.agents[id]
	if rec == nil {
		return nil, nil, fmt.Errorf("mesossim: unknown agent %q", id)
	}
	return rec, c.m, nil
}

// RemoveAgent takes an agent out for good: its offers are rescinded, its
// tasks become TASK_UNREACHABLE (partition-aware frameworks) or TASK_LOST,
// frameworks get FAILURE{agent_id}, and its executor processes are killed.
func (c *Cluster) RemoveAgent(id string) error {
	rec, m, err := c.record(id)
	if err != nil {
		return err
	}
	if h := rec.handle(); h != nil {
		h.SetPartitioned(true)
	}
	if m != nil {
		m.disconnectAgent(id)
		m.markUnreachable(id, "Agent "+rec.info.Hostname+" removed")
	}
	rec.mu.Lock()
	h := rec.h
	rec.removed = true
	rec.mu.Unlock()
	if h != nil {
		h.Stop()
	}
	c.mu.Lock()
	delete(c.agents, id)
	for i, x := range c.order {
		if x == id {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	c.saveRegistry()
	return nil
}

// PartitionAgent cuts an agent off the master for d. Its offers are
// rescinded at once; if d exceeds the agent ping timeout the master marks
// it unreachable (as RemoveAgent does, but the processes keep running);
// when d is over the agent re-registers and its tasks are re-added.
func (c *Cluster) PartitionAgent(id string, d time.Duration) error {
	rec, m, err := c.record(id)
	if err != nil {
		return err
	}
	if d <= 0 {
		return errors.New("mesossim: partition duration must be positive")
	}
	if h := rec.handle(); h != nil {
		h.SetPartitioned(true)
	}
	if m != nil {
		m.disconnectAgent(id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > c.opts.AgentPingTimeout {
		c.timers = append(c.timers, time.AfterFunc(c.opts.AgentPingTimeout, func() {
			if m := (masterLink{c}).current(); m != nil {
				m.markUnreachable(id, "health check timed out")
			}
		}))
	}
	c.timers = append(c.timers, time.AfterFunc(d, func() {
		c.mu.Lock()
		m, alive := c.m, c.agents[id] == rec && !c.closed
		c.mu.Unlock()
		if alive && m != nil {
			m.registerAgent(rec)
		}
	}))
	return nil
}

// RestartMaster kills the master and starts a new incarnation on the same
// address: every scheduler stream ends (plain EOF), schedulers must
// re-subscribe, agents re-register after AgentReregisterDelay and report
// their tasks; frameworks and tasks are recovered.
func (c *Cluster) RestartMaster() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errors.New("mesossim: cluster closed")
	}
	old, srv := c.m, c.srv
	c.m = nil
	recs := make([]*agentRecord, 0, len(c.order))
	for _, id := range c.order {
		recs = append(recs, c.agents[id])
	}
	c.mu.Unlock()
	old.stop()
	srv.Close()
	for _, rec := range recs {
		if h := rec.handle(); h != nil {
			h.SetPartitioned(true)
		}
	}
	ids := make([]string, len(recs))
	for i, rec := range recs {
		ids[i] = rec.info.ID
	}
	if err := c.startMaster(ids...); err != nil {
		return err
	}
	c.mu.Lock()
	m := c.m
	c.timers = append(c.timers, time.AfterFunc(c.opts.AgentReregisterDelay, func() {
		for _, rec := range recs {
			c.mu.Lock()
			cur, alive := c.m, c.agents[rec.info.ID] == rec && !c.closed
			c.mu.Unlock()
			if alive && cur == m {
				m.registerAgent(rec)
			}
		}
	}))
	c.timers = append(c.timers, time.AfterFunc(c.opts.AgentReregisterTimeout, m.reregisterTimeout))
	c.mu.Unlock()
	return nil
}

// RestartAgent kills the agent process and starts it again after down
// with --recover=reconnect (11-agent-restart-checkpoint.txt): its offers
// are rescinded at once; executors of checkpointing frameworks keep
// running and re-subscribe, the others' tasks are lost; the agent then
// re-registers (after its executor re-registration timeout) and re-sends
// what it holds.
func (c *Cluster) RestartAgent(id string, down time.Duration) error {
	rec, m, err := c.record(id)
	if err != nil {
		return err
	}
	h := rec.handle()
	if h == nil {
		return fmt.Errorf("mesossim: agent %s is gone", id)
	}
	h.SetPartitioned(true)
	if m != nil {
		m.disconnectAgent(id)
	}
	if err := h.Restart(down); err != nil {
		return err
	}
	wait := rec.cfg.SubscriptionBackoffMax
	if wait <= 0 {
		wait = agent.DefaultSubscriptionBackoffMax
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timers = append(c.timers, time.AfterFunc(down+wait+200*time.Millisecond, func() {
		c.mu.Lock()
		m, alive := c.m, c.agents[id] == rec && !c.closed
		c.mu.Unlock()
		if alive && m != nil {
			m.registerAgent(rec)
		}
	}))
	return nil
}

// KillExecutor kills an executor's process (SIGKILL) as if it crashed.
func (c *Cluster) KillExecutor(agentID, frameworkID, executorID string) error {
	rec, _, err := c.record(agentID)
	if err != nil {
		return err
	}
	h := rec.handle()
	if h == nil {
		return fmt.Errorf("mesossim: agent %s is gone", agentID)
	}
	return h.KillExecutorProcess(mesos.FrameworkID{Value: frameworkID}, mesos.ExecutorID{Value: executorID})
}

// Executors lists the executors running on an agent.
func (c *Cluster) Executors(agentID string) ([]agent.ExecutorState, error) {
	rec, _, err := c.record(agentID)
	if err != nil {
		return nil, err
	}
	h := rec.handle()
	if h == nil {
		return nil, fmt.Errorf("mesossim: agent %s is gone", agentID)
	}
	return h.Executors(), nil
}

// Close stops the master, every agent and every executor process.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	m, srv := c.m, c.srv
	for _, t := range c.timers {
		t.Stop()
	}
	recs := make([]*agentRecord, 0, len(c.agents))
	for _, id := range c.order {
		recs = append(recs, c.agents[id])
	}
	cancel := c.cancel
	c.mu.Unlock()
	if m != nil {
		m.stop()
	}
	if srv != nil {
		srv.Close()
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, rec := range recs {
		if h := rec.handle(); h != nil {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				h.Stop()
			}()
		}
	}
	wg.Wait()
	c.flushRegistry(true)
	if cancel != nil {
		cancel()
	}
	return nil
}

// rememberTask records a launched task in the agent's knowledge. Called
// with the master lock held: it must not take it again.
func (c *Cluster) rememberTask(agentID string, fwInfo mesos.FrameworkInfo, ti mesos.TaskInfo, ex mesos.ExecutorInfo, role string) {
	c.mu.Lock()
	rec := c.agents[agentID]
	c.mu.Unlock()
	if rec == nil {
		return
	}
	fwID := fwInfo.GetID().GetValue()
	rec.mu.Lock()
	rec.tasks[fwID+"/"+ti.TaskID.Value] = &launchedTask{fw: fwID, fwInfo: fwInfo, task: ti, executor: ex, role: role}
	rec.mu.Unlock()
	c.markRegistryDirty()
}

func (c *Cluster) forgetTask(agentID, fwID, taskID string) {
	c.mu.Lock()
	rec := c.agents[agentID]
	c.mu.Unlock()
	if rec == nil {
		return
	}
	rec.mu.Lock()
	delete(rec.tasks, fwID+"/"+taskID)
	rec.mu.Unlock()
	c.markRegistryDirty()
}
