package mesossim

import (
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/mesossim/agent"
	"github.com/dcos-consul/dcos-consul/internal/mesossim/stoutjson"
)

// Version is what the simulated master and agents report: the Mesos the
// transcripts were recorded from (/work/shared/mesos-transcripts).
const Version = agent.Version

// masterCapabilities are a real 1.12 master's, in its order
// (01-subscribe-stream.txt; 07-master-state.json "capabilities").
var masterCapabilities = []string{"AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"}

// agentCapabilities are a real 1.12 agent's (07-master-state.json
// slaves[].capabilities).
var agentCapabilities = agent.Capabilities

const (
	maxCompletedFrameworks = 50
	maxCompletedTasks      = 1000
	defaultRefuseSeconds   = 5.0
	maxRefuseSeconds       = 365 * 24 * 3600.0
)

// master is one incarnation of the simulated master. A restart replaces it
// with a new one that recovers from the registry.
type master struct {
	cl  *Cluster
	log *zap.Logger

	id          string
	ip          string
	port        int
	startTime   float64
	heartbeat   time.Duration
	allocEvery  time.Duration
	pingTimeout time.Duration
	// allocGen counts the changes that may make an agent with nothing to
	// offer offer again (triggerAllocation).
	allocGen uint64

	mu          sync.Mutex
	frameworks  map[string]*framework
	completed   []*framework
	removedFWs  map[string]bool // completed framework IDs (SUBSCRIBE refused)
	agents      map[string]*agentEntry
	unreachable map[string]float64 // agent ID -> unreachable time
	recovering  map[string]bool    // agents in the registry not yet re-registered
	offers      map[string]*offer
	// pendingKills: KILLs for tasks on disconnected agents, sent when the
	// agent re-registers.
	pendingKills map[string][]*task
	nextFW       int
	nextOffer    int
	stopped      bool

	kick chan struct{}
	quit chan struct{}
}

type framework struct {
	id         string
	info       mesos.FrameworkInfo
	roles      []string
	multiRole  bool
	refinement bool
	pa         bool // PARTITION_AWARE

	stream    *stream
	connected bool
	active    bool
	recovered bool

	registeredTime   float64
	unregisteredTime float64

	tasks            map[string]*task
	unreachableTasks map[string]*task
	completedTasks   []*task
	// executors[agentID][executorID] = the ExecutorInfo the master knows.
	executors  map[string]map[string]*mesos.ExecutorInfo
	offers     map[string]*offer
	suppressed map[string]bool
	filters    map[filterKey]*filter
	// share is the DRF dominant share used to order frameworks.
	allocatedCPUs, allocatedMem float64
	failover                    *time.Timer
}

type filterKey struct{ agent, role string }

type filter struct {
	resources rlist // unallocated
	until     time.Time
}

type task struct {
	info       mesos.TaskInfo
	fw         string
	agent      string
	role       string
	executorID string // "" for a command task
	resources  rlist  // task resources with allocation_info

	state       mesos.TaskState // latest known state
	updateState mesos.TaskState // last state forwarded to the scheduler
	updateUUID  []byte
	forwarded   bool
	last        *mesos.TaskStatus // last forwarded status
	statuses    []mesos.TaskStatus
	unreachable float64
	// recoveredOnly marks a task the master learnt from the registry after
	// a cold start: the master answers for the (restarted) agent.
	recoveredOnly bool
	pending       *mesos.TaskStatus // its terminal update, retried until acked
	// killPending: a KILL arrived while the agent was disconnected; it is
	// sent when the agent re-registers.
	killPending *mesos.KillPolicy
	killWanted  bool
}

type offer struct {
	id        string
	fw        string
	agent     string
	role      string
	resources rlist // with allocation_info
}

type agentEntry struct {
	rec            *agentRecord
	id             string
	total          rlist // includes reservations and volumes, no allocation_info
	usedBy         map[string]rlist
	usedFlat       rlist
	offeredFlat    rlist
	connected      bool
	registeredTime float64
	// books counts changes of total, usedFlat and offeredFlat (touch);
	// quiet is the allocator's note that the agent had nothing to offer
	// (allocator.go).
	books uint64
	quiet quietNote
}

