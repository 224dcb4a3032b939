package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/consulclient"
	"github.com/dcos-consul/dcos-consul/scheduler/reconcile"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// consulAdmin is what the scheduler asks of the Consul cluster it runs.
type consulAdmin interface {
	// RemoveServer removes a server's raft peer (at raftAddr), through one
	// of the servers at via (HTTP addresses), only if the remaining voters
	// keep a quorum; leave says what becomes of its LAN membership (node).
	RemoveServer(ctx context.Context, via []string, node, raftAddr string, leave memberLeave) error
	// ForceLeave removes a dead node from the LAN pool: pruned (gone at
	// once, its name free for a new node) or left (as after a graceful
	// leave).
	ForceLeave(ctx context.Context, via []string, node string, prune bool) error
	// RaftHealth reads Consul's raft servers with autopilot's health
	// through one of the servers at via. errNoConsul: none answered;
	// errNoRaftView: one answered but may not tell (ACLs).
	RaftHealth(ctx context.Context, via []string) (*reconcile.RaftHealth, error)
	// TransferLeader asks the raft leader to hand leadership to the
	// server with raft ID id (Consul 1.16's HTTP API; the CLI ignores -id).
	TransferLeader(ctx context.Context, via []string, id string) error
	// SetAutopilot writes autopilot's min_quorum and cleanup_dead_servers,
	// keeping its other settings; it reports whether it changed anything.
	SetAutopilot(ctx context.Context, via []string, minQuorum uint, cleanupDead bool) (bool, error)
}

// errNoRaftView: a server answered but refused to show its raft
// configuration (ACLs without an operator:read token).
var errNoRaftView = errors.New("Consul does not show its raft configuration to the scheduler")

// unreachable tells a server that did not answer (connection refused,
// timeout) from one that answered with an error.
func unreachable(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &oe) || (errors.As(err, &ne) && ne.Timeout())
}

// errNoConsul: no server answered at all (the cluster is down, or the
// tasks run without Consul as in the simulator's in-process mode).
var errNoConsul = errors.New("no Consul server answered")

type httpConsul struct {
	log   *zap.Logger
	token string // the scheduler's ACL token; "" without ACLs
	// anonymous (nil: never) says to send no token for now: ACLs are
	// being turned on and the token does not exist in Consul yet, which
	// would refuse it even under default allow (state.ACLTokensWithheld).
	anonymous func() bool
}

// tok is the token to send now.
func (c httpConsul) tok() string {
	if c.anonymous != nil && c.anonymous() {
		return ""
	}
	return c.token
}

func (c httpConsul) client(addr string) (*consulapi.Client, error) {
	// force-leave with prune can take seconds
	return consulclient.New(addr, c.tok(), 15*time.Second)
}

// memberLeave is what RemoveServer does with the server's LAN member.
type memberLeave int

const (
	// keepMember: a scale-down removes the peer of a server that still
	// runs; it is killed next and force-left once its record goes.
	keepMember memberLeave = iota
	// pruneOnceFailed: a replacement prunes the old member, but only once
	// serf sees it failed: serf's prune of a member still alive (killed
	// moments ago, not yet detected) sleeps its broadcast timeout plus
	// the leave propagation delay, 8 s a pool, holding the member lock of
	// the server that does it (the availability test measured 15 s, the
	// scheduler's HTTP timeout, on every replace and scale-down step).
	pruneOnceFailed
	// pruneNow prunes whatever serf says (waited long enough).
	pruneNow
)

// errSerfAlive: the old server is not failed in serf yet; its peer
// removal and prune wait (shortly) for serf's failure detection.
var errSerfAlive = errors.New("serf does not see the old server failed yet")

// pruneWait says why a replacement's removal waits for serf before it
// removes the peer and prunes the member ("" to go on), from the serf
// status autopilot reports for the peer ("" when unknown).
func pruneWait(leave memberLeave, serfStatus string) string {
	if leave != pruneOnceFailed {
		return ""
	}
	switch serfStatus {
	case "alive", "leaving":
		return "serf still sees it " + serfStatus + " (failure detection takes a few seconds after a kill); pruning it now would hold serf 8 s a pool"
	}
	return ""
}

