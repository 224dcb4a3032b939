package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/api"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/plan"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// fakeScheduler is an api.Source over a fixed view: the tests run the
// scheduler's real HTTP handler on it, so the CLI reads exactly what the
// scheduler writes.
type fakeScheduler struct {
	mu       sync.Mutex
	view     api.View
	commands []string
	cmdErr   error
}

func (f *fakeScheduler) Snapshot() api.View { f.mu.Lock(); defer f.mu.Unlock(); return f.view }

func (f *fakeScheduler) command(verb, pod string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commands = append(f.commands, verb+" "+pod)
	if f.cmdErr != nil {
		return nil, f.cmdErr
	}
	for _, t := range f.view.Tasks {
		if t.Name == pod {
			return []string{pod}, nil
		}
	}
	return nil, fmt.Errorf("%w %q (GET /v1/pod lists the pods)", api.ErrUnknownPod, pod)
}

func (f *fakeScheduler) Restart(_ context.Context, pod string) ([]string, error) {
	return f.command("restart", pod)
}

func (f *fakeScheduler) Replace(_ context.Context, pod string) ([]string, error) {
	return f.command("replace", pod)
}

func (f *fakeScheduler) PlanCommand(_ context.Context, c api.PlanCommand) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commands = append(f.commands, fmt.Sprintf("%s %s %s %s", c.Verb, c.Plan, c.Phase, c.Step))
	if c.Verb == "continue" {
		return "", fmt.Errorf("%w: plan %s is not interrupted", api.ErrAlready, c.Plan)
	}
	if f.cmdErr != nil {
		return "", f.cmdErr
	}
	return "Received cmd: " + c.Verb, nil
}

func (f *fakeScheduler) Configurations(context.Context) ([]string, error) { return []string{}, nil }

func (f *fakeScheduler) Configuration(_ context.Context, id string) (json.RawMessage, error) {
	return nil, fmt.Errorf("%w: configuration %q", api.ErrNotFound, id)
}

var (
	healthy  = true
	launched = time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)
)

func testView() api.View {
	tg := state.TargetFrom(config.Defaults())
	return api.View{
		FrameworkID: "fw-1", Subscribed: true, Target: tg,
		Tasks: []state.Task{
			{Name: "consul-server-0", Role: taskspec.RoleServer, TaskID: "consul-server-0__a", AgentID: "S0", State: "TASK_RUNNING",
				Reason: "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED", IP: "10.0.0.1", Hostname: "agent-1", Ports: tg.Ports, Healthy: &healthy, ConfigID: tg.ConfigID,
				Reservation: &state.Reservation{ID: "res-0", PersistenceID: "consul-server-0-vol"}, LaunchedAt: launched, UpdatedAt: launched},
			{Name: "consul-server-1", Role: taskspec.RoleServer, TaskID: "consul-server-1__b", AgentID: "S1", State: "TASK_FAILED",
				Reason: "REASON_COMMAND_EXECUTOR_FAILED", Message: "exited with\nstatus 1", IP: "10.0.0.2", Hostname: "agent-2",
				Ports: tg.Ports, Failures: 2, Goal: state.GoalRestart},
			{Name: "consul-client-s2", Role: taskspec.RoleClient, TaskID: "consul-client-s2__c", AgentID: "S2", State: "TASK_RUNNING",
				IP: "10.0.0.3", Hostname: "agent-3", Ports: tg.Ports},
			{Name: "consul-server-2", Role: taskspec.RoleServer, Ports: tg.Ports},
		},
		Plans: map[string]plan.Plan{
			plan.Deploy: {Status: plan.InProgress, Strategy: "serial", Errors: []string{}, Phases: []plan.Phase{
				{ID: "p1", Name: "server", Status: plan.InProgress, Strategy: "parallel", Steps: []plan.Step{
					{ID: "s0", Name: "consul-server-0", Status: plan.Complete, Message: "TASK_RUNNING on agent-1"},
					{ID: "s1", Name: "consul-server-1", Status: plan.Delayed, Message: "relaunch after backoff:\n 4s"},
					{ID: "s2", Name: "consul-server-2", Status: plan.Pending, Message: "waiting for an offer"},
				}},
				{ID: "p2", Name: "client", Status: plan.Pending, Strategy: "parallel", Steps: []plan.Step{}},
			}},
			plan.Recovery: {Status: plan.Error, Strategy: "serial", Errors: []string{"cannot place consul-server-2: no agent"}, Phases: []plan.Phase{}},
		},
	}
}

