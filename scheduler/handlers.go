package scheduler

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/offers"
	"github.com/dcos-consul/dcos-consul/scheduler/placement"
	"github.com/dcos-consul/dcos-consul/scheduler/reconcile"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// killRepeat is how long a KILL is given before it is sent again.
const killRepeat = 30 * time.Second

func (s *Scheduler) onSubscribed(ctx context.Context, sub *scheduler.Event_Subscribed, now time.Time, out *outbox) error {
	id := sub.FrameworkID.Value
	if s.frameworkID != "" && s.frameworkID != id {
		s.log.Error("the master gave this scheduler a new framework ID; the old framework's tasks are orphaned",
			zap.String("old", s.frameworkID), zap.String("new", id))
	}
	if s.frameworkID != id {
		// Written before anything else happens under this ID.
		if err := s.store.Put(ctx, keyFrameworkID, []byte(id)); err != nil {
			return fmt.Errorf("write the framework ID: %w", err)
		}
		s.frameworkID = id
	}
	s.subscribed = true
	s.subscribeCount++
	s.suppressed = nil
	s.metrics.subscriptions.Inc()
	master := ""
	if mi := sub.MasterInfo; mi != nil {
		master = fmt.Sprintf("%s:%d", mi.GetHostname(), mi.GetPort())
	}
	s.log.Info("subscribed", zap.String("framework_id", id), zap.String("master", master),
		zap.Float64("heartbeat_interval_seconds", sub.GetHeartbeatIntervalSeconds()))

	// Explicit reconciliation of every task we know, until each one is
	// answered; then implicit.
	s.reconciling = map[string]string{}
	for _, t := range s.tasks {
		if t.TaskID != "" && t.State != "" {
			s.reconciling[t.TaskID] = t.AgentID
		}
	}
	s.reconcileDelay = 5 * time.Second
	s.reconcileNext = now // sent by reconcileCalls below
	s.periodicNext = now.Add(s.opts.ReconcileInterval)
	if len(s.reconciling) == 0 {
		out.add(calls.Reconcile())
	}
	s.reconcileCalls(now, out)
	return nil
}

// reconcileCalls sends the explicit reconciliation again (with backoff)
// until every task has been answered, and the periodic one.
func (s *Scheduler) reconcileCalls(now time.Time, out *outbox) {
	s.metrics.reconciling.Set(float64(len(s.reconciling)))
	if len(s.reconciling) > 0 && !now.Before(s.reconcileNext) {
		out.add(calls.Reconcile(calls.ReconcileTasks(s.reconciling)))
		s.log.Info("explicit reconciliation", zap.Int("tasks", len(s.reconciling)), zap.Duration("retry_in", s.reconcileDelay))
		s.reconcileNext = now.Add(s.reconcileDelay)
		s.reconcileDelay *= 2
		if s.reconcileDelay > time.Minute {
			s.reconcileDelay = time.Minute
		}
	}
	if len(s.reconciling) == 0 && !s.periodicNext.IsZero() && !now.Before(s.periodicNext) {
		active := map[string]string{}
		for _, t := range s.tasks {
			if t.Active() {
				active[t.TaskID] = t.AgentID
			}
		}
		if len(active) > 0 {
			out.add(calls.Reconcile(calls.ReconcileTasks(active)))
		}
		out.add(calls.Reconcile())
		s.log.Info("periodic reconciliation", zap.Int("tasks", len(active)))
		s.periodicNext = now.Add(s.opts.ReconcileInterval)
	}
}

