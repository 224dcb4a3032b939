package mesossim

import (
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"
)

// statusUpdate is an agent forwarding the head of a task's update stream
// (M/master.cpp 11130-11278).
func (m *master) statusUpdate(agentID string, fwID string, st mesos.TaskStatus, latest mesos.TaskState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	e := m.agents[agentID]
	if e == nil || !e.connected {
		m.log.Debug("dropping status update from unknown or disconnected agent", zap.String("agent", agentID))
		return
	}
	fw := m.frameworks[fwID]
	if fw == nil {
		m.log.Debug("dropping status update of unknown framework", zap.String("framework", fwID))
		return
	}
	if t := fw.tasks[st.TaskID.Value]; t != nil {
		if !isTerminal(t.state) {
			t.state = latest
		}
		t.updateState = st.GetState()
		t.updateUUID = append([]byte(nil), st.UUID...)
		t.forwarded = true
		stCopy := st
		t.last = &stCopy
		t.recordStatus(st)
		if isTerminal(t.state) {
			m.releaseTask(t)
		}
	}
	fw.send(updateEvent(st))
}

// executorTerminated: the FAILURE event with executor_id and the raw wait
// status; the executor's resources are freed.
func (m *master) executorTerminated(agentID, fwID, exID string, status int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	e := m.agents[agentID]
	fw := m.frameworks[fwID]
	if e == nil || fw == nil {
		return
	}
	if ex := fw.executors[agentID][exID]; ex != nil {
		m.releaseResources(e, fwID, executorResources(ex))
		delete(fw.executors[agentID], exID)
		if len(fw.executors[agentID]) == 0 {
			delete(fw.executors, agentID)
		}
	}
	s := status
	fw.send(&scheduler.Event{Type: scheduler.Event_FAILURE, Failure: &scheduler.Event_Failure{
		AgentID: &mesos.AgentID{Value: agentID}, ExecutorID: &mesos.ExecutorID{Value: exID}, Status: &s,
	}})
}

func (m *master) executorMessage(agentID, fwID, exID string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	if fw := m.frameworks[fwID]; fw != nil {
		fw.send(&scheduler.Event{Type: scheduler.Event_MESSAGE, Message: &scheduler.Event_Message{
			AgentID: mesos.AgentID{Value: agentID}, ExecutorID: mesos.ExecutorID{Value: exID}, Data: data,
		}})
	}
}

// ------------------------------------------------------- agent lifecycle