func (c httpConsul) RemoveServer(ctx context.Context, via []string, node, raftAddr string, leave memberLeave) error {
	var last error = errNoConsul
	answered := false
	for _, addr := range via {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		cl, err := c.client(addr)
		if err != nil {
			last = err
			continue
		}
		op := cl.Operator()
		conf, err := op.RaftGetConfiguration(&consulapi.QueryOptions{})
		if err != nil {
			last = fmt.Errorf("%s: raft configuration: %w", addr, err)
			if !unreachable(err) {
				answered = true // e.g. no leader during an election: try again later
			}
			continue
		}
		answered = true
		var peer *consulapi.RaftServer
		voters := 0
		for _, s := range conf.Servers {
			if s.Voter {
				voters++
			}
			if s.Address == raftAddr {
				peer = s
			}
		}
		if peer == nil {
			c.log.Info("the old server is not a raft peer any more", zap.String("node", node), zap.String("raft_address", raftAddr))
		} else {
			health, err := op.AutopilotServerHealth(&consulapi.QueryOptions{})
			if err != nil {
				last = fmt.Errorf("%s: autopilot health: %w", addr, err)
				continue
			}
			healthy, serfStatus := 0, ""
			for _, s := range health.Servers {
				if s.ID == peer.ID || s.Address == raftAddr {
					serfStatus = s.SerfStatus
				}
				if s.Healthy && s.Voter && s.ID != peer.ID && s.Address != raftAddr {
					healthy++
				}
			}
			if why := pruneWait(leave, serfStatus); why != "" {
				return fmt.Errorf("%w: %s: %s", errSerfAlive, node, why)
			}
			if err := quorumAfterRemoval(voters, healthy, peer.Voter); err != nil {
				return fmt.Errorf("raft peer %s: %w", raftAddr, err)
			}
			if err := op.RaftRemovePeerByID(peer.ID, &consulapi.WriteOptions{}); err != nil {
				last = fmt.Errorf("%s: remove raft peer %s: %w", addr, raftAddr, err)
				continue
			}
			c.log.Warn("removed the old server's raft peer", zap.String("node", node), zap.String("raft_address", raftAddr), zap.String("via", addr))
		}
		if leave == keepMember {
			return nil
		}
		// The old node must be gone from the member list before the
		// replacement (same node name, new node ID) starts: Consul's
		// leader does not add it to raft while the old member is there.
		// (Done in the background, the availability test saw a
		// replacement that never joined raft.)
		if err := cl.Agent().ForceLeavePrune(node); err != nil {
			c.log.Info("force-leave of the old server node", zap.String("node", node), zap.Error(err))
		}
		return nil
	}
	if !answered {
		return fmt.Errorf("%w: %v", errNoConsul, last)
	}
	return last
}