func (s *Scheduler) onUpdate(st mesos.TaskStatus, now time.Time, out *outbox) {
	taskID := st.TaskID.Value
	stateName := st.GetState().String()
	agentID := st.GetAgentID().GetValue()
	s.metrics.updates.WithLabelValues(stateName).Inc()
	if len(st.UUID) > 0 {
		// Acknowledged after the new state is written (act flushes first).
		out.acks = append(out.acks, calls.Acknowledge(agentID, taskID, st.UUID))
	}
	if _, ok := s.reconciling[taskID]; ok {
		delete(s.reconciling, taskID)
		if len(s.reconciling) == 0 {
			s.log.Info("explicit reconciliation complete; reconciling implicitly")
			out.add(calls.Reconcile())
		}
	}
	if stateName == "TASK_GONE_BY_OPERATOR" && agentID != "" {
		a := s.agents[agentID]
		a.ID, a.Gone = agentID, true
		s.agents[agentID] = a
	}
	name := state.NameOfTaskID(taskID)
	t, ok := s.tasks[name]
	if !ok || t.TaskID != taskID {
		if !state.IsTerminal(stateName) && stateName != "TASK_UNREACHABLE" {
			s.killOnce(taskID, agentID, now, "the task is not the current incarnation of any record (a duplicate or a leftover): killing it", out)
		} else {
			s.log.Debug("update for a task no record tracks", zap.String("task_id", taskID), zap.String("state", stateName))
		}
		return
	}
	nt, outcome := state.ApplyStatus(t, st, now)
	if outcome != state.Applied {
		return
	}
	if nt.State != t.State {
		lvl := s.log.Info
		if state.IsTerminal(nt.State) && t.Goal == state.GoalRunning {
			lvl = s.log.Warn
		}
		fields := []zap.Field{zap.String("task", name), zap.String("task_id", taskID), zap.String("state", nt.State),
			zap.String("from", t.State), zap.String("reason", nt.Reason), zap.String("message", nt.Message),
			zap.String("source", st.GetSource().String()), zap.String("agent", nt.Hostname)}
		if !nt.LeaveSentAt.IsZero() && state.IsTerminal(nt.State) {
			// A departing server: its executor's label says whether it left.
			fields = append(fields, zap.Bool("left_gracefully", nt.Left), zap.Duration("since_leave_sent", now.Sub(nt.LeaveSentAt)))
		}
		lvl("task state", fields...)
	}
	s.setTask(nt)
}

// onAgentLost handles FAILURE{agent_id}: the agent is unreachable, and the
// tasks recorded on it are reconciled explicitly at once. A master sends a
// task update for each task it knew on a lost agent; but a master that
// restarted never learns the tasks of an agent that does not re-register
// (one removed meanwhile): it sends only this FAILURE, after its
// agent_reregister_timeout, and answers a reconciliation of those tasks
// with TASK_UNREACHABLE (until then, with nothing). Without asking at once,
// the records stayed RUNNING until the next retry of the explicit
// reconciliation, up to a minute later, or the periodic one (issue 13).
func (s *Scheduler) onAgentLost(agentID string, out *outbox) {
	a := s.agents[agentID]
	a.ID, a.Unreachable = agentID, true
	s.agents[agentID] = a
	ask := map[string]string{}
	for _, t := range s.tasks {
		if t.AgentID == agentID && t.TaskID != "" && t.Active() {
			ask[t.TaskID] = agentID
		}
	}
	s.log.Warn("agent lost", zap.String("agent", agentID), zap.Int("tasks_reconciled", len(ask)))
	if len(ask) > 0 {
		out.add(calls.Reconcile(calls.ReconcileTasks(ask)))
	}
}

func (s *Scheduler) killOnce(taskID, agentID string, now time.Time, why string, out *outbox) {
	if last, ok := s.lastKill[taskID]; ok && now.Sub(last) < killRepeat {
		return
	}
	s.lastKill[taskID] = now
	s.log.Info("killing task", zap.String("task_id", taskID), zap.String("agent", agentID), zap.String("why", why))
	out.add(calls.Kill(taskID, agentID))
}

