package mesossim

import (
	"bytes"
	"fmt"
	"net/http"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"
)

// subscribe handles SUBSCRIBE (M/master.cpp 2675-2905). The answer is
// always the stream s; a refusal is an ERROR event and the end of it.
// It returns the framework ID when the subscription was accepted.
func (m *master) subscribe(call *scheduler.Call, s *stream) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	refuse := func(msg string) string {
		m.log.Info("refusing subscription", zap.String("reason", msg))
		s.send(&scheduler.Event{Type: scheduler.Event_ERROR, Error: &scheduler.Event_Error{Message: msg}})
		s.close()
		return ""
	}
	if m.stopped {
		s.kill()
		return ""
	}
	info := *call.Subscribe.FrameworkInfo
	if err := validateFrameworkInfo(&info, call.Subscribe.SuppressedRoles); err != nil {
		return refuse(err.Error())
	}
	now := nowSeconds()
	var fw *framework
	if info.ID != nil {
		id := info.ID.Value
		if m.removedFWs[id] {
			return refuse("Framework has been removed")
		}
		fw = m.frameworks[id]
	}
	if fw != nil {
		if fw.info.Principal != nil && info.GetPrincipal() != fw.info.GetPrincipal() ||
			fw.info.Principal == nil && info.Principal != nil && !fw.recovered {
			return refuse("Changing framework's principal is not allowed.")
		}
		if fw.stream != nil {
			// The old subscription: ERROR then close (no RESCIND for its offers).
			fw.stream.send(&scheduler.Event{Type: scheduler.Event_ERROR, Error: &scheduler.Event_Error{Message: "Framework failed over"}})
			fw.stream.close()
			fw.stream = nil
		}
		for _, o := range fw.offers {
			m.removeOffer(o, false)
		}
		if fw.failover != nil {
			fw.failover.Stop()
			fw.failover = nil
		}
		// user and checkpoint cannot change on re-subscription; they are
		// silently kept.
		info.User = fw.info.User
		info.Checkpoint = fw.info.Checkpoint
		if fw.recovered {
			info.Principal = call.Subscribe.FrameworkInfo.Principal
		}
		fw.recovered = false
	} else {
		fw = &framework{
			tasks:            map[string]*task{},
			unreachableTasks: map[string]*task{},
			executors:        map[string]map[string]*mesos.ExecutorInfo{},
			offers:           map[string]*offer{},
			filters:          map[filterKey]*filter{},
			registeredTime:   now,
		}
		if info.ID != nil {
			fw.id = info.ID.Value
		} else {
			fw.id = fmt.Sprintf("%s-%04d", m.id, m.nextFW)
			m.nextFW++
			info.ID = &mesos.FrameworkID{Value: fw.id}
		}
		m.frameworks[fw.id] = fw
	}
	fw.info = info
	fw.roles, fw.multiRole = frameworkRoles(&info)
	fw.refinement = hasCapability(&info, mesos.FrameworkInfo_Capability_RESERVATION_REFINEMENT)
	fw.pa = hasCapability(&info, mesos.FrameworkInfo_Capability_PARTITION_AWARE)
	fw.suppressed = map[string]bool{}
	for _, r := range call.Subscribe.SuppressedRoles {
		fw.suppressed[r] = true
	}
	fw.stream = s
	fw.connected, fw.active = true, true
	fw.unregisteredTime = 0
	m.cl.registryAddFramework(fw.id, info)

	mi := m.masterInfo()
	hb := m.heartbeat.Seconds()
	s.send(&scheduler.Event{
		Type: scheduler.Event_SUBSCRIBED,
		Subscribed: &scheduler.Event_Subscribed{
			FrameworkID:              &mesos.FrameworkID{Value: fw.id},
			HeartbeatIntervalSeconds: &hb,
			MasterInfo:               &mi,
		},
	})
	s.send(&scheduler.Event{Type: scheduler.Event_HEARTBEAT})
	m.log.Info("framework subscribed", zap.String("framework", fw.id), zap.String("name", info.Name), zap.Strings("roles", fw.roles))

	// Agents re-send every pending unacknowledged update after a
	// (re)subscription (only agents holding this framework's tasks can have
	// any for it); recovered tasks' terminal updates likewise.
	touched := map[string]bool{}
	for _, t := range fw.tasks {
		touched[t.agent] = true
	}
	for agentID := range fw.executors {
		touched[agentID] = true
	}
	for agentID := range touched {
		if e := m.agents[agentID]; e != nil && e.connected {
			m.agentCall(e, func(h simAgent) { h.Reregistered() })
		}
	}
	for _, t := range fw.tasks {
		if t.pending != nil {
			fw.send(updateEvent(*t.pending))
		}
	}
	m.triggerAllocation()
	return fw.id
}