func (c httpConsul) RaftHealth(ctx context.Context, via []string) (*reconcile.RaftHealth, error) {
	var last error = errNoConsul
	for _, addr := range via {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		cl, err := c.client(addr)
		if err != nil {
			last = err
			continue
		}
		// The raft configuration says who is a peer and a voter (a removed
		// peer is gone from it at once); autopilot says who is healthy.
		op := cl.Operator()
		conf, err := op.RaftGetConfiguration((&consulapi.QueryOptions{}).WithContext(ctx))
		var reply *consulapi.OperatorHealthReply
		if err == nil {
			reply, err = op.AutopilotServerHealth((&consulapi.QueryOptions{}).WithContext(ctx))
		}
		if err != nil {
			if unreachable(err) {
				last = fmt.Errorf("%s: %w", addr, err)
				continue
			}
			var se consulapi.StatusError
			if errors.As(err, &se) && (se.Code == http.StatusForbidden || se.Code == http.StatusUnauthorized) {
				return nil, fmt.Errorf("%w: %s: %v", errNoRaftView, addr, err)
			}
			// It answered without a view (no leader during an election,
			// autopilot not ready): nothing counts as a healthy voter.
			return &reconcile.RaftHealth{Err: fmt.Sprintf("%s: %v", addr, err)}, nil
		}
		// By raft ID (the node ID): a server that came back on the same
		// address with a new data directory is another server.
		key := func(id, addr string) string {
			if id != "" {
				return "id:" + id
			}
			return "addr:" + addr
		}
		healthy := map[string]bool{}
		for _, sv := range reply.Servers {
			healthy[key(sv.ID, sv.Address)] = sv.Healthy
		}
		h := &reconcile.RaftHealth{Healthy: reply.Healthy, FailureTolerance: reply.FailureTolerance}
		for _, sv := range conf.Servers {
			h.Servers = append(h.Servers, reconcile.RaftServer{ID: sv.ID, Name: sv.Node, Address: sv.Address, Leader: sv.Leader,
				Voter: sv.Voter, Healthy: healthy[key(sv.ID, sv.Address)]})
		}
		return h, nil
	}
	if errors.Is(last, errNoConsul) {
		return nil, last
	}
	return nil, fmt.Errorf("%w: %v", errNoConsul, last)
}

func (c httpConsul) TransferLeader(ctx context.Context, via []string, id string) error {
	var last error = errNoConsul
	hc := consulclient.HTTPClient(15 * time.Second)
	for _, addr := range via {
		u := consulclient.URL(addr) + "/v1/operator/raft/transfer-leader?id=" + url.QueryEscape(id)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
		if err != nil {
			return err
		}
		if tok := c.tok(); tok != "" { // operator = "write" in the scheduler's policy
			req.Header.Set("X-Consul-Token", tok)
		}
		resp, err := hc.Do(req)
		if err != nil {
			last = fmt.Errorf("%s: %w", addr, err)
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			last = fmt.Errorf("%s: transfer-leader: %s: %s", addr, resp.Status, strings.TrimSpace(string(body)))
			continue
		}
		return nil
	}
	return last
}

func (c httpConsul) SetAutopilot(ctx context.Context, via []string, minQuorum uint, cleanupDead bool) (bool, error) {
	var last error = errNoConsul
	for _, addr := range via {
		cl, err := c.client(addr)
		if err != nil {
			last = err
			continue
		}
		op := cl.Operator()
		conf, err := op.AutopilotGetConfiguration((&consulapi.QueryOptions{}).WithContext(ctx))
		if err != nil {
			last = fmt.Errorf("%s: autopilot configuration: %w", addr, err)
			continue
		}
		if conf.MinQuorum == minQuorum && conf.CleanupDeadServers == cleanupDead {
			return false, nil
		}
		conf.MinQuorum, conf.CleanupDeadServers = minQuorum, cleanupDead
		if err := op.AutopilotSetConfiguration(conf, (&consulapi.WriteOptions{}).WithContext(ctx)); err != nil {
			last = fmt.Errorf("%s: set autopilot configuration: %w", addr, err)
			continue
		}
		return true, nil
	}
	return false, last
}

func (c httpConsul) ForceLeave(ctx context.Context, via []string, node string, prune bool) error {
	var last error = errNoConsul
	for _, addr := range via {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		cl, err := c.client(addr)
		if err != nil {
			last = err
			continue
		}
		force := cl.Agent().ForceLeave
		if prune {
			force = cl.Agent().ForceLeavePrune
		}
		if err := force(node); err != nil {
			last = fmt.Errorf("%s: force-leave %s: %w", addr, node, err)
			continue
		}
		return nil
	}
	return last
}

// quorumAfterRemoval: removing a peer is allowed only if the healthy
// voters left form a quorum of the configuration without it.
func quorumAfterRemoval(voters, healthyOthers int, peerVoter bool) error {
	remaining := voters
	if peerVoter {
		remaining--
	}
	if remaining < 1 {
		return fmt.Errorf("it is the last voter: keeping it")
	}
	if quorum := remaining/2 + 1; healthyOthers < quorum {
		return fmt.Errorf("removing it would leave %d healthy voters of %d (quorum %d): keeping it", healthyOthers, remaining, quorum)
	}
	return nil
}

