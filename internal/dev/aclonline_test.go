package dev

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

	"github.com/dcos-consul/dcos-consul/internal/operator"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/plan"
)

// TestDevACLTurnedOn: a dev cluster installed with ACLs off (set
// explicitly, TLS off too to keep the writer on plain HTTP) gets
// security.acl.enabled=true the way a DC/OS user changes an option
// (Cosmos update: the scheduler restarts with the new environment) while
// a writer puts a key every 200 ms through the agents: anonymously, as
// an application of a cluster without ACLs does, until the ACL system is
// bootstrapped (phase 2), then with the management token the scheduler
// hands out (an application given its token before default deny). The
// update plan shows the rollout's three phases; the scheduler is
// SIGKILLed in phase 1, once a server has restarted with ACLs, and
// resumes it (bootstrapping ACLs itself). Once complete: no write failed
// but in flight at a server stop or leadership change, the last
// acknowledged write is there, an anonymous KV read and an anonymous
// agent read get 403 on every agent (default deny everywhere), the
// management token works, DNS still answers anonymous clients for a
// service and a node on every agent, and the scheduler never lost its
// view of raft.
//
//	/work/tools/isolated aclon go test -count=1 ./internal/dev/ -run '^TestDevACLTurnedOn$' -timeout 40m -v
func TestDevACLTurnedOn(t *testing.T) {
	fc := startFaultCluster(t, 66, 4, 3, config.EnvACL+"=false", config.EnvTLS+"=false")
	tasks, _ := fc.healthy(t, 3, 4*time.Minute)
	var ips []string
	for _, tk := range tasks {
		ips = append(ips, tk.AgentIP)
	}
	srv := servers(tasks)
	// With ACLs off Consul ignores it; it works once they are bootstrapped.
	mgmt := clusterToken(t, fc.Cluster, consulConfig(t, fc.Cluster, srv[0].AgentIP))
	cosmosURL, stopCosmos, err := fc.ServeCosmos()
	if err != nil {
		t.Fatal(err)
	}
	defer stopCosmos()
	opClient, err := operator.NewClient(operator.Location{BaseURL: fc.SchedulerURL, From: "test"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ops := &operator.Commands{Client: opClient, Out: io.Discard}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// ACLs (and TLS) off through the package options too, so that the
	// update below changes the option whatever the package's default is.
	if err := ops.UpdateStart(ctx, cosmosURL, "consul", []byte(`{"security": {"acl": {"enabled": false}, "tls": {"enabled": false}}}`), false); err != nil {
		t.Fatalf("update start (ACLs off): %v", err)
	}
	fc.healthy(t, 3, 4*time.Minute)
	eventually(t, time.Minute, "an anonymous KV read without ACLs", func() error {
		if code := anonymousStatus(t, ips[0], "/v1/kv/tlson/last"); code != http.StatusNotFound {
			return fmt.Errorf("anonymous KV read before ACLs are on: %d, want 404 (no key yet, no ACLs)", code)
		}
		return nil
	})
	time.Sleep(10 * time.Second) // autopilot's stabilisation before the update

	logFrom := len(schedulerLog(t, fc.opts.WorkDir))
	w := startTLSOnWriter(ctx, ips, "") // anonymous: a cluster without ACLs
	tw := startTaskWatch(ctx, fc.Cluster)
	aw := startACLRolloutWatch(ctx, fc.SchedulerURL, w, mgmt)
	time.Sleep(3 * time.Second)
	start := time.Now()
	if err := ops.UpdateStart(ctx, cosmosURL, "consul", []byte(`{"security": {"acl": {"enabled": true}}}`), false); err != nil {
		t.Fatalf("update start (ACLs on): %v", err)
	}
	// SIGKILL in phase 1 once a server runs ACLs: the next scheduler
	// calls Consul without its token again until its own bootstrap.
	seen := followRolloutKill(t, fc, "acl", start, func(st plan.Step) bool {
		return st.Name == "acl-phase-1" && strings.Contains(st.Message, "waiting for") &&
			!strings.Contains(st.Message, "consul-server-0, consul-server-1, consul-server-2")
	})
	rollout := time.Since(start)
	for i := 1; i <= 3; i++ {
		if _, ok := seen[fmt.Sprintf("acl-phase-%d", i)]; !ok {
			t.Errorf("the update plan never showed acl-phase-%d in progress (seen %v)", i, seen)
		}
	}
	after, _ := fc.healthy(t, 3, 4*time.Minute)
	time.Sleep(3 * time.Second)
	cancel()
	w.wait()
	tw.wait()
	aw.wait()

	ok, failed, hops, _ := w.counts()
	t.Logf("ACLS TURNED ON: rollout %.0f s; writes ok %d, failed %d, connections refused and retried at the next agent %d; the writer took the management token @%.0f s",
		rollout.Seconds(), ok, failed, hops, aw.switchedAt.Sub(start).Seconds())
	judgeFailures(t, w, tw)
	if aw.switchedAt.IsZero() {
		t.Error("the writer never got the management token (acl-phase-2 never seen in progress)")
	}
	if !aw.healthSaid {
		t.Error("/v1/health never said what the ACL rollout was doing")
	}
	if lost := w.lostPlain(ips); lost != "" {
		t.Errorf("acknowledged write lost: %s", lost)
	}
	checkACLsEnforced(t, after, mgmt)
	log := schedulerLog(t, fc.opts.WorkDir)
	if strings.Contains(log[logFrom:], "cannot read Consul's raft configuration") {
		t.Error("the scheduler could not read Consul's raft configuration during the rollout")
	}
	if !strings.Contains(log[logFrom:], aclBootstrappedLine) || !strings.Contains(log[logFrom:], "ACL rollout complete") {
		t.Error("the scheduler log does not show the bootstrap and the rollout's end")
	}
}

// checkACLsEnforced: on every agent anonymous KV and agent reads get 403,
// the management token reads the key, and anonymous DNS answers the
// consul service and a server's node name.
func checkACLsEnforced(t *testing.T, tasks []masterTask, mgmt string) {
	t.Helper()
	for _, tk := range tasks {
		ip := tk.AgentIP
		eventually(t, time.Minute, "default deny on "+tk.Name, func() error {
			for _, p := range []string{"/v1/kv/tlson/last", "/v1/agent/self"} {
				if code := anonymousStatus(t, ip, p); code != http.StatusForbidden {
					return fmt.Errorf("anonymous GET %s: %d, want 403", p, code)
				}
			}
			return nil
		})
		req, _ := http.NewRequest(http.MethodGet, "http://"+net.JoinHostPort(ip, "8500")+"/v1/kv/tlson/last?raw", nil)
		req.Header.Set("X-Consul-Token", mgmt)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("%s: KV read with the management token: %v", tk.Name, err)
		} else {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: KV read with the management token: %s", tk.Name, resp.Status)
			}
		}
		eventually(t, time.Minute, "anonymous DNS on "+tk.Name, func() error {
			if a, err := resolveA(net.JoinHostPort(ip, "8600"), "consul.service.consul"); err != nil || len(a) != 3 {
				return fmt.Errorf("consul.service.consul: %v %v, want the 3 servers", a, err)
			}
			if a, err := resolveA(net.JoinHostPort(ip, "8600"), "consul-server-0.node.consul"); err != nil || len(a) != 1 {
				return fmt.Errorf("consul-server-0.node.consul: %v %v", a, err)
			}
			return nil
		})
	}
}

