package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"

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
	case "interrupt", "stop", "continue", "start":
		return s.controlCommand(ctx, c, el)
	case "forceComplete":
		return s.forceComplete(ctx, c, el)
	case "restart":
		if el.Step == nil {
			return "", fmt.Errorf("%w: restart names a step (?phase=...&step=...): restarting a step restarts its pod, through the quorum gate", api.ErrConflict)
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

// forceComplete marks rolling-restart steps done without restarting
// their tasks: their records take the target configuration ID (the task
// keeps running as it was launched until its next restart).
func (s *Scheduler) forceComplete(ctx context.Context, c api.PlanCommand, el plan.Element) (string, error) {
	if el.Status() == plan.Complete {
		return "", fmt.Errorf("%w: %s is complete", api.ErrAlready, el.Name())
	}
	if c.Plan != plan.Deploy && c.Plan != plan.Update {
		return "", fmt.Errorf("%w: forceComplete applies to the rolling restart steps of the deploy and update plans only", api.ErrConflict)
	}
	var names []string
	for _, st := range el.Steps() {
		t, ok := s.tasks[plan.StepTask(st.Name)]
		if !ok || !t.Running() || t.ConfigID == "" || t.ConfigID == s.target.ConfigIDOf(t.Role) || t.Goal != state.GoalRunning {
			continue
		}
		t.ConfigID = s.target.ConfigIDOf(t.Role)
		s.setTask(t)
		names = append(names, t.Name)
	}
	if len(names) == 0 {
		return "", fmt.Errorf("%w: %s has no task waiting for a rolling restart (forceComplete skips those only)", api.ErrConflict, el.Name())
	}
	if err := s.flush(ctx); err != nil {
		return "", err
	}
	s.log.Warn("plan forceComplete: tasks keep running with their old configuration until their next restart", zap.Strings("tasks", names))
	return fmt.Sprintf("Received cmd: forceComplete for Plan: %s, Phase: %s, Step: %s", c.Plan, c.Phase, c.Step), nil
}