// consulHTTPAddrs are the HTTP addresses of the running servers.
func consulHTTPAddrs(ts state.Tasks, tg state.Target, except string) []string {
	var out []string
	for i := 0; i < tg.Servers; i++ {
		t, ok := ts[state.ServerName(i)]
		if !ok || t.Name == except || !t.Running() {
			continue
		}
		if a, ok := consulclient.Addr(t.IP, t.Ports); ok {
			out = append(out, a)
		}
	}
	return out
}

// forceLeave removes forgotten clients from the LAN pool (best effort).
func (s *Scheduler) forceLeave(old map[string]state.Task) {
	for name, t := range old {
		// Clients, and servers scaled down (their raft peer is removed
		// before the kill; they stop without leaving, so their node is
		// failed in the LAN pool until force-left).
		if (t.Role != taskspec.RoleClient && t.Goal != state.GoalDecommission) || t.IP == "" {
			continue
		}
		via := consulHTTPAddrs(s.tasks, s.target, "")
		// A scaled-down server was killed moments ago and may still be
		// alive in serf: it is marked left, as a graceful leave would
		// (serf's prune of a member not yet failed holds serf 8 s a
		// pool). A lost client is long failed: pruned.
		prune := t.Role == taskspec.RoleClient
		go func(node string) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := s.consul.ForceLeave(ctx, via, node, prune); err != nil {
				s.log.Info("could not force-leave a lost client", zap.String("node", node), zap.Error(err))
			} else {
				s.log.Info("lost client removed from the LAN pool", zap.String("node", node))
			}
		}(name)
	}
}

// startPeerRemovals starts removing the old raft peer of every replaced
// server that has one recorded (state.Task.OldPeer), including after a
// scheduler restart. Placement waits (see blocked).
func (s *Scheduler) startPeerRemovals() {
	for i := 0; i < s.target.Servers; i++ {
		t, ok := s.tasks[state.ServerName(i)]
		if !ok || t.OldPeer == "" || s.peerRemoval[t.Name] != "" {
			continue
		}
		s.peerRemoval[t.Name] = t.OldPeer
		go s.removePeer(t.Name, t.OldPeer, consulHTTPAddrs(s.tasks, s.target, t.Name))
	}
}

