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
	moved := func(t state.Task) bool {
		return t.Name == first.Name && t.Reservation != nil && t.Reservation.ID != first.Reservation.ID
	}
	fc.hold = moved // the replacement (a new reservation, maybe on the same agent): a non-voter
	fc.mu.Unlock()
	if code, body := h.postUntilOK("/v1/pod/consul-server-0/replace", 30*time.Second); code != 200 {
		t.Fatalf("first replace: %d %s", code, body)
	}
	code, body := h.post("/v1/pod/consul-server-1/replace")
	if code != 409 || !contains(body, "consul-server-0") {
		t.Fatalf("second replace at once: %d %s, want 409 naming consul-server-0", code, body)
	}
	h.eventually("consul-server-0 replaced and running", 90*time.Second, func(v api.View) error {
		s := taskByName(v, "consul-server-0")
		if !moved(s) || !s.Running() {
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

// TestSimPlanOperations: interrupting the update plan holds the rolling
// restart (208 when asked again), continue resumes it, forceComplete
// skips a server's restart; the recovery plan cannot be paused (409).
func TestSimPlanOperations(t *testing.T) {
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
	fc.down = true // nothing restarts until the plan is paused
	fc.mu.Unlock()
	h.cfg.RaftMultiplier = 2 // servers only
	h.start()
	if code, body := h.post("/v1/plans/update/interrupt?phase=server"); code != 200 {
		t.Fatalf("interrupt: %d %s", code, body)
	}
	if code, body := h.post("/v1/plans/update/interrupt?phase=server"); code != 208 {
		t.Fatalf("second interrupt: %d %s, want 208", code, body)
	}
	if code, body := h.post("/v1/plans/recovery/interrupt"); code != 409 {
		t.Fatalf("recovery interrupt: %d %s, want 409", code, body)
	}
	if code, body := h.post("/v1/plans/update/restart?step=consul-server-0"); code != 400 {
		t.Fatalf("step without phase: %d %s, want 400", code, body)
	}
	fc.mu.Lock()
	fc.down = false
	fc.mu.Unlock()
	h.eventually("the update plan waits, paused", 30*time.Second, func(v api.View) error {
		p := v.Plans[plan.Update]
		if p.Phases[0].Status != plan.Waiting {
			return fmt.Errorf("update/server %s", p.Phases[0].Status)
		}
		return nil
	})
	time.Sleep(6 * time.Second)
	for _, tk := range h.sched.Snapshot().Tasks {
		if tk.Role == taskspec.RoleServer && tk.TaskID != first[tk.Name] {
			t.Fatalf("%s restarted while the update plan was paused", tk.Name)
		}
	}
	// Skip consul-server-2's restart; resume the rest.
	if code, body := h.post("/v1/plans/update/forceComplete?phase=server&step=consul-server-2"); code != 200 {
		t.Fatalf("forceComplete: %d %s", code, body)
	}
	if code, body := h.post("/v1/plans/update/continue"); code != 200 {
		t.Fatalf("continue: %d %s", code, body)
	}
	if code, body := h.post("/v1/plans/update/continue"); code != 208 {
		t.Fatalf("second continue: %d %s, want 208", code, body)
	}
	h.eventually("the update plan complete", 120*time.Second, func(v api.View) error {
		if st := v.Plans[plan.Update].Status; st != plan.Complete {
			return fmt.Errorf("update plan %s", st)
		}
		return deployed(3, 2)(v)
	})
	v := h.sched.Snapshot()
	for _, n := range []string{"consul-server-0", "consul-server-1"} {
		if taskByName(v, n).TaskID == first[n] {
			t.Errorf("%s not restarted", n)
		}
	}
	if taskByName(v, "consul-server-2").TaskID != first["consul-server-2"] {
		t.Errorf("consul-server-2 restarted despite forceComplete")
	}
	if code, body := h.get("/v1/configurations/target"); code != 200 || !contains(body, `"raft_multiplier": 2`) {
		t.Errorf("target configuration: %d %s", code, body)
	}
}

// TestSimPlanRestart: restarting a whole phase (or plan) runs every step
// again as the DC/OS SDK does, safely: the phase's running pods are
// queued for a rolling restart in place (servers one at a time through
// the quorum gate), never restarted at once. While Consul cannot be read
// they wait and a second restart of the pending phase answers 208;
// forceComplete skips a queued restart; restarting a plan whose steps are
// not pods (decommission, recovery) is refused (409); `start` on the
// complete update plan runs it again.
func TestSimPlanRestart(t *testing.T) {
	h := startSim(t, 5)
	fc := h.consul.(*fakeConsul)
	h.start()
	v1 := h.eventually("deployed", 60*time.Second, deployed(3, 2))
	first := map[string]string{}
	for _, tk := range v1.Tasks {
		first[tk.Name] = tk.TaskID
	}
	for _, p := range []string{"/v1/plans/decommission/restart", "/v1/plans/recovery/restart"} {
		if code, body := h.post(p); code != 409 {
			t.Errorf("%s: %d %s, want 409", p, code, body)
		}
	}
	if code, body := h.post("/v1/plans/update/restart?phase=nope"); code != 404 {
		t.Errorf("restart of an unknown phase: %d %s, want 404", code, body)
	}
	fc.mu.Lock()
	fc.down = true // the quorum gate holds every server restart
	fc.mu.Unlock()
	time.Sleep(4 * time.Second) // the next raft read (every 3 s) fails
	if code, body := h.post("/v1/plans/update/restart?phase=server"); code != 200 {
		t.Fatalf("restart phase server: %d %s", code, body)
	}
	h.eventually("the server phase pending, waiting for Consul", 30*time.Second, func(v api.View) error {
		ph := v.Plans[plan.Update].Phases[0]
		if ph.Status != plan.Pending {
			return fmt.Errorf("update/server %s: %+v", ph.Status, ph.Steps)
		}
		for _, s := range ph.Steps {
			if !strings.Contains(s.Message, "restart requested through the plan API") {
				return fmt.Errorf("step %s: %s", s.Name, s.Message)
			}
		}
		return nil
	})
	if code, body := h.post("/v1/plans/update/restart?phase=server"); code != 208 {
		t.Errorf("second restart of the pending phase: %d %s, want 208", code, body)
	}
	time.Sleep(4 * time.Second)
	for _, tk := range h.sched.Snapshot().Tasks {
		if tk.TaskID != first[tk.Name] {
			t.Fatalf("%s restarted while Consul could not be read", tk.Name)
		}
	}
	if code, body := h.post("/v1/plans/update/forceComplete?phase=server&step=consul-server-1"); code != 200 {
		t.Fatalf("forceComplete of a queued restart: %d %s", code, body)
	}
	fc.mu.Lock()
	fc.down = false
	fc.mu.Unlock()
	maxDown := 0
	h.eventually("servers 0 and 2 restarted, one at a time", 120*time.Second, func(v api.View) error {
		down := 0
		for _, tk := range v.Tasks {
			if tk.Role == taskspec.RoleServer && tk.State != "TASK_RUNNING" {
				down++
			}
		}
		if down > maxDown {
			maxDown = down
		}
		if st := v.Plans[plan.Update].Status; st != plan.Complete {
			return fmt.Errorf("update plan %s", st)
		}
		for _, n := range []string{"consul-server-0", "consul-server-2"} {
			if taskByName(v, n).TaskID == first[n] {
				return fmt.Errorf("%s not restarted yet", n)
			}
		}
		return deployed(3, 2)(v)
	})
	v := h.sched.Snapshot()
	if maxDown > 1 {
		t.Errorf("%d servers down at once", maxDown)
	}
	if taskByName(v, "consul-server-1").TaskID != first["consul-server-1"] {
		t.Errorf("consul-server-1 restarted despite forceComplete")
	}
	for _, tk := range v.Tasks {
		if tk.Role == taskspec.RoleClient && tk.TaskID != first[tk.Name] {
			t.Errorf("client %s restarted by a restart of the server phase", tk.Name)
		}
	}
	// `start` on the complete update plan, as the DC/OS SDK's: it runs
	// again, every pod once more, clients too (the same rolling restart
	// as `restart` of the whole plan). On a complete plan whose steps are
	// not pods it has nothing to run again: 200, nothing restarted.
	second := map[string]string{}
	for _, tk := range v.Tasks {
		second[tk.Name] = tk.TaskID
	}
	if code, body := h.post("/v1/plans/decommission/start"); code != 200 {
		t.Fatalf("start of the complete decommission plan: %d %s, want 200", code, body)
	}
	for _, tk := range h.sched.Snapshot().Tasks {
		if tk.TaskID != second[tk.Name] || tk.RestartQueued {
			t.Fatalf("%s restarted or queued by a start of the decommission plan", tk.Name)
		}
	}
	if code, body := h.post("/v1/plans/update/start"); code != 200 || !contains(body, "runs again") {
		t.Fatalf("start of the complete update plan: %d %s", code, body)
	}
	h.eventually("every pod restarted", 180*time.Second, func(v api.View) error {
		for _, tk := range v.Tasks {
			if tk.TaskID == second[tk.Name] {
				return fmt.Errorf("%s not restarted yet", tk.Name)
			}
		}
		if st := v.Plans[plan.Update].Status; st != plan.Complete {
			return fmt.Errorf("update plan %s", st)
		}
		return deployed(3, 2)(v)
	})
}