// touch notes a change of the agent's resource books.
func (e *agentEntry) touch() { e.books++ }

func newMaster(cl *Cluster, ip string, port int) *master {
	now := nowSeconds()
	return &master{
		cl:           cl,
		log:          cl.log.With(zap.String("component", "master")),
		id:           uuid.NewString(),
		ip:           ip,
		port:         port,
		startTime:    now,
		heartbeat:    cl.opts.HeartbeatInterval,
		allocEvery:   cl.opts.AllocationInterval,
		pingTimeout:  cl.opts.AgentPingTimeout,
		frameworks:   map[string]*framework{},
		removedFWs:   map[string]bool{},
		agents:       map[string]*agentEntry{},
		unreachable:  map[string]float64{},
		recovering:   map[string]bool{},
		offers:       map[string]*offer{},
		pendingKills: map[string][]*task{},
		kick:         make(chan struct{}, 1),
		quit:         make(chan struct{}),
	}
}

func nowSeconds() float64 { return float64(time.Now().UnixNano()) / 1e9 }

func (m *master) pid() string { return "master@" + net.JoinHostPort(m.ip, strconv.Itoa(m.port)) }

func (m *master) masterInfo() mesos.MasterInfo {
	ip4 := net.ParseIP(m.ip).To4()
	var ipInt uint32
	if ip4 != nil {
		// MasterInfo.ip is the in_addr read as a host (little-endian) integer.
		ipInt = binary.LittleEndian.Uint32(ip4)
	}
	pid, host, ver := m.pid(), m.ip, Version
	port := int32(m.port)
	uport := uint32(m.port)
	return mesos.MasterInfo{
		ID:       m.id,
		IP:       ipInt,
		Port:     &uport,
		PID:      &pid,
		Hostname: &host,
		Version:  &ver,
		Address:  &mesos.Address{Hostname: &host, IP: &m.ip, Port: port},
		Capabilities: []mesos.MasterInfo_Capability{
			{Type: mesos.MasterInfo_Capability_AGENT_UPDATE},
			{Type: mesos.MasterInfo_Capability_AGENT_DRAINING},
			// QUOTA_V2: unknown to mesos-go v0.0.11's protos, named by stoutjson.
			{Type: stoutjson.MasterCapabilityQuotaV2},
		},
	}
}

// triggerAllocation runs an allocation cycle soon; something may be
// offered that was not (a framework subscribed or revived, an agent came
// back). Caller holds mu.
func (m *master) triggerAllocation() {
	m.allocGen++
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// run is the allocation loop.
func (m *master) run() {
	t := time.NewTicker(m.allocEvery)
	defer t.Stop()
	retryEvery := m.cl.opts.StatusUpdateRetry
	if retryEvery <= 0 {
		retryEvery = 10 * time.Second
	}
	retry := time.NewTicker(retryEvery)
	defer retry.Stop()
	for {
		select {
		case <-m.quit:
			return
		case <-retry.C:
			m.resendRecovered()
			continue
		case <-t.C:
		case <-m.kick:
		}
		m.mu.Lock()
		if !m.stopped {
			m.allocate(time.Now())
		}
		m.mu.Unlock()
	}
}

// resendRecovered retries the terminal updates of tasks recovered from
// the registry (the agent's part after a cold start) until acknowledged.
func (m *master) resendRecovered() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, fw := range m.frameworks {
		for _, t := range fw.tasks {
			if t.pending != nil {
				fw.send(updateEvent(*t.pending))
			}
		}
	}
}

// stop ends this incarnation: every stream is dropped (plain EOF, as when
// the master process dies) and timers are stopped.
func (m *master) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	m.stopped = true
	close(m.quit)
	for _, fw := range m.frameworks {
		if fw.failover != nil {
			fw.failover.Stop()
		}
		if fw.stream != nil {
			fw.stream.kill()
		}
	}
}

// ------------------------------------------------------------- helpers

func (m *master) newOfferID() string {
	id := fmt.Sprintf("%s-O%d", m.id, m.nextOffer)
	m.nextOffer++
	return id
}