// removePeer removes a replaced server's old raft peer, retrying until
// Consul does it: the gate fails closed, so the replacement is not placed
// while the old peer cannot be removed (no Consul server answers, or the
// others would not keep quorum without it); the step says why. Only a
// single-server cluster, where nobody else can answer, gives up after
// PeerRemovalTimeout (its data is gone with its agent anyway).
func (s *Scheduler) removePeer(name, raftAddr string, via []string) {
	began := time.Now()
	deadline := began.Add(s.opts.PeerRemovalTimeout)
	single := s.target.Servers <= 1
	for {
		leave := pruneOnceFailed
		if time.Since(began) > serfFailWait {
			leave = pruneNow // e.g. an agent lost to Mesos whose Consul still gossips
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := s.consul.RemoveServer(ctx, via, name, raftAddr, leave)
		cancel()
		if err == nil {
			break
		}
		if errors.Is(err, errSerfAlive) {
			s.log.Info("old server not failed in serf yet; its peer removal waits for the failure detection", zap.String("task", name), zap.Error(err))
			select {
			case s.cmds <- func() { s.removalWhy[name] = "waiting (retrying every second): " + err.Error() }:
			case <-s.done:
				return
			}
			select {
			case <-time.After(time.Second):
			case <-s.done:
				return
			}
			continue
		}
		if single && time.Now().After(deadline) {
			s.log.Warn("could not remove the old raft peer of the only server; placing the replacement", zap.String("task", name),
				zap.String("raft_address", raftAddr), zap.Error(err))
			break
		}
		s.log.Warn("old raft peer not removed yet; the replacement waits (retrying every 5 s)", zap.String("task", name), zap.Error(err))
		why := "not possible yet (retrying every 5 s): " + err.Error()
		select {
		case s.cmds <- func() { s.removalWhy[name] = why }:
		case <-s.done:
			return
		}
		select {
		case <-time.After(5 * time.Second):
		case <-s.done:
			return
		}
	}
	done := func() {
		delete(s.peerRemoval, name)
		delete(s.removalWhy, name)
		if t, ok := s.tasks[name]; ok && t.OldPeer == raftAddr {
			t.OldPeer = ""
			s.setTask(t) // written by the next flush
		}
	}
	select {
	case s.cmds <- done:
	case <-s.done:
	}
}

// serfFailWait bounds how long a replacement waits for serf to see the
// old server failed before it prunes the member anyway (memberlist marks
// a killed server failed within a few seconds).
const serfFailWait = 20 * time.Second

// pollRaft reads Consul's raft view now and then (a goroutine; the
// result reaches the loop as a command, so the pure core sees plain data),
// and starts autopilot's configuration when the last reconciliation asks
// for it (a leadership transfer starts in handOver). Called every tick.
func (s *Scheduler) pollRaft() {
	s.syncAutopilot(s.now())
	now := time.Now()
	if s.raftPolling || now.Before(s.raftNext) {
		return
	}
	via := consulHTTPAddrs(s.tasks, s.target, "")
	if len(via) == 0 {
		s.raft = &reconcile.RaftHealth{Err: "no Consul server runs to ask"}
		return
	}
	s.raftPolling = true
	// Less a tenth of the 1 s tick, so that a read due every second is
	// not put off to the tick after (ticks are never exactly 1 s apart).
	s.raftNext = now.Add(s.last.RaftPollEvery() - 100*time.Millisecond)
	go func() {
		// At is when the read started: a read under way while a server
		// restarts must not count as a view of its new incarnation.
		started := s.opts.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		h, err := s.consul.RaftHealth(ctx, via)
		cancel()
		if h != nil {
			h.At = started
		}
		f := func() {
			s.raftPolling = false
			switch {
			case err == nil:
				if h.Err != "" && (s.raft == nil || s.raft.Err == "") {
					s.log.Info("Consul answered without a raft view; replacements and rolling restarts wait", zap.String("error", h.Err))
				}
				h.CarryLeaderSince(s.raft)
				s.raft = h
			case errors.Is(err, errNoRaftView):
				if !s.raftDenied {
					s.log.Warn("cannot read Consul's raft configuration (ACLs: the scheduler's token needs operator:read): every server action waits",
						zap.Error(err))
				}
				s.raftDenied = true
				s.raft = &reconcile.RaftHealth{Err: err.Error() + " (the scheduler's ACL token needs operator:read)"}
			default:
				if s.raft != nil {
					s.log.Warn("no Consul server answered: every server action (rolling restart, replacement, scale-down) waits", zap.Error(err))
				}
				s.raft = nil
			}
		}
		select {
		case s.cmds <- f:
		case <-s.done:
		}
	}()
}

// startScaleDownRemovals removes the raft peer of each server being
// scaled down (reconcile.Result.RemovePeer), before it leaves or is
// killed. It never
// gives up: the server runs until Consul answers and the others keep
// quorum without it (the gate fails closed).
func (s *Scheduler) startScaleDownRemovals() {
	for name, addr := range s.last.RemovePeer {
		if s.peerRemoval[name] != "" {
			continue
		}
		s.peerRemoval[name] = addr
		via := consulHTTPAddrs(s.tasks, s.target, name)
		taskID := s.tasks[name].TaskID
		go func(name, addr string) {
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := s.consul.RemoveServer(ctx, via, name, addr, keepMember)
				cancel()
				if err == nil {
					break
				}
				s.log.Warn("scale-down: raft peer not removed yet; retrying", zap.String("task", name), zap.Error(err))
				why := "raft peer removal not possible yet (retrying every 5 s): " + err.Error()
				select {
				case s.cmds <- func() { s.removalWhy[name] = why }:
				case <-s.done:
					return
				}
				select {
				case <-time.After(5 * time.Second):
				case <-s.done:
					return
				}
			}
			done := func() {
				delete(s.peerRemoval, name)
				delete(s.removalWhy, name)
				if t, ok := s.tasks[name]; ok && t.TaskID == taskID && t.Goal == state.GoalDecommission {
					t.PeerRemoved, t.PeerRemovedAt = true, time.Now()
					s.setTask(t) // written by the next flush, before the kill is sent
					s.log.Warn("scale-down: raft peer removed; the server leaves gracefully next (or is killed when it cannot)", zap.String("task", name), zap.String("raft_address", addr))
				}
			}
			select {
			case s.cmds <- done:
			case <-s.done:
			}
		}(name, addr)
	}
}