// anonymousStatus is the status of an anonymous GET of path on the agent
// at ip (0 when it does not answer).
func anonymousStatus(t *testing.T, ip, path string) int {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + net.JoinHostPort(ip, "8500") + path)
	if err != nil {
		t.Logf("anonymous GET %s on %s: %v", path, ip, err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// aclRolloutWatch polls the update plan and /v1/health during the ACL
// rollout: once phase 2 runs (the ACL system is bootstrapped) it gives
// the writer the management token, and it records whether /v1/health
// said what the rollout does.
type aclRolloutWatch struct {
	done       chan struct{}
	mu         sync.Mutex
	switchedAt time.Time
	healthSaid bool
}

func startACLRolloutWatch(ctx context.Context, schedulerURL string, w *tlsOnWriter, mgmt string) *aclRolloutWatch {
	aw := &aclRolloutWatch{done: make(chan struct{})}
	go func() {
		defer close(aw.done)
		for ctx.Err() == nil {
			if p, err := readPlan(schedulerURL, "update"); err == nil && aw.switchedAt.IsZero() && aclPhaseRuns(p, 2, 3) {
				w.setToken(mgmt)
				aw.mu.Lock()
				aw.switchedAt = time.Now()
				aw.mu.Unlock()
			}
			if healthSaysACLRollout(schedulerURL) {
				aw.mu.Lock()
				aw.healthSaid = true
				aw.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return aw
}

func (aw *aclRolloutWatch) wait() { <-aw.done }

// aclPhaseRuns: one of the acl-rollout's phases ns is in progress.
func aclPhaseRuns(p plan.Plan, ns ...int) bool {
	for _, ph := range p.Phases {
		if ph.Name != "acl-rollout" {
			continue
		}
		for _, st := range ph.Steps {
			for _, n := range ns {
				if st.Name == fmt.Sprintf("acl-phase-%d", n) && st.Status == plan.InProgress {
					return true
				}
			}
		}
	}
	return false
}

// healthSaysACLRollout: /v1/health names the ACL rollout's phase.
func healthSaysACLRollout(schedulerURL string) bool {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(schedulerURL + "/v1/health")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var h struct {
		Rollouts map[string]string `json:"rollouts"`
	}
	if json.NewDecoder(resp.Body).Decode(&h) != nil {
		return false
	}
	return strings.Contains(h.Rollouts["acl-rollout"], "turning ACLs on, phase")
}
