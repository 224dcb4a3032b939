package consulagent

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/consul/agent/config"
	"github.com/hashicorp/consul/agent/structs"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// drainSource is what a draining server's configuration adds: Consul's
// own request limits (limits.request_limits, Consul 1.15+) enforcing, with
// no read and no write allowed. Every RPC that reaches the server then,
// from a client agent or from its own HTTP API, is refused before its
// handler runs with "rate limit exceeded, try again later or against a
// different server"; Consul's client agents retry that on their next
// server and move this one to the end of their list, and its HTTP API
// answers 429 (nothing applied). Exempt in Consul's rate-limit table:
// raft and serf (not RPCs), Status.* (autopilot's RaftStats), the
// operator's raft and autopilot reads and peer removal, so the server
// stays a full voter and the scheduler's quorum gate can read it.
var drainSource = config.FileSource{
	Name:   "dcos-consul-drain.json",
	Format: "json",
	Data:   `{"limits": {"request_limits": {"mode": "enforcing", "read_rate": 0, "write_rate": 0}}}`,
}

// Drain readies a server for a stop in place: it reloads the agent's
// configuration with drainSource, so that for the rest of its life it
// refuses client requests with an error Consul's clients retry elsewhere.
// Stopped without it, the server cut the requests in flight through it
// ("rpc error making call: EOF", "stream closed") and every client that
// still had it first in its list failed its next write ("failed to get
// conn: connection refused") until serf marked it failed: Consul retries
// neither for a write, whose outcome it cannot know. The caller waits a
// moment (requests in flight finish, busy clients move on), then stops
// the agent. A server that leaves for good drains first too (without the
// wait): its serf leave takes it off the clients' lists, but once it has
// left it knows no raft leader, and a write sent to its own API waited
// for one until Consul's RPC hold timeout.
func (a *Agent) Drain() error {
	if a.spec.Role != taskspec.RoleServer {
		return errors.New("consulagent: only a server drains")
	}
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	select {
	case <-a.done:
		return errors.New("consulagent: the agent has stopped")
	default:
	}
	// Consul's reload reloads its TLS files too: they are written back
	// from what Consul holds (they were removed once it had read them),
	// and removed again.
	if a.spec.TLS && a.tlsConf != nil {
		files, err := a.currentTLSFiles()
		if err != nil {
			return err
		}
		if err := writeSecretFiles(files); err != nil {
			removeTLSFiles(a.env, a.log)
			return err
		}
		defer removeTLSFiles(a.env, a.log)
	}
	a.draining.Store(true)
	if err := a.agent.ReloadConfig(); err != nil {
		a.draining.Store(false)
		return fmt.Errorf("consulagent: Consul did not reload its configuration with the drain's request limits: %w", err)
	}
	a.log.Info("consul server draining: client requests are refused with 'try a different server' until it stops")
	return nil
}

// Leads reports whether this server is the raft leader now, from its own
// raft view (Status.Leader, which the drain's request limits exempt). A
// leader must not drain: refused by it, a write forwarded by a follower
// is retried there until Consul's hold timeout and then fails, and one
// from a client fails at once ("try again later").
func (a *Agent) Leads() bool {
	if a.spec.Role != taskspec.RoleServer {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	leader := a.raftLeader(ctx)
	return leader != "" && leader == a.rpcAddr
}

// raftLeader is the raft leader's address in the server's own raft view
// (no forwarding, no round trip to the leader); "" when none is known.
func (a *Agent) raftLeader(ctx context.Context) string {
	var leader string
	if err := a.agent.RPC(ctx, "Status.Leader", &structs.DCSpecificRequest{Datacenter: a.spec.Datacenter}, &leader); err != nil {
		return ""
	}
	return leader
}

// currentTLSFiles are the server's TLS files as Consul holds them now
// (its CA bundle, certificate chain and key), by path in the sandbox.
func (a *Agent) currentTLSFiles() (map[string]string, error) {
	cert := a.tlsConf.Cert()
	cas := a.tlsConf.ManualCAPems()
	if cert == nil || len(cert.Certificate) == 0 || len(cas) == 0 {
		return nil, errors.New("consulagent: Consul holds no server certificate or CA to reload")
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("consulagent: the server's key: %w", err)
	}
	var chain strings.Builder
	for _, der := range cert.Certificate {
		chain.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	f := tlsFiles(a.env.Sandbox)
	return map[string]string{
		f.CA:   strings.Join(cas, "\n"),
		f.Cert: chain.String(),
		f.Key:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})),
	}, nil
}
