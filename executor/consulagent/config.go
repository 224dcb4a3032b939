package consulagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// Env is what the executor knows about the machine the agent runs on, as
// opposed to the task spec, which the scheduler wrote.
type Env struct {
	// BindIP is the Mesos agent's address: the Consul agent binds and
	// advertises its cluster ports and serves HTTP/DNS on it.
	BindIP string
	// Sandbox is MESOS_SANDBOX; the spec's data_dir is relative to it.
	Sandbox string
	// DNSServer (ip:port), when set, overrides spec.DNSServer as the
	// resolver for the spec's JoinDNSNames.
	DNSServer string
	// GossipKey is the serf encryption key the executor fetched from the
	// scheduler (never part of the task spec); required when the spec
	// asks for gossip encryption.
	GossipKey string
	// GossipKeys are every key of the cluster's keyring (GossipKey among
	// them); Start writes them into the agent's keyring files so that an
	// agent started during a key rotation, or a server whose volume kept
	// an old keyring, accepts every key in use.
	GossipKeys []string
	// ACLAgentToken is the agent's ACL token, fetched like GossipKey;
	// required when the spec asks for ACLs.
	ACLAgentToken string
	// ACLReplicationToken is a secondary datacenter's servers' token for
	// ACL replication (acl.tokens.replication), fetched like GossipKey;
	// required when the spec asks for ACL replication.
	ACLReplicationToken string
	// TLSCACert, TLSCert and TLSKey (PEM) are the CA certificate and, for
	// a server, its own certificate and key, fetched like GossipKey;
	// required when the spec asks for TLS.
	TLSCACert, TLSCert, TLSKey string
	// AutoEncryptHosts are the servers (ip:port) a client with TLS asks
	// for its certificate; Start fills them in.
	AutoEncryptHosts []string
}

// String keeps the key out of any log line that prints an Env.
func (e Env) String() string {
	return fmt.Sprintf("{BindIP:%s Sandbox:%s DNSServer:%s GossipKey:%s ACLAgentToken:%s ACLReplicationToken:%s TLSKey:%s}", e.BindIP, e.Sandbox, e.DNSServer,
		redacted(e.GossipKey), redacted(e.ACLAgentToken), redacted(e.ACLReplicationToken), redacted(e.TLSKey))
}

// GoString is String for %#v.
func (e Env) GoString() string {
	return e.String()
}

func redacted(s string) string {
	if s == "" {
		return ""
	}
	return "<redacted>"
}

// leaveDrainTime replaces Consul's 5 s default of
// performance.leave_drain_time: a server's graceful leave must fit into the
// executor's shutdown grace period (5 s by default), and clients retry RPCs
// on another server anyway (rpc_hold_timeout). extra_config can override it.
const leaveDrainTime = "2s"

// DataDir is where the agent of spec keeps its state: spec.DataDir inside
// the sandbox. It refuses a data_dir that would leave the sandbox.
func DataDir(spec taskspec.Spec, sandbox string) (string, error) {
	if sandbox == "" {
		return "", errors.New("consulagent: the sandbox directory is not known (MESOS_SANDBOX)")
	}
	rel := filepath.Clean(spec.DataDir)
	if filepath.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("consulagent: data_dir %q must be a path inside the sandbox", spec.DataDir)
	}
	return filepath.Join(sandbox, rel), nil
}