func (s *Scheduler) onOffers(list []mesos.Offer, now time.Time, out *outbox) {
	s.applyReconcile(s.reconcile(now))
	blocked := s.blocked()
	byAgent := offers.IndexByAgent(s.tasks)
	evicting := offers.Evicting(s.tasks)
	var declines declineSet
	defer declines.calls(out)
	for _, o := range list {
		s.metrics.offers.Inc()
		s.noteAgent(o)
		d := offers.Evaluate(offers.Input{
			Target: s.target, FrameworkID: s.frameworkID, Tasks: s.tasks, Launch: s.last.Launch, Blocked: blocked,
			AgentAttrs: s.agentAttrs, Offer: o, Now: now, NewID: s.opts.NewID, EvictAfter: s.opts.EvictAfter,
			ByAgent: byAgent, Evicting: evicting,
		})
		for _, n := range d.Evict {
			if t, ok := s.tasks[n]; ok && t.Goal == state.GoalRunning {
				t.Goal = state.GoalStop
				evicting = true
				s.setTask(t)
				s.log.Warn("stopping a client to make room for a server", zap.String("client", n), zap.String("why", d.Reason))
			}
		}
		for _, rec := range d.Records {
			if old, ok := s.tasks[rec.Name]; !ok || old.AgentID != rec.AgentID {
				byAgent[rec.AgentID] = append(byAgent[rec.AgentID], rec.Name)
			}
			s.setTask(rec)
			delete(s.last.Launch, rec.Name)
			delete(s.waiting, rec.Name)
			s.metrics.launched.WithLabelValues(string(rec.Role)).Inc()
		}
		for _, n := range d.Released {
			s.log.Info("uninstall: reservation released", zap.String("task", n), zap.String("agent", agentHost(o)))
			s.deleteTask(n)
		}
		for n, why := range d.Waiting {
			s.waiting[n] = why
		}
		if d.Accept() {
			s.metrics.accepted.Inc()
			call := calls.Accept(calls.OfferOperations(d.Operations).WithOffers(o.ID)).With(calls.RefuseSeconds(d.Refuse))
			out.add(call)
			fields := []zap.Field{zap.String("agent", agentHost(o)), zap.String("offer", o.ID.Value), zap.String("operations", opNames(d.Operations)), zap.String("why", d.Reason)}
			for _, rec := range d.Records {
				fields = append(fields, zap.String("task_id", rec.TaskID))
			}
			s.log.Info("offer accepted", fields...)
			continue
		}
		s.metrics.declined.Inc()
		declines.add(o.ID, d.Refuse)
		lvl := s.log.Debug
		if len(d.Waiting) > 0 {
			lvl = s.log.Info
		}
		lvl("offer declined", zap.String("agent", agentHost(o)), zap.String("offer", o.ID.Value), zap.String("why", d.Reason),
			zap.Duration("refuse", d.Refuse))
	}
}

// declineSet gathers the declined offers of a batch by filter: one DECLINE
// call names every offer declined with the same filter (a DECLINE may name
// offers of many agents), instead of one call per offer, thousands of them
// on a large cluster.
type declineSet struct {
	order []time.Duration
	ids   map[time.Duration][]mesos.OfferID
}

func (ds *declineSet) add(id mesos.OfferID, refuse time.Duration) {
	if ds.ids == nil {
		ds.ids = map[time.Duration][]mesos.OfferID{}
	}
	if _, ok := ds.ids[refuse]; !ok {
		ds.order = append(ds.order, refuse)
	}
	ds.ids[refuse] = append(ds.ids[refuse], id)
}

// calls adds the DECLINE calls, one per filter, in the order first seen.
func (ds *declineSet) calls(out *outbox) {
	for _, refuse := range ds.order {
		out.add(calls.Decline(ds.ids[refuse]...).With(calls.RefuseSeconds(refuse)))
	}
}

func (s *Scheduler) noteAgent(o mesos.Offer) {
	id := o.AgentID.Value
	a := s.agents[id]
	a.ID, a.Hostname, a.Gone, a.Unreachable = id, o.Hostname, false, false
	attrs := placement.Values(o) // hostname, @zone, @region, attributes
	a.Public = placement.Public(attrs)
	s.agents[id] = a
	s.agentAttrs[id] = attrs
}

func opNames(ops []mesos.Offer_Operation) string {
	var out []string
	for _, op := range ops {
		out = append(out, op.Type.String())
	}
	return strings.Join(out, ",")
}