func (fw *framework) hasRole(role string) bool {
	for _, r := range fw.roles {
		if r == role {
			return true
		}
	}
	return false
}

func (fw *framework) send(ev *scheduler.Event) {
	if fw.stream != nil && fw.connected {
		fw.stream.send(ev)
	}
}

func frameworkRoles(info *mesos.FrameworkInfo) (roles []string, multi bool) {
	multi = hasCapability(info, mesos.FrameworkInfo_Capability_MULTI_ROLE)
	if multi {
		return append([]string(nil), info.Roles...), true
	}
	role := info.GetRole()
	if info.Role == nil {
		role = "*"
	}
	return []string{role}, false
}

func hasCapability(info *mesos.FrameworkInfo, c mesos.FrameworkInfo_Capability_Type) bool {
	for _, cap := range info.Capabilities {
		if cap.Type == c {
			return true
		}
	}
	return false
}

func isTerminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
		mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

// masterStatus builds a master-generated TaskStatus (no uuid).
func masterStatus(taskID string, state mesos.TaskState, reason mesos.TaskStatus_Reason, msg string, agentID string) mesos.TaskStatus {
	src := mesos.SOURCE_MASTER
	now := nowSeconds()
	st := mesos.TaskStatus{
		TaskID:    mesos.TaskID{Value: taskID},
		State:     state.Enum(),
		Source:    &src,
		Reason:    reason.Enum(),
		Timestamp: &now,
	}
	if msg != "" {
		st.Message = &msg
	}
	if agentID != "" {
		st.AgentID = &mesos.AgentID{Value: agentID}
	}
	return st
}

func updateEvent(st mesos.TaskStatus) *scheduler.Event {
	return &scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: st}}
}

// recordStatus appends st to the task's history as the master does:
// consecutive statuses with the same state replace each other, data is
// stripped.
func (t *task) recordStatus(st mesos.TaskStatus) {
	st.Data = nil
	st.UUID = nil
	if n := len(t.statuses); n > 0 && t.statuses[n-1].GetState() == st.GetState() {
		t.statuses[n-1] = st
		return
	}
	t.statuses = append(t.statuses, st)
}

// ------------------------------------------------- agent work (mailboxes)

// agentCall queues fn to run against the agent outside the master lock, in
// order per agent.
func (m *master) agentCall(e *agentEntry, fn func(h simAgent)) {
	e.rec.box.post(func() {
		if h := e.rec.handle(); h != nil {
			fn(h)
		}
	})
}

// mailbox runs posted functions one at a time, in order, on a goroutine
// that exists only while there is work.
type mailbox struct {
	mu      sync.Mutex
	queue   []func()
	running bool
}

func (b *mailbox) post(fn func()) {
	b.mu.Lock()
	b.queue = append(b.queue, fn)
	if b.running {
		b.mu.Unlock()
		return
	}
	b.running = true
	b.mu.Unlock()
	go b.drain()
}

func (b *mailbox) drain() {
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		fn := b.queue[0]
		b.queue[0] = nil
		b.queue = b.queue[1:]
		b.mu.Unlock()
		fn()
	}
}

// simAgent is what the master needs from a simulated agent (package agent).
type simAgent interface {
	Start() error
	Stop()
	Launch(l agent.Launch)
	Kill(fw mesos.FrameworkID, task mesos.TaskID, policy *mesos.KillPolicy)
	ShutdownExecutor(fw mesos.FrameworkID, ex mesos.ExecutorID)
	ShutdownFramework(fw mesos.FrameworkID)
	Acknowledge(fw mesos.FrameworkID, task mesos.TaskID, uuid []byte)
	Message(fw mesos.FrameworkID, ex mesos.ExecutorID, data []byte)
	CreateVolume(role, persistenceID string) error
	DestroyVolume(role, persistenceID string) error
	Reregistered()
	SetPartitioned(bool)
	KillExecutorProcess(fw mesos.FrameworkID, ex mesos.ExecutorID) error
	Executors() []agent.ExecutorState
	Restart(down time.Duration) error
}
