package mesossim

import (
	"errors"
	"fmt"
	"sort"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/mesossim/agent"
)

const (
	minExecutorCPUs = 0.01
	minExecutorMem  = 32.0
)

// ------------------------------------------------------ resource books

func (m *master) removeOffer(o *offer, rescind bool) {
	delete(m.offers, o.id)
	if fw := m.frameworks[o.fw]; fw != nil {
		delete(fw.offers, o.id)
		fw.allocatedCPUs -= o.resources.scalar("cpus")
		fw.allocatedMem -= o.resources.scalar("mem")
		if rescind {
			fw.send(&scheduler.Event{Type: scheduler.Event_RESCIND, Rescind: &scheduler.Event_Rescind{OfferID: mesos.OfferID{Value: o.id}}})
		}
	}
	if e := m.agents[o.agent]; e != nil {
		e.offeredFlat = e.offeredFlat.subAll(o.resources.unallocated())
		e.touch()
	}
}

func (m *master) useResources(e *agentEntry, fwID string, res rlist) {
	e.usedBy[fwID] = e.usedBy[fwID].addAll(res)
	e.usedFlat = e.usedFlat.addAll(res.unallocated())
	e.touch()
	if fw := m.frameworks[fwID]; fw != nil {
		fw.allocatedCPUs += res.scalar("cpus")
		fw.allocatedMem += res.scalar("mem")
	}
}

func (m *master) releaseResources(e *agentEntry, fwID string, res rlist) {
	e.usedBy[fwID] = e.usedBy[fwID].subAll(res)
	if len(e.usedBy[fwID]) == 0 {
		delete(e.usedBy, fwID)
	}
	e.usedFlat = e.usedFlat.subAll(res.unallocated())
	e.touch()
	if fw := m.frameworks[fwID]; fw != nil {
		fw.allocatedCPUs -= res.scalar("cpus")
		fw.allocatedMem -= res.scalar("mem")
	}
}

// releaseTask frees a task's resources once (when it turns terminal).
func (m *master) releaseTask(t *task) {
	if t.resources == nil {
		return
	}
	if e := m.agents[t.agent]; e != nil {
		m.releaseResources(e, t.fw, t.resources)
	}
	t.resources = nil
}

// removeTask moves a task to the completed list (its ID becomes reusable).
func (m *master) removeTask(fw *framework, t *task) {
	m.releaseTask(t)
	delete(fw.tasks, t.info.TaskID.Value)
	fw.completedTasks = append(fw.completedTasks, t)
	if len(fw.completedTasks) > maxCompletedTasks {
		fw.completedTasks = fw.completedTasks[1:]
	}
	m.cl.forgetTask(t.agent, fw.id, t.info.TaskID.Value)
}

func executorResources(ex *mesos.ExecutorInfo) rlist { return rlist(ex.Resources).clone() }

// ------------------------------------------------------------ ACCEPT

func (m *master) validateOfferSet(fw *framework, ids []mesos.OfferID) error {
	if len(ids) == 0 {
		return errors.New("No offers specified")
	}
	seen := map[string]bool{}
	var first *offer
	for _, id := range ids {
		if seen[id.Value] {
			return fmt.Errorf("Duplicate offer %s in the list of offers", id.Value)
		}
		seen[id.Value] = true
		o := m.offers[id.Value]
		if o == nil {
			return fmt.Errorf("Offer %s is no longer valid", id.Value)
		}
		if o.fw != fw.id {
			return fmt.Errorf("Offer %s has invalid framework %s while framework %s is expected", id.Value, o.fw, fw.id)
		}
		if first == nil {
			first = o
			continue
		}
		if o.role != first.role {
			return fmt.Errorf("Aggregated offers must be allocated to the same role. Offer %s uses role %s and offer %s uses role %s",
				id.Value, o.role, first.id, first.role)
		}
		if o.agent != first.agent {
			return fmt.Errorf("Aggregated offers must belong to one single agent. Offer %s uses agent %s and offer %s uses agent %s",
				id.Value, o.agent, first.id, first.agent)
		}
	}
	return nil
}

