package plan

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/dcos-consul/dcos-consul/scheduler/reconcile"
)

// Control is what the operator set on the plans through the plan API
// (interrupt/stop, continue/start): which plans and phases are paused. It
// is stored by the scheduler and survives its restarts.
type Control struct {
	// Interrupted holds "plan" (the whole plan) and "plan/phase" keys.
	Interrupted map[string]bool `json:"interrupted,omitempty"`
}

// Names of the plans besides deploy and recovery.
const (
	Update       = "update"
	Decommission = "decommission"
)

// Pausable plans and their phases. The recovery plan is not: relaunching
// failed tasks never waits for an operator.
var pausable = map[string][]string{
	Deploy:       {"server", "scale-down", "client"},
	Update:       {"server", "client"},
	Decommission: {""},
}

// Pause derives what is held back from the interrupted plans and phases:
// the next server of a rolling restart, the next batch of clients, the
// next server removal.
func (c Control) Pause() reconcile.Pause {
	on := func(plan, phase string) bool { return c.Interrupted[plan] || c.Interrupted[plan+"/"+phase] }
	return reconcile.Pause{
		Servers:   on(Deploy, "server") || on(Update, "server"),
		Clients:   on(Deploy, "client") || on(Update, "client"),
		ScaleDown: on(Deploy, "scale-down") || c.Interrupted[Decommission],
	}
}

// IsInterrupted reports whether the plan, or the phase of it, is paused.
func (c Control) IsInterrupted(plan, phase string) bool {
	return c.Interrupted[plan] || (phase != "" && c.Interrupted[plan+"/"+phase])
}

// ErrNotPausable: the plan or phase cannot be interrupted.
type ErrNotPausable struct{ Plan, Phase string }

func (e ErrNotPausable) Error() string {
	if e.Phase != "" {
		return fmt.Sprintf("phase %q of plan %q cannot be interrupted (pausable: %s)", e.Phase, e.Plan, pausableList())
	}
	return fmt.Sprintf("plan %q cannot be interrupted: relaunching failed tasks never waits (pausable: %s)", e.Plan, pausableList())
}

func pausableList() string {
	var out []string
	for p, phases := range pausable {
		for _, ph := range phases {
			if ph == "" {
				out = append(out, p)
			} else {
				out = append(out, p+"/"+ph)
			}
		}
		if p != Decommission {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return fmt.Sprint(out)
}

// Interrupt pauses a plan (phase "") or one of its phases; changed is
// false when it already was (the API's 208).
func (c Control) Interrupt(plan, phase string) (Control, bool, error) {
	phases, ok := pausable[plan]
	if !ok {
		return c, false, ErrNotPausable{Plan: plan}
	}
	if phase != "" && !contains(phases, phase) {
		return c, false, ErrNotPausable{Plan: plan, Phase: phase}
	}
	key := plan
	if phase != "" {
		key += "/" + phase
	}
	if c.IsInterrupted(plan, phase) {
		return c, false, nil
	}
	out := Control{Interrupted: map[string]bool{key: true}}
	for k, v := range c.Interrupted {
		out.Interrupted[k] = v
	}
	return out, true, nil
}

// Continue resumes a plan (and all its phases) or one phase; changed is
// false when nothing was paused.
func (c Control) Continue(plan, phase string) (Control, bool) {
	out := Control{Interrupted: map[string]bool{}}
	changed := false
	for k, v := range c.Interrupted {
		drop := (phase == "" && (k == plan || len(k) > len(plan) && k[:len(plan)+1] == plan+"/")) ||
			(phase != "" && (k == plan+"/"+phase || k == plan))
		if drop {
			changed = true
			continue
		}
		out.Interrupted[k] = v
	}
	if phase != "" && c.Interrupted[plan] {
		// The plan was paused as a whole: its other phases stay paused.
		for _, ph := range pausable[plan] {
			if ph != "" && ph != phase {
				out.Interrupted[plan+"/"+ph] = true
			}
		}
	}
	return out, changed
}

// Restartable reports whether a plan's steps are pods that can run again
// (deploy, update); recovery relaunches on its own and decommission
// removes servers.
func Restartable(plan string) bool { return plan == Deploy || plan == Update }

// StartRestarts says whether `start` on a plan or phase with status
// restarts it before it proceeds, as the DC/OS SDK's PlansQueries.start:
// a complete element runs again (every step), any other only proceeds
// (an interrupted one resumes, one in progress goes on unchanged). A
// complete plan whose steps are not pods has nothing to run again.
func StartRestarts(plan, status string) bool {
	return status == Complete && Restartable(plan)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// ErrNotFound: no such plan, phase or step. ErrMissingPhase: a step was
// named without its phase.
var (
	ErrNotFound     = errors.New("not found")
	ErrMissingPhase = errors.New("missing phase")
)

// Element is the plan, phase or step a plan command names.
type Element struct {
	Plan  Plan
	Phase *Phase
	Step  *Step
}

// Name says which element it is.
func (e Element) Name() string {
	switch {
	case e.Step != nil:
		return fmt.Sprintf("step %s of phase %s of plan %s", e.Step.Name, e.Phase.Name, e.Plan.Name)
	case e.Phase != nil:
		return fmt.Sprintf("phase %s of plan %s", e.Phase.Name, e.Plan.Name)
	}
	return "plan " + e.Plan.Name
}

// Status is the element's status.
func (e Element) Status() string {
	switch {
	case e.Step != nil:
		return e.Step.Status
	case e.Phase != nil:
		return e.Phase.Status
	}
	return e.Plan.Status
}

// Steps are the element's steps (all of a plan's or phase's).
func (e Element) Steps() []Step {
	switch {
	case e.Step != nil:
		return []Step{*e.Step}
	case e.Phase != nil:
		return e.Phase.Steps
	}
	var out []Step
	for _, ph := range e.Plan.Phases {
		out = append(out, ph.Steps...)
	}
	return out
}

// Find names an element as the SDK does: phase and step by name or ID; a
// step needs its phase.
func Find(plans map[string]Plan, plan, phase, step string) (Element, error) {
	p, ok := plans[plan]
	if !ok {
		names := make([]string, 0, len(plans))
		for n := range plans {
			names = append(names, n)
		}
		sort.Strings(names)
		return Element{}, fmt.Errorf("%w: plan %q (plans: %s)", ErrNotFound, plan, strings.Join(names, ", "))
	}
	p.Name = plan
	e := Element{Plan: p}
	if phase == "" {
		if step != "" {
			return Element{}, fmt.Errorf("%w: step %q needs ?phase=", ErrMissingPhase, step)
		}
		return e, nil
	}
	for i := range p.Phases {
		if p.Phases[i].Name == phase || p.Phases[i].ID == phase {
			ph := p.Phases[i]
			e.Phase = &ph
			break
		}
	}
	if e.Phase == nil {
		return Element{}, fmt.Errorf("%w: phase %q of plan %q", ErrNotFound, phase, plan)
	}
	if step == "" {
		return e, nil
	}
	for i := range e.Phase.Steps {
		s := e.Phase.Steps[i]
		if s.Name == step || s.ID == step || StepTask(s.Name) == step {
			e.Step = &s
			return e, nil
		}
	}
	return Element{}, fmt.Errorf("%w: step %q of phase %q", ErrNotFound, step, e.Phase.Name)
}

// StepTask is the task (pod) name of a deploy, update or recovery step
// ("consul-server-0:[server]" → "consul-server-0").
func StepTask(step string) string {
	if i := strings.Index(step, ":["); i >= 0 {
		return step[:i]
	}
	return step
}