// startTransfer asks Consul to hand raft leadership over before the
// rolling restart restarts the leader (reconcile.Result.Transfer); held
// says whether the leader holds its requests meanwhile (handover.go).
// One at a time; after an attempt the next raft read (sooner than usual)
// shows the new leader, and the old one is restarted as a follower.
func (s *Scheduler) startTransfer(tr *reconcile.Transfer, held bool) {
	s.transferring = true
	via := consulHTTPAddrs(s.tasks, s.target, "")
	s.log.Info("handing raft leadership over before restarting the leader", zap.String("from", tr.From), zap.String("to", tr.To),
		zap.String("to_id", tr.ToID), zap.Bool("requests_held", held))
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := s.consul.TransferLeader(ctx, via, tr.ToID)
		cancel()
		f := func() {
			s.transferring = false
			s.ask = handOverAsk{} // the next attempt asks anew
			s.transferNext = s.now().Add(5 * time.Second)
			s.raftNext = time.Now().Add(time.Second)
			if err != nil {
				s.log.Warn("raft leadership transfer failed; trying again", zap.String("from", tr.From), zap.String("to", tr.To), zap.Error(err))
				s.transferWhy = "the last leadership transfer failed: " + err.Error()
				return
			}
			s.transferWhy = ""
			s.transferDone = s.now()
			s.metrics.leaderTransfers.Inc()
			s.log.Info("raft leadership handed over", zap.String("from", tr.From), zap.String("to", tr.To))
		}
		select {
		case s.cmds <- f:
		case <-s.done:
		}
	}()
}

// syncAutopilot sets autopilot's min_quorum and cleanup_dead_servers for
// the configured server count (reconcile.AutopilotWant) once the servers
// are settled at that count: at start and after every scale.
func (s *Scheduler) syncAutopilot(now time.Time) {
	if s.autopilotFor == s.target.Servers || s.autopilotBusy || now.Before(s.autopilotNext) || len(s.last.ScaleDown) > 0 ||
		s.raft.ClusterWait(s.target) != "" {
		return
	}
	for i := 0; i < s.target.Servers; i++ {
		if t, ok := s.tasks[state.ServerName(i)]; !ok || s.raft.VoterWait(t, s.target) != "" {
			return
		}
	}
	n := s.target.Servers
	minQ, cleanup := reconcile.AutopilotWant(n)
	via := consulHTTPAddrs(s.tasks, s.target, "")
	s.autopilotBusy = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		changed, err := s.consul.SetAutopilot(ctx, via, minQ, cleanup)
		cancel()
		f := func() {
			s.autopilotBusy = false
			if err != nil {
				s.autopilotNext = s.now().Add(10 * time.Second)
				s.log.Warn("could not set autopilot's configuration; retrying", zap.Int("servers", n), zap.Error(err))
				return
			}
			s.autopilotFor = n
			if changed {
				s.log.Info("autopilot configured for the server count", zap.Int("servers", n), zap.Uint("min_quorum", minQ),
					zap.Bool("cleanup_dead_servers", cleanup))
			}
		}
		select {
		case s.cmds <- f:
		case <-s.done:
		}
	}()
}