// streamClosed is called when a scheduler's connection goes away.
func (m *master) streamClosed(fwID string, s *stream) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fw := m.frameworks[fwID]
	if fw == nil || fw.stream != s || m.stopped {
		return
	}
	m.log.Info("framework disconnected", zap.String("framework", fwID))
	fw.stream = nil
	fw.connected, fw.active = false, false
	fw.unregisteredTime = nowSeconds()
	for _, o := range fw.offers {
		m.removeOffer(o, false)
	}
	timeout := time.Duration(fw.info.GetFailoverTimeout() * float64(time.Second))
	if timeout <= 0 {
		m.removeFramework(fw)
		return
	}
	fw.failover = time.AfterFunc(timeout, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if cur := m.frameworks[fwID]; cur == fw && !fw.connected && !m.stopped {
			m.log.Info("framework failover timeout", zap.String("framework", fwID))
			m.removeFramework(fw)
		}
	})
}

// removeFramework is TEARDOWN / failover-timeout removal (§2.2).
func (m *master) removeFramework(fw *framework) {
	for _, o := range fw.offers {
		m.removeOffer(o, false)
	}
	if fw.failover != nil {
		fw.failover.Stop()
		fw.failover = nil
	}
	if fw.stream != nil {
		fw.stream.close() // EOF, no ERROR
		fw.stream = nil
	}
	now := nowSeconds()
	for _, t := range fw.tasks {
		if !isTerminal(t.state) {
			st := masterStatus(t.info.TaskID.Value, mesos.TASK_KILLED, mesos.REASON_FRAMEWORK_REMOVED, "Framework "+fw.id+" removed", t.agent)
			t.recordStatus(st)
			t.state = mesos.TASK_KILLED
		}
		m.releaseTask(t)
		fw.completedTasks = append(fw.completedTasks, t)
		m.cl.forgetTask(t.agent, fw.id, t.info.TaskID.Value)
	}
	fw.tasks = map[string]*task{}
	for agentID, exs := range fw.executors {
		if e := m.agents[agentID]; e != nil {
			for _, ex := range exs {
				m.releaseResources(e, fw.id, executorResources(ex))
			}
		}
	}
	fw.executors = map[string]map[string]*mesos.ExecutorInfo{}
	for _, e := range m.agents {
		fid := mesos.FrameworkID{Value: fw.id}
		m.agentCall(e, func(h simAgent) { h.ShutdownFramework(fid) })
	}
	fw.connected, fw.active = false, false
	fw.unregisteredTime = now
	delete(m.frameworks, fw.id)
	m.removedFWs[fw.id] = true
	m.completed = append(m.completed, fw)
	if len(m.completed) > maxCompletedFrameworks {
		m.completed = m.completed[1:]
	}
	m.cl.registryRemoveFramework(fw.id)
	m.log.Info("framework removed", zap.String("framework", fw.id))
}

