package scheduler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dcos-consul/dcos-consul/executor/consulagent"
	"github.com/dcos-consul/dcos-consul/internal/freeport"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// freePort finds a port free on every address.
func freePort(t *testing.T, ips []string, used map[int]bool) int {
	t.Helper()
	for tries := 0; tries < 200; tries++ {
		p, err := freeport.Take(ips, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !used[p[0]] {
			used[p[0]] = true
			return p[0]
		}
	}
	t.Fatal("no free port")
	return 0
}

// TestRemoveServerWithRealConsul forms a 3-server Consul cluster in-process
// (the executor's consulagent), stops one server without a leave, and has
// the scheduler's Consul admin remove its raft peer while the other two
// keep quorum (the dead one was the leader: the removal waits out the
// election). Along the way it checks the scheduler's raft view
// (RaftHealth, VoterWait) that replacements and rolling restarts wait on:
// a dead server is no healthy voter, a removed one is no peer, and a
// server restarted in place becomes a healthy voter only after a while.
func TestRemoveServerWithRealConsul(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a real Consul cluster")
	}
	ips := []string{"127.2.210.1", "127.2.210.2", "127.2.210.3"}
	used := map[int]bool{}
	ports := taskspec.Ports{Server: freePort(t, ips, used), SerfLAN: freePort(t, ips, used), SerfWAN: -1,
		HTTP: freePort(t, ips, used), HTTPS: -1, GRPC: -1, DNS: -1}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	agents := make([]*consulagent.Agent, 3)
	t.Cleanup(func() {
		for _, a := range agents {
			if a != nil {
				a.Stop()
			}
		}
	})
	var serfs []string
	for _, ip := range ips {
		serfs = append(serfs, net.JoinHostPort(ip, strconv.Itoa(ports.SerfLAN)))
	}
	specs := make([]taskspec.Spec, 3)
	sandboxes := make([]string, 3)
	for i, ip := range ips {
		spec := taskspec.Spec{Version: taskspec.Version, Role: taskspec.RoleServer, NodeName: fmt.Sprintf("consul-server-%d", i),
			Datacenter: "dc1", BootstrapExpect: 3, Ports: ports, DataDir: "consul-data", JoinAddrs: serfs, LogLevel: "WARN"}
		specs[i], sandboxes[i] = spec, t.TempDir()
		a, err := consulagent.Start(context.Background(), spec, consulagent.Env{BindIP: ip, Sandbox: sandboxes[i]}, log)
		if err != nil {
			t.Fatalf("start %s: %v", spec.NodeName, err)
		}
		agents[i] = a
	}
	httpAddr := func(i int) string { return net.JoinHostPort(ips[i], strconv.Itoa(ports.HTTP)) }
	raftAddr := func(i int) string { return net.JoinHostPort(ips[i], strconv.Itoa(ports.Server)) }
	peers := func() ([]string, error) {
		cl, err := consulapi.NewClient(&consulapi.Config{Address: httpAddr(0)})
		if err != nil {
			return nil, err
		}
		conf, err := cl.Operator().RaftGetConfiguration(nil)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, s := range conf.Servers {
			out = append(out, s.Address)
		}
		return out, nil
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p, err := peers()
		if err == nil && len(p) == 3 {
			// autopilot must see the servers healthy before it counts them
			cl, _ := consulapi.NewClient(&consulapi.Config{Address: httpAddr(0)})
			if h, err := cl.Operator().AutopilotServerHealth(nil); err == nil && h.Healthy {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 3-server cluster: %v %v", p, err)
		}
		time.Sleep(500 * time.Millisecond)
	}

	admin := httpConsul{log: zaptest.NewLogger(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tg := state.TargetFrom(config.Defaults())
	taskOn := func(i int) state.Task {
		return state.Task{Name: fmt.Sprintf("consul-server-%d", i), Role: taskspec.RoleServer, Index: i, IP: ips[i], Ports: ports,
			TaskID: "x", State: "TASK_RUNNING", RunningSince: time.Now().Add(-time.Minute)} // long running (reconcile.HealthLag)
	}
	// Every server is a healthy voter in the scheduler's view.
	h, err := admin.RaftHealth(ctx, []string{httpAddr(2), httpAddr(0)})
	if err != nil || len(h.Servers) != 3 {
		t.Fatalf("raft health: %+v %v", h, err)
	}
	h.At = time.Now()
	for i := range ips {
		if why := h.VoterWait(taskOn(i), tg); why != "" {
			t.Errorf("server %d: %s (%+v)", i, why, h.Servers)
		}
	}

	agents[2].Stop() // dies without leaving
	agents[2] = nil
	// Autopilot notices: the dead server is no healthy voter, and a
	// replacement on its address would wait. The first address is the
	// dead one: the next is asked.
	for {
		h, err := admin.RaftHealth(ctx, []string{httpAddr(2), httpAddr(0), httpAddr(1)})
		if err == nil {
			h.At = time.Now()
			if why := h.VoterWait(taskOn(2), tg); why != "" {
				t.Logf("dead server in the scheduler's view: %s", why)
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("the dead server still counts as a healthy voter: %+v %v", h, err)
		}
		time.Sleep(time.Second)
	}
	// Right after a leader dies the others hold an election: the removal
	// errors (not errNoConsul: they answered) and succeeds when retried.
	for {
		err := admin.RemoveServer(ctx, []string{httpAddr(0), httpAddr(1)}, "consul-server-2", raftAddr(2), pruneOnceFailed)
		if err == nil {
			break
		}
		if errors.Is(err, errNoConsul) {
			t.Fatalf("servers that answer were taken for unreachable: %v", err)
		}
		if errors.Is(err, errSerfAlive) {
			t.Logf("the dead server's removal waits for serf: %v", err)
		}
		if ctx.Err() != nil {
			t.Fatalf("remove a dead peer while two of three run: %v", err)
		}
		time.Sleep(time.Second)
	}
	p, err := peers()
	if err != nil || len(p) != 2 || strings.Contains(strings.Join(p, ","), raftAddr(2)) {
		t.Fatalf("raft peers after removal: %v %v", p, err)
	}
	h, err = admin.RaftHealth(ctx, []string{httpAddr(0), httpAddr(1)})
	if err != nil || h.Err != "" {
		t.Fatalf("raft health after removal: %+v %v", h, err)
	}
	h.At = time.Now()
	if why := h.VoterWait(taskOn(2), tg); !strings.Contains(why, "not in Consul's raft configuration") {
		t.Errorf("removed server: %q", why)
	}
	if _, err := admin.RaftHealth(ctx, []string{httpAddr(2)}); !errors.Is(err, errNoConsul) {
		t.Errorf("only the dead server asked: %v, want errNoConsul", err)
	}

	// A rolling restart's step: server 1 is killed (a graceful leave) and
	// relaunched in place on its data. It is not a healthy voter at once;
	// the next restart waits until it is one.
	lctx, lcancel := context.WithTimeout(ctx, 30*time.Second)
	if err := agents[1].Leave(lctx); err != nil {
		t.Logf("leave: %v", err)
	}
	lcancel()
	agents[1] = nil
	a, err := consulagent.Start(context.Background(), specs[1], consulagent.Env{BindIP: ips[1], Sandbox: sandboxes[1]}, log)
	if err != nil {
		t.Fatalf("restart consul-server-1: %v", err)
	}
	agents[1] = a
	restarted := taskOn(1)
	restarted.RunningSince = time.Now()
	sawWait := ""
	for {
		h, err := admin.RaftHealth(ctx, []string{httpAddr(0), httpAddr(1)})
		if err == nil {
			h.At = time.Now()
			why := h.VoterWait(restarted, tg)
			if why == "" {
				break
			}
			if sawWait == "" {
				t.Logf("restarted server in the scheduler's view: %s", why)
			}
			sawWait = why
		}
		if ctx.Err() != nil {
			t.Fatalf("the restarted server never became a healthy voter: %+v %v", h, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if sawWait == "" {
		t.Error("the restarted server was a healthy voter at once: the rolling restart would not have waited")
	}

	// Scaling down: a live server's raft peer is removed while the other
	// keeps quorum, then the server is stopped (a kill is a leave).
	for {
		err := admin.RemoveServer(ctx, []string{httpAddr(0)}, "consul-server-1", raftAddr(1), keepMember)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("remove a live server's peer: %v", err)
		}
		time.Sleep(time.Second)
	}
	lctx, lcancel = context.WithTimeout(ctx, 30*time.Second)
	_ = agents[1].Leave(lctx)
	lcancel()
	agents[1] = nil
	if p, err := peers(); err != nil || len(p) != 1 || p[0] != raftAddr(0) {
		t.Fatalf("raft peers after scaling down to one: %v %v", p, err)
	}
	// The last voter is never removed.
	if err := admin.RemoveServer(ctx, []string{httpAddr(0)}, "consul-server-0", raftAddr(0), keepMember); err == nil || !strings.Contains(err.Error(), "last voter") {
		t.Fatalf("removing the last voter: %v", err)
	}

}

// TestPruneWait: a replacement prunes the old member only once serf sees
// it failed (or cannot tell); a scale-down and a replacement that waited
// long enough never wait for serf.
func TestPruneWait(t *testing.T) {
	for _, c := range []struct {
		leave memberLeave
		serf  string
		wait  bool
	}{
		{pruneOnceFailed, "alive", true},
		{pruneOnceFailed, "leaving", true},
		{pruneOnceFailed, "failed", false},
		{pruneOnceFailed, "left", false},
		{pruneOnceFailed, "", false}, // not in autopilot's view: nothing to wait for
		{pruneNow, "alive", false},
		{keepMember, "alive", false},
	} {
		if why := pruneWait(c.leave, c.serf); (why != "") != c.wait {
			t.Errorf("pruneWait(%d, %q) = %q, want wait %v", c.leave, c.serf, why, c.wait)
		}
	}
}

func TestQuorumAfterRemoval(t *testing.T) {
	for _, c := range []struct {
		voters, healthy int
		voter, ok       bool
	}{
		{3, 2, true, true},  // 3 servers, one dead: 2 of 2 left
		{3, 1, true, false}, // two dead: 1 of 2 is no quorum
		{5, 3, true, true},  // 3 of 4 left
		{5, 2, true, false}, // 2 of 4 is no quorum
		{3, 3, false, true}, // removing a non-voter
		{1, 0, true, false}, // never remove the last voter
		{2, 1, true, true},  // 1 of 1 left
		{7, 4, true, true},  // 4 of 6
		{7, 3, true, false}, // 3 of 6
	} {
		err := quorumAfterRemoval(c.voters, c.healthy, c.voter)
		if (err == nil) != c.ok {
			t.Errorf("%d voters, %d healthy others, voter=%v: %v, want ok=%v", c.voters, c.healthy, c.voter, err, c.ok)
		}
	}
}
