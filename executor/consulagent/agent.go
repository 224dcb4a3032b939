// Package consulagent runs one Consul agent (server or client) in-process,
// from a dcos-consul task spec: configuration, start, readiness, Consul's
// own health, graceful leave and stop. It knows nothing about Mesos, so it
// is tested with real Consul clusters on loopback addresses.
package consulagent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	consul "github.com/hashicorp/consul/agent"
	"github.com/hashicorp/consul/agent/config"
	"github.com/hashicorp/consul/agent/structs"
	"github.com/hashicorp/consul/tlsutil"
	"github.com/hashicorp/serf/serf"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// rpcIdleStreams is the idle RPC streams Consul's connection pool keeps
// per server session (see Start); negative keeps Consul's default, for
// the benchmark's comparison.
var rpcIdleStreams = 0

// Agent is one running Consul agent.
type Agent struct {
	spec    taskspec.Spec
	log     *zap.Logger
	agent   *consul.Agent
	nodeID  string
	selfLAN string // ip:serf_lan
	rpcAddr string // ip:server (a server's raft address)
	httpURL string // "" when the HTTP port is disabled
	env     Env    // the start's, for ReloadTLS (its secrets are not kept)

	// tlsConf is Consul's TLS configurator and tlsBase the TLS settings
	// it was built from (file paths in the sandbox); ReloadTLS updates
	// it, one reload at a time.
	tlsConf  *tlsutil.Configurator
	tlsBase  tlsutil.Config
	reloadMu sync.Mutex
	// draining: the loader adds drainSource (Drain).
	draining *atomic.Bool
	// fence holds a leader's RPCs while its leadership is handed over
	// (servers only).
	fence *writeFence

	cancelJoin context.CancelFunc
	joinMu     sync.Mutex
	targets    JoinTargets   // what the joiner joins; grows with AddJoinAddrs
	kick       chan struct{} // wakes the joiner at once
	stopOnce   sync.Once
	done       chan struct{}
	mu         sync.Mutex
	err        error // why the agent stopped
	stopping   bool
}

// Start configures and starts the Consul agent of spec on env. It returns
// once the agent's listeners are up and it has begun joining; use Ready to
// wait until it serves and has joined. An error means no agent runs (a
// port in use, a bad extra_config...) and says why.
func Start(ctx context.Context, spec taskspec.Spec, env Env, log *zap.Logger) (*Agent, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if spec.TLS && spec.Role == taskspec.RoleClient {
		if err := checkTLS(spec, env); err != nil {
			return nil, err
		}
		dns := env.DNSServer
		if dns == "" {
			dns = spec.DNSServer
		}
		hosts, err := resolveAutoEncryptHosts(ctx, spec, NewResolver(dns), log)
		if err != nil {
			return nil, err
		}
		env.AutoEncryptHosts = hosts
	}
	doc, err := Config(spec, env)
	if err != nil {
		return nil, err
	}
	if err := writeTLSFiles(spec, env); err != nil {
		return nil, err
	}
	// Consul has read the files once New returned (or failed).
	defer removeTLSFiles(env, log)
	dataDir, _ := DataDir(spec, env.Sandbox)
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("consulagent: data dir: %w", err)
	}
	if err := writeKeyrings(spec, env, dataDir); err != nil {
		return nil, err
	}
	if err := writePeers(spec, dataDir, log); err != nil {
		return nil, err
	}
	repairServerMetadata(dataDir, log)
	log = log.With(zap.String("consul_node", spec.NodeName))
	draining := new(atomic.Bool)
	loader := func(source config.Source) (config.LoadResult, error) {
		overrides := []config.Source{config.FileSource{
			Name:   "dcos-consul-task-spec.json",
			Format: "json",
			Data:   string(doc),
		}}
		if draining.Load() {
			overrides = append(overrides, drainSource)
		}
		return config.Load(config.LoadOpts{DefaultConfig: source, Overrides: overrides})
	}
	bd, err := consul.NewBaseDeps(loader, &logWriter{log: log.Named("consul")}, nil)
	if err != nil {
		return nil, fmt.Errorf("consul agent configuration: %w", err)
	}
	// No idle RPC stream kept for reuse (Consul keeps 32 on a client, 64
	// on a server): a stream cached on the session to a server that has
	// since restarted in place was handed to the next request, which
	// failed ("rpc error making call: EOF" or "stream closed"; Consul
	// retries neither for a write). Without one the pool opens a stream,
	// finds the session shut and dials the server again. A stream costs a
	// yamux frame on the open session, not a connection.
	// TestClientBackOnRestartedServer; the cost: BenchmarkWriteThroughClient.
	if rpcIdleStreams >= 0 {
		bd.ConnPool.MaxStreams = rpcIdleStreams
	}
	// A server holds the RPCs that need its leadership while that
	// leadership is handed over (HoldForHandOver).
	var fence *writeFence
	if spec.Role == taskspec.RoleServer {
		fence = &writeFence{}
		bd.GetNetRPCInterceptorFunc = fence.interceptor
	}
	ca, err := consul.New(bd)
	if err != nil {
		bd.Close()
		return nil, fmt.Errorf("consul agent: %w", err)
	}
	if err := ca.Start(ctx); err != nil {
		ca.ShutdownAgent()
		ca.ShutdownEndpoints()
		return nil, fmt.Errorf("consul agent did not start: %w", err)
	}
	ca.StartSync()

	a := &Agent{
		spec:     spec,
		log:      log,
		agent:    ca,
		nodeID:   string(bd.RuntimeConfig.NodeID),
		selfLAN:  net.JoinHostPort(net.ParseIP(env.BindIP).String(), strconv.Itoa(spec.Ports.SerfLAN)),
		rpcAddr:  net.JoinHostPort(net.ParseIP(env.BindIP).String(), strconv.Itoa(spec.Ports.Server)),
		env:      Env{BindIP: env.BindIP, Sandbox: env.Sandbox},
		tlsConf:  bd.TLSConfigurator,
		tlsBase:  bd.RuntimeConfig.TLS,
		done:     make(chan struct{}),
		draining: draining,
		fence:    fence,
		targets:  joinTargets(spec),
		kick:     make(chan struct{}, 1),
	}
	if spec.TLS {
		a.httpURL = "https://" + net.JoinHostPort(net.ParseIP(env.BindIP).String(), strconv.Itoa(spec.Ports.HTTPS))
	} else if spec.Ports.HTTP > 0 {
		a.httpURL = "http://" + net.JoinHostPort(net.ParseIP(env.BindIP).String(), strconv.Itoa(spec.Ports.HTTP))
	}
	dnsServer := env.DNSServer
	if dnsServer == "" {
		dnsServer = spec.DNSServer
	}
	jctx, cancel := context.WithCancel(context.Background())
	a.cancelJoin = cancel
	go a.joinLoop(jctx, NewResolver(dnsServer))
	if spec.Role == taskspec.RoleServer && len(spec.WANJoin) > 0 && spec.Ports.SerfWAN > 0 {
		go a.wanJoinLoop(jctx, NewResolver(dnsServer))
	}
	go a.watch()
	log.Info("consul agent started",
		zap.String("role", string(spec.Role)), zap.String("node_id", a.nodeID),
		zap.String("serf_lan", a.selfLAN), zap.String("http", a.httpURL),
		zap.String("data_dir", dataDir), zap.String("dns_server", dnsServer))
	return a, nil
}