// dispatch runs a non-SUBSCRIBE call of a connected framework (lock held).
func (m *master) dispatch(fw *framework, call *scheduler.Call, accept string) (int, *callResponse) {
	switch call.Type {
	case scheduler.Call_TEARDOWN:
		m.removeFramework(fw)
	case scheduler.Call_ACCEPT:
		m.accept(fw, call.Accept)
	case scheduler.Call_DECLINE:
		m.decline(fw, call.Decline.OfferIDs, call.Decline.Filters)
	case scheduler.Call_ACCEPT_INVERSE_OFFERS, scheduler.Call_DECLINE_INVERSE_OFFERS, scheduler.Call_REQUEST,
		scheduler.Call_ACKNOWLEDGE_OPERATION_STATUS:
		// Maintenance / operation feedback: nothing to do here.
	case scheduler.Call_REVIVE:
		m.revive(fw, call.GetRevive().GetRoles())
	case scheduler.Call_SUPPRESS:
		m.suppress(fw, call.GetSuppress().GetRoles())
	case scheduler.Call_KILL:
		m.kill(fw, call.Kill)
	case scheduler.Call_SHUTDOWN:
		if e := m.agents[call.Shutdown.AgentID.Value]; e != nil && e.connected {
			fid, ex := mesos.FrameworkID{Value: fw.id}, call.Shutdown.ExecutorID
			m.agentCall(e, func(h simAgent) { h.ShutdownExecutor(fid, ex) })
		}
	case scheduler.Call_ACKNOWLEDGE:
		m.acknowledge(fw, call.Acknowledge)
	case scheduler.Call_RECONCILE:
		m.reconcile(fw, call.Reconcile.Tasks)
	case scheduler.Call_MESSAGE:
		if e := m.agents[call.Message.AgentID.Value]; e != nil && e.connected {
			fid, ex, data := mesos.FrameworkID{Value: fw.id}, call.Message.ExecutorID, call.Message.Data
			m.agentCall(e, func(h simAgent) { h.Message(fid, ex, data) })
		}
	case scheduler.Call_RECONCILE_OPERATIONS:
		resp := &scheduler.Response{Type: scheduler.Response_RECONCILE_OPERATIONS,
			ReconcileOperations: &scheduler.Response_ReconcileOperations{}}
		var data []byte
		if accept == mediaProtobuf {
			data, _ = resp.Marshal()
		} else {
			data = protoToJSON(resp)
		}
		return http.StatusOK, &callResponse{contentType: accept, data: data}
	case scheduler.Call_UPDATE_FRAMEWORK:
		return m.updateFramework(fw, call.UpdateFramework)
	default:
		return http.StatusNotImplemented, &callResponse{message: fmt.Sprintf("Received an unexpected '%s' call", call.Type)}
	}
	return http.StatusAccepted, nil
}

func (m *master) updateFramework(fw *framework, u *scheduler.Call_UpdateFramework) (int, *callResponse) {
	info := u.FrameworkInfo
	if err := validateFrameworkInfo(&info, u.SuppressedRoles); err != nil {
		return http.StatusBadRequest, &callResponse{message: err.Error()}
	}
	if info.User != fw.info.User {
		return http.StatusBadRequest, &callResponse{message: "Updating 'FrameworkInfo.user' is unsupported"}
	}
	if info.GetCheckpoint() != fw.info.GetCheckpoint() {
		return http.StatusBadRequest, &callResponse{message: "Updating 'FrameworkInfo.checkpoint' is unsupported"}
	}
	if info.GetPrincipal() != fw.info.GetPrincipal() {
		return http.StatusBadRequest, &callResponse{message: "Changing framework's principal is not allowed."}
	}
	fw.info = info
	fw.roles, fw.multiRole = frameworkRoles(&info)
	fw.refinement = hasCapability(&info, mesos.FrameworkInfo_Capability_RESERVATION_REFINEMENT)
	fw.pa = hasCapability(&info, mesos.FrameworkInfo_Capability_PARTITION_AWARE)
	fw.suppressed = map[string]bool{}
	for _, r := range u.SuppressedRoles {
		fw.suppressed[r] = true
	}
	for _, o := range fw.offers {
		if !fw.hasRole(o.role) {
			m.removeOffer(o, true)
		}
	}
	m.cl.registryAddFramework(fw.id, info)
	m.triggerAllocation()
	return http.StatusOK, nil
}

