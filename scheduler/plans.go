package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/api"
	"github.com/dcos-consul/dcos-consul/scheduler/plan"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
	"github.com/dcos-consul/dcos-consul/scheduler/store"
)

const (
	// keyPlanControl holds the plans and phases the operator paused.
	keyPlanControl = "plan-control"
	// prefixConfigurations holds every target configuration the service
	// ran with, by configuration ID (GET /v1/configurations).
	prefixConfigurations = "configurations/"
)

// recordConfiguration keeps the target under its configuration ID, once.
func recordConfiguration(ctx context.Context, st Store, tg state.Target) error {
	if tg.ConfigID == "" {
		return nil
	}
	key := prefixConfigurations + tg.ConfigID
	if _, err := st.Get(ctx, key); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("read configuration %s: %w", tg.ConfigID, err)
	}
	if err := putJSON(ctx, st, key, tg); err != nil {
		return fmt.Errorf("record configuration %s: %w", tg.ConfigID, err)
	}
	return nil
}

// Configurations implements api.Source: the configuration IDs the
// service has run with.
func (s *Scheduler) Configurations(ctx context.Context) ([]string, error) {
	keys, err := s.store.List(ctx, prefixConfigurations)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, strings.TrimPrefix(k, prefixConfigurations))
	}
	return out, nil
}

// Configuration implements api.Source: one configuration by ID.
func (s *Scheduler) Configuration(ctx context.Context, id string) (json.RawMessage, error) {
	if id == "" || strings.Contains(id, "/") {
		return nil, fmt.Errorf("%w: configuration %q", api.ErrNotFound, id)
	}
	b, err := s.store.Get(ctx, prefixConfigurations+id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: configuration %q (GET /v1/configurations lists them)", api.ErrNotFound, id)
	}
	return b, err
}

// PlanCommand implements api.Source: the DC/OS SDK's plan operations.
func (s *Scheduler) PlanCommand(ctx context.Context, c api.PlanCommand) (string, error) {
	var msg string
	err := s.inLoop(ctx, func() error {
		var err error
		msg, err = s.planCommand(ctx, c)
		return err
	})
	return msg, err
}

func (s *Scheduler) planCommand(ctx context.Context, c api.PlanCommand) (string, error) {
	s.publish()
	plans := s.Snapshot().Plans
	el, err := plan.Find(plans, c.Plan, c.Phase, c.Step)
	if err != nil {
		return "", err
	}
	switch c.Verb {
	case "start":
		// As the DC/OS SDK: a complete plan runs again (its pods queued
		// for a rolling restart in place, through the quorum gate);
		// otherwise it proceeds.
		if plan.StartRestarts(c.Plan, el.Status()) {
			_, err := s.restartElement(ctx, c, el)
			if err == nil {
				return "Received cmd: start (complete: every step runs again)", nil
			}
			if !errors.Is(err, api.ErrAlready) {
				return "", err
			}
			// No pod running to restart (all being launched): it proceeds.
		}
		return s.controlCommand(ctx, c, el)
	case "interrupt", "stop", "continue":
		return s.controlCommand(ctx, c, el)
	case "forceComplete":
		return s.forceComplete(ctx, c, el)
	case "restart":
		if el.Step == nil {
			return s.restartElement(ctx, c, el)
		}
		if el.Step.Status == plan.Pending {
			return "", fmt.Errorf("%w: step %s is pending", api.ErrAlready, el.Step.Name)
		}
		pod := plan.StepTask(el.Step.Name)
		if _, ok := s.tasks[pod]; !ok {
			return "", fmt.Errorf("%w: step %s has no pod to restart", api.ErrConflict, el.Step.Name)
		}
		if _, err := s.podCommand(ctx, pod, state.GoalRestart); err != nil {
			if errors.Is(err, api.ErrConflict) {
				return "", err
			}
			return "", fmt.Errorf("%w: %v", api.ErrConflict, err)
		}
		return fmt.Sprintf("Received cmd: restart for Plan: %s, Phase: %s, Step: %s", c.Plan, c.Phase, c.Step), nil
	}
	return "", fmt.Errorf("%w: unknown plan command %q", api.ErrNotFound, c.Verb)
}

// controlCommand pauses or resumes a plan or phase, stored before it
// counts.
func (s *Scheduler) controlCommand(ctx context.Context, c api.PlanCommand, el plan.Element) (string, error) {
	phase := ""
	if el.Phase != nil {
		phase = el.Phase.Name
	}
	ctl := s.control
	changed := false
	switch c.Verb {
	case "interrupt", "stop":
		var err error
		if ctl, changed, err = s.control.Interrupt(c.Plan, phase); err != nil {
			return "", fmt.Errorf("%w: %v", api.ErrConflict, err)
		}
		if c.Verb == "interrupt" && el.Status() == plan.Complete {
			return "", fmt.Errorf("%w: %s is complete", api.ErrAlready, el.Name())
		}
		if !changed && c.Verb == "interrupt" {
			return "", fmt.Errorf("%w: %s is already interrupted", api.ErrAlready, el.Name())
		}
	default:
		ctl, changed = s.control.Continue(c.Plan, phase)
		if !changed && c.Verb == "continue" {
			return "", fmt.Errorf("%w: %s is not interrupted", api.ErrAlready, el.Name())
		}
	}
	if changed {
		if err := putJSON(ctx, s.store, keyPlanControl, ctl); err != nil {
			return "", fmt.Errorf("store the plans' control: %w", err)
		}
		s.control = ctl
		s.last = s.reconcile(s.now())
		s.log.Info("plan command", zap.String("verb", c.Verb), zap.String("plan", c.Plan), zap.String("phase", phase))
	}
	return "Received cmd: " + c.Verb, nil
}

