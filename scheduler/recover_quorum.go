package scheduler

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/scheduler/consulclient"
	"github.com/dcos-consul/dcos-consul/scheduler/plan"
	"github.com/dcos-consul/dcos-consul/scheduler/recovery"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// quorumPollInterval is how often the scheduler asks every server for its
// raft state (lost-quorum detection).
const quorumPollInterval = 5 * time.Second

// serverProber asks each server for its own raft state; httpConsul does
// (a test's fake Consul may not: then no verdict is made).
type serverProber interface {
	ProbeServers(ctx context.Context, servers []recovery.Server) []recovery.Server
}

// quorumWatch is the lost-quorum detection's state (owned by the loop).
type quorumWatch struct {
	verdict recovery.Quorum
	polling bool
	next    time.Time
	// threshold: no leader for this long with a minority answering is a
	// lost quorum (recovery.DefaultThreshold).
	threshold time.Duration
}

// quorumServers are the configured servers as the records place them.
func quorumServers(ts state.Tasks, tg state.Target) []recovery.Server {
	out := make([]recovery.Server, 0, tg.Servers)
	for i := 0; i < tg.Servers; i++ {
		t := ts[state.ServerName(i)]
		s := recovery.Server{Name: state.ServerName(i)}
		if addr, ok := consulclient.Addr(t.IP, t.Ports); ok {
			s.Address = addr // https://… with TLS
			port := t.Ports.Server
			if port <= 0 {
				port = tg.Ports.Server
			}
			s.RaftAddr = net.JoinHostPort(t.IP, strconv.Itoa(port))
		} else {
			s.Err = "not placed"
		}
		out = append(out, s)
	}
	return out
}

// pollQuorum asks every configured server for its raft state now and then
// (a goroutine; the answers reach the loop as a command and the pure
// recovery.Assess makes the verdict). Called every tick.
func (s *Scheduler) pollQuorum() {
	p, ok := s.consul.(serverProber)
	now := time.Now()
	if !ok || s.target.Uninstall || s.quorum.polling || now.Before(s.quorum.next) {
		return
	}
	if s.quorum.threshold <= 0 {
		s.quorum.threshold = recovery.DefaultThreshold
	}
	servers := quorumServers(s.tasks, s.target)
	configured := s.target.Servers
	s.quorum.polling = true
	s.quorum.next = now.Add(quorumPollInterval)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		answers := p.ProbeServers(ctx, servers)
		cancel()
		at := s.opts.Now()
		f := func() {
			s.quorum.polling = false
			prev := s.quorum.verdict
			v := recovery.Assess(prev, recovery.Observation{At: at, Configured: configured, Servers: answers}, s.quorum.threshold)
			s.quorum.verdict = v
			switch {
			case v.Lost && !prev.Lost:
				s.log.Error("Consul has lost its raft quorum; nothing is done by itself: an operator runs `recover status`, then `recover --confirm`",
					zap.String("verdict", v.Summary), zap.Strings("lost", v.LostServers), zap.String("freshest", v.Freshest))
			case !v.Lost && prev.Lost:
				s.log.Warn("Consul's raft quorum is back", zap.String("verdict", v.Summary))
			}
		}
		select {
		case s.cmds <- f:
		case <-s.done:
		}
	}()
}

// recoveryWork is the confirmed outage recovery still under way.
func recoveryWork(ts state.Tasks, tg state.Target) recovery.Work {
	var w recovery.Work
	for i := 0; i < tg.Servers; i++ {
		t, ok := ts[state.ServerName(i)]
		switch {
		case !ok:
		case len(t.RecoverPeers) > 0:
			w.Restarting = append(w.Restarting, t.Name)
		case t.RecoverReplace:
			w.Replacing = append(w.Replacing, t.Name)
		}
	}
	return w
}

// withOutage adds the outage step (quorum lost, or a confirmed recovery
// under way) to the recovery plan.
func (s *Scheduler) withOutage(p plan.Plan) plan.Plan {
	status, msg, ok := recovery.Step(s.quorum.verdict, recoveryWork(s.tasks, s.target))
	if !ok {
		return p
	}
	st := plan.Step{ID: "recovery-outage-quorum", Name: recovery.StepName, Status: status, Message: msg}
	ph := plan.Phase{ID: "recovery-outage", Name: recovery.PhaseName, Strategy: "serial", Status: status, Steps: []plan.Step{st}}
	p.Phases = append([]plan.Phase{ph}, p.Phases...)
	if status == plan.Error {
		p.Status = plan.Error
		p.Errors = append(append([]string{}, p.Errors...), msg)
	} else if p.Status == plan.Complete || p.Status == "" {
		p.Status = status
	}
	return p
}

// quorumView is the verdict for the API (nil before any).
func (s *Scheduler) quorumView() *recovery.Quorum {
	if s.quorum.verdict.ObservedAt.IsZero() {
		return nil
	}
	v := s.quorum.verdict
	return &v
}

// ProbeServers asks each server, in parallel, for its node ID, raft state
// and last log index (GET /v1/agent/self) and the leader it knows (GET
// /v1/status/leader). A server that does not answer within ctx is
// unreachable.
func (c httpConsul) ProbeServers(ctx context.Context, servers []recovery.Server) []recovery.Server {
	out := make([]recovery.Server, len(servers))
	copy(out, servers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range out {
		if out[i].Address == "" {
			continue
		}
		wg.Add(1)
		go func(i int, sv recovery.Server) {
			defer wg.Done()
			sv = c.probe(ctx, sv)
			mu.Lock()
			out[i] = sv
			mu.Unlock()
		}(i, out[i])
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	res := make([]recovery.Server, len(out))
	copy(res, out)
	for i := range res {
		if !res[i].Reachable && res[i].Err == "" {
			res[i].Err = "no answer in time"
		}
	}
	return res
}

func (c httpConsul) probe(ctx context.Context, sv recovery.Server) recovery.Server {
	cl, err := c.client(sv.Address)
	if err != nil {
		sv.Err = err.Error()
		return sv
	}
	self, err := cl.Agent().Self()
	if err != nil {
		sv.Err = err.Error()
		if unreachable(err) {
			return sv
		}
		// It answered (e.g. an ACL refusal): reachable, raft unknown.
		sv.Reachable = true
	} else {
		sv.Reachable = true
		sv.Err = ""
		if cfg, ok := self["Config"]; ok {
			sv.NodeID, _ = cfg["NodeID"].(string)
		}
		if raft, ok := self["Stats"]["raft"].(map[string]any); ok {
			sv.RaftState, _ = raft["state"].(string)
			if s, ok := raft["last_log_index"].(string); ok {
				sv.LastIndex, _ = strconv.ParseUint(s, 10, 64)
			}
		}
	}
	if ctx.Err() != nil {
		return sv
	}
	if leader, err := cl.Status().Leader(); err == nil {
		sv.Leader = leader
	}
	return sv
}
