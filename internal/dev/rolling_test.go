package dev

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	consul "github.com/hashicorp/consul/api"

	"github.com/dcos-consul/dcos-consul/internal/operator"
)

// TestDevRollingUpdate measures what an operator sees during a rolling
// update of 3 servers on dev: SERVER_CPUS changes (the scheduler restarts
// with the new environment, as Marathon does), every server restarts once.
// A writer puts a key through a client agent (clients do not restart for
// a server-only change) as fast as it can, and every server is asked for
// its leader every 100 ms. It reports the seconds per server step, the
// longest gap between two successful writes, the time with no leader on
// any server and the moments more than one server knew no leader.
//
//	/work/tools/isolated ops go test ./internal/dev/ -run TestDevRollingUpdate -count=1 -v
//
// The figures go to docs/BENCHMARKS.md; the test asserts only what must
// hold on any machine: every server restarted in place, no acknowledged
// write lost, the history linearizable, and never more than one server
// without a known leader except while leadership changes.
func TestDevRollingUpdate(t *testing.T) {
	fc := startFaultCluster(t, 60, 5, 3)
	tasks, _ := fc.healthy(t, 3, 3*time.Minute)
	var client masterTask
	before := map[string]masterTask{}
	for _, tk := range tasks {
		if strings.HasPrefix(tk.Name, "consul-client-") {
			client = tk
		} else {
			before[tk.Name] = tk
		}
	}
	if client.Name == "" {
		t.Fatalf("no client task in %v", taskNames(tasks))
	}
	// Let the cluster settle (autopilot's stabilisation) before the update.
	time.Sleep(12 * time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hist := &history{}
	w := startWriter(ctx, consulConfig(t, fc.Cluster, net.JoinHostPort(client.AgentIP, "8500")), hist)
	lw := startLeaderWatch(ctx, before, accessOf(consulConfig(t, fc.Cluster, client.AgentIP)))
	var serverCfgs []*consul.Config
	var serverIPs []string
	for _, tk := range before {
		serverCfgs = append(serverCfgs, consulConfig(t, fc.Cluster, net.JoinHostPort(tk.AgentIP, "8500")))
		serverIPs = append(serverIPs, tk.AgentIP)
	}
	aw := startAvailWatch(ctx, serverIPs, accessOf(serverCfgs[0]))
	readers := startReaders(ctx, hist, serverCfgs)

	// The option changes as a DC/OS user changes it: `update start
	// --options` to Cosmos (dev's stand-in renders the package with the new
	// options and restarts the scheduler with the new environment).
	cosmosURL, stopCosmos, err := fc.ServeCosmos()
	if err != nil {
		t.Fatal(err)
	}
	defer stopCosmos()
	opClient, err := operator.NewClient(operator.Location{BaseURL: fc.SchedulerURL, From: "test"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var opOut bytes.Buffer
	ops := &operator.Commands{Client: opClient, Out: &opOut}
	start := time.Now()
	if err := ops.UpdateStart(ctx, cosmosURL, "consul", []byte(`{"servers": {"cpus": 0.25}}`), false); err != nil {
		t.Fatalf("update start: %v", err)
	}
	t.Logf("update start: %s", strings.TrimSpace(opOut.String()))
	// Poll the master: when each server's old task leaves RUNNING and its
	// new one is RUNNING.
	down := map[string]time.Time{}
	up := map[string]time.Time{}
	eventually(t, 6*time.Minute, "every server restarted", func() error {
		st, err := readMasterState(fc.Cluster)
		if err != nil {
			return err
		}
		running := map[string]string{}
		for _, f := range st.Frameworks {
			for _, tk := range f.Tasks {
				if tk.State == "TASK_RUNNING" {
					running[tk.Name] = tk.ID
				}
			}
		}
		now := time.Now()
		var missing []string
		for name, old := range before {
			id := running[name]
			if id != old.ID {
				if _, ok := down[name]; !ok {
					down[name] = now
				}
			}
			if id != "" && id != old.ID {
				if _, ok := up[name]; !ok {
					up[name] = now
				}
			}
			if _, ok := up[name]; !ok {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			return fmt.Errorf("not restarted yet: %v", missing)
		}
		return nil
	})
	after, _ := fc.healthy(t, 3, 3*time.Minute)
	total := time.Since(start)
	opOut.Reset()
	eventually(t, time.Minute, "update status complete", func() error {
		opOut.Reset()
		if err := ops.PlanShow(ctx, "update"); err != nil {
			return err
		}
		if !strings.Contains(opOut.String(), "COMPLETE") || strings.Contains(opOut.String(), "PENDING") {
			return fmt.Errorf("update plan:\n%s", opOut.String())
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	cancel()
	w.wait()
	lw.wait()
	aw.wait()
	readers.Wait()
	for _, tk := range after {
		if b, ok := before[tk.Name]; ok && b.AgentID != tk.AgentID {
			t.Errorf("%s moved from %s to %s", tk.Name, b.AgentID, tk.AgentID)
		}
	}
	type step struct {
		name     string
		down, up time.Time
	}
	var steps []step
	for n := range before {
		steps = append(steps, step{n, down[n], up[n]})
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i].down.Before(steps[j].down) })
	prev := start
	for _, s := range steps {
		t.Logf("step %s: %.1f s (old task gone %.1f s after the previous step, new task RUNNING %.1f s later)",
			s.name, s.up.Sub(prev).Seconds(), s.down.Sub(prev).Seconds(), s.up.Sub(s.down).Seconds())
		prev = s.up
	}
	gap, ok, failed, unknown := w.result(start)
	noLeader, multi, order := lw.result()
	t.Logf("ROLLING UPDATE 3 servers: total %.1f s (%.1f s a server); longest write gap %.2f s; writes ok %d, failed %d, unknown %d; "+
		"no leader on any server %.2f s; samples with more than one server without a leader: %d; leaders seen %v",
		total.Seconds(), total.Seconds()/3, gap.Seconds(), ok, failed, unknown, noLeader.Seconds(), multi, order)
	t.Logf("longest write gaps: %v", w.longestGaps(start, 3))
	if lost := w.lost(ctx, consulConfig(t, fc.Cluster, net.JoinHostPort(client.AgentIP, "8500"))); lost != "" {
		t.Errorf("acknowledged write lost: %s", lost)
	}
	res, n := hist.check(2 * time.Minute)
	t.Logf("linearizability (porcupine, one register: the writer and a ?consistent reader on every server): %s over %d operations", res, n)
	if res == porcupine.Illegal {
		t.Errorf("the history of writes and ?consistent reads is not linearizable")
	}
	// The leader invariant, judged precisely (availwatch_test.go): all
	// servers probed at once, an unanswered probe is no evidence, and
	// more than one voter without a leader is allowed only while
	// leadership changes. The coarse count above (a 300 ms timeout counts
	// as "no leader", servers asked one after the other) is only logged.
	samples, _ := aw.between(start, time.Now())
	v := judgeLeaders(samples)
	t.Logf("leader invariant: %d samples judged, %d unanswered probes, %d leadership changes, %d samples with >1 voter without a leader during a change",
		v.Judged, v.Unknown, v.Changes, v.Excused)
	for _, x := range v.Violations {
		t.Errorf("leader invariant: %s", x)
	}
}

// writer puts rolling/<n> = n through one agent and records each outcome.
type writer struct {
	mu      sync.Mutex
	okAt    []time.Time
	lastOK  int
	failed  int
	unknown int
	done    chan struct{}
}

func startWriter(ctx context.Context, cfg *consul.Config, h *history) *writer {
	w := &writer{done: make(chan struct{})}
	cl, _ := consul.NewClient(withTimeout(cfg, 2*time.Second))
	go func() {
		defer close(w.done)
		for i := 1; ctx.Err() == nil; i++ {
			call := time.Now()
			_, err := cl.KV().Put(&consul.KVPair{Key: "rolling/last", Value: []byte(fmt.Sprint(i))}, nil)
			h.add(0, regInput{key: rollingKey, write: true, value: i}, 0, call, time.Now(), err == nil)
			w.mu.Lock()
			switch {
			case err == nil:
				w.okAt = append(w.okAt, time.Now())
				w.lastOK = i
			case isTimeout(err):
				w.unknown++
			default:
				w.failed++
			}
			w.mu.Unlock()
			if err != nil {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	return w
}

// isTimeout: the write's outcome is unknown (it may have been applied).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || strings.Contains(err.Error(), "Client.Timeout")
}

func (w *writer) wait() { <-w.done }

// result: the longest gap between successful writes after from (or
// between from and the first one), and the counts.
func (w *writer) result(from time.Time) (gap time.Duration, ok, failed, unknown int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	prev := from
	for _, at := range w.okAt {
		if at.Before(from) {
			continue
		}
		if d := at.Sub(prev); d > gap {
			gap = d
		}
		prev = at
	}
	return gap, len(w.okAt), w.failed, w.unknown
}

// longestGaps are the n longest gaps between successful writes after
// from, longest first, each with the time it ended (to find it in the
// scheduler's and executors' logs).
func (w *writer) longestGaps(from time.Time, n int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	type gap struct {
		d   time.Duration
		end time.Time
	}
	var gaps []gap
	prev := from
	for _, at := range w.okAt {
		if at.Before(from) {
			continue
		}
		gaps = append(gaps, gap{at.Sub(prev), at})
		prev = at
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i].d > gaps[j].d })
	var out []string
	for i := 0; i < n && i < len(gaps); i++ {
		out = append(out, fmt.Sprintf("%.2f s ending %s", gaps[i].d.Seconds(), gaps[i].end.UTC().Format("15:04:05.000")))
	}
	return out
}

// lost reads the key back (consistent): it must hold the last
// acknowledged value or a later one whose outcome was unknown.
func (w *writer) lost(ctx context.Context, cfg *consul.Config) string {
	cl, _ := consul.NewClient(cfg)
	p, _, err := cl.KV().Get("rolling/last", &consul.QueryOptions{RequireConsistent: true})
	if err != nil || p == nil {
		return fmt.Sprintf("reading it back: %v", err)
	}
	var got int
	fmt.Sscan(string(p.Value), &got)
	w.mu.Lock()
	defer w.mu.Unlock()
	if got < w.lastOK {
		return fmt.Sprintf("rolling/last = %d, last acknowledged %d", got, w.lastOK)
	}
	return ""
}

// leaderWatch asks every server for its leader every 100 ms.
type leaderWatch struct {
	mu       sync.Mutex
	noLeader time.Duration
	multi    int
	order    []string
	done     chan struct{}
}

func startLeaderWatch(ctx context.Context, srv map[string]masterTask, acc agentAccess) *leaderWatch {
	lw := &leaderWatch{done: make(chan struct{})}
	hc := acc.client(300 * time.Millisecond)
	var addrs []string
	for _, tk := range srv {
		addrs = append(addrs, acc.url(tk.AgentIP))
	}
	go func() {
		defer close(lw.done)
		last := time.Now()
		for ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			without, leader := 0, ""
			for _, a := range addrs {
				l, err := consulLeader(ctx, hc, a)
				if err != nil || l == "" {
					without++
					continue
				}
				leader = l
			}
			now := time.Now()
			lw.mu.Lock()
			if without == len(addrs) {
				lw.noLeader += now.Sub(last)
			}
			if without > 1 {
				lw.multi++
			}
			if leader != "" && (len(lw.order) == 0 || lw.order[len(lw.order)-1] != leader) {
				lw.order = append(lw.order, leader)
			}
			lw.mu.Unlock()
			last = now
		}
	}()
	return lw
}

func (lw *leaderWatch) wait() { <-lw.done }

func (lw *leaderWatch) result() (time.Duration, int, []string) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.noLeader, lw.multi, append([]string(nil), lw.order...)
}