// afterChange reconciles desired and known state: kills, suppress/revive.
func (s *Scheduler) afterChange(now time.Time, out *outbox) {
	r := s.reconcile(now)
	s.applyReconcile(r)
	if !s.subscribed {
		return
	}
	s.startPeerRemovals()
	s.startScaleDownRemovals()
	for _, k := range r.Kill {
		s.killOnce(k.TaskID, k.AgentID, now, k.Name+": "+k.Why, out)
	}
	for _, l := range r.Leave {
		s.askToLeave(l, out)
	}
	for _, n := range r.Lost {
		s.log.Warn("task lost with its agent", zap.String("task", n))
	}
	need := r.NeedsOffers()
	var fresh []string
	for n := range r.Launch {
		if !s.wanted[n] {
			fresh = append(fresh, n)
		}
	}
	for n := range r.Release {
		if !s.wanted[n] {
			fresh = append(fresh, n)
		}
	}
	sort.Strings(fresh)
	switch {
	case need && (s.suppressed == nil || *s.suppressed || len(fresh) > 0):
		out.add(calls.Revive())
		f := false
		s.suppressed = &f
		s.log.Info("reviving offers", zap.String("for", joinNames(fresh)))
	case !need && (!s.target.ClientsEnabled || s.target.Uninstall) && (s.suppressed == nil || !*s.suppressed):
		// With clients enabled offers keep flowing (declined with long
		// filters) so that agents joining later get a client.
		out.add(calls.Suppress())
		t := true
		s.suppressed = &t
		s.log.Info("suppressing offers: nothing to launch")
	case s.suppressed == nil:
		f := false
		s.suppressed = &f
	}
	s.wanted = map[string]bool{}
	for n := range r.Launch {
		s.wanted[n] = true
	}
	for n := range r.Release {
		s.wanted[n] = true
	}
}

var _ = reconcile.Agent{}

// askToLeave sends a departing server's executor the leave MESSAGE
// (taskspec.Leave); its record already says when (LeaveSentAt, written by
// the flush before the batch is sent). Mesos does not say whether it was
// delivered: the task's end, labelled with the outcome, does, and without
// it reconcile falls back on the kill and the peer removal after
// reconcile.LeaveTimeout.
func (s *Scheduler) askToLeave(l reconcile.Leave, out *outbox) {
	data, err := taskspec.EncodeLeave(l.Why, reconcile.LeaveWithin)
	if err != nil {
		s.log.Error("leave message", zap.String("task", l.Name), zap.Error(err))
		return
	}
	msg := "asking a server that goes away for good to leave the Consul cluster gracefully"
	if l.Again {
		msg = "asking a server that goes away for good again to leave the Consul cluster gracefully: it still runs (the last MESSAGE may have been lost)"
	}
	s.log.Info(msg, zap.String("task", l.Name),
		zap.String("task_id", l.TaskID), zap.String("why", l.Why), zap.Duration("within", reconcile.LeaveWithin),
		zap.Duration("fallback_after", reconcile.LeaveTimeout))
	out.add(calls.Message(l.AgentID, l.TaskID, data))
}

// joinMessages sends every launched server that is not running yet the
// serf addresses of the other servers (taskspec.JoinUpdate). Servers
// launched in one batch only know those placed before them; this closes
// the gap. The agent drops a MESSAGE for an executor that has not
// subscribed yet, so it is repeated until the task runs.
func (s *Scheduler) joinMessages(now time.Time, out *outbox) {
	if now.Sub(s.lastJoinMessage) < 2*time.Second {
		return
	}
	s.lastJoinMessage = now
	for i := 0; i < s.target.Servers; i++ {
		t, ok := s.tasks[state.ServerName(i)]
		if !ok || !t.Active() || t.Running() || t.AgentID == "" || t.State == "TASK_UNREACHABLE" {
			continue
		}
		addrs := offers.JoinAddrs(s.tasks, s.target, t.Name)
		if len(addrs) == 0 {
			continue
		}
		data, err := taskspec.EncodeJoinUpdate(addrs)
		if err != nil {
			s.log.Error("join message", zap.Error(err))
			continue
		}
		out.add(calls.Message(t.AgentID, t.TaskID, data))
	}
}