// restartElement restarts a whole plan or phase as the DC/OS SDK does
// (every step runs again; an interrupted plan or phase proceeds), safely:
// each running pod of its steps is queued for a rolling restart in place
// (state.Task.RestartQueued), servers one at a time through the quorum
// gate with the leader last, clients in batches. 208 when the element is
// pending already; 409 for the plans whose steps are not pods (recovery
// relaunches on its own, decommission removes servers).
func (s *Scheduler) restartElement(ctx context.Context, c api.PlanCommand, el plan.Element) (string, error) {
	if !plan.Restartable(c.Plan) {
		return "", fmt.Errorf("%w: restart of the whole %s plan or a phase of it is not possible: its steps are not pods to run again "+
			"(the deploy and update plans and their phases can be restarted; a step of any plan restarts its pod)", api.ErrConflict, c.Plan)
	}
	if el.Status() == plan.Pending {
		return "", fmt.Errorf("%w: %s is pending", api.ErrAlready, el.Name())
	}
	var names []string
	for _, st := range el.Steps() {
		t, ok := s.tasks[plan.StepTask(st.Name)]
		if !ok || !t.Running() || t.Goal != state.GoalRunning || t.RestartQueued ||
			(t.Role == taskspec.RoleServer && t.Index >= s.target.Servers) {
			continue // not running (its launch is under way already) or queued
		}
		t.RestartQueued = true
		s.setTask(t)
		names = append(names, t.Name)
	}
	phase := ""
	if el.Phase != nil {
		phase = el.Phase.Name
	}
	ctl, resumed := s.control.Continue(c.Plan, phase)
	if len(names) == 0 && !resumed {
		return "", fmt.Errorf("%w: %s has no running pod to restart", api.ErrAlready, el.Name())
	}
	if resumed {
		if err := putJSON(ctx, s.store, keyPlanControl, ctl); err != nil {
			return "", fmt.Errorf("store the plans' control: %w", err)
		}
		s.control = ctl
	}
	if err := s.flush(ctx); err != nil {
		return "", err
	}
	s.last = s.reconcile(s.now())
	s.log.Info("plan restart: pods queued for a rolling restart in place", zap.String("plan", c.Plan), zap.String("phase", phase),
		zap.Strings("tasks", names), zap.Bool("resumed", resumed))
	return fmt.Sprintf("Received cmd: restart for Plan: %s, Phase: %s, Step: %s", c.Plan, c.Phase, c.Step), nil
}

// forceComplete marks the element's steps done as the DC/OS SDK does
// (any plan, phase or step; 208 when complete), for what can be skipped
// without touching a task: a pod waiting for its turn in a rolling restart
// (its record takes the target configuration ID and keeps running as it
// was launched until its next restart) or queued by a plan restart. A
// launch, a kill, a relaunch or a removal under way is never skipped: the
// quorum gate and the records stay true. 409 when nothing can be skipped.
func (s *Scheduler) forceComplete(ctx context.Context, c api.PlanCommand, el plan.Element) (string, error) {
	if el.Status() == plan.Complete {
		return "", fmt.Errorf("%w: %s is complete", api.ErrAlready, el.Name())
	}
	var names []string
	for _, st := range el.Steps() {
		t, ok := s.tasks[plan.StepTask(st.Name)]
		target := s.target.ConfigIDOf(t.Role)
		if !ok || !t.Running() || t.Goal != state.GoalRunning || !((t.ConfigID != "" && t.ConfigID != target) || t.RestartQueued) {
			continue
		}
		if t.ConfigID != "" {
			t.ConfigID = target
		}
		t.RestartQueued, t.RestartWhy = false, ""
		s.setTask(t)
		names = append(names, t.Name)
	}
	if len(names) == 0 {
		return "", fmt.Errorf("%w: %s has no pod waiting for a rolling restart: forceComplete skips only those "+
			"(a launch, kill, relaunch or removal under way goes on)", api.ErrConflict, el.Name())
	}
	if err := s.flush(ctx); err != nil {
		return "", err
	}
	s.log.Warn("plan forceComplete: tasks keep running with their old configuration until their next restart", zap.Strings("tasks", names))
	return fmt.Sprintf("Received cmd: forceComplete for Plan: %s, Phase: %s, Step: %s", c.Plan, c.Phase, c.Step), nil
}