func refuseSeconds(f *mesos.Filters) float64 {
	if f == nil || f.RefuseSeconds == nil {
		return defaultRefuseSeconds
	}
	s := *f.RefuseSeconds
	switch {
	case s != s || s < 0:
		return defaultRefuseSeconds
	case s > maxRefuseSeconds:
		return maxRefuseSeconds
	}
	return s
}

func (m *master) addFilter(fw *framework, agentID, role string, res rlist, f *mesos.Filters) {
	secs := refuseSeconds(f)
	if secs <= 0 || res.empty() {
		return
	}
	d := time.Duration(secs * float64(time.Second))
	if d < m.allocEvery {
		d = m.allocEvery // a filter lives at least one allocation interval
	}
	fw.filters[filterKey{agentID, role}] = &filter{resources: res.unallocated(), until: time.Now().Add(d)}
}

func (m *master) decline(fw *framework, ids []mesos.OfferID, f *mesos.Filters) {
	for _, id := range ids {
		o := m.offers[id.Value]
		if o == nil || o.fw != fw.id {
			continue
		}
		m.removeOffer(o, false)
		m.addFilter(fw, o.agent, o.role, o.resources, f)
	}
}

func (m *master) rolesOrAll(fw *framework, roles []string) ([]string, bool) {
	if len(roles) == 0 {
		return fw.roles, true
	}
	for _, r := range roles {
		if validateRole(r) != nil || !fw.hasRole(r) {
			return nil, false
		}
	}
	return roles, true
}

func (m *master) revive(fw *framework, roles []string) {
	roles, ok := m.rolesOrAll(fw, roles)
	if !ok {
		return
	}
	for _, r := range roles {
		delete(fw.suppressed, r)
		for k := range fw.filters {
			if k.role == r {
				delete(fw.filters, k)
			}
		}
	}
	m.triggerAllocation()
}

func (m *master) suppress(fw *framework, roles []string) {
	roles, ok := m.rolesOrAll(fw, roles)
	if !ok {
		return
	}
	for _, r := range roles {
		fw.suppressed[r] = true
	}
}

func (m *master) kill(fw *framework, k *scheduler.Call_Kill) {
	t := fw.tasks[k.TaskID.Value]
	if t == nil {
		if ut := fw.unreachableTasks[k.TaskID.Value]; ut != nil {
			return
		}
		m.reconcile(fw, []scheduler.Call_Reconcile_Task{{TaskID: k.TaskID, AgentID: k.AgentID}})
		return
	}
	if k.AgentID != nil && k.AgentID.Value != t.agent {
		return
	}
	if t.recoveredOnly {
		return
	}
	e := m.agents[t.agent]
	if e == nil || !e.connected {
		t.killWanted, t.killPending = true, k.KillPolicy // re-sent on re-registration
		m.pendingKills[t.agent] = append(m.pendingKills[t.agent], t)
		return
	}
	fid, tid, policy := mesos.FrameworkID{Value: fw.id}, k.TaskID, k.KillPolicy
	m.agentCall(e, func(h simAgent) { h.Kill(fid, tid, policy) })
}

func (m *master) acknowledge(fw *framework, a *scheduler.Call_Acknowledge) {
	e := m.agents[a.AgentID.Value]
	if e == nil || !e.connected {
		return
	}
	t := fw.tasks[a.TaskID.Value]
	if t != nil && t.recoveredOnly {
		if t.pending != nil && bytes.Equal(t.pending.UUID, a.UUID) {
			t.pending = nil
			m.removeTask(fw, t)
		}
		return
	}
	if t != nil && t.forwarded && isTerminal(t.updateState) && bytes.Equal(t.updateUUID, a.UUID) {
		m.removeTask(fw, t)
	}
	fid, tid, u := mesos.FrameworkID{Value: fw.id}, a.TaskID, append([]byte(nil), a.UUID...)
	m.agentCall(e, func(h simAgent) { h.Acknowledge(fid, tid, u) })
}