// request is one request the scheduler saw.
type request struct{ method, path, auth string }

type testServer struct {
	*httptest.Server
	sched *fakeScheduler
	mu    sync.Mutex
	reqs  []request
}

func (s *testServer) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

// startScheduler serves the real scheduler API over testView, recording
// every request.
func startScheduler(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{sched: &fakeScheduler{view: testView()}}
	h := api.Handler(ts.sched, prometheus.NewRegistry())
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.reqs = append(ts.reqs, request{r.Method, r.URL.Path, r.Header.Get("Authorization")})
		ts.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func commands(t *testing.T, base string, asJSON bool) (*Commands, *bytes.Buffer) {
	t.Helper()
	c, err := NewClient(Location{BaseURL: base, From: "--url"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	return &Commands{Client: c, Out: &out, JSON: asJSON}, &out
}

// lines trims trailing blanks, which tabwriter leaves on empty cells.
func lines(s string) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range ls {
		ls[i] = strings.TrimRight(ls[i], " ")
	}
	return strings.Join(ls, "\n")
}

func expect(t *testing.T, got, want string) {
	t.Helper()
	if lines(got) != lines(want) {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

var ctx = context.Background()

func TestPlanShowTable(t *testing.T) {
	s := startScheduler(t)
	c, out := commands(t, s.URL, false)
	if err := c.PlanShow(ctx, ""); err != nil {
		t.Fatal(err)
	}
	expect(t, out.String(), `Plan deploy: IN_PROGRESS (serial strategy)
PHASE / STEP       STATUS       MESSAGE
server (parallel)  IN_PROGRESS
  consul-server-0  COMPLETE     TASK_RUNNING on agent-1
  consul-server-1  DELAYED      relaunch after backoff: 4s
  consul-server-2  PENDING      waiting for an offer
client (parallel)  PENDING
  (no steps)
`)
	if got := s.requests(); len(got) != 1 || got[0].method != "GET" || got[0].path != "/v1/plans/deploy" {
		t.Fatalf("requests %v", got)
	}
}

// A plan with errors answers 417; it is shown, errors included.
func TestPlanShowWithErrors(t *testing.T) {
	s := startScheduler(t)
	c, out := commands(t, s.URL, false)
	if err := c.PlanShow(ctx, "recovery"); err != nil {
		t.Fatal(err)
	}
	expect(t, out.String(), `Plan recovery: ERROR (serial strategy)
PHASE / STEP  STATUS  MESSAGE
Errors:
  - cannot place consul-server-2: no agent
`)
}

// --json prints the API's own document.
func TestPlanShowJSON(t *testing.T) {
	s := startScheduler(t)
	c, out := commands(t, s.URL, true)
	if err := c.PlanShow(ctx, "deploy"); err != nil {
		t.Fatal(err)
	}
	var got, want any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	b, _ := json.Marshal(testView().Plans[plan.Deploy])
	_ = json.Unmarshal(b, &want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestPlanList(t *testing.T) {
	s := startScheduler(t)
	c, out := commands(t, s.URL, false)
	if err := c.PlanList(ctx); err != nil {
		t.Fatal(err)
	}
	expect(t, out.String(), "deploy\nrecovery\n")
}

func TestPlanShowUnknown(t *testing.T) {
	s := startScheduler(t)
	c, _ := commands(t, s.URL, false)
	err := c.PlanShow(ctx, "update")
	if err == nil || !strings.Contains(err.Error(), `404 Not Found: plan "update" not found; plans: deploy, recovery`) {
		t.Fatalf("%v", err)
	}
}

// Plans built by the scheduler's own plan package decode and render.
func TestPlanFromPlanPackage(t *testing.T) {
	s := startScheduler(t)
	v := testView()
	tasks := state.Tasks{}
	for _, tk := range v.Tasks {
		tasks[tk.Name] = tk
	}
	v.Plans = plan.Build(plan.Input{Target: v.Target, Tasks: tasks, Now: launched})
	s.sched.view = v
	c, out := commands(t, s.URL, false)
	if err := c.PlanShow(ctx, "deploy"); err != nil {
		t.Fatal(err)
	}
	d := v.Plans[plan.Deploy]
	if !strings.HasPrefix(out.String(), "Plan deploy: "+d.Status+" (serial strategy)\n") {
		t.Fatalf("header:\n%s", out)
	}
	steps := 0
	for _, ph := range d.Phases {
		for _, st := range ph.Steps {
			steps++
			found := false
			for _, l := range strings.Split(out.String(), "\n") {
				f := strings.Fields(l)
				found = found || len(f) >= 2 && f[0] == st.Name && f[1] == st.Status
			}
			if !found {
				t.Errorf("no line for step %s %s in\n%s", st.Name, st.Status, out)
			}
		}
	}
	if steps < 4 {
		t.Fatalf("the plan package built only %d steps", steps)
	}
}

func TestPodListAndStatus(t *testing.T) {
	s := startScheduler(t)
	c, out := commands(t, s.URL, false)
	if err := c.PodList(ctx); err != nil {
		t.Fatal(err)
	}
	expect(t, out.String(), "consul-server-0\nconsul-server-1\nconsul-client-s2\nconsul-server-2\n")

	out.Reset()
	if err := c.PodStatus(ctx, ""); err != nil {
		t.Fatal(err)
	}
	expect(t, out.String(), `POD               ROLE    STATE         HEALTHY  HOST     IP        DETAIL
consul-server-0   server  TASK_RUNNING  yes      agent-1  10.0.0.1  -
consul-server-1   server  TASK_FAILED   -        agent-2  10.0.0.2  restart requested; 2 failure(s) in a row; REASON_COMMAND_EXECUTOR_FAILED; exited with status 1
consul-client-s2  client  TASK_RUNNING  -        agent-3  10.0.0.3  -
consul-server-2   server  NOT_LAUNCHED  -        -        -         -
`)

	out.Reset()
	if err := c.PodStatus(ctx, "consul-client-s2"); err != nil {
		t.Fatal(err)
	}
	expect(t, out.String(), `POD               ROLE    STATE         HEALTHY  HOST     IP        DETAIL
consul-client-s2  client  TASK_RUNNING  -        agent-3  10.0.0.3  -
`)
	want := []string{"/v1/pod", "/v1/pod/status", "/v1/pod/consul-client-s2/status"}
	for i, r := range s.requests() {
		if r.method != "GET" || r.path != want[i] {
			t.Fatalf("request %d: %v, want GET %s", i, r, want[i])
		}
	}
}

func TestPodStatusJSON(t *testing.T) {
	s := startScheduler(t)
	c, out := commands(t, s.URL, true)
	if err := c.PodStatus(ctx, ""); err != nil {
		t.Fatal(err)
	}
	var st PodStatus
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Service != "consul" || len(st.Pods) != 4 || st.Pods[1].Status.Failures != 2 || st.Pods[0].Info.ReservationID != "res-0" {
		t.Fatalf("%+v", st)
	}
}

func TestPodInfo(t *testing.T) {
	s := startScheduler(t)
	c, out := commands(t, s.URL, false)
	if err := c.PodInfo(ctx, "consul-server-0"); err != nil {
		t.Fatal(err)
	}
	tg := testView().Target
	expect(t, out.String(), `Pod:          consul-server-0
Role:         server
Task ID:      consul-server-0__a
Agent:        S0
Host:         agent-1 (10.0.0.1)
Ports:        server 8300, serf-lan 8301, serf-wan 8302, https 8501, grpc-tls 8503, dns 8600
Config ID:    `+tg.ConfigID+`
Reservation:  res-0
Volume:       consul-server-0-vol
Launched:     2026-11-25T06:00:00Z
State:        TASK_RUNNING (REASON_TASK_HEALTH_CHECK_STATUS_UPDATED)
Healthy:      yes
Failures:     0
Updated:      2026-11-25T06:00:00Z
`)
	out.Reset()
	c.JSON = true
	if err := c.PodInfo(ctx, "consul-server-1"); err != nil {
		t.Fatal(err)
	}
	var infos []PodInfo
	if err := json.Unmarshal(out.Bytes(), &infos); err != nil || len(infos) != 1 || infos[0].Info.Goal != "RESTART" {
		t.Fatalf("%v %s", err, out)
	}
}

// An unknown pod is an error that lists the pods there are.
func TestUnknownPodListsPods(t *testing.T) {
	s := startScheduler(t)
	c, _ := commands(t, s.URL, false)
	for name, f := range map[string]func() error{
		"info":    func() error { return c.PodInfo(ctx, "consul-server-9") },
		"status":  func() error { return c.PodStatus(ctx, "consul-server-9") },
		"restart": func() error { return c.PodRestart(ctx, "consul-server-9") },
		"replace": func() error { return c.PodReplace(ctx, "consul-server-9") },
	} {
		err := f()
		want := `pod "consul-server-9" not found; the pods are: consul-server-0, consul-server-1, consul-client-s2, consul-server-2`
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestPodRestartAndReplace(t *testing.T) {
	s := startScheduler(t)
	s.Close()
	s.Server = httptest.NewServer(s.Config.Handler)
	t.Cleanup(s.Close)
	c, out := commands(t, s.URL, false)
	c.Client.loc.Token = "tok-123"
	if err := c.PodRestart(ctx, "consul-server-1"); err != nil {
		t.Fatal(err)
	}
	expect(t, out.String(), "Restarting pod consul-server-1: tasks consul-server-1\nFollow it with `pod status consul-server-1` and `plan show recovery`.\n")
	out.Reset()
	c.JSON = true
	if err := c.PodReplace(ctx, "consul-server-0"); err != nil {
		t.Fatal(err)
	}
	var res CommandResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Pod != "consul-server-0" || fmt.Sprint(res.Tasks) != "[consul-server-0]" {
		t.Fatalf("%v %s", err, out)
	}
	if fmt.Sprint(s.sched.commands) != "[restart consul-server-1 replace consul-server-0]" {
		t.Fatalf("scheduler got %v", s.sched.commands)
	}
	want := []request{{"POST", "/v1/pod/consul-server-1/restart", "token=tok-123"}, {"POST", "/v1/pod/consul-server-0/replace", "token=tok-123"}}
	if got := s.requests(); !reflect.DeepEqual(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
}

// A refused command (409) carries the scheduler's reason.
func TestPodCommandConflict(t *testing.T) {
	s := startScheduler(t)
	s.sched.cmdErr = errors.New(`pod "consul-server-2" has no task to restart yet`)
	c, _ := commands(t, s.URL, false)
	err := c.PodRestart(ctx, "consul-server-2")
	if err == nil || !strings.Contains(err.Error(), `409 Conflict: pod "consul-server-2" has no task to restart yet`) {
		t.Fatalf("%v", err)
	}
}

func TestEndpoints(t *testing.T) {
	s := startScheduler(t)
	c, out := commands(t, s.URL, false)
	if err := c.Endpoints(ctx, ""); err != nil {
		t.Fatal(err)
	}
	expect(t, out.String(), "dns\ngrpc-tls\nhttps\nserf-lan\nserf-wan\nserver\n")
	out.Reset()
	if err := c.Endpoints(ctx, "https"); err != nil {
		t.Fatal(err)
	}
	expect(t, out.String(), `ADDRESS        DNS                                 ROLE
10.0.0.1:8501  consul-server-0.consul.mesos:8501   server
10.0.0.3:8501  consul-client-s2.consul.mesos:8501  client
Load-balanced on DC/OS: consul.consul.l4lb.thisdcos.directory:8501
`)
	out.Reset()
	c.JSON = true
	if err := c.Endpoints(ctx, "server"); err != nil {
		t.Fatal(err)
	}
	var ep Endpoint
	if err := json.Unmarshal(out.Bytes(), &ep); err != nil || fmt.Sprint(ep.Address) != "[10.0.0.1:8300]" {
		t.Fatalf("%v %s", err, out)
	}
	// TLS (the default): plain HTTP is off, so no http endpoint.
	if err := c.Endpoints(ctx, "http"); err == nil || !strings.Contains(err.Error(), `endpoint "http" not found`) {
		t.Fatalf("%v", err)
	}
}

// TestPlanOps: the SDK CLI's plan verbs map to the API's operations, a
// 208 says there was nothing to do, a refusal carries its reason.
func TestPlanOps(t *testing.T) {
	s := startScheduler(t)
	c, out := commands(t, s.URL, false)
	if err := c.PlanOp(ctx, "pause", []string{"update", "server"}); err != nil {
		t.Fatal(err)
	}
	if err := c.PlanOp(ctx, "resume", []string{"update"}); err != nil {
		t.Fatal(err)
	}
	if err := c.PlanOp(ctx, "force-complete", []string{"update", "server", "consul-server-1"}); err != nil {
		t.Fatal(err)
	}
	expect(t, out.String(), "Received cmd: interrupt\nNothing to do: already reported: plan update is not interrupted\nReceived cmd: forceComplete\n")
	want := "[interrupt update server  continue update   forceComplete update server consul-server-1]"
	if fmt.Sprint(s.sched.commands) != want {
		t.Fatalf("scheduler got %q, want %q", fmt.Sprint(s.sched.commands), want)
	}
	got := s.requests()
	if len(got) != 3 || got[2].path != "/v1/plans/update/forceComplete" {
		t.Fatalf("requests %v", got)
	}
	s.sched.cmdErr = fmt.Errorf("%w: plan recovery cannot be interrupted", api.ErrConflict)
	if err := c.PlanOp(ctx, "stop", []string{"recovery"}); err == nil || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "cannot be interrupted") {
		t.Fatalf("refused stop: %v", err)
	}
	if err := c.PlanOp(ctx, "pause", nil); err == nil {
		t.Fatal("pause without a plan")
	}
}

// TestUpdateStart: `update start --options` posts Cosmos's service update
// (version 1 media types, appId, options, replace) with the DC/OS token,
// to the cluster the scheduler was found through, or to --cosmos.
func TestUpdateStart(t *testing.T) {
	var got struct {
		path, ctype, accept, auth string
		body                      map[string]any
	}
	cosmos := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.path, got.ctype, got.accept, got.auth = r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Accept"), r.Header.Get("Authorization")
		_ = json.NewDecoder(r.Body).Decode(&got.body)
		w.Header().Set("Content-Type", cosmosUpdateResponse)
		_, _ = w.Write([]byte(`{"marathonDeploymentId": "d-1", "resolvedOptions": {}}`))
	}))
	t.Cleanup(cosmos.Close)
	c, err := NewClient(Location{BaseURL: cosmos.URL + "/service/dev/consul", Service: "dev/consul", Token: "tok", From: "DCOS_URL"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ops := &Commands{Client: c, Out: &out}
	if err := ops.UpdateStart(ctx, "", "dev/consul", []byte(`{"servers": {"cpus": 1}}`), false); err != nil {
		t.Fatal(err)
	}
	if got.path != "/cosmos/service/update" || got.ctype != cosmosUpdateRequest || got.accept != cosmosUpdateResponse || got.auth != "token=tok" {
		t.Errorf("request %+v", got)
	}
	if fmt.Sprint(got.body) != "map[appId:/dev/consul options:map[servers:map[cpus:1]] replace:false]" {
		t.Errorf("body %v", got.body)
	}
	if !strings.Contains(out.String(), "deployment d-1") || !strings.Contains(out.String(), "update status") {
		t.Errorf("output %q", out.String())
	}
	if err := ops.UpdateStart(ctx, "", "dev/consul", []byte(`[1]`), false); err == nil {
		t.Errorf("options that are not an object accepted")
	}
	direct, _ := NewClient(Location{BaseURL: "http://127.0.0.1:1", From: "--url"}, time.Second)
	if _, err := (&Commands{Client: direct}).CosmosBase(""); err == nil || !strings.Contains(err.Error(), EnvCosmosURL) {
		t.Errorf("no Cosmos for a --url scheduler: %v", err)
	}
}

// TestOperatorTokenGoesToTheSchedulerOnly: the scheduler's operator token
// is never sent to Cosmos.
func TestOperatorTokenGoesToTheSchedulerOnly(t *testing.T) {
	var sawToken bool
	cosmos := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawToken = r.Header.Get(OperatorTokenHeader) != ""
		_, _ = w.Write([]byte(`{"marathonDeploymentId": "d"}`))
	}))
	t.Cleanup(cosmos.Close)
	c, err := NewClient(Location{BaseURL: "http://127.0.0.1:1", OperatorToken: "op-secret", From: "--url"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CosmosUpdate(ctx, cosmos.URL, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if sawToken {
		t.Fatal("the operator token was sent to Cosmos")
	}
}
