package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/plan"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

type fakeSource struct {
	view     View
	restarts []string
	err      error
	planErr  error
	planCmds []PlanCommand
}

func (f *fakeSource) PlanCommand(_ context.Context, c PlanCommand) (string, error) {
	f.planCmds = append(f.planCmds, c)
	if f.planErr != nil {
		return "", f.planErr
	}
	return "Received cmd: " + c.Verb, nil
}

func (f *fakeSource) Configurations(context.Context) ([]string, error) {
	return []string{"c1", "c2"}, nil
}

func (f *fakeSource) Configuration(_ context.Context, id string) (json.RawMessage, error) {
	if id != "c1" && id != f.view.Target.ConfigID {
		return nil, fmt.Errorf("%w: configuration %q", ErrNotFound, id)
	}
	return json.RawMessage(`{"config_id":"` + id + `"}`), nil
}

func (f *fakeSource) Snapshot() View { return f.view }
func (f *fakeSource) Restart(_ context.Context, pod string) ([]string, error) {
	f.restarts = append(f.restarts, "restart "+pod)
	return []string{pod}, f.err
}
func (f *fakeSource) Replace(_ context.Context, pod string) ([]string, error) {
	f.restarts = append(f.restarts, "replace "+pod)
	return []string{pod}, f.err
}

func view(deploy string) View {
	tg := state.TargetFrom(config.Defaults())
	return View{
		FrameworkID: "fw-1", Subscribed: true, Target: tg,
		Tasks: []state.Task{
			{Name: "consul-server-0", Role: taskspec.RoleServer, TaskID: "t0", State: "TASK_RUNNING", IP: "10.0.0.1", Hostname: "a1", Ports: tg.Ports},
			{Name: "consul-client-s1", Role: taskspec.RoleClient, TaskID: "t1", State: "TASK_RUNNING", IP: "10.0.0.2", Hostname: "a2", Ports: tg.Ports},
			{Name: "consul-server-1", Role: taskspec.RoleServer, TaskID: "t2", State: "TASK_STAGING", IP: "10.0.0.3", Ports: tg.Ports},
		},
		Plans: map[string]plan.Plan{plan.Deploy: {Status: deploy, Phases: []plan.Phase{}, Errors: []string{}}, plan.Recovery: {Status: plan.Complete, Errors: []string{}}},
	}
}

func do(t *testing.T, h http.Handler, method, path string) (int, map[string]any, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	body, _ := io.ReadAll(rec.Body)
	var obj map[string]any
	_ = json.Unmarshal(body, &obj)
	return rec.Code, obj, string(body)
}

func TestAPI(t *testing.T) {
	src := &fakeSource{view: view(plan.InProgress)}
	h := Handler(src, prometheus.NewRegistry())
	cases := []struct {
		method, path string
		code         int
		contains     string
	}{
		{"GET", "/v1/plans", 200, `"deploy"`},
		{"GET", "/v1/plans/deploy", 202, `"IN_PROGRESS"`},
		{"GET", "/v1/plans/recovery", 200, `"COMPLETE"`},
		{"GET", "/v1/plans/nope", 404, `plan \"nope\" not found; plans: deploy, recovery`},
		{"POST", "/v1/plans/deploy", 405, "only GET"},
		{"GET", "/v1/health", 202, `"deploy": "IN_PROGRESS"`},
		{"GET", "/v1/pod", 200, `"consul-client-s1"`},
		{"GET", "/v1/pod/status", 200, `"consul-server-1"`},
		{"GET", "/v1/pod/consul-server-0/info", 200, `"taskId": "t0"`},
		{"GET", "/v1/pod/nope/info", 404, `pod \"nope\" not found`},
		{"GET", "/v1/pod/consul-server-0/restart", 405, "use POST"},
		{"POST", "/v1/pod/consul-server-0/restart", 200, `"consul-server-0"`},
		{"POST", "/v1/pod/consul-server-0/replace", 200, `"consul-server-0"`},
		{"POST", "/v1/pod/consul-server-0/explode", 404, "unknown pod command"},
		{"GET", "/v1/pod/a/b/c", 404, "no such endpoint"},
		{"GET", "/v1/endpoints", 200, `"serf-lan"`},
		{"GET", "/v1/endpoints/https", 200, `"10.0.0.1:8501"`},
		{"GET", "/v1/endpoints/server", 200, `"servers"`},
		{"GET", "/v1/endpoints/http", 404, `endpoint \"http\" not found`}, // TLS: plain HTTP off
		{"GET", "/v1/state/frameworkId", 200, `"fw-1"`},
		{"GET", "/v2/whatever", 404, "no such endpoint"},
		{"DELETE", "/v1/health", 405, "only GET"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			code, _, body := do(t, h, c.method, c.path)
			if code != c.code || !strings.Contains(body, c.contains) {
				t.Fatalf("%d %s, want %d containing %q", code, body, c.code, c.contains)
			}
			if code >= 400 && !strings.Contains(body, `"message"`) {
				t.Fatalf("error without a JSON message: %s", body)
			}
		})
	}
	if fmt.Sprint(src.restarts) != "[restart consul-server-0 replace consul-server-0]" {
		t.Fatalf("commands %v", src.restarts)
	}
}