// Config builds the Consul agent configuration (JSON) for spec on env: the
// generated settings with spec.ExtraConfig merged over them (objects merge
// key by key, everything else is replaced). It is a pure function.
func Config(spec taskspec.Spec, env Env) ([]byte, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	ip := net.ParseIP(env.BindIP)
	if ip == nil || ip.IsUnspecified() {
		return nil, fmt.Errorf("consulagent: bind address %q is not a usable IP address", env.BindIP)
	}
	dataDir, err := DataDir(spec, env.Sandbox)
	if err != nil {
		return nil, err
	}
	logLevel := spec.LogLevel
	if logLevel == "" {
		logLevel = "INFO"
	}
	performance := map[string]any{"leave_drain_time": leaveDrainTime}
	if spec.RaftMultiplier > 0 {
		performance["raft_multiplier"] = spec.RaftMultiplier
	}
	cfg := map[string]any{
		"node_name":      spec.NodeName,
		"datacenter":     spec.Datacenter,
		"data_dir":       dataDir,
		"server":         spec.Role == taskspec.RoleServer,
		"bind_addr":      ip.String(),
		"advertise_addr": ip.String(),
		"client_addr":    ip.String(),
		"ports": map[string]any{
			"server":   spec.Ports.Server,
			"serf_lan": spec.Ports.SerfLAN,
			"serf_wan": spec.Ports.SerfWAN,
			"http":     spec.Ports.HTTP,
			"https":    spec.Ports.HTTPS,
			"grpc":     spec.Ports.GRPC,
			"dns":      spec.Ports.DNS,
			// Consul 1.16 servers listen on gRPC TLS 8503 by default: a
			// port Mesos never gave the task (two installs on one agent
			// would collide on it). Only a task with TLS has one
			// (tlsConfig).
			"grpc_tls": -1,
		},
		"ui_config":            map[string]any{"enabled": spec.UI},
		"log_level":            logLevel,
		"log_json":             true,
		"performance":          performance,
		"disable_update_check": true,
		// Every agent of a host must get its own node ID (tests and dev run
		// several on one machine), kept in the data dir across relaunches.
		"disable_host_node_id": true,
		// A kill is a graceful leave; a relaunch on the same data must still
		// find the cluster again from its serf snapshot.
		"leave_on_terminate":      true,
		"skip_leave_on_interrupt": false,
		"rejoin_after_leave":      true,
	}
	if spec.Domain != "" {
		cfg["domain"] = spec.Domain
	}
	if spec.PrimaryDatacenter != "" {
		cfg["primary_datacenter"] = spec.PrimaryDatacenter
	}
	if spec.GossipEncryption {
		if err := taskspec.ValidGossipKey(env.GossipKey); err != nil {
			return nil, fmt.Errorf("consulagent: the task needs gossip encryption: %w", err)
		}
		// Both directions verified from the start: an agent without the
		// key can neither read nor inject gossip.
		cfg["encrypt"] = env.GossipKey
		// While gossip encryption is turned on in a running cluster
		// (Consul's three steps): first neither direction, then outgoing.
		cfg["encrypt_verify_incoming"] = spec.GossipRollout == ""
		cfg["encrypt_verify_outgoing"] = spec.GossipRollout != taskspec.GossipOpen
		// The key stays in memory: a keyring file in the sandbox would be
		// readable through the Mesos agent's /files API. Only an agent
		// started during a rotation (several keys in use) gets a keyring
		// file (writeKeyrings), as Consul takes several keys only so.
		cfg["disable_keyring_file"] = len(keyringKeys(env.GossipKey, env.GossipKeys)) == 1
	}
	if spec.ACL {
		acl, err := aclConfig(spec, env)
		if err != nil {
			return nil, err
		}
		cfg["acl"] = acl
	}
	if spec.TLS {
		if err := checkTLS(spec, env); err != nil {
			return nil, err
		}
		tlsConfig(spec, env, cfg)
	}
	if spec.Role == taskspec.RoleServer {
		cfg["bootstrap_expect"] = spec.BootstrapExpect
	}
	if len(spec.ExtraConfig) > 0 {
		var extra map[string]any
		if err := json.Unmarshal(spec.ExtraConfig, &extra); err != nil {
			return nil, fmt.Errorf("consulagent: extra_config must be a JSON object: %w", err)
		}
		mergeInto(cfg, extra)
	}
	return json.MarshalIndent(cfg, "", "  ")
}

// aclConfig is the agent's acl block: default deny with its agent token
// as installed with ACLs, or a phase of turning ACLs on in a running
// cluster (spec.ACLRollout): default allow, with the agent token
// (taskspec.ACLAllow) or, on a server before the scheduler's bootstrap
// has created the tokens, without one (taskspec.ACLOpen).
func aclConfig(spec taskspec.Spec, env Env) (map[string]any, error) {
	acl := map[string]any{
		"enabled":        true,
		"default_policy": "deny",
		// A partition from the leader keeps cached answers rather than
		// denying everything.
		"down_policy": "extend-cache",
		// The token comes from the scheduler on every launch; nothing
		// is written into the data directory.
		"enable_token_persistence": false,
	}
	if spec.ACLRollout != "" {
		acl["default_policy"] = "allow"
	}
	if spec.ACLRollout == taskspec.ACLOpen {
		return acl, nil
	}
	if env.ACLAgentToken == "" {
		return nil, errors.New("consulagent: the task needs ACLs but has no agent token")
	}
	tokens := map[string]any{"agent": env.ACLAgentToken}
	acl["tokens"] = tokens
	if spec.ACLReplication {
		// A secondary datacenter's server: it replicates the primary's
		// policies and tokens (global tokens then resolve here while
		// the primary is unreachable, and local tokens can be made).
		if env.ACLReplicationToken == "" {
			return nil, errors.New("consulagent: the server of a secondary datacenter needs an ACL replication token")
		}
		acl["enable_token_replication"] = true
		tokens["replication"] = env.ACLReplicationToken
	}
	return acl, nil
}

// mergeInto merges src over dst: nested objects key by key, any other
// value (arrays included) replaces what dst had.
func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if sv, ok := v.(map[string]any); ok {
			if dv, ok := dst[k].(map[string]any); ok {
				mergeInto(dv, sv)
				continue
			}
		}
		dst[k] = v
	}
}

// JoinTargets are the addresses the agent of spec retries to join: the
// scheduler's known server addresses (ip:port) and the Mesos-DNS names,
// which are resolved with the serf LAN port of the spec.
type JoinTargets struct {
	Addrs    []string
	DNSNames []string
	Port     int
}

func joinTargets(spec taskspec.Spec) JoinTargets {
	return JoinTargets{Addrs: spec.JoinAddrs, DNSNames: spec.JoinDNSNames, Port: spec.Ports.SerfLAN}
}