// AddJoinAddrs adds serf LAN addresses (ip:port) to the join targets, for
// addresses the scheduler learns after the launch, and has the joiner try
// them at once.
func (a *Agent) AddJoinAddrs(addrs []string) {
	a.joinMu.Lock()
	known := map[string]bool{}
	for _, x := range a.targets.Addrs {
		known[x] = true
	}
	added := 0
	for _, x := range addrs {
		if !known[x] {
			known[x] = true
			a.targets.Addrs = append(a.targets.Addrs, x)
			added++
		}
	}
	a.joinMu.Unlock()
	if added == 0 {
		return
	}
	a.log.Info("join addresses added", zap.Strings("addresses", addrs))
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *Agent) joinTargets() JoinTargets {
	a.joinMu.Lock()
	defer a.joinMu.Unlock()
	t := a.targets
	t.Addrs = append([]string(nil), t.Addrs...)
	return t
}

// watch notices the agent failing or shutting down by itself.
func (a *Agent) watch() {
	select {
	case <-a.agent.Failed():
		a.stop(errors.New("consul agent: its HTTP/DNS endpoints failed"))
	case <-a.agent.ShutdownCh():
		a.stop(errors.New("consul agent shut down"))
	case <-a.done:
	}
}

// NodeID is the agent's Consul node ID (kept in the data dir, so the same
// across relaunches on the same data).
func (a *Agent) NodeID() string { return a.nodeID }

// HTTPAddr is the agent's HTTP API URL, "" when HTTP is disabled.
func (a *Agent) HTTPAddr() string { return a.httpURL }

// Done is closed once the agent has stopped, by Stop/Leave or by itself.
func (a *Agent) Done() <-chan struct{} { return a.done }

// Err says why the agent stopped (nil while it runs, and after Stop).
func (a *Agent) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Health is Consul's own view of this agent.
type Health struct {
	// Healthy: for a server, a raft leader is known and the server is a
	// voting raft peer (a server that rejoins or joins is first a non-voter
	// until autopilot promotes it; a rolling restart must wait for that);
	// for a client, it is a member of a LAN pool with at least one alive
	// server.
	Healthy bool
	// Message explains Healthy in one sentence.
	Message string
	// Leader is the raft leader's address as this agent knows it.
	Leader string
	// Voter: this server is a voting raft peer in its own view of the raft
	// configuration (servers only).
	Voter bool
	// AliveMembers and AliveServers count the alive LAN members, this
	// agent included.
	AliveMembers, AliveServers int
}