// registerAgent adds (or re-adds after a partition or master restart) an
// agent with the tasks it reports.
func (m *master) registerAgent(rec *agentRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	id := rec.info.ID
	e := m.agents[id]
	if e == nil {
		e = &agentEntry{rec: rec, id: id, usedBy: map[string]rlist{}, registeredTime: nowSeconds()}
		e.total = rec.totalResources()
		m.agents[id] = e
	}
	e.connected = true
	e.touch()
	delete(m.recovering, id)
	wasUnreachable := m.unreachable[id] != 0
	delete(m.unreachable, id)

	// Tasks the agent still runs that the master does not know (master
	// restart or an unreachable agent coming back) are re-added.
	states := rec.taskStates()
	for _, lt := range rec.launchedTasks() {
		state, alive := states[lt.fw+"/"+lt.task.TaskID.Value]
		if !alive {
			continue
		}
		fw := m.frameworks[lt.fw]
		if fw == nil {
			if m.removedFWs[lt.fw] {
				continue
			}
			// A framework the master learns from an agent: "recovered".
			fw = m.recoverFramework(lt.fw, lt.fwInfo)
		}
		if t := fw.unreachableTasks[lt.task.TaskID.Value]; t != nil {
			delete(fw.unreachableTasks, lt.task.TaskID.Value)
		}
		if fw.tasks[lt.task.TaskID.Value] != nil {
			continue
		}
		t := &task{info: lt.task, fw: lt.fw, agent: id, role: lt.role, executorID: lt.executor.ExecutorID.Value,
			resources: rlist(lt.task.Resources).clone(), state: state}
		if state != mesos.TASK_STAGING {
			t.forwarded, t.updateState = true, state
		}
		t.recordStatus(mesos.TaskStatus{TaskID: lt.task.TaskID, State: state.Enum()})
		fw.tasks[t.info.TaskID.Value] = t
		if isTerminal(state) {
			t.resources = nil
		} else {
			m.useResources(e, lt.fw, t.resources)
		}
		if exID := lt.executor.ExecutorID.Value; exID != "" {
			exs := fw.executors[id]
			if exs == nil {
				exs = map[string]*mesos.ExecutorInfo{}
				fw.executors[id] = exs
			}
			if exs[exID] == nil {
				ex := lt.executor
				exs[exID] = &ex
				m.useResources(e, lt.fw, rlist(ex.Resources))
			}
		}
	}
	for _, t := range m.pendingKills[id] {
		if fw := m.frameworks[t.fw]; fw != nil && fw.tasks[t.info.TaskID.Value] == t && t.killWanted && !isTerminal(t.state) {
			t.killWanted = false
			fid, tid, policy := mesos.FrameworkID{Value: fw.id}, t.info.TaskID, t.killPending
			m.agentCall(e, func(h simAgent) { h.Kill(fid, tid, policy) })
		}
	}
	delete(m.pendingKills, id)
	m.log.Info("agent registered", zap.String("agent", id), zap.String("ip", rec.info.IP), zap.Bool("was_unreachable", wasUnreachable))
	m.agentCall(e, func(h simAgent) {
		h.SetPartitioned(false)
		h.Reregistered()
	})
	m.triggerAllocation()
}

func (m *master) recoverFramework(id string, info mesos.FrameworkInfo) *framework {
	fw := &framework{
		id:               id,
		info:             info,
		tasks:            map[string]*task{},
		unreachableTasks: map[string]*task{},
		executors:        map[string]map[string]*mesos.ExecutorInfo{},
		offers:           map[string]*offer{},
		filters:          map[filterKey]*filter{},
		suppressed:       map[string]bool{},
		recovered:        true,
		registeredTime:   nowSeconds(),
	}
	fw.info.ID = &mesos.FrameworkID{Value: id}
	fw.roles, fw.multiRole = frameworkRoles(&fw.info)
	fw.refinement = hasCapability(&fw.info, mesos.FrameworkInfo_Capability_RESERVATION_REFINEMENT)
	fw.pa = hasCapability(&fw.info, mesos.FrameworkInfo_Capability_PARTITION_AWARE)
	m.frameworks[id] = fw
	return fw
}

// disconnectAgent: the agent's connection to the master broke. Offers are
// rescinded at once; non-checkpointing frameworks lose their tasks on it.
func (m *master) disconnectAgent(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.agents[id]
	if e == nil || !e.connected || m.stopped {
		return
	}
	e.connected = false
	for _, o := range m.offers {
		if o.agent == id {
			m.removeOffer(o, true)
		}
	}
	for _, fw := range m.frameworks {
		if fw.info.GetCheckpoint() {
			continue
		}
		for _, t := range fw.tasks {
			if t.agent != id {
				continue
			}
			st := masterStatus(t.info.TaskID.Value, mesos.TASK_LOST, mesos.REASON_AGENT_DISCONNECTED, "Agent disconnected", id)
			m.finishTaskByMaster(fw, t, st, false)
		}
	}
}

// finishTaskByMaster applies a master-generated terminal update: it is
// sent without uuid and the task is removed at once (nothing to ack).
func (m *master) finishTaskByMaster(fw *framework, t *task, st mesos.TaskStatus, agentKeepsIt bool) {
	if t.executorID != "" {
		st.ExecutorID = &mesos.ExecutorID{Value: t.executorID}
	}
	t.recordStatus(st)
	t.state = st.GetState()
	t.updateState = st.GetState()
	fw.send(updateEvent(st))
	m.removeTask(fw, t)
	if agentKeepsIt {
		// The agent still runs it: if it comes back, the task is re-added
		// (Mesos >= 1.5 does so even for non-partition-aware frameworks).
		m.cl.rememberTask(t.agent, fw.info, t.info, t.executorInfo(fw), t.role)
	}
}

