package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dcos-consul/dcos-consul/internal/mesossim"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/api"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/plan"
	"github.com/dcos-consul/dcos-consul/scheduler/reconcile"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// Integration tests of the scheduler against the simulated Mesos cluster
// with in-process executors (no Consul): placement, reservations, volumes,
// relaunch, restarts and reconciliation. Loopback 127.2.x.y only.

var simPort = struct {
	sync.Mutex
	next int
}{next: 0}

// simIPs hands each test its own 127.2.<n>.0/24.
func simNet() int {
	simPort.Lock()
	defer simPort.Unlock()
	simPort.next++
	return simPort.next
}

type harness struct {
	t       *testing.T
	cluster *mesossim.Cluster
	cfg     config.Config
	store   *memStore
	log     *zap.Logger
	net     int

	consul consulAdmin

	cancel context.CancelFunc
	done   chan error
	sched  *Scheduler
	apiURL string
}

func startSim(t *testing.T, agents int, mod ...func(*mesossim.Options)) *harness {
	t.Helper()
	n := simNet()
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	o := mesossim.Options{
		MasterIP:           fmt.Sprintf("127.2.%d.1", n),
		Agents:             agents,
		FirstAgentIP:       fmt.Sprintf("127.2.%d.10", n),
		InProcess:          true,
		AllocationInterval: 200 * time.Millisecond,
		Logger:             log.Named("sim").WithOptions(zap.IncreaseLevel(zap.WarnLevel)),
	}
	for _, m := range mod {
		m(&o)
	}
	ctx, cancel := context.WithCancel(context.Background()) // cancelling closes the cluster
	t.Cleanup(cancel)
	c, err := mesossim.Start(ctx, o)
	if err != nil {
		t.Fatalf("start the simulated cluster: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	cfg := config.Defaults()
	cfg.MesosMaster = c.MasterURL()
	cfg.ExecutorURI = "http://127.2.0.1:1/dcos-consul"
	cfg.ReplaceAfter = 10 * time.Second
	return &harness{t: t, cluster: c, cfg: cfg, store: newMemStore(), log: log, net: n, consul: &fakeConsul{}}
}

// start runs the scheduler (again) on the harness's store.
func (h *harness) start() {
	h.t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.2.%d.1:0", h.net))
	if err != nil {
		h.t.Fatal(err)
	}
	h.apiURL = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	schedCh := make(chan *Scheduler, 1)
	if fc, ok := h.consul.(*fakeConsul); ok {
		fc.mu.Lock()
		fc.h = h
		fc.mu.Unlock()
	}
	// The in-process stand-ins for executors ignore MESSAGEs: a departing
	// server's graceful leave never comes, and the fallback (peer removal,
	// kill) follows after a short LeaveTimeout. internal/dev runs the real
	// executor, which leaves.
	opts := Options{Store: h.store, Listener: ln, ResubscribeMax: 2 * time.Second, EvictAfter: 3 * time.Second, consul: h.consul,
		LeaveTimeout: 2 * time.Second, onStart: func(s *Scheduler) { schedCh <- s }}
	go func() { h.done <- RunWith(ctx, h.cfg, h.log.Named("scheduler"), opts) }()
	select {
	case h.sched = <-schedCh:
	case err := <-h.done:
		h.t.Fatalf("scheduler stopped at once: %v", err)
	case <-time.After(30 * time.Second):
		h.t.Fatal("scheduler did not start")
	}
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("scheduler returned %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Error("scheduler did not stop within 30s")
	}
	h.cancel = nil
}

// eventually polls cond until it holds or the timeout passes.
func (h *harness) eventually(what string, timeout time.Duration, cond func(api.View) error) api.View {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		v := h.sched.Snapshot()
		if last = cond(v); last == nil {
			return v
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.t.Fatalf("%s: not within %s: %v\n%s", what, timeout, last, dump(h.sched.Snapshot()))
	return api.View{}
}

func dump(v api.View) string {
	b, _ := json.MarshalIndent(struct {
		Tasks []state.Task
		Plan  plan.Plan
	}{v.Tasks, v.Plans[plan.Deploy]}, "", "  ")
	return string(b)
}

func deployed(servers, clients int) func(api.View) error {
	return func(v api.View) error {
		if !v.Subscribed {
			return fmt.Errorf("not subscribed")
		}
		var s, c int
		agents := map[string]string{}
		for _, t := range v.Tasks {
			if !t.Running() {
				return fmt.Errorf("%s is %s", t.Name, t.Describe())
			}
			if other, dup := agents[t.AgentID]; dup {
				return fmt.Errorf("%s and %s share agent %s", t.Name, other, t.AgentID)
			}
			agents[t.AgentID] = t.Name
			if t.Role == taskspec.RoleServer {
				s++
			} else {
				c++
			}
		}
		if s != servers || c != clients {
			return fmt.Errorf("%d servers and %d clients running, want %d and %d", s, c, servers, clients)
		}
		if st := v.Plans[plan.Deploy].Status; st != plan.Complete {
			return fmt.Errorf("deploy plan %s", st)
		}
		return nil
	}
}

func taskByName(v api.View, name string) state.Task {
	for _, t := range v.Tasks {
		if t.Name == name {
			return t
		}
	}
	return state.Task{}
}

func (h *harness) get(path string) (int, []byte) {
	h.t.Helper()
	resp, err := http.Get(h.apiURL + path)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// post sends an operator's POST, with the operator token.
func (h *harness) post(path string) (int, []byte) {
	h.t.Helper()
	return h.postAs(path, h.sched.secrets.Get().OperatorToken)
}

func (h *harness) postAs(path, token string) (int, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.apiURL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestSimDeploysServersOnReservationsAndClientsEverywhereElse(t *testing.T) {
	h := startSim(t, 5)
	h.start()
	v := h.eventually("3 servers and 2 clients running", 60*time.Second, deployed(3, 2))
	for _, tk := range v.Tasks {
		if tk.Role == taskspec.RoleServer {
			if tk.Reservation == nil || !tk.Reservation.Confirmed || tk.Reservation.PersistenceID == "" {
				t.Errorf("%s has no confirmed reservation: %+v", tk.Name, tk.Reservation)
			}
		}
		if tk.ConfigID != v.Target.ConfigIDOf(tk.Role) {
			t.Errorf("%s config %s, target %s", tk.Name, tk.ConfigID, v.Target.ConfigIDOf(tk.Role))
		}
	}
	if code, body := h.get("/v1/health"); code != http.StatusOK {
		t.Errorf("health %d %s", code, body)
	}
	if code, body := h.get("/v1/plans/deploy"); code != http.StatusOK {
		t.Errorf("deploy plan %d %s", code, body)
	}
	code, body := h.get("/v1/endpoints/https") // TLS by default: HTTPS only
	var ep struct{ Address, DNS []string }
	if err := json.Unmarshal(body, &ep); code != 200 || err != nil || len(ep.Address) != 5 {
		t.Errorf("endpoints %d %s", code, body)
	}
	code, body = h.get("/metrics")
	if code != 200 || !contains(body, "dcos_consul_scheduler_offers_accepted_total") {
		t.Errorf("metrics %d", code)
	}
	if fid, err := h.store.Get(context.Background(), keyFrameworkID); err != nil || string(fid) != v.FrameworkID {
		t.Errorf("framework id stored %q %v, want %q", fid, err, v.FrameworkID)
	}
}

func contains(b []byte, s string) bool {
	return len(b) > 0 && string(b) != "" && (len(s) == 0 || indexOf(string(b), s) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestSimRelaunchesAFailedServerOnItsAgentWithItsVolume(t *testing.T) {
	h := startSim(t, 4)
	h.start()
	v := h.eventually("deployed", 60*time.Second, deployed(3, 1))
	before := taskByName(v, "consul-server-1")
	if err := h.cluster.KillExecutor(before.AgentID, v.FrameworkID, before.TaskID); err != nil {
		t.Fatalf("kill executor: %v", err)
	}
	v = h.eventually("consul-server-1 relaunched", 60*time.Second, func(v api.View) error {
		now := taskByName(v, "consul-server-1")
		if now.TaskID == before.TaskID {
			return fmt.Errorf("still the old task: %s", now.Describe())
		}
		return deployed(3, 1)(v)
	})
	after := taskByName(v, "consul-server-1")
	if after.AgentID != before.AgentID || after.Reservation.ID != before.Reservation.ID || after.Reservation.PersistenceID != before.Reservation.PersistenceID {
		t.Fatalf("relaunched elsewhere or on other resources:\nbefore %+v %+v\nafter  %+v %+v", before, before.Reservation, after, after.Reservation)
	}
	for _, name := range []string{"consul-server-0", "consul-server-2"} {
		if taskByName(v, name).TaskID == "" {
			t.Fatalf("%s lost", name)
		}
	}
}

func TestSimSchedulerRestartKeepsFrameworkAndTasks(t *testing.T) {
	h := startSim(t, 4)
	h.start()
	v1 := h.eventually("deployed", 60*time.Second, deployed(3, 1))
	h.stop()
	h.start()
	v2 := h.eventually("deployed again", 60*time.Second, func(v api.View) error {
		if len(h.sched.reconcilingSnapshot()) > 0 {
			return fmt.Errorf("reconciliation pending")
		}
		return deployed(3, 1)(v)
	})
	if v2.FrameworkID != v1.FrameworkID {
		t.Fatalf("framework id changed: %s -> %s", v1.FrameworkID, v2.FrameworkID)
	}
	for _, a := range v1.Tasks {
		if b := taskByName(v2, a.Name); b.TaskID != a.TaskID {
			t.Errorf("%s relaunched across a scheduler restart: %s -> %s", a.Name, a.TaskID, b.TaskID)
		}
	}
}

func TestSimTasksChangedWhileSchedulerWasAwayArePickedUp(t *testing.T) {
	h := startSim(t, 4)
	h.start()
	v1 := h.eventually("deployed", 60*time.Second, deployed(3, 1))
	h.stop()
	victim := taskByName(v1, "consul-server-0")
	if err := h.cluster.KillExecutor(victim.AgentID, v1.FrameworkID, victim.TaskID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	h.start()
	v2 := h.eventually("server relaunched after the restart", 60*time.Second, func(v api.View) error {
		if taskByName(v, "consul-server-0").TaskID == victim.TaskID {
			return fmt.Errorf("consul-server-0 still %s", taskByName(v, "consul-server-0").Describe())
		}
		return deployed(3, 1)(v)
	})
	if got := taskByName(v2, "consul-server-0"); got.AgentID != victim.AgentID {
		t.Fatalf("moved from %s to %s", victim.AgentID, got.AgentID)
	}
}

func TestSimMasterRestartCostsNoTask(t *testing.T) {
	h := startSim(t, 4)
	h.start()
	v1 := h.eventually("deployed", 60*time.Second, deployed(3, 1))
	if err := h.cluster.RestartMaster(); err != nil {
		t.Fatal(err)
	}
	h.eventually("resubscribed and reconciled", 90*time.Second, func(v api.View) error {
		if h.sched.subscriptions() < 2 {
			return fmt.Errorf("not re-subscribed yet")
		}
		if len(h.sched.reconcilingSnapshot()) > 0 {
			return fmt.Errorf("reconciliation pending")
		}
		return deployed(3, 1)(v)
	})
	v2 := h.sched.Snapshot()
	if v2.FrameworkID != v1.FrameworkID {
		t.Fatalf("framework id changed")
	}
	for _, a := range v1.Tasks {
		if b := taskByName(v2, a.Name); b.TaskID != a.TaskID {
			t.Errorf("%s relaunched across a master restart", a.Name)
		}
	}
}

func TestSimClientsFollowAgents(t *testing.T) {
	h := startSim(t, 4)
	h.start()
	h.eventually("deployed", 60*time.Second, deployed(3, 1))
	info, err := h.cluster.AddAgent()
	if err != nil {
		t.Fatal(err)
	}
	v := h.eventually("a client on the new agent", 60*time.Second, deployed(3, 2))
	if taskByName(v, state.ClientName(info.ID)).TaskID == "" {
		t.Fatalf("no client on %s", info.ID)
	}
}

// fakeConsul records cleanup requests; RemoveServer takes a while, so a
// replacement placed before it returns is caught. Its raft view (the
// simulator's in-process executors run no Consul) is derived from the
// scheduler's records: every running server whose peer was not removed is
// a healthy voter unless hold says otherwise; the leader stays until it stops or hands over.
type fakeConsul struct {
	mu        sync.Mutex
	removed   []string
	done      time.Time
	h         *harness
	hold      func(state.Task) bool // true: a non-voter
	leader    string
	transfers []string
	down      bool // no Consul server answers
	autopilot []uint
	serfAlive int // RemoveServer answers errSerfAlive this many more times to a replacement's removal
}

func (f *fakeConsul) RemoveServer(ctx context.Context, via []string, node, raftAddr string, leave memberLeave) error {
	time.Sleep(2 * time.Second)
	f.mu.Lock()
	defer f.mu.Unlock()
	if leave == pruneOnceFailed && f.serfAlive > 0 {
		f.serfAlive--
		f.removed = append(f.removed, "serf alive "+node)
		return fmt.Errorf("%w: %s", errSerfAlive, node)
	}
	f.removed = append(f.removed, fmt.Sprintf("%s %s via %d (%s)", node, raftAddr, len(via), leaveNames[leave]))
	f.done = time.Now()
	return nil
}

func (f *fakeConsul) RaftHealth(ctx context.Context, via []string) (*reconcile.RaftHealth, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down || f.h == nil || f.h.sched == nil {
		return nil, errNoConsul
	}
	v := f.h.sched.Snapshot()
	out := &reconcile.RaftHealth{}
	healthy, leaderUp := 0, false
	for _, t := range v.Tasks {
		if t.Role != taskspec.RoleServer || !t.Running() || t.PeerRemoved {
			continue // a removed peer is out of the configuration, running or not
		}
		voter := f.hold == nil || !f.hold(t)
		if voter {
			healthy++
		}
		if t.Name == f.leader {
			leaderUp = true
		}
		out.Servers = append(out.Servers, reconcile.RaftServer{ID: "id-" + t.Name, Name: t.Name,
			Address: net.JoinHostPort(t.IP, fmt.Sprint(t.Ports.Server)), Voter: voter, Healthy: voter})
	}
	if !leaderUp {
		f.leader = ""
		for _, s := range out.Servers {
			if s.Voter {
				f.leader = s.Name
				break
			}
		}
	}
	for i := range out.Servers {
		out.Servers[i].Leader = out.Servers[i].Name == f.leader
	}
	n := v.Target.Servers
	out.Healthy = healthy == len(out.Servers) && len(out.Servers) >= n
	out.FailureTolerance = healthy - (n/2 + 1)
	if out.FailureTolerance < 0 {
		out.FailureTolerance = 0
	}
	return out, nil
}

func (f *fakeConsul) TransferLeader(ctx context.Context, via []string, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errNoConsul
	}
	to := strings.TrimPrefix(id, "id-")
	f.transfers = append(f.transfers, f.leader+"->"+to)
	f.leader = to
	return nil
}

func (f *fakeConsul) SetAutopilot(ctx context.Context, via []string, minQuorum uint, cleanup bool) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return false, errNoConsul
	}
	f.autopilot = append(f.autopilot, minQuorum)
	return true, nil
}

func (f *fakeConsul) ForceLeave(ctx context.Context, via []string, node string, prune bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, fmt.Sprintf("force-leave %s (prune %v)", node, prune))
	return nil
}

var leaveNames = map[memberLeave]string{keepMember: "keep member", pruneOnceFailed: "prune once failed", pruneNow: "prune now"}

func TestSimRemovedAgentsServerIsReplacedElsewhere(t *testing.T) {
	h := startSim(t, 5)
	// Serf sees the old server alive at the first two tries: the
	// replacement waits, then goes on.
	fc := &fakeConsul{serfAlive: 2}
	h.consul = fc
	h.start()
	v := h.eventually("deployed", 60*time.Second, deployed(3, 2))
	gone := taskByName(v, "consul-server-2")
	if err := h.cluster.RemoveAgent(gone.AgentID); err != nil {
		t.Fatal(err)
	}
	// The server is unreachable; after ReplaceAfter (10s) it is moved. No
	// agent is free, so after EvictAfter it stops a client and takes its
	// agent; the client on the removed agent is forgotten.
	v = h.eventually("consul-server-2 replaced on another agent", 90*time.Second, func(v api.View) error {
		s := taskByName(v, "consul-server-2")
		if s.AgentID == gone.AgentID || !s.Running() {
			return fmt.Errorf("consul-server-2: %s on %s", s.Describe(), s.AgentID)
		}
		return deployed(3, 1)(v)
	})
	s := taskByName(v, "consul-server-2")
	if s.Reservation == nil || s.Reservation.ID == gone.Reservation.ID {
		t.Errorf("replacement reuses the old reservation")
	}
	fc.mu.Lock()
	removed, doneAt := fmt.Sprint(fc.removed), fc.done
	fc.mu.Unlock()
	if want := fmt.Sprintf("consul-server-2 %s:8300 via 2 (prune once failed)", gone.IP); !contains([]byte(removed), want) ||
		indexOf(removed, "serf alive consul-server-2") < 0 || indexOf(removed, "serf alive consul-server-2") > indexOf(removed, want) {
		t.Errorf("raft peer removal %s, want %q after serf saw it failed", removed, want)
	}
	if s.LaunchedAt.Before(doneAt) {
		t.Errorf("replacement launched at %s, before the old peer was removed at %s", s.LaunchedAt, doneAt)
	}
	// A new agent gets a client.
	info, err := h.cluster.AddAgent()
	if err != nil {
		t.Fatal(err)
	}
	v = h.eventually("client on the new agent", 60*time.Second, deployed(3, 2))
	if taskByName(v, state.ClientName(info.ID)).TaskID == "" {
		t.Fatalf("no client on the new agent")
	}
}

// postUntilOK posts until the answer is 200 or the time is up.
func (h *harness) postUntilOK(path string, timeout time.Duration) (int, []byte) {
	deadline := time.Now().Add(timeout)
	for {
		code, body := h.post(path)
		if code == 200 || time.Now().After(deadline) {
			return code, body
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func TestSimRestartAndReplaceThroughTheAPI(t *testing.T) {
	h := startSim(t, 5)
	h.start()
	v := h.eventually("deployed", 60*time.Second, deployed(3, 2))
	before := taskByName(v, "consul-server-0")
	// Without the operator token nothing changes.
	for _, path := range []string{"/v1/pod/consul-server-0/restart", "/v1/pod/consul-server-0/replace", "/v1/pod/consul-client-x/replace"} {
		for _, tok := range []string{"", "not-the-token"} {
			if code, body := h.postAs(path, tok); code != 401 {
				t.Fatalf("POST %s with token %q: %d %s, want 401", path, tok, code, body)
			}
		}
	}
	time.Sleep(500 * time.Millisecond)
	for _, n := range v.Tasks {
		if now := taskByName(h.sched.Snapshot(), n.Name); now.TaskID != n.TaskID || now.Goal != n.Goal {
			t.Fatalf("an unauthenticated POST changed %s: %s -> %s", n.Name, n.Describe(), now.Describe())
		}
	}
	// Refused (409) until Consul's raft view shows a settled cluster.
	if code, body := h.postUntilOK("/v1/pod/consul-server-0/restart", 30*time.Second); code != 200 {
		t.Fatalf("restart: %d %s", code, body)
	}
	v = h.eventually("restarted in place", 60*time.Second, func(v api.View) error {
		s := taskByName(v, "consul-server-0")
		if s.TaskID == before.TaskID || !s.Running() {
			return fmt.Errorf("consul-server-0 %s", s.Describe())
		}
		return nil
	})
	if s := taskByName(v, "consul-server-0"); s.AgentID != before.AgentID || s.Reservation.ID != before.Reservation.ID {
		t.Fatalf("restart moved the server")
	}
	if code, _ := h.post("/v1/pod/nope/restart"); code != 404 {
		t.Fatalf("unknown pod: %d", code)
	}
	if code, _ := h.get("/v1/pod/consul-server-0/restart"); code != 405 {
		t.Fatalf("GET restart: %d", code)
	}
	// Replace a client: it is killed and relaunched (clients belong to
	// their agent, so "replace" starts it afresh there).
	cl := ""
	for _, tk := range v.Tasks {
		if tk.Role == taskspec.RoleClient {
			cl = tk.Name
		}
	}
	old := taskByName(v, cl)
	if code, body := h.post("/v1/pod/" + cl + "/replace"); code != 200 {
		t.Fatalf("replace: %d %s", code, body)
	}
	h.eventually("client replaced", 60*time.Second, func(v api.View) error {
		c := taskByName(v, cl)
		if c.TaskID == old.TaskID || !c.Running() {
			return fmt.Errorf("%s: %s", cl, c.Describe())
		}
		return nil
	})
}

// masterState reads the simulator's /master/state.
func (h *harness) masterState() map[string]any {
	h.t.Helper()
	resp, err := http.Get(h.cluster.MasterURL() + "/master/state")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		h.t.Fatal(err)
	}
	return st
}

func TestSimUninstallRemovesTasksReservationsAndTheFramework(t *testing.T) {
	h := startSim(t, 4)
	h.start()
	v := h.eventually("deployed", 60*time.Second, deployed(3, 1))
	reserved := 0
	for _, a := range h.masterState()["slaves"].([]any) {
		if res, _ := a.(map[string]any)["reserved_resources"].(map[string]any); len(res) > 0 {
			reserved++
		}
	}
	if reserved != 3 {
		t.Fatalf("%d agents with reservations before the uninstall, want 3", reserved)
	}
	h.stop()
	h.cfg.Uninstall = true
	h.start()
	h.eventually("uninstalled", 90*time.Second, func(v api.View) error {
		if st := v.Plans[plan.Deploy].Status; st != plan.Complete {
			return fmt.Errorf("uninstall plan %s", st)
		}
		return nil
	})
	if code, body := h.get("/v1/plans/deploy"); code != 200 {
		t.Fatalf("deploy plan after uninstall: %d %s", code, body)
	}
	if keys, _ := h.store.List(context.Background(), ""); len(keys) != 0 {
		t.Fatalf("state left behind: %v", keys)
	}
	if n := h.store.destroyCount(); n != 1 {
		t.Fatalf("the store was destroyed %d times by the uninstall, want once (its own nodes, ZooKeeper's __epoch, must go too)", n)
	}
	st := h.masterState()
	for _, fw := range st["frameworks"].([]any) {
		if fw.(map[string]any)["id"] == v.FrameworkID {
			t.Fatalf("framework %s still registered", v.FrameworkID)
		}
	}
	for _, a := range st["slaves"].([]any) {
		res, _ := a.(map[string]any)["reserved_resources"].(map[string]any)
		if len(res) > 0 {
			t.Fatalf("agent %v keeps reservations %v", a.(map[string]any)["hostname"], res)
		}
	}
	// A second start in uninstall mode finds nothing to do and says so.
	h.stop()
	h.start()
	h.eventually("still uninstalled", 10*time.Second, func(v api.View) error {
		if st := v.Plans[plan.Deploy].Status; st != plan.Complete {
			return fmt.Errorf("uninstall plan %s", st)
		}
		return nil
	})
	if n := h.store.destroyCount(); n != 2 {
		t.Fatalf("the store was destroyed %d times, want twice: a start in uninstall mode removes what opening the store made again", n)
	}
}

func TestSimNothingIsSentWhileTheStateCannotBeWritten(t *testing.T) {
	h := startSim(t, 4)
	h.start()
	v := h.eventually("deployed", 60*time.Second, deployed(3, 1))
	victim := taskByName(v, "consul-server-1")
	h.store.setFail(fmt.Errorf("disk full"))
	if err := h.cluster.KillExecutor(victim.AgentID, v.FrameworkID, victim.TaskID); err != nil {
		t.Fatal(err)
	}
	// The TASK_FAILED cannot be recorded: no relaunch, and health says why.
	deadline := time.Now().Add(4 * time.Second)
	sawError := false
	for time.Now().Before(deadline) {
		if code, body := h.get("/v1/health"); code == 500 && contains(body, "disk full") {
			sawError = true
		}
		if s := taskByName(h.sched.Snapshot(), "consul-server-1"); s.TaskID != victim.TaskID {
			t.Fatalf("relaunched while the state could not be written: %+v", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !sawError {
		t.Error("health never reported the store failure")
	}
	h.store.setFail(nil)
	v = h.eventually("relaunched once the store works", 60*time.Second, func(v api.View) error {
		if taskByName(v, "consul-server-1").TaskID == victim.TaskID {
			return fmt.Errorf("not relaunched")
		}
		return deployed(3, 1)(v)
	})
	if code, body := h.get("/v1/health"); code != 200 {
		t.Fatalf("health after recovery %d %s", code, body)
	}
	if s := taskByName(v, "consul-server-1"); s.AgentID != victim.AgentID {
		t.Fatal("moved")
	}
}

func TestSimConfigChangeRestartsOneServerAtATime(t *testing.T) {
	h := startSim(t, 5)
	h.start()
	v1 := h.eventually("deployed", 60*time.Second, deployed(3, 2))
	h.stop()
	h.cfg.UI = false // every task restarts (config.CheckUpdate: restart-all)
	h.start()
	maxDown := 0
	v2 := h.eventually("every task on the new configuration", 120*time.Second, func(v api.View) error {
		down := 0
		for _, tk := range v.Tasks {
			if tk.Role == taskspec.RoleServer && !tk.Running() {
				down++
			}
		}
		if down > maxDown {
			maxDown = down
		}
		for _, tk := range v.Tasks {
			if tk.ConfigID != v.Target.ConfigIDOf(tk.Role) {
				return fmt.Errorf("%s still on %s", tk.Name, tk.ConfigID)
			}
		}
		return deployed(3, 2)(v)
	})
	if maxDown > 1 {
		t.Errorf("%d servers were down at once during the rolling restart", maxDown)
	}
	for _, a := range v1.Tasks {
		b := taskByName(v2, a.Name)
		if b.TaskID == a.TaskID {
			t.Errorf("%s not restarted", a.Name)
		}
		if a.Role == taskspec.RoleServer && (b.AgentID != a.AgentID || b.Reservation.ID != a.Reservation.ID) {
			t.Errorf("%s moved during a configuration restart", a.Name)
		}
	}
}

func TestSimRecordWrittenButACCEPTNeverSent(t *testing.T) {
	// The scheduler wrote consul-server-0's launch (TASK_STAGING, new
	// reservation) and stopped before its ACCEPT: on the next start the
	// task is reconciled as gone and relaunched on that agent, making the
	// reservation it never made, with the same IDs.
	h := startSim(t, 4)
	agent := h.cluster.Agents()[1]
	rec := state.Task{Name: "consul-server-0", Role: taskspec.RoleServer, TaskID: "consul-server-0__never-sent", AgentID: agent.ID,
		Hostname: agent.Hostname, IP: agent.IP, State: "TASK_STAGING", Ports: state.TargetFrom(h.cfg).Ports,
		Reservation: &state.Reservation{ID: "res-never-made", PersistenceID: "consul-server-0-never"}}
	b, _ := json.Marshal(rec)
	if err := h.store.Put(context.Background(), taskKey(rec.Name), b); err != nil {
		t.Fatal(err)
	}
	h.start()
	v := h.eventually("deployed", 60*time.Second, deployed(3, 1))
	s := taskByName(v, "consul-server-0")
	if s.AgentID != agent.ID || s.Reservation.ID != "res-never-made" || s.Reservation.PersistenceID != "consul-server-0-never" || !s.Reservation.Confirmed {
		t.Fatalf("consul-server-0: %+v %+v", s, s.Reservation)
	}
	if s.TaskID == rec.TaskID {
		t.Fatal("the never-launched task ID was kept")
	}
}

func TestSimPendingPeerRemovalSurvivesARestart(t *testing.T) {
	// The scheduler moved consul-server-0 off a dead agent and stopped
	// before the old raft peer was removed: the next start removes it,
	// then places the server.
	h := startSim(t, 4)
	fc := &fakeConsul{}
	h.consul = fc
	rec := state.Task{Name: "consul-server-0", Role: taskspec.RoleServer, Replacement: true, OldPeer: "127.2.9.9:8300"}
	b, _ := json.Marshal(rec)
	if err := h.store.Put(context.Background(), taskKey(rec.Name), b); err != nil {
		t.Fatal(err)
	}
	h.start()
	v := h.eventually("deployed", 60*time.Second, deployed(3, 1))
	fc.mu.Lock()
	removed, doneAt := fmt.Sprint(fc.removed), fc.done
	fc.mu.Unlock()
	if !contains([]byte(removed), "consul-server-0 127.2.9.9:8300") {
		t.Fatalf("removals %s", removed)
	}
	s := taskByName(v, "consul-server-0")
	if s.LaunchedAt.Before(doneAt) || s.OldPeer != "" {
		t.Fatalf("placed at %s before the removal at %s, or old peer kept %q", s.LaunchedAt, doneAt, s.OldPeer)
	}
}

func TestSimScaleServersUpFromThreeToFive(t *testing.T) {
	h := startSim(t, 6)
	h.start()
	v1 := h.eventually("deployed", 60*time.Second, deployed(3, 3))
	h.stop()
	h.cfg.ServerCount = 5
	h.start()
	v2 := h.eventually("five servers", 90*time.Second, deployed(5, 1))
	for i := 0; i < 3; i++ {
		a, b := taskByName(v1, state.ServerName(i)), taskByName(v2, state.ServerName(i))
		if a.TaskID != b.TaskID {
			t.Errorf("%s restarted by a server count change", a.Name)
		}
	}
	spec := taskByName(v2, "consul-server-4")
	if spec.Reservation == nil || !spec.Reservation.Confirmed {
		t.Errorf("consul-server-4 without a reservation")
	}
}

// TestSimRefusedConfigChangeKeepsTheClusterRunning: Edit in the DC/OS UI
// with options that cannot change (the datacenter): the restarted scheduler keeps running the stored target, touches no task,
// and says why in the deploy plan and /v1/health. Setting the options back
// clears it; an allowed change after that is applied.
func TestSimRefusedConfigChangeKeepsTheClusterRunning(t *testing.T) {
	h := startSim(t, 4)
	h.start()
	v1 := h.eventually("deployed", 60*time.Second, deployed(3, 1))
	storedConfig, err := h.store.Get(context.Background(), keyConfig)
	if err != nil || !contains(storedConfig, `"Datacenter":"dc1"`) {
		t.Fatalf("configuration not stored beside the target: %s %v", storedConfig, err)
	}
	unchanged := func(v api.View) error {
		for _, a := range v1.Tasks {
			if b := taskByName(v, a.Name); b.TaskID != a.TaskID || !b.Running() {
				return fmt.Errorf("%s restarted or stopped: %s", a.Name, b.Describe())
			}
		}
		return nil
	}

	h.stop()
	h.cfg.Datacenter = "dc2"
	h.cfg.ServerMem = 600 // allowed alone, refused with the datacenter
	h.start()
	v := h.eventually("refusal reported", 30*time.Second, func(v api.View) error {
		if !v.Subscribed || len(h.sched.reconcilingSnapshot()) > 0 {
			return fmt.Errorf("not reconciled yet")
		}
		if p := v.Plans[plan.Deploy]; p.Status != plan.Error || len(p.Errors) == 0 {
			return fmt.Errorf("deploy plan %s %v", p.Status, p.Errors)
		}
		return nil
	})
	if v.Target.Datacenter != "dc1" || v.Target.ConfigID != v1.Target.ConfigID || v.Target.Server.Mem != v1.Target.Server.Mem {
		t.Fatalf("target changed: %+v", v.Target)
	}
	code, body := h.get("/v1/plans/deploy")
	if code != http.StatusExpectationFailed || !contains(body, "consul.datacenter (CONSUL_DATACENTER) cannot change") || !contains(body, "Instead:") {
		t.Errorf("deploy plan %d %s", code, body)
	}
	if code, body := h.get("/v1/health"); code != http.StatusExpectationFailed || !contains(body, "consul.datacenter") {
		t.Errorf("health %d %s", code, body)
	}
	// The cluster is left alone for a while.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := unchanged(h.sched.Snapshot()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if b, _ := h.store.Get(context.Background(), keyConfig); string(b) != string(storedConfig) {
		t.Fatalf("a refused configuration was stored: %s", b)
	}

	// Options set back: no error, nothing restarted.
	h.stop()
	h.cfg.Datacenter, h.cfg.ServerMem = "dc1", config.Defaults().ServerMem
	h.start()
	h.eventually("back to normal", 30*time.Second, func(v api.View) error {
		if len(h.sched.reconcilingSnapshot()) > 0 {
			return fmt.Errorf("reconciling")
		}
		if err := deployed(3, 1)(v); err != nil {
			return err
		}
		return unchanged(v)
	})
	if code, body := h.get("/v1/health"); code != http.StatusOK {
		t.Fatalf("health %d %s", code, body)
	}

	// An allowed change is applied: a rolling restart.
	h.stop()
	h.cfg.UI = false
	h.start()
	h.eventually("rolled to the new configuration", 120*time.Second, func(v api.View) error {
		if v.Target.UI {
			return fmt.Errorf("target not changed")
		}
		for _, tk := range v.Tasks {
			if tk.ConfigID != v.Target.ConfigIDOf(tk.Role) {
				return fmt.Errorf("%s still on %s", tk.Name, tk.ConfigID)
			}
		}
		return deployed(3, 1)(v)
	})
	if b, _ := h.store.Get(context.Background(), keyConfig); !contains(b, `"UI":false`) {
		t.Fatalf("the accepted configuration was not stored: %s", b)
	}
}

// TestSimRollingRestartWaitsForAHealthyVoter: the rolling restart's next
// server waits until the restarted one is a healthy raft voter in
// Consul's view, and the plan says so.
func TestSimRollingRestartWaitsForAHealthyVoter(t *testing.T) {
	h := startSim(t, 5)
	fc := &fakeConsul{}
	h.consul = fc
	h.start()
	v1 := h.eventually("deployed", 60*time.Second, deployed(3, 2))
	first := map[string]string{}
	for _, tk := range v1.Tasks {
		first[tk.Name] = tk.TaskID
	}
	fc.mu.Lock()
	fc.hold = func(t state.Task) bool { return first[t.Name] != "" && t.TaskID != first[t.Name] } // restarted: not a voter yet
	fc.mu.Unlock()
	h.stop()
	h.cfg.RaftMultiplier = 2 // servers only
	h.start()
	restarted := func(v api.View) []string {
		var out []string
		for _, tk := range v.Tasks {
			if tk.Role == taskspec.RoleServer && tk.TaskID != first[tk.Name] {
				out = append(out, tk.Name)
			}
		}
		return out
	}
	v := h.eventually("one server restarted, waiting to be a voter", 60*time.Second, func(v api.View) error {
		r := restarted(v)
		if len(r) != 1 || !taskByName(v, r[0]).Running() {
			return fmt.Errorf("restarted %v", r)
		}
		for _, st := range v.Plans[plan.Deploy].Phases[0].Steps {
			if st.Name == r[0]+":[server]" && st.Status == plan.Starting && contains([]byte(st.Message), "non-voter") {
				return nil
			}
		}
		return fmt.Errorf("plan does not say it waits: %+v", v.Plans[plan.Deploy].Phases[0].Steps)
	})
	held := restarted(v)[0]
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		if r := restarted(h.sched.Snapshot()); len(r) != 1 {
			t.Fatalf("the next server restarted while %s was not a voter: %v", held, r)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, tk := range h.sched.Snapshot().Tasks {
		if tk.Role == taskspec.RoleClient && tk.TaskID != first[tk.Name] {
			t.Errorf("client %s restarted by a server-only change", tk.Name)
		}
	}
	fc.mu.Lock()
	fc.hold = nil // autopilot promotes it; every later one is a voter at once
	fc.mu.Unlock()
	h.eventually("every server restarted", 90*time.Second, func(v api.View) error {
		if r := restarted(v); len(r) != 3 {
			return fmt.Errorf("restarted %v", r)
		}
		return deployed(3, 2)(v)
	})
}

// TestSimScaleServersDownFromFiveToThree: the highest servers go one at
// a time, each raft peer removed before its task is killed; their agents
// get clients and their reservations are destroyed.
func TestSimScaleServersDownFromFiveToThree(t *testing.T) {
	h := startSim(t, 6)
	fc := &fakeConsul{}
	h.consul = fc
	h.cfg.ServerCount = 5
	h.start()
	v1 := h.eventually("deployed", 60*time.Second, deployed(5, 1))
	h.stop()
	h.cfg.ServerCount = 3
	h.start()
	var sawPhase bool
	v2 := h.eventually("three servers, clients on the freed agents", 90*time.Second, func(v api.View) error {
		for _, ph := range v.Plans[plan.Deploy].Phases {
			if ph.Name == "scale-down" && len(ph.Steps) > 0 {
				sawPhase = true
			}
		}
		return deployed(3, 3)(v)
	})
	for i := 0; i < 3; i++ {
		a, b := taskByName(v1, state.ServerName(i)), taskByName(v2, state.ServerName(i))
		if a.TaskID != b.TaskID {
			t.Errorf("%s restarted by the scale-down", a.Name)
		}
	}
	fc.mu.Lock()
	removed := fmt.Sprint(fc.removed)
	fc.mu.Unlock()
	s4, s3 := taskByName(v1, "consul-server-4"), taskByName(v1, "consul-server-3")
	// Each peer goes before the kill while the server still runs: its
	// member is not force-left then (serf's prune of a member still alive
	// holds serf 8 s a pool), only marked left, without a prune, once its
	// record goes after the kill.
	i4 := indexOf(removed, fmt.Sprintf("consul-server-4 %s:8300 via 3 (keep member)", s4.IP))
	i3 := indexOf(removed, fmt.Sprintf("consul-server-3 %s:8300 via 3 (keep member)", s3.IP))
	if i4 < 0 || i3 < 0 || i3 < i4 {
		t.Errorf("raft peer removals %s: want consul-server-4, then consul-server-3, each through the 3 remaining servers, keeping the member", removed)
	}
	if indexOf(removed, "force-leave consul-server-4 (prune true)") >= 0 || indexOf(removed, "force-leave consul-server-3 (prune true)") >= 0 {
		t.Errorf("a scaled-down server was pruned: %s", removed)
	}
	if !sawPhase {
		t.Log("the scale-down phase was not caught in the plan (it can be quick)")
	}
	// Autopilot follows the count: min_quorum 2 once the 3 remain (3 for
	// the 5, if the first scheduler got to it before it was stopped).
	h.eventually("autopilot's min_quorum set for 3 servers", 30*time.Second, func(api.View) error {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		n := len(fc.autopilot)
		if n == 0 || fc.autopilot[n-1] != 2 {
			return fmt.Errorf("min_quorum writes %v, want the last 2", fc.autopilot)
		}
		for _, q := range fc.autopilot {
			if q != 2 && q != 3 {
				return fmt.Errorf("min_quorum writes %v: %d is no quorum of 5 or 3", fc.autopilot, q)
			}
		}
		return nil
	})
	reserved := 0
	h.eventually("reservations of the removed servers destroyed", 60*time.Second, func(api.View) error {
		reserved = 0
		for _, a := range h.masterState()["slaves"].([]any) {
			if res, _ := a.(map[string]any)["reserved_resources"].(map[string]any); len(res) > 0 {
				reserved++
			}
		}
		if reserved != 3 {
			return fmt.Errorf("%d agents with reservations, want 3", reserved)
		}
		return nil
	})
}

// Issue 13: an agent removed after a master restart, before it
// re-registered, never tells the new master of its tasks. As a real master
// does, the simulator marks it unreachable after its agent re-register
// timeout (FAILURE{agent_id}; reconciliation then answers
// TASK_UNREACHABLE), and the scheduler reconciles the agent's tasks at
// once: the client there must not stay RUNNING.
func TestSimAgentRemovedAfterMasterRestartIsNotLeftRunning(t *testing.T) {
	h := startSim(t, 4, func(o *mesossim.Options) {
		o.AgentReregisterDelay = 3 * time.Second
		o.AgentReregisterTimeout = 8 * time.Second
	})
	h.start()
	v := h.eventually("deployed", 60*time.Second, deployed(3, 1))
	var client state.Task
	for _, tk := range v.Tasks {
		if tk.Role == taskspec.RoleClient {
			client = tk
		}
	}
	if client.AgentID == "" {
		t.Fatalf("no client placed: %+v", v.Tasks)
	}
	if err := h.cluster.RestartMaster(); err != nil {
		t.Fatal(err)
	}
	// Before the agents re-register (3 s), as `dev fault remove-agent`
	// right after `dev fault restart-master`.
	if err := h.cluster.RemoveAgent(client.AgentID); err != nil {
		t.Fatal(err)
	}
	h.eventually("the removed agent's client no longer RUNNING", 120*time.Second, func(v api.View) error {
		tk := taskByName(v, client.Name)
		if tk.TaskID == client.TaskID && tk.State == "TASK_RUNNING" {
			return fmt.Errorf("%s still %s on the removed agent %s", client.Name, tk.State, client.AgentID)
		}
		return nil
	})
	h.eventually("the servers still run", 60*time.Second, func(v api.View) error {
		n := 0
		for _, tk := range v.Tasks {
			if tk.Role == taskspec.RoleServer && tk.State == "TASK_RUNNING" {
				n++
			}
		}
		if n != 3 {
			return fmt.Errorf("%d servers RUNNING", n)
		}
		return nil
	})
}