// Health reports Consul's own state of the agent, in-process (it works with
// the HTTP port disabled too).
func (a *Agent) Health() Health {
	var h Health
	select {
	case <-a.done:
		h.Message = "the consul agent has stopped"
		return h
	default:
	}
	for _, m := range a.agent.LANMembersInAgentPartition() {
		if m.Status != serf.StatusAlive {
			continue
		}
		h.AliveMembers++
		if m.Tags["role"] == "consul" {
			h.AliveServers++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if a.spec.Role == taskspec.RoleServer {
		h.Leader = a.raftLeader(ctx)
		// Only with a leader: without one the raft configuration RPC waits
		// for a leader (seconds), which would hold up TASK_RUNNING.
		var voter, known bool
		if h.Leader != "" {
			voter, known = a.isVoter(ctx)
		}
		h.Voter = voter
		switch {
		case h.Leader == "":
			h.Message = fmt.Sprintf("consul server: no raft leader known; %d alive LAN members, %d alive servers of %d expected",
				h.AliveMembers, h.AliveServers, a.spec.BootstrapExpect)
		case known && !voter:
			h.Message = fmt.Sprintf("consul server: raft leader %s known, but this server is not a voting raft peer yet (autopilot promotes it once it is stable)", h.Leader)
		default:
			h.Healthy = true
			h.Message = fmt.Sprintf("consul server: raft leader %s known; %d alive LAN members", h.Leader, h.AliveMembers)
			if known {
				h.Message += "; this server is a voting raft peer"
			}
		}
		return h
	}
	serversElsewhere := h.AliveServers
	h.Healthy = serversElsewhere > 0
	if h.Healthy {
		h.Message = fmt.Sprintf("consul client: joined, %d alive LAN members of which %d servers", h.AliveMembers, h.AliveServers)
	} else {
		h.Message = fmt.Sprintf("consul client: no alive server in its LAN pool (%d alive members)", h.AliveMembers)
	}
	return h
}

// isVoter reads the local raft configuration (a stale read, no leader
// round trip). known is false when it cannot tell, e.g. when ACLs deny
// operator:read to the agent's own RPCs; health then rests on the leader.
func (a *Agent) isVoter(ctx context.Context) (voter, known bool) {
	var rc structs.RaftConfigurationResponse
	req := structs.DCSpecificRequest{Datacenter: a.spec.Datacenter, QueryOptions: structs.QueryOptions{AllowStale: true}}
	if err := a.agent.RPC(ctx, "Operator.RaftGetConfiguration", &req, &rc); err != nil {
		return false, false
	}
	for _, s := range rc.Servers {
		if string(s.ID) == a.nodeID {
			return s.Voter, true
		}
	}
	return false, true
}

// aliveMembers returns the ip:port of the alive LAN members and how many
// of them are not this agent.
func (a *Agent) aliveMembers() (map[string]bool, int) {
	alive := map[string]bool{}
	others := 0
	for _, m := range a.agent.LANMembersInAgentPartition() {
		if m.Status != serf.StatusAlive {
			continue
		}
		addr := net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port)))
		alive[addr] = true
		if addr != a.selfLAN {
			others++
		}
	}
	return alive, others
}

// joined reports whether the agent is in the LAN pool it needs for
// TASK_RUNNING: a server expecting other servers has at least one other
// alive member, a single server itself, a client at least one alive server.
func (a *Agent) joined() (bool, string) {
	servers, others := 0, 0
	for _, m := range a.agent.LANMembersInAgentPartition() {
		if m.Status != serf.StatusAlive {
			continue
		}
		isSelf := net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port))) == a.selfLAN
		if !isSelf {
			others++
			if m.Tags["role"] == "consul" {
				servers++
			}
		}
	}
	switch {
	case a.spec.Role == taskspec.RoleServer && a.spec.BootstrapExpect <= 1:
		return true, ""
	case a.spec.Role == taskspec.RoleServer:
		return others > 0, "no other member in the LAN pool yet"
	default:
		return servers > 0, "no server in the LAN pool yet"
	}
}

