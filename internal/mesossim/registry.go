package mesossim

// The registry is what a real master keeps in its replicated log, plus what
// real agents checkpoint in their work dirs: agents (IDs, addresses,
// checkpointed resources = reservations and volumes), known frameworks and
// the tasks each agent launched. With a work dir it lives in
// <work_dir>/master/registry.json, so that starting a cluster again on the
// same work dir resumes it.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
)

type registry struct {
	path string

	mu         sync.Mutex
	NextAgent  int                        `json:"next_agent"`
	Agents     []regAgent                 `json:"agents"`
	Frameworks map[string]json.RawMessage `json:"frameworks"`
	dirty      bool
	timer      *time.Timer
	// closed is set by the final flush in Cluster.Close: nothing is
	// written after it (a write racing the test's TempDir cleanup fails it
	// with "directory not empty").
	closed bool
}

type regAgent struct {
	ID        string            `json:"id"`
	Hostname  string            `json:"hostname"`
	IP        string            `json:"ip"`
	Port      int               `json:"port"`
	Resources []json.RawMessage `json:"resources"`
	Tasks     []regTask         `json:"tasks,omitempty"`
}

type regTask struct {
	Framework json.RawMessage `json:"framework"`
	Task      json.RawMessage `json:"task"`
	Executor  json.RawMessage `json:"executor,omitempty"`
	Role      string          `json:"role"`
}

func loadRegistry(workDir string) (*registry, error) {
	r := &registry{Frameworks: map[string]json.RawMessage{}}
	if workDir == "" {
		return r, nil
	}
	r.path = filepath.Join(workDir, "master", "registry.json")
	b, err := os.ReadFile(r.path)
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mesossim: read registry: %w", err)
	}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("mesossim: registry %s is corrupt: %w", r.path, err)
	}
	if r.Frameworks == nil {
		r.Frameworks = map[string]json.RawMessage{}
	}
	return r, nil
}

func decodeProto(raw json.RawMessage, msg interface{}) error {
	v, err := parseJSONBody(raw)
	if err != nil {
		return err
	}
	return jsonToProto(v, msg)
}

// resumeFromRegistry restarts the agents of a previous run (same IDs,
// addresses and checkpointed resources). Their executors died with the
// previous process, so their tasks come back as terminal updates.
func (c *Cluster) resumeFromRegistry() error {
	c.reg.mu.Lock()
	agents := append([]regAgent(nil), c.reg.Agents...)
	c.reg.mu.Unlock()
	for _, ra := range agents {
		info := AgentInfo{ID: ra.ID, Hostname: ra.Hostname, IP: ra.IP, Port: ra.Port}
		ip := net.ParseIP(ra.IP).To4()
		if ip == nil {
			return fmt.Errorf("mesossim: registry: agent %s has a bad IP %q", ra.ID, ra.IP)
		}
		if bytes.Compare(ip, c.nextIP) >= 0 {
			c.nextIP = nextAddr(ip)
		}
		var total rlist
		for _, rr := range ra.Resources {
			var r mesos.Resource
			if err := decodeProto(rr, &r); err != nil {
				return fmt.Errorf("mesossim: registry: agent %s resources: %w", ra.ID, err)
			}
			total = append(total, r)
		}
		cfg, err := c.agentConfig(info)
		if err != nil {
			return err
		}
		rec := &agentRecord{info: info, cfg: cfg, total: total, tasks: map[string]*launchedTask{}}
		if err := c.startAgent(rec); err != nil {
			return err
		}
		var lost []*launchedTask
		for _, rt := range ra.Tasks {
			lt := &launchedTask{role: rt.Role}
			if err := decodeProto(rt.Framework, &lt.fwInfo); err != nil {
				return fmt.Errorf("mesossim: registry: agent %s task framework: %w", ra.ID, err)
			}
			if err := decodeProto(rt.Task, &lt.task); err != nil {
				return fmt.Errorf("mesossim: registry: agent %s task: %w", ra.ID, err)
			}
			if len(rt.Executor) > 0 {
				if err := decodeProto(rt.Executor, &lt.executor); err != nil {
					return fmt.Errorf("mesossim: registry: agent %s executor: %w", ra.ID, err)
				}
			}
			lt.fw = lt.fwInfo.GetID().GetValue()
			lost = append(lost, lt)
		}
		c.mu.Lock()
		m := c.m
		c.mu.Unlock()
		m.recoverLostTasks(ra.ID, lost)
		c.log.Info("agent resumed from the registry", zap.String("agent", ra.ID), zap.String("ip", ra.IP), zap.Int("lost_tasks", len(lost)))
	}
	return nil
}

