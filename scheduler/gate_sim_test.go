package scheduler

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/api"
	"github.com/dcos-consul/dcos-consul/scheduler/plan"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// TestSimOperatorReplaceTwiceIsRefused: issue 9's "three replace calls in
// a row kill all servers": the second replace is refused with 409 and a
// reason while the first replacement is not yet a healthy voter, and
// accepted once it is.
func TestSimOperatorReplaceTwiceIsRefused(t *testing.T) {
	h := startSim(t, 5)
	fc := h.consul.(*fakeConsul)
	h.start()
	v := h.eventually("deployed", 60*time.Second, deployed(3, 2))
	first := taskByName(v, "consul-server-0")
	fc.mu.Lock()
	fc.hold = func(t state.Task) bool { return t.Name == first.Name && t.TaskID != first.TaskID } // replaced: a non-voter
	fc.mu.Unlock()
	if code, body := h.postUntilOK("/v1/pod/consul-server-0/replace", 30*time.Second); code != 200 {
		t.Fatalf("first replace: %d %s", code, body)
	}
	code, body := h.post("/v1/pod/consul-server-1/replace")
	if code != 409 || !contains(body, "consul-server-0") {
		t.Fatalf("second replace at once: %d %s, want 409 naming consul-server-0", code, body)
	}
	// On a fresh reservation and volume: on another agent, or on its old
	// one when that is the first free agent offered (3 servers and 2
	// clients fill the 5 agents).
	h.eventually("consul-server-0 running on a new volume", 90*time.Second, func(v api.View) error {
		s := taskByName(v, "consul-server-0")
		if s.Reservation == nil || s.Reservation.PersistenceID == first.Reservation.PersistenceID || !s.Running() {
			return fmt.Errorf("consul-server-0: %s", s.Describe())
		}
		return nil
	})
	time.Sleep(4 * time.Second) // a raft read after it runs: a non-voter
	code, body = h.post("/v1/pod/consul-server-1/replace")
	if code != 409 || !contains(body, "not a healthy raft voter") {
		t.Fatalf("second replace while the first is a non-voter: %d %s, want 409", code, body)
	}
	fc.mu.Lock()
	fc.hold = nil // autopilot promotes it
	fc.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body = h.post("/v1/pod/consul-server-1/replace")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second replace once the first is a healthy voter: %d %s", code, body)
		}
		time.Sleep(time.Second)
	}
}

// TestSimRollingRestartWaitsWhileConsulIsUnreachable: with no Consul
// server answering, a rolling restart restarts nothing and its steps say
// why; once Consul answers it goes on, followers first, and hands the
// leadership over before restarting the leader.
func TestSimRollingRestartWaitsWhileConsulIsUnreachable(t *testing.T) {
	h := startSim(t, 5)
	fc := h.consul.(*fakeConsul)
	h.start()
	v1 := h.eventually("deployed", 60*time.Second, deployed(3, 2))
	first := map[string]string{}
	for _, tk := range v1.Tasks {
		first[tk.Name] = tk.TaskID
	}
	h.stop()
	fc.mu.Lock()
	fc.down = true
	fc.mu.Unlock()
	h.cfg.RaftMultiplier = 2 // servers only
	h.start()
	h.eventually("the steps say why they wait", 30*time.Second, func(v api.View) error {
		for _, st := range v.Plans[plan.Deploy].Phases[0].Steps {
			if !strings.Contains(st.Message, "no Consul server answered") {
				return fmt.Errorf("step %s: %s", st.Name, st.Message)
			}
		}
		return nil
	})
	time.Sleep(5 * time.Second)
	for _, tk := range h.sched.Snapshot().Tasks {
		if tk.Role == taskspec.RoleServer && tk.TaskID != first[tk.Name] {
			t.Fatalf("%s restarted while Consul could not be read", tk.Name)
		}
	}
	fc.mu.Lock()
	fc.down = false
	fc.mu.Unlock()
	var order []string
	h.eventually("every server restarted", 120*time.Second, func(v api.View) error {
		n := 0
		for _, tk := range v.Tasks {
			if tk.Role != taskspec.RoleServer || tk.TaskID == first[tk.Name] {
				continue
			}
			n++
			if !containsStr(order, tk.Name) {
				order = append(order, tk.Name)
			}
		}
		if n != 3 {
			return fmt.Errorf("%d servers restarted", n)
		}
		return deployed(3, 2)(v)
	})
	fc.mu.Lock()
	transfers := append([]string(nil), fc.transfers...)
	fc.mu.Unlock()
	if len(transfers) == 0 {
		t.Fatalf("no leadership transfer before restarting the leader (restart order %v)", order)
	}
	leader := strings.Split(transfers[0], "->")[0]
	if len(order) != 3 || order[2] != leader {
		t.Errorf("restart order %v, want the leader %q (handed over: %v) last", order, leader, transfers)
	}
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