// Ready waits until the agent's HTTP API answers (when HTTP is enabled) and
// it has joined the LAN pool (see joined). It fails when ctx ends first,
// saying what it was still waiting for, or when the agent stops.
func (a *Agent) Ready(ctx context.Context) error {
	// Straight to the agent's own address, never through an http_proxy.
	// Readiness only asks whether the API answers at all and sends nothing
	// secret, so it does not verify the HTTPS certificate (a client's
	// comes from Consul's own CA through auto_encrypt).
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // liveness probe of the agent's own listener
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	waiting := "starting"
	for {
		select {
		case <-a.done:
			if err := a.Err(); err != nil {
				return err
			}
			return errors.New("consul agent stopped before it was ready")
		default:
		}
		waiting = a.notReady(ctx, client)
		if waiting == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consul agent not ready: %s: %w", waiting, ctx.Err())
		case <-a.done:
		case <-tick.C:
		}
	}
}

func (a *Agent) notReady(ctx context.Context, client *http.Client) string {
	if a.httpURL != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.httpURL+"/v1/agent/self", nil)
		if err != nil {
			return err.Error()
		}
		resp, err := client.Do(req)
		if err != nil {
			return "HTTP API does not answer: " + err.Error()
		}
		// Any answer counts: with ACLs on, an anonymous /v1/agent/self gets
		// 403 (or 500 before the ACL system is up), and the API still works.
		resp.Body.Close()
	}
	if ok, why := a.joined(); !ok {
		return why
	}
	return ""
}

// Leave gracefully leaves the cluster (consul leave: the node leaves the
// LAN pool; a server is first removed from the raft configuration by the
// leader, so the remaining servers keep their quorum) and then stops the
// agent. When ctx ends first, it stops the agent anyway and returns the
// context's error. The data dir keeps the node ID and raft data, so a
// server started again on it rejoins as the same raft peer.
func (a *Agent) Leave(ctx context.Context) error {
	select {
	case <-a.done:
		return a.Err()
	default:
	}
	a.mu.Lock()
	a.stopping = true
	a.mu.Unlock()
	a.cancelJoin()
	a.log.Info("consul agent leaving the cluster")
	left := make(chan error, 1)
	go func() { left <- a.agent.Leave() }()
	var err error
	select {
	case err = <-left:
		if err != nil {
			err = fmt.Errorf("consul leave: %w", err)
		}
	case <-ctx.Done():
		err = fmt.Errorf("consul leave did not finish in time: %w", ctx.Err())
	}
	if err != nil {
		a.log.Warn("graceful leave failed; stopping the agent anyway", zap.Error(err))
	} else {
		a.log.Info("consul agent left the cluster")
	}
	a.Stop()
	return err
}

// Stop stops the agent without leaving (the others see it fail). It is
// safe to call more than once and after Leave.
func (a *Agent) Stop() { a.stop(nil) }

func (a *Agent) stop(cause error) {
	a.stopOnce.Do(func() {
		a.mu.Lock()
		if cause != nil && !a.stopping {
			a.err = cause
		}
		a.stopping = true
		a.mu.Unlock()
		if cause != nil && a.Err() != nil {
			a.log.Error("consul agent stopped by itself", zap.Error(cause))
		}
		a.cancelJoin()
		if err := a.agent.ShutdownAgent(); err != nil {
			a.log.Warn("consul agent shutdown", zap.Error(err))
		}
		a.agent.ShutdownEndpoints()
		close(a.done)
		a.log.Info("consul agent stopped")
	})
}

// writePeers writes the outage-recovery raft peers of a server's spec to
// <data_dir>/raft/peers.json, which Consul reads (and deletes) at start.
func writePeers(spec taskspec.Spec, dataDir string, log *zap.Logger) error {
	if spec.Role != taskspec.RoleServer || len(spec.RecoverPeers) == 0 {
		return nil
	}
	b, err := json.MarshalIndent(spec.RecoverPeers, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Join(dataDir, "raft")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("consulagent: raft dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "peers.json"), b, 0o600); err != nil {
		return fmt.Errorf("consulagent: peers.json: %w", err)
	}
	log.Warn("outage recovery: raft peers written to peers.json", zap.Any("peers", spec.RecoverPeers))
	return nil
}

// repairServerMetadata removes a truncated server_metadata.json. Consul
// 1.16 rewrites it (O_TRUNC, then write) from a goroutine right after the
// server starts; an agent that fails to start just then (a port still held
// by the previous incarnation) leaves it empty, and Consul then refuses
// every later start ("error reading server metadata"). Without the file
// Consul starts as on its first start (its last-seen check is skipped).
func repairServerMetadata(dataDir string, log *zap.Logger) {
	f := filepath.Join(dataDir, "server_metadata.json")
	b, err := os.ReadFile(f)
	if err != nil || json.Valid(b) {
		return
	}
	if err := os.Remove(f); err != nil {
		log.Warn("cannot remove a truncated server_metadata.json", zap.Error(err))
		return
	}
	log.Warn("removed a truncated server_metadata.json (a start interrupted while Consul rewrote it)", zap.Int("bytes", len(b)))
}