func (m *master) lostOrDropped(fw *framework) mesos.TaskState {
	if fw.pa {
		return mesos.TASK_DROPPED
	}
	return mesos.TASK_LOST
}

// upgradeResources injects allocation_info and upgrades the reservation
// format of resources arriving in an operation.
func upgradeResources(res []mesos.Resource, role string) (rlist, error) {
	out := make(rlist, 0, len(res))
	for _, r := range res {
		c := cloneRes(r)
		if err := upgradeResource(&c); err != nil {
			return nil, err
		}
		if c.AllocationInfo == nil {
			rr := role
			c.AllocationInfo = &mesos.Resource_AllocationInfo{Role: &rr}
		}
		if err := validateResource(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (m *master) accept(fw *framework, a *scheduler.Call_Accept) {
	if err := m.validateOfferSet(fw, a.OfferIDs); err != nil {
		for _, id := range a.OfferIDs {
			if o := m.offers[id.Value]; o != nil && o.fw == fw.id {
				m.removeOffer(o, false) // back to the pool, no filter
			}
		}
		for _, op := range a.Operations {
			var tasks []mesos.TaskInfo
			if op.Launch != nil && op.Type == mesos.Offer_Operation_LAUNCH {
				tasks = op.Launch.TaskInfos
			}
			if op.LaunchGroup != nil && op.Type == mesos.Offer_Operation_LAUNCH_GROUP {
				tasks = op.LaunchGroup.TaskGroup.Tasks
			}
			for _, t := range tasks {
				fw.send(updateEvent(masterStatus(t.TaskID.Value, m.lostOrDropped(fw), mesos.REASON_INVALID_OFFERS,
					"Task launched with invalid offers: "+err.Error(), t.AgentID.GetValue())))
			}
		}
		m.log.Info("ACCEPT with invalid offers", zap.String("framework", fw.id), zap.Error(err))
		return
	}
	first := m.offers[a.OfferIDs[0].Value]
	e := m.agents[first.agent]
	role := first.role
	var pool rlist
	for _, id := range a.OfferIDs {
		o := m.offers[id.Value]
		pool = pool.addAll(o.resources)
		m.removeOffer(o, false)
	}
	var converted rlist // produced by speculative operations
	var launches []agent.Launch

	taskError := func(t mesos.TaskInfo, reason mesos.TaskStatus_Reason, msg string) {
		m.log.Info("task refused", zap.String("framework", fw.id), zap.String("task", t.TaskID.Value), zap.String("reason", msg))
		fw.send(updateEvent(masterStatus(t.TaskID.Value, mesos.TASK_ERROR, reason, msg, t.AgentID.GetValue())))
	}

	for _, op := range a.Operations {
		switch op.Type {
		case mesos.Offer_Operation_LAUNCH:
			if op.Launch == nil {
				continue
			}
			for _, ti := range op.Launch.TaskInfos {
				if op.ID != nil {
					taskError(ti, mesos.REASON_TASK_INVALID, "The `id` field cannot be set on LAUNCH operations")
					continue
				}
				l, total, err := m.validateTask(fw, e, role, ti, pool, launches)
				if err != nil {
					taskError(ti, mesos.REASON_TASK_INVALID, err.Error())
					continue
				}
				pool = pool.subAll(total)
				launches = append(launches, l)
			}
		case mesos.Offer_Operation_LAUNCH_GROUP:
			if op.LaunchGroup == nil {
				continue
			}
			l, total, err := m.validateGroup(fw, e, role, op.LaunchGroup, pool, launches)
			if err == nil && op.ID != nil {
				err = errors.New("The `id` field cannot be set on LAUNCH_GROUP operations")
			}
			if err != nil {
				for _, ti := range op.LaunchGroup.TaskGroup.Tasks {
					taskError(ti, mesos.REASON_TASK_GROUP_INVALID, err.Error())
				}
				continue
			}
			pool = pool.subAll(total)
			launches = append(launches, l)
		case mesos.Offer_Operation_RESERVE, mesos.Offer_Operation_UNRESERVE,
			mesos.Offer_Operation_CREATE, mesos.Offer_Operation_DESTROY:
			if op.ID != nil {
				m.log.Info("dropping operation with an id (operation feedback is not supported by these agents)",
					zap.String("framework", fw.id), zap.String("type", op.Type.String()))
				continue
			}
			consumed, produced, err := m.applySpeculative(fw, e, role, op, pool)
			if err != nil {
				m.log.Info("dropping operation", zap.String("framework", fw.id), zap.String("type", op.Type.String()), zap.Error(err))
				continue
			}
			pool = pool.subAll(consumed).addAll(produced)
			converted = converted.subAll(consumed).addAll(produced)
			e.total = e.total.subAll(consumed.unallocated()).addAll(produced.unallocated())
			e.touch()
			m.cl.registryAgentResources(e.id, e.total)
		default:
			m.log.Info("dropping unsupported operation", zap.String("framework", fw.id), zap.String("type", op.Type.String()))
		}
	}

	// Launch the valid tasks.
	for _, l := range launches {
		m.startLaunch(fw, e, role, l)
	}
	// Leftovers: what operations produced returns without a filter; the
	// rest of the offer is implicitly declined with the call's filters.
	var unfiltered rlist
	for _, r := range converted {
		if pool.containsOne(r) {
			unfiltered = unfiltered.add(r)
		}
	}
	declined := pool.clone().subAll(unfiltered)
	m.addFilter(fw, e.id, role, declined, a.Filters)
}

// startLaunch records the tasks of a validated launch and sends it on.
func (m *master) startLaunch(fw *framework, e *agentEntry, role string, l agent.Launch) {
	exID := l.Executor.ExecutorID.Value
	if exID != "" {
		exs := fw.executors[e.id]
		if exs == nil {
			exs = map[string]*mesos.ExecutorInfo{}
			fw.executors[e.id] = exs
		}
		if exs[exID] == nil {
			ex := l.Executor
			exs[exID] = &ex
			m.useResources(e, fw.id, rlist(ex.Resources))
		}
	}
	for _, ti := range l.Tasks {
		t := &task{
			info:       ti,
			fw:         fw.id,
			agent:      e.id,
			role:       role,
			executorID: exID,
			resources:  rlist(ti.Resources).clone(),
			state:      mesos.TASK_STAGING,
		}
		fw.tasks[ti.TaskID.Value] = t
		m.useResources(e, fw.id, t.resources)
		m.cl.rememberTask(e.id, fw.info, ti, l.Executor, role)
	}
	l.Framework = fw.info
	if !e.connected {
		// The agent vanished between validation and processing.
		for _, ti := range l.Tasks {
			reason := mesos.REASON_AGENT_DISCONNECTED
			t := fw.tasks[ti.TaskID.Value]
			st := masterStatus(ti.TaskID.Value, m.lostOrDropped(fw), reason, "Agent disconnected", e.id)
			t.recordStatus(st)
			t.state = st.GetState()
			fw.send(updateEvent(st))
			m.removeTask(fw, t)
		}
		return
	}
	m.agentCall(e, func(h simAgent) { h.Launch(l) })
}

func taskIDInUse(fw *framework, id string, pending []agent.Launch) error {
	if fw.tasks[id] != nil {
		return fmt.Errorf("Task has duplicate ID: %s", id)
	}
	if fw.unreachableTasks[id] != nil {
		return fmt.Errorf("Task reuses the ID of an unreachable task: %s", id)
	}
	for _, l := range pending {
		for _, t := range l.Tasks {
			if t.TaskID.Value == id {
				return fmt.Errorf("Task has duplicate ID: %s", id)
			}
		}
	}
	return nil
}

// knownExecutor returns the ExecutorInfo the master (or this very ACCEPT)
// already has for that executor ID on the agent.
func knownExecutor(fw *framework, agentID, exID string, pending []agent.Launch) *mesos.ExecutorInfo {
	if ex := fw.executors[agentID][exID]; ex != nil {
		return ex
	}
	for i := range pending {
		if pending[i].Executor.ExecutorID.Value == exID {
			return &pending[i].Executor
		}
	}
	return nil
}

// executorsCompatible compares what the master compares (not labels, not
// shutdown_grace_period; resources as a multiset).
func executorsCompatible(a, b *mesos.ExecutorInfo) bool {
	x, y := *a, *b
	x.Labels, y.Labels = nil, nil
	x.ShutdownGracePeriod, y.ShutdownGracePeriod = nil, nil
	x.Resources, y.Resources = nil, nil
	if !x.Equal(&y) {
		return false
	}
	ra, rb := rlist(a.Resources).clone(), rlist(b.Resources).clone()
	return ra.contains(rb) && rb.contains(ra)
}

func checkResources(res rlist, what string) error {
	if len(res) == 0 {
		return fmt.Errorf("%s uses no resources", what)
	}
	roles := map[string]bool{}
	ids := map[string]bool{}
	rev := 0
	for i := range res {
		roles[res[i].GetAllocationInfo().GetRole()] = true
		if p := res[i].GetDisk().GetPersistence(); p != nil {
			if ids[p.ID] {
				return fmt.Errorf("Invalid resources: Persistence ID '%s' is not unique", p.ID)
			}
			ids[p.ID] = true
		}
		if res[i].Revocable != nil {
			rev++
		}
	}
	if len(roles) > 1 {
		return fmt.Errorf("Invalid resources: The resources have multiple allocation roles")
	}
	if rev > 0 && rev < len(res) {
		return fmt.Errorf("Invalid resources: revocable and non-revocable resources cannot be mixed")
	}
	return nil
}

// validateTask applies the LAUNCH rules (M/validation.cpp 1405-1856) in
// order; the first failure is the TASK_ERROR message.
func (m *master) validateTask(fw *framework, e *agentEntry, role string, ti mesos.TaskInfo, pool rlist, pending []agent.Launch) (agent.Launch, rlist, error) {
	var l agent.Launch
	if err := validateID(ti.TaskID.Value); err != nil {
		return l, nil, fmt.Errorf("Task ID '%s' is invalid: %v", ti.TaskID.Value, err)
	}
	if err := taskIDInUse(fw, ti.TaskID.Value, pending); err != nil {
		return l, nil, err
	}
	if ti.AgentID.Value != e.id {
		return l, nil, fmt.Errorf("Task uses invalid agent %s while agent %s is expected", ti.AgentID.Value, e.id)
	}
	if kp := ti.KillPolicy; kp != nil && kp.GracePeriod != nil && kp.GracePeriod.Nanoseconds < 0 {
		return l, nil, errors.New("Task's 'kill_policy.grace_period' must be non-negative")
	}
	if ti.MaxCompletionTime != nil && ti.MaxCompletionTime.Nanoseconds < 0 {
		return l, nil, errors.New("Task's `max_completion_time` must be non-negative")
	}
	res, err := upgradeResources(ti.Resources, role)
	if err != nil {
		return l, nil, fmt.Errorf("Invalid resources: %v", err)
	}
	if err := checkResources(res, "Task"); err != nil {
		return l, nil, err
	}
	for name := range ti.Limits {
		if name != "cpus" && name != "mem" {
			return l, nil, fmt.Errorf("Task's `limits` can only contain 'cpus' and 'mem', but it contains '%s'", name)
		}
	}
	if (ti.Command == nil) == (ti.Executor == nil) {
		return l, nil, errors.New("Task should have at least one (but not both) of CommandInfo or ExecutorInfo present")
	}
	ti.Resources = res
	total := res.clone()
	if ti.Executor != nil {
		ex := *ti.Executor
		if ex.Type == enumUnset {
			ex.Type = mesos.ExecutorInfo_CUSTOM // an absent type is CUSTOM for LAUNCH
		}
		if ex.Type != mesos.ExecutorInfo_CUSTOM {
			return l, nil, errors.New("'ExecutorInfo.type' must be 'CUSTOM'")
		}
		if ex.Command == nil {
			return l, nil, errors.New("'ExecutorInfo.command' must be set")
		}
		if err := validateID(ex.ExecutorID.Value); err != nil {
			return l, nil, fmt.Errorf("Executor ID '%s' is invalid: %v", ex.ExecutorID.Value, err)
		}
		if g := ex.ShutdownGracePeriod; g != nil && g.Nanoseconds < 0 {
			return l, nil, errors.New("ExecutorInfo's 'shutdown_grace_period' must be non-negative")
		}
		if ex.FrameworkID == nil {
			ex.FrameworkID = &mesos.FrameworkID{Value: fw.id}
		} else if ex.FrameworkID.Value != fw.id {
			return l, nil, fmt.Errorf("ExecutorInfo has an invalid FrameworkID (Actual: %s vs Expected: %s)", ex.FrameworkID.Value, fw.id)
		}
		exRes, err := upgradeResources(ex.Resources, role)
		if err != nil {
			return l, nil, fmt.Errorf("Executor uses invalid resources: %v", err)
		}
		for i := range exRes {
			if exRes[i].Shared != nil {
				return l, nil, errors.New("Executor resources cannot be shared")
			}
		}
		ex.Resources = exRes
		if known := knownExecutor(fw, e.id, ex.ExecutorID.Value, pending); known != nil {
			if !executorsCompatible(known, &ex) {
				return l, nil, fmt.Errorf("ExecutorInfo is not compatible with existing ExecutorInfo with same ExecutorID.\n"+
					"------------------------------------------------------------\nExisting ExecutorInfo:\n%s\n"+
					"------------------------------------------------------------\nExecutorInfo:\n%s\n"+
					"------------------------------------------------------------\n", protoText(known), protoText(&ex))
			}
		} else {
			total = total.addAll(exRes)
		}
		ti.Executor = &ex
		l.Executor = ex
	}
	if !pool.contains(total) {
		return l, nil, fmt.Errorf("Total resources %s required by task and its executor is more than available %s", total, pool)
	}
	// A command task (no executor) leaves l.Executor empty: the agent runs
	// it with its built-in command executor, whose resources the master
	// does not count (07-master-state.json).
	l.Tasks = []mesos.TaskInfo{ti}
	return l, total, nil
}

// validateGroup applies the LAUNCH_GROUP rules (M/validation.cpp 1858-2212).
func (m *master) validateGroup(fw *framework, e *agentEntry, role string, g *mesos.Offer_Operation_LaunchGroup, pool rlist, pending []agent.Launch) (agent.Launch, rlist, error) {
	var l agent.Launch
	ex := g.Executor
	if ex.Type == enumUnset || ex.Type == mesos.ExecutorInfo_UNKNOWN {
		return l, nil, errors.New("Unknown executor type")
	}
	if ex.Type == mesos.ExecutorInfo_DEFAULT && ex.Command != nil {
		return l, nil, errors.New("'ExecutorInfo.command' must not be set for 'DEFAULT' executor")
	}
	if ex.Type == mesos.ExecutorInfo_CUSTOM && ex.Command == nil {
		return l, nil, errors.New("'ExecutorInfo.command' must be set for 'CUSTOM' executor")
	}
	if ex.Container != nil && ex.Container.GetType() == mesos.ContainerInfo_DOCKER {
		return l, nil, errors.New("Docker ContainerInfo is not supported on the executor")
	}
	if ex.FrameworkID == nil {
		return l, nil, errors.New("'ExecutorInfo.framework_id' must be set")
	}
	if ex.FrameworkID.Value != fw.id {
		return l, nil, fmt.Errorf("ExecutorInfo has an invalid FrameworkID (Actual: %s vs Expected: %s)", ex.FrameworkID.Value, fw.id)
	}
	if err := validateID(ex.ExecutorID.Value); err != nil {
		return l, nil, fmt.Errorf("Executor ID '%s' is invalid: %v", ex.ExecutorID.Value, err)
	}
	exRes, err := upgradeResources(ex.Resources, role)
	if err != nil {
		return l, nil, fmt.Errorf("Executor uses invalid resources: %v", err)
	}
	ex.Resources = exRes
	if c := exRes.scalar("cpus"); c < minExecutorCPUs {
		return l, nil, fmt.Errorf("Executor '%s' uses less cpus (%s) than the minimum required (%s)", ex.ExecutorID.Value, formatScalar(c), formatScalar(minExecutorCPUs))
	}
	if mem := exRes.scalar("mem"); mem < minExecutorMem {
		return l, nil, fmt.Errorf("Executor '%s' uses less mem (%s) than the minimum required (%s)", ex.ExecutorID.Value, formatScalar(mem), formatScalar(minExecutorMem))
	}
	if exRes.scalar("disk") <= 0 {
		return l, nil, fmt.Errorf("Executor '%s' uses no disk", ex.ExecutorID.Value)
	}
	total := rlist(nil)
	if known := knownExecutor(fw, e.id, ex.ExecutorID.Value, pending); known != nil {
		if !executorsCompatible(known, &ex) {
			return l, nil, errors.New("ExecutorInfo is not compatible with existing ExecutorInfo with same ExecutorID")
		}
	} else {
		total = total.addAll(exRes)
	}
	if len(g.TaskGroup.Tasks) == 0 {
		return l, nil, errors.New("Task group is empty")
	}
	var tasks []mesos.TaskInfo
	seen := map[string]bool{}
	for _, ti := range g.TaskGroup.Tasks {
		if err := validateID(ti.TaskID.Value); err != nil {
			return l, nil, fmt.Errorf("Task ID '%s' is invalid: %v", ti.TaskID.Value, err)
		}
		if seen[ti.TaskID.Value] {
			return l, nil, fmt.Errorf("Task has duplicate ID: %s", ti.TaskID.Value)
		}
		seen[ti.TaskID.Value] = true
		if err := taskIDInUse(fw, ti.TaskID.Value, pending); err != nil {
			return l, nil, err
		}
		if ti.AgentID.Value != e.id {
			return l, nil, fmt.Errorf("Task uses invalid agent %s while agent %s is expected", ti.AgentID.Value, e.id)
		}
		if ti.Executor != nil && !executorsCompatible(ti.Executor, &g.Executor) {
			return l, nil, errors.New("The `ExecutorInfo` of task '" + ti.TaskID.Value + "' is different from executor '" + ex.ExecutorID.Value + "'")
		}
		if ti.Container != nil && ti.Container.GetType() == mesos.ContainerInfo_DOCKER {
			return l, nil, errors.New("Docker ContainerInfo is not supported on the task")
		}
		res, err := upgradeResources(ti.Resources, role)
		if err != nil {
			return l, nil, fmt.Errorf("Invalid resources: %v", err)
		}
		if err := checkResources(res, "Task"); err != nil {
			return l, nil, err
		}
		ti.Resources = res
		ti.Executor = nil
		total = total.addAll(res)
		tasks = append(tasks, ti)
	}
	if !pool.contains(total) {
		return l, nil, fmt.Errorf("Total resources %s required by task group and its executor are more than available %s", total, pool)
	}
	l.Executor = ex
	l.Tasks = tasks
	l.Group = true
	return l, total, nil
}

// applySpeculative validates RESERVE/UNRESERVE/CREATE/DESTROY against the
// pool (§6) and returns what it consumes and produces (with allocation_info).
func (m *master) applySpeculative(fw *framework, e *agentEntry, role string, op mesos.Offer_Operation, pool rlist) (consumed, produced rlist, err error) {
	switch op.Type {
	case mesos.Offer_Operation_RESERVE:
		if op.Reserve == nil {
			return nil, nil, errors.New("missing 'reserve'")
		}
		if len(op.Reserve.Source) > 0 {
			return nil, nil, errors.New("RESERVE with 'source' is not yet implemented")
		}
		res, err := upgradeResources(op.Reserve.Resources, role)
		if err != nil {
			return nil, nil, err
		}
		if len(res) == 0 {
			return nil, nil, errors.New("Invalid RESERVE Operation: no resources")
		}
		for i := range res {
			r := &res[i]
			if !isDynamicallyReserved(r) {
				return nil, nil, fmt.Errorf("Invalid reservation: resource %s is not dynamically reserved", formatResource(r))
			}
			rrole := reservationRole(r)
			if rrole != r.GetAllocationInfo().GetRole() {
				return nil, nil, fmt.Errorf("A reserve operation was attempted for a resource allocated to role '%s', but the framework only can reserve resources for role '%s'",
					r.GetAllocationInfo().GetRole(), rrole)
			}
			if !fw.hasRole(rrole) {
				return nil, nil, fmt.Errorf("A reserve operation was attempted for a resource with role '%s', but the framework can only reserve resources with roles %v", rrole, fw.roles)
			}
			if p := fw.info.Principal; p != nil {
				top := r.Reservations[len(r.Reservations)-1]
				if top.Principal == nil || top.GetPrincipal() != *p {
					return nil, nil, fmt.Errorf("A reserve operation was attempted with invalid principal '%s' (expected '%s')", top.GetPrincipal(), *p)
				}
			}
			if len(r.Reservations) > 1 {
				return nil, nil, errors.New("Refined reservations are not supported by the simulated agents")
			}
			if isVolume(r) {
				return nil, nil, errors.New("Invalid reservation: a persistent volume cannot be reserved")
			}
			consumed = consumed.add(popReservation(*r))
		}
		if !pool.contains(consumed) {
			return nil, nil, fmt.Errorf("Invalid RESERVE Operation: %s does not contain %s", pool, consumed)
		}
		return consumed, res, nil

	case mesos.Offer_Operation_UNRESERVE:
		if op.Unreserve == nil {
			return nil, nil, errors.New("missing 'unreserve'")
		}
		res, err := upgradeResources(op.Unreserve.Resources, role)
		if err != nil {
			return nil, nil, err
		}
		for i := range res {
			r := &res[i]
			if !isDynamicallyReserved(r) {
				return nil, nil, fmt.Errorf("Resource %s is not dynamically reserved", formatResource(r))
			}
			if isVolume(r) {
				return nil, nil, errors.New("A dynamically reserved persistent volume cannot be unreserved: use DESTROY first")
			}
			if p := fw.info.Principal; p != nil {
				top := r.Reservations[len(r.Reservations)-1]
				if top.Principal != nil && top.GetPrincipal() != *p {
					return nil, nil, fmt.Errorf("Cannot unreserve resources reserved by principal '%s'", top.GetPrincipal())
				}
			}
			produced = produced.add(popReservation(*r))
		}
		if !pool.contains(res) {
			return nil, nil, fmt.Errorf("Invalid UNRESERVE Operation: %s does not contain %s", pool, res)
		}
		return res, produced, nil

	case mesos.Offer_Operation_CREATE:
		if op.Create == nil {
			return nil, nil, errors.New("missing 'create'")
		}
		vols, err := upgradeResources(op.Create.Volumes, role)
		if err != nil {
			return nil, nil, err
		}
		for i := range vols {
			v := &vols[i]
			d := v.GetDisk()
			if v.Name != "disk" || d.GetPersistence() == nil || d.GetVolume() == nil {
				return nil, nil, errors.New("Invalid CREATE Operation: a volume needs 'disk.persistence' and 'disk.volume'")
			}
			if !isReserved(v) {
				return nil, nil, errors.New("Persistent volumes cannot be created from unreserved resources")
			}
			if v.Revocable != nil {
				return nil, nil, errors.New("Persistent volumes cannot be created from revocable resources")
			}
			if v.Shared != nil && !hasCapability(&fw.info, mesos.FrameworkInfo_Capability_SHARED_RESOURCES) {
				return nil, nil, errors.New("Create volume operation for shared volumes requires the SHARED_RESOURCES capability")
			}
			if d.Volume.GetMode() != mesos.RW {
				return nil, nil, errors.New("Read-only persistent volume not supported")
			}
			if d.Volume.HostPath != nil {
				return nil, nil, errors.New("Expecting 'host_path' to be unset for persistent volume")
			}
			if p := fw.info.Principal; p != nil && d.Persistence.GetPrincipal() != *p {
				return nil, nil, fmt.Errorf("Create volume operation has been attempted by framework '%s' with principal '%s', but its 'Resource.DiskInfo.Persistence.principal' is '%s'",
					fw.id, *p, d.Persistence.GetPrincipal())
			}
			id := d.Persistence.ID
			vrole := reservationRole(v)
			for j := range e.total {
				if p := e.total[j].GetDisk().GetPersistence(); p != nil && p.ID == id && reservationRole(&e.total[j]) == vrole {
					return nil, nil, fmt.Errorf("Persistence ID '%s' is already used", id)
				}
			}
			base := cloneRes(*v)
			base.Disk = nil
			if d.Source != nil {
				base.Disk = &mesos.Resource_DiskInfo{Source: d.Source}
			}
			consumed = consumed.add(base)
		}
		if !pool.contains(consumed) {
			return nil, nil, fmt.Errorf("Invalid CREATE Operation: %s does not contain %s", pool, consumed)
		}
		for i := range vols {
			r, id := reservationRole(&vols[i]), vols[i].Disk.Persistence.ID
			m.agentCall(e, func(h simAgent) {
				if err := h.CreateVolume(r, id); err != nil {
					m.log.Warn("agent failed to create volume", zap.String("agent", e.id), zap.String("volume", id), zap.Error(err))
				}
			})
		}
		return consumed, vols, nil

	case mesos.Offer_Operation_DESTROY:
		if op.Destroy == nil {
			return nil, nil, errors.New("missing 'destroy'")
		}
		vols, err := upgradeResources(op.Destroy.Volumes, role)
		if err != nil {
			return nil, nil, err
		}
		for i := range vols {
			v := &vols[i]
			if !isVolume(v) {
				return nil, nil, errors.New("Invalid DESTROY Operation: only persistent volumes can be destroyed")
			}
			if !e.total.containsOne(unalloc(*v)) {
				return nil, nil, errors.New("Persistent volumes not found")
			}
			if e.usedFlat.containsOne(unalloc(*v)) {
				return nil, nil, errors.New("Persistent volumes in use")
			}
			base := cloneRes(*v)
			base.Disk = nil
			if v.Disk.Source != nil {
				base.Disk = &mesos.Resource_DiskInfo{Source: v.Disk.Source}
			}
			produced = produced.add(base)
		}
		if !pool.contains(vols) {
			return nil, nil, fmt.Errorf("Invalid DESTROY Operation: %s does not contain %s", pool, vols)
		}
		for i := range vols {
			r, id := reservationRole(&vols[i]), vols[i].Disk.Persistence.ID
			m.agentCall(e, func(h simAgent) {
				if err := h.DestroyVolume(r, id); err != nil {
					m.log.Warn("agent failed to destroy volume", zap.String("agent", e.id), zap.String("volume", id), zap.Error(err))
				}
			})
		}
		return vols, produced, nil
	}
	return nil, nil, fmt.Errorf("unsupported operation %s", op.Type)
}

func unalloc(r mesos.Resource) mesos.Resource {
	c := cloneRes(r)
	c.AllocationInfo = nil
	return c
}

// sortedKeys is a small helper for deterministic iteration.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