func TestEndpointsListRunningTasksOnly(t *testing.T) {
	h := Handler(&fakeSource{view: view(plan.Complete)}, prometheus.NewRegistry())
	_, obj, body := do(t, h, "GET", "/v1/endpoints/https")
	addrs := fmt.Sprint(obj["address"])
	if addrs != "[10.0.0.1:8501 10.0.0.2:8501]" || !strings.Contains(body, "consul-server-0.consul.mesos:8501") {
		t.Fatalf("%s", body)
	}
	_, obj, _ = do(t, h, "GET", "/v1/endpoints/server")
	if fmt.Sprint(obj["address"]) != "[10.0.0.1:8300]" {
		t.Fatalf("server endpoint lists clients: %v", obj["address"])
	}
}

func TestHealth(t *testing.T) {
	for _, c := range []struct {
		status    string
		err       string
		configErr string
		code      int
	}{{plan.Complete, "", "", 200}, {plan.InProgress, "", "", 202}, {plan.Pending, "", "", 202}, {plan.Error, "", "", 500},
		{plan.Complete, "state store: down", "", 500},
		{plan.Error, "", "consul.datacenter (CONSUL_DATACENTER) cannot change", 417},
		{plan.Error, "state store: down", "consul.datacenter (CONSUL_DATACENTER) cannot change", 500}} {
		v := view(c.status)
		v.Err = c.err
		if c.configErr != "" {
			v.ConfigErrors = []string{c.configErr}
		}
		code, _, body := do(t, Handler(&fakeSource{view: v}, prometheus.NewRegistry()), "GET", "/v1/health")
		if code != c.code {
			t.Errorf("%s/%q/%q: %d %s, want %d", c.status, c.err, c.configErr, code, body, c.code)
		}
		if c.configErr != "" && c.err == "" && !strings.Contains(body, c.configErr) {
			t.Errorf("health does not say which change was refused: %s", body)
		}
	}
}

func TestCommandErrors(t *testing.T) {
	src := &fakeSource{view: view(plan.Complete), err: fmt.Errorf("%w \"x\"", ErrUnknownPod)}
	if code, _, _ := do(t, Handler(src, prometheus.NewRegistry()), "POST", "/v1/pod/x/restart"); code != 404 {
		t.Fatalf("unknown pod: %d", code)
	}
	src.err = errors.New("pod \"x\" is being stopped")
	if code, _, body := do(t, Handler(src, prometheus.NewRegistry()), "POST", "/v1/pod/x/restart"); code != 409 || !strings.Contains(body, "being stopped") {
		t.Fatalf("conflict: %d %s", code, body)
	}
}