// recoverLostTasks: tasks of a restarted agent whose executors are gone.
// The agent reports them TASK_LOST (partition-aware: TASK_GONE) /
// REASON_EXECUTOR_REREGISTRATION_TIMEOUT, reliably (with a uuid), as a
// real agent does when its executors do not re-register after recovery.
func (m *master) recoverLostTasks(agentID string, lost []*launchedTask) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, lt := range lost {
		if lt.fw == "" {
			continue
		}
		fw := m.frameworks[lt.fw]
		if fw == nil {
			fw = m.recoverFramework(lt.fw, lt.fwInfo)
		}
		state := mesos.TASK_LOST
		if fw.pa {
			state = mesos.TASK_GONE
		}
		src := mesos.SOURCE_AGENT
		msg := "Executor did not reregister within 2secs"
		now := nowSeconds()
		u := uuid.New()
		st := mesos.TaskStatus{
			TaskID: lt.task.TaskID, State: state.Enum(), Message: &msg, Source: &src,
			Reason:  mesos.REASON_EXECUTOR_REREGISTRATION_TIMEOUT.Enum(),
			AgentID: &mesos.AgentID{Value: agentID}, Timestamp: &now, UUID: u[:],
		}
		if ex := lt.executor.ExecutorID.Value; ex != "" {
			st.ExecutorID = &mesos.ExecutorID{Value: ex}
		}
		t := &task{info: lt.task, fw: lt.fw, agent: agentID, role: lt.role, executorID: lt.executor.ExecutorID.Value,
			state: state, updateState: state, forwarded: true, updateUUID: u[:], recoveredOnly: true, pending: &st}
		t.recordStatus(st)
		t.last = &st
		fw.tasks[lt.task.TaskID.Value] = t
	}
}

func (c *Cluster) registryAddFramework(id string, info mesos.FrameworkInfo) {
	if c.reg.path == "" {
		return
	}
	b := protoToJSON(&info)
	c.reg.mu.Lock()
	c.reg.Frameworks[id] = b
	c.reg.mu.Unlock()
	c.markRegistryDirty()
}

func (c *Cluster) registryRemoveFramework(id string) {
	if c.reg.path == "" {
		return
	}
	c.reg.mu.Lock()
	delete(c.reg.Frameworks, id)
	c.reg.mu.Unlock()
	c.markRegistryDirty()
}

// registryAgentResources records an agent's new checkpointed resources
// (after RESERVE/UNRESERVE/CREATE/DESTROY). Called with the master lock.
func (c *Cluster) registryAgentResources(agentID string, total rlist) {
	c.mu.Lock()
	rec := c.agents[agentID]
	c.mu.Unlock()
	if rec == nil {
		return
	}
	rec.mu.Lock()
	rec.total = total.clone()
	rec.mu.Unlock()
	c.markRegistryDirty()
}

// markRegistryDirty schedules a write (coalesced, at most every 100ms).
func (c *Cluster) markRegistryDirty() {
	if c.reg == nil || c.reg.path == "" {
		return
	}
	c.reg.mu.Lock()
	defer c.reg.mu.Unlock()
	if c.reg.closed {
		return
	}
	c.reg.dirty = true
	if c.reg.timer == nil {
		c.reg.timer = time.AfterFunc(100*time.Millisecond, func() { c.saveRegistry() })
	}
}

// flushRegistry writes the registry now; final (Cluster.Close) makes it the
// last write: a pending or running timer write ends without writing.
func (c *Cluster) flushRegistry(final bool) {
	if c.reg == nil || c.reg.path == "" {
		return
	}
	c.reg.mu.Lock()
	if c.reg.timer != nil {
		c.reg.timer.Stop()
		c.reg.timer = nil
	}
	c.reg.mu.Unlock()
	c.writeRegistry(final)
}

// saveRegistry writes the registry atomically.
func (c *Cluster) saveRegistry() { c.writeRegistry(false) }

func (c *Cluster) writeRegistry(final bool) {
	if c.reg == nil || c.reg.path == "" {
		return
	}
	c.mu.Lock()
	recs := make([]*agentRecord, 0, len(c.order))
	for _, id := range c.order {
		recs = append(recs, c.agents[id])
	}
	next := c.agentSeq
	c.mu.Unlock()
	var agents []regAgent
	for _, rec := range recs {
		ra := regAgent{ID: rec.info.ID, Hostname: rec.info.Hostname, IP: rec.info.IP, Port: rec.info.Port}
		rec.mu.Lock()
		for i := range rec.total {
			ra.Resources = append(ra.Resources, protoToJSON(&rec.total[i]))
		}
		for _, k := range sortedKeys(rec.tasks) {
			lt := rec.tasks[k]
			rt := regTask{Framework: protoToJSON(&lt.fwInfo), Task: protoToJSON(&lt.task), Role: lt.role}
			if lt.executor.ExecutorID.Value != "" {
				rt.Executor = protoToJSON(&lt.executor)
			}
			ra.Tasks = append(ra.Tasks, rt)
		}
		rec.mu.Unlock()
		agents = append(agents, ra)
	}
	c.reg.mu.Lock()
	defer c.reg.mu.Unlock()
	if c.reg.closed {
		return
	}
	if final {
		c.reg.closed = true
	}
	c.reg.timer = nil
	c.reg.dirty = false
	c.reg.Agents = agents
	c.reg.NextAgent = next
	b, err := json.MarshalIndent(c.reg, "", " ")
	if err != nil {
		c.log.Error("encode registry", zap.Error(err))
		return
	}
	if err := os.MkdirAll(filepath.Dir(c.reg.path), 0o755); err != nil {
		c.log.Error("write registry", zap.Error(err))
		return
	}
	tmp := c.reg.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		c.log.Error("write registry", zap.Error(err))
		return
	}
	if err := os.Rename(tmp, c.reg.path); err != nil {
		c.log.Error("write registry", zap.Error(err))
	}
}