func (t *task) executorInfo(fw *framework) mesos.ExecutorInfo {
	if ex := fw.executors[t.agent][t.executorID]; ex != nil {
		return *ex
	}
	if t.info.Executor != nil {
		return *t.info.Executor
	}
	return mesos.ExecutorInfo{}
}

// markUnreachable removes an agent from the cluster as the master does
// after the ping timeout (or when it is removed): offers rescinded, tasks
// TASK_UNREACHABLE (partition-aware) or TASK_LOST, then FAILURE{agent_id}
// to every connected framework.
func (m *master) markUnreachable(id string, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.agents[id]
	if e == nil || m.stopped {
		return
	}
	for _, o := range m.offers {
		if o.agent == id {
			m.removeOffer(o, true)
		}
	}
	now := nowSeconds()
	for _, fw := range m.frameworks {
		for _, t := range fw.tasks {
			if t.agent != id {
				continue
			}
			if isTerminal(t.state) {
				m.removeTask(fw, t)
				continue
			}
			if fw.pa {
				st := masterStatus(t.info.TaskID.Value, mesos.TASK_UNREACHABLE, mesos.REASON_AGENT_REMOVED, reason, id)
				st.UnreachableTime = timeInfo(now)
				if t.executorID != "" {
					st.ExecutorID = &mesos.ExecutorID{Value: t.executorID}
				}
				t.recordStatus(st)
				t.state, t.updateState, t.unreachable = mesos.TASK_UNREACHABLE, mesos.TASK_UNREACHABLE, now
				fw.send(updateEvent(st))
				m.releaseTask(t)
				delete(fw.tasks, t.info.TaskID.Value)
				fw.unreachableTasks[t.info.TaskID.Value] = t
				continue
			}
			st := masterStatus(t.info.TaskID.Value, mesos.TASK_LOST, mesos.REASON_AGENT_REMOVED, reason, id)
			m.finishTaskByMaster(fw, t, st, true)
		}
		if exs := fw.executors[id]; exs != nil {
			for _, ex := range exs {
				m.releaseResources(e, fw.id, executorResources(ex))
			}
			delete(fw.executors, id)
		}
	}
	delete(m.agents, id)
	m.unreachable[id] = now
	for _, fw := range m.frameworks {
		fw.send(&scheduler.Event{Type: scheduler.Event_FAILURE, Failure: &scheduler.Event_Failure{AgentID: &mesos.AgentID{Value: id}}})
	}
	m.log.Info("agent removed", zap.String("agent", id), zap.String("reason", reason))
}

// reregisterTimeout marks unreachable every agent of the registry that has
// not re-registered within AgentReregisterTimeout of a master restart (a
// removed agent never does): M/master.cpp agentReregisterTimeout, "did not
// reregister within ... after master failover". The master never learnt
// their tasks, so no task update is sent: FAILURE{agent_id} to every
// framework, and explicit reconciliation answers TASK_UNREACHABLE (PA) or
// TASK_LOST for tasks on them instead of nothing.
func (m *master) reregisterTimeout() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped || len(m.recovering) == 0 {
		return
	}
	now := nowSeconds()
	for _, id := range sortedKeys(m.recovering) {
		delete(m.recovering, id)
		m.unreachable[id] = now
		for _, fw := range m.frameworks {
			fw.send(&scheduler.Event{Type: scheduler.Event_FAILURE, Failure: &scheduler.Event_Failure{AgentID: &mesos.AgentID{Value: id}}})
		}
		m.log.Info("agent marked unreachable: it did not re-register after the master failover",
			zap.String("agent", id), zap.Duration("timeout", m.cl.opts.AgentReregisterTimeout))
	}
}