// reconcile answers RECONCILE (§2.9); all answers have no uuid.
func (m *master) reconcile(fw *framework, tasks []scheduler.Call_Reconcile_Task) {
	answer := func(t *task) mesos.TaskStatus {
		state := t.state
		if t.forwarded {
			state = t.updateState
		}
		st := masterStatus(t.info.TaskID.Value, state, mesos.REASON_RECONCILIATION, "Reconciliation: Latest task state", t.agent)
		if t.executorID != "" {
			st.ExecutorID = &mesos.ExecutorID{Value: t.executorID}
		}
		if t.last != nil {
			st.Healthy = t.last.Healthy
			st.CheckStatus = t.last.CheckStatus
			st.ContainerStatus = t.last.ContainerStatus
		}
		return st
	}
	unreachableAnswer := func(t *task) mesos.TaskStatus {
		state := mesos.TASK_LOST
		if fw.pa {
			state = mesos.TASK_UNREACHABLE
		}
		st := masterStatus(t.info.TaskID.Value, state, mesos.REASON_RECONCILIATION, "Reconciliation: Task is unreachable", t.agent)
		if t.executorID != "" {
			st.ExecutorID = &mesos.ExecutorID{Value: t.executorID}
		}
		st.UnreachableTime = timeInfo(t.unreachable)
		return st
	}
	if len(tasks) == 0 {
		for _, t := range fw.tasks {
			fw.send(updateEvent(answer(t)))
		}
		for _, t := range fw.unreachableTasks {
			fw.send(updateEvent(unreachableAnswer(t)))
		}
		return
	}
	pick := func(pa, lost mesos.TaskState) mesos.TaskState {
		if fw.pa {
			return pa
		}
		return lost
	}
	for _, rt := range tasks {
		id := rt.TaskID.Value
		if t := fw.tasks[id]; t != nil {
			fw.send(updateEvent(answer(t)))
			continue
		}
		if t := fw.unreachableTasks[id]; t != nil {
			fw.send(updateEvent(unreachableAnswer(t)))
			continue
		}
		if rt.AgentID == nil {
			if len(m.recovering) > 0 {
				continue // some agent has not re-registered yet: no answer
			}
			fw.send(updateEvent(masterStatus(id, pick(mesos.TASK_UNKNOWN, mesos.TASK_LOST), mesos.REASON_RECONCILIATION, "Reconciliation: Task is unknown", "")))
			continue
		}
		aid := rt.AgentID.Value
		switch {
		case m.recovering[aid]:
			continue
		case m.agents[aid] != nil:
			fw.send(updateEvent(masterStatus(id, pick(mesos.TASK_GONE, mesos.TASK_LOST), mesos.REASON_RECONCILIATION, "Reconciliation: Task is unknown to the agent", aid)))
		case m.unreachable[aid] != 0:
			st := masterStatus(id, pick(mesos.TASK_UNREACHABLE, mesos.TASK_LOST), mesos.REASON_RECONCILIATION, "Reconciliation: Task is unreachable", aid)
			st.UnreachableTime = timeInfo(m.unreachable[aid])
			fw.send(updateEvent(st))
		default:
			fw.send(updateEvent(masterStatus(id, pick(mesos.TASK_UNKNOWN, mesos.TASK_LOST), mesos.REASON_RECONCILIATION, "Reconciliation: Task is unknown", aid)))
		}
	}
}

func timeInfo(sec float64) *mesos.TimeInfo {
	return &mesos.TimeInfo{Nanoseconds: int64(sec * 1e9)}
}
