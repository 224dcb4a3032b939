package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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
	return &harness{t: t, cluster: c, cfg: cfg, store: newMemStore(), log: log, net: n}
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
	opts := Options{Store: h.store, Listener: ln, ResubscribeMax: 2 * time.Second, onStart: func(s *Scheduler) { schedCh <- s }}
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

func (h *harness) post(path string) (int, []byte) {
	h.t.Helper()
	resp, err := http.Post(h.apiURL+path, "application/json", nil)
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
		if tk.ConfigID != v.Target.ConfigID {
			t.Errorf("%s config %s, target %s", tk.Name, tk.ConfigID, v.Target.ConfigID)
		}
	}
	if code, body := h.get("/v1/health"); code != http.StatusOK {
		t.Errorf("health %d %s", code, body)
	}
	if code, body := h.get("/v1/plans/deploy"); code != http.StatusOK {
		t.Errorf("deploy plan %d %s", code, body)
	}
	code, body := h.get("/v1/endpoints/http")
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

func contains(b []byte, s string) bool { return len(b) > 0 && string(b) != "" && (len(s) == 0 || indexOf(string(b), s) >= 0) }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