// TestPlanCommands: the SDK's plan operations and their status codes.
func TestPlanCommands(t *testing.T) {
	for _, c := range []struct {
		path    string
		err     error
		code    int
		want    PlanCommand
		contain string
	}{
		{"/v1/plans/update/interrupt?phase=server", nil, 200, PlanCommand{Plan: "update", Verb: "interrupt", Phase: "server"}, "Received cmd: interrupt"},
		{"/v1/plans/deploy/continue", ErrAlready, 208, PlanCommand{Plan: "deploy", Verb: "continue"}, "already"},
		{"/v1/plans/deploy/forceComplete?phase=server&step=consul-server-0", nil, 200,
			PlanCommand{Plan: "deploy", Verb: "forceComplete", Phase: "server", Step: "consul-server-0"}, "forceComplete"},
		{"/v1/plans/nope/start", fmt.Errorf("%w: plan nope", ErrNotFound), 404, PlanCommand{Plan: "nope", Verb: "start"}, "plan nope"},
		{"/v1/plans/deploy/restart?step=x", fmt.Errorf("%w: step x needs ?phase=", plan.ErrMissingPhase), 400, PlanCommand{Plan: "deploy", Verb: "restart", Step: "x"}, "phase"},
		{"/v1/plans/recovery/stop", fmt.Errorf("%w: plan recovery cannot be interrupted", ErrConflict), 409, PlanCommand{Plan: "recovery", Verb: "stop"}, "cannot be interrupted"},
	} {
		src := &fakeSource{view: view(plan.InProgress), planErr: c.err}
		code, _, body := do(t, Handler(src, prometheus.NewRegistry()), "POST", c.path)
		if code != c.code || !strings.Contains(body, c.contain) {
			t.Errorf("POST %s: %d %s, want %d with %q", c.path, code, body, c.code, c.contain)
		}
		if len(src.planCmds) != 1 || src.planCmds[0] != c.want {
			t.Errorf("POST %s: commands %+v, want %+v", c.path, src.planCmds, c.want)
		}
	}
	src := &fakeSource{view: view(plan.InProgress)}
	h := Handler(src, prometheus.NewRegistry())
	if code, _, _ := do(t, h, "GET", "/v1/plans/deploy/interrupt"); code != 405 {
		t.Errorf("GET interrupt: %d, want 405", code)
	}
	if code, _, _ := do(t, h, "POST", "/v1/plans/deploy"); code != 405 {
		t.Errorf("POST a plan: %d, want 405", code)
	}
	if code, _, _ := do(t, h, "POST", "/v1/plans/deploy/bogus"); code != 405 && code != 404 {
		t.Errorf("unknown verb: %d, want 404 or 405", code)
	}
	for path, want := range map[string]int{"/v1/configurations": 200, "/v1/configurations/targetId": 200, "/v1/configurations/target": 200,
		"/v1/configurations/c1": 200, "/v1/configurations/zz": 404} {
		if code, _, body := do(t, h, "GET", path); code != want {
			t.Errorf("GET %s: %d %s, want %d", path, code, body, want)
		}
	}
}

// TestHealthSaysWhatARolloutWaitsFor: while ACLs (or TLS, gossip
// encryption) are being turned on, /v1/health says the phase and what it
// waits for, from the update plan.
func TestHealthSaysWhatARolloutWaitsFor(t *testing.T) {
	v := view(plan.Complete)
	v.Plans[plan.Update] = plan.Plan{Status: plan.InProgress, Phases: []plan.Phase{
		{Name: "acl-rollout", Status: plan.InProgress, Steps: []plan.Step{
			{Name: "acl-phase-1", Status: plan.InProgress, Message: "turning ACLs on, phase 1 of 3 (...): waiting for the scheduler's ACL bootstrap"},
			{Name: "acl-phase-2", Status: plan.Pending, Message: "every agent ..."}}},
		{Name: "server", Status: plan.Complete}}}
	code, got, body := do(t, Handler(&fakeSource{view: v}, prometheus.NewRegistry()), "GET", "/v1/health")
	r, _ := got["rollouts"].(map[string]any)
	msg, _ := r["acl-rollout"].(string)
	if code != 200 || !strings.HasPrefix(msg, "acl-phase-1: turning ACLs on, phase 1 of 3") ||
		!strings.Contains(msg, "waiting for the scheduler's ACL bootstrap") {
		t.Fatalf("health during the ACL rollout: %d %s", code, body)
	}
	if _, _, body := do(t, Handler(&fakeSource{view: view(plan.Complete)}, prometheus.NewRegistry()), "GET", "/v1/health"); strings.Contains(body, "rollouts") {
		t.Fatalf("health without a rollout: %s", body)
	}
}

// TestConsulACLsDecideOnlyOnceEnforced: the UI proxy leaves writes to
// Consul's ACLs only when every agent enforces them with default deny:
// not without ACLs, nor in any phase of turning them on.
func TestConsulACLsDecideOnlyOnceEnforced(t *testing.T) {
	v := view(plan.Complete)
	v.Target.ACL, v.Target.ACLPhase = true, ""
	if !ConsulACLsDecide(v) {
		t.Fatal("ACLs installed: Consul must decide")
	}
	for _, phase := range []string{taskspec.ACLOpen, taskspec.ACLAllow, state.ACLRequired} {
		v.Target.ACLPhase = phase
		if ConsulACLsDecide(v) {
			t.Errorf("ACL rollout phase %q: Consul decides, want the scheduler's authentication", phase)
		}
	}
	v.Target.ACL, v.Target.ACLPhase = false, ""
	if ConsulACLsDecide(v) {
		t.Error("ACLs off: Consul decides")
	}
}
