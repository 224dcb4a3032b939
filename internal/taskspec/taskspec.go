// Package taskspec is the contract between the scheduler and the executor:
// the versioned document the scheduler puts in TaskInfo.data and the executor
// reads back before it starts the Consul agent.
//
// The scheduler is the only writer and the executor the only reader, but the
// two can run different builds during an upgrade, so the document carries a
// version and Decode refuses versions it does not know instead of guessing.
package taskspec

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Version is the version of the document this build writes and reads.
const Version = 1

// Role is what the Consul agent of a task is.
type Role string

const (
	RoleServer Role = "server"
	RoleClient Role = "client"
)

// Ports are the Consul agent's ports. A port of -1 disables that listener
// (Consul's own convention); 0 is not allowed.
type Ports struct {
	Server  int `json:"server"`
	SerfLAN int `json:"serf_lan"`
	SerfWAN int `json:"serf_wan"`
	HTTP    int `json:"http"`
	HTTPS   int `json:"https"`
	GRPC    int `json:"grpc"`
	DNS     int `json:"dns"`
	// GRPCTLS is gRPC over TLS (Consul's ports.grpc_tls), for a task with
	// TLS. Unlike the others it may be absent (0), which means off as -1
	// does: specs and task records from before it have none, and a target
	// without TLS keeps its configuration IDs (no restart on upgrade).
	GRPCTLS int `json:"grpc_tls,omitempty"`
}

// Spec is one task's instructions to the executor.
type Spec struct {
	Version int  `json:"version"`
	Role    Role `json:"role"`
	// NodeName is the Consul node name; the task name (consul-server-0,
	// consul-client-<agent>) so that it is stable across relaunches.
	NodeName   string `json:"node_name"`
	Datacenter string `json:"datacenter"`
	Domain     string `json:"domain"`
	// BootstrapExpect is the number of servers (servers only).
	BootstrapExpect int `json:"bootstrap_expect,omitempty"`
	// JoinDNSNames are the Mesos-DNS names of every server task
	// (<task>.<framework>.mesos).
	JoinDNSNames []string `json:"join_dns_names"`
	// JoinAddrs are serf LAN addresses (ip:port) of servers the scheduler
	// already knows to be running, so bootstrap never waits for Mesos-DNS.
	JoinAddrs []string `json:"join_addrs,omitempty"`
	Ports     Ports    `json:"ports"`
	// DataDir is where Consul keeps its state, relative to the sandbox
	// (for servers: the persistent volume's container path).
	DataDir        string `json:"data_dir"`
	RaftMultiplier int    `json:"raft_multiplier,omitempty"`
	UI             bool   `json:"ui"`
	LogLevel       string `json:"log_level,omitempty"`
	// ExtraConfig is operator-supplied Consul agent configuration (a JSON
	// object), applied over what the executor generates.
	ExtraConfig json.RawMessage `json:"extra_config,omitempty"`
	// DNSServer, when set (ip:port), is the resolver the executor uses for
	// the Mesos-DNS names instead of the system one (dev uses the simulator's).
	DNSServer string `json:"dns_server,omitempty"`
	// WANJoin (servers only): the serf WAN addresses or names (host or
	// host:port; the port defaults to this server's serf WAN port) of other
	// datacenters' servers, joined with retry (consul.wan_join).
	WANJoin []string `json:"wan_join,omitempty"`
	// PrimaryDatacenter is Consul's primary_datacenter (every agent of a
	// federation); empty: Consul's default, the agent's own datacenter.
	PrimaryDatacenter string `json:"primary_datacenter,omitempty"`
	// ACLReplication (servers of a secondary datacenter with ACLs): the
	// server replicates the primary's ACL tokens with the replication
	// token it fetches through Secrets.
	ACLReplication bool `json:"acl_replication,omitempty"`
	// RecoverPeers (servers only, outage recovery): the raft peers the
	// server starts with, written to <data_dir>/raft/peers.json before
	// Consul starts (Consul reads and deletes it).
	RecoverPeers []RaftPeer `json:"recover_peers,omitempty"`
	// ConfigID identifies the target configuration the task was launched
	// with; a change means the task needs a rolling restart.
	ConfigID string `json:"config_id,omitempty"`
	// GossipEncryption: the agent must encrypt serf gossip with the key
	// it fetches through Secrets (it refuses to start without one).
	GossipEncryption bool `json:"gossip_encryption,omitempty"`
	// ACL: the agent enforces ACLs (default deny) and uses the agent token
	// it fetches through Secrets.
	ACL bool `json:"acl,omitempty"`
	// TLS: the agent encrypts and verifies RPC with TLS (certificates
	// fetched through Secrets; clients through auto_encrypt) and serves
	// its API over HTTPS only.
	TLS bool `json:"tls,omitempty"`
	// TLSRollout (with TLS, while TLS is being turned on in a running
	// cluster): TLSAccept, the server has its certificate and accepts TLS
	// and plaintext RPC but sends plaintext; TLSOutgoing, the agent sends
	// TLS (servers verified by name) and still accepts plaintext. Plain
	// HTTP stays on in both. Empty: TLS as installed with it.
	TLSRollout string `json:"tls_rollout,omitempty"`
	// TLSTrustedCAs (servers with TLS only): CA certificates (PEM) of
	// other datacenters the server trusts besides its service's CA
	// (security.tls.trusted_ca_certs): its Consul ca_file holds both, so
	// that it verifies their servers' certificates on WAN RPC, both ways.
	// Public: CA certificates only. Empty: only the service's CA.
	TLSTrustedCAs string `json:"tls_trusted_cas,omitempty"`
	// GossipRollout (with gossip encryption, while it is being turned on
	// in a running cluster): GossipOpen, the agent encrypts gossip but
	// neither requires nor sends only encrypted messages; GossipOutgoing,
	// it sends encrypted messages only but still accepts plain ones.
	// Empty: both directions verified.
	GossipRollout string `json:"gossip_rollout,omitempty"`
	// ACLRollout (with ACL, while ACLs are being turned on in a running
	// cluster): ACLOpen (servers only), ACLs enabled with default policy
	// allow and no agent token (the tokens do not exist in Consul before
	// the scheduler's bootstrap, and Consul refuses an unknown token even
	// under allow); ACLAllow, default policy allow with the agent token.
	// Empty: default deny with the agent token, as installed with ACLs.
	ACLRollout string `json:"acl_rollout,omitempty"`
	// Secrets says where the executor fetches the task's secrets; nil when
	// the task needs none.
	Secrets *SecretsRef `json:"secrets,omitempty"`
}

// The phases of turning TLS on in a running cluster (Spec.TLSRollout).
const (
	TLSAccept   = "accept"
	TLSOutgoing = "outgoing"
)

// The phases of turning gossip encryption on in a running cluster
// (Spec.GossipRollout), Consul's three steps.
const (
	GossipOpen     = "open"
	GossipOutgoing = "outgoing"
)

// The phases of turning ACLs on in a running cluster (Spec.ACLRollout).
const (
	ACLOpen  = "open"
	ACLAllow = "allow"
)

// RaftPeer is one entry of Consul's peers.json (raft protocol 3).
type RaftPeer struct {
	ID       string `json:"id"`
	Address  string `json:"address"` // ip:server port
	NonVoter bool   `json:"non_voter"`
}

// Encode validates s and returns the document for TaskInfo.data.
func Encode(s Spec) ([]byte, error) {
	if s.Version == 0 {
		s.Version = Version
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

// Decode parses and validates a document from TaskInfo.data.
func Decode(data []byte) (Spec, error) {
	if len(data) == 0 {
		return Spec{}, errors.New("taskspec: TaskInfo.data is empty: the task was not launched by the dcos-consul scheduler")
	}
	var probe struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return Spec{}, fmt.Errorf("taskspec: TaskInfo.data is not a task spec document: %w", err)
	}
	if probe.Version != Version {
		return Spec{}, fmt.Errorf("taskspec: document version %d is not supported by this executor (it reads version %d): upgrade the executor binary", probe.Version, Version)
	}
	var s Spec
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("taskspec: version %d document: %w", Version, err)
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// Validate reports the first problem of s, naming the field.
func (s Spec) Validate() error {
	if s.Version != Version {
		return fmt.Errorf("taskspec: version %d, want %d", s.Version, Version)
	}
	switch s.Role {
	case RoleServer:
		if s.BootstrapExpect < 1 {
			return fmt.Errorf("taskspec: bootstrap_expect %d: a server needs at least 1", s.BootstrapExpect)
		}
	case RoleClient:
	default:
		return fmt.Errorf("taskspec: role %q: want %q or %q", s.Role, RoleServer, RoleClient)
	}
	if s.NodeName == "" {
		return errors.New("taskspec: node_name is empty")
	}
	if s.Datacenter == "" {
		return errors.New("taskspec: datacenter is empty")
	}
	if s.DataDir == "" {
		return errors.New("taskspec: data_dir is empty")
	}
	for name, p := range map[string]int{
		"server": s.Ports.Server, "serf_lan": s.Ports.SerfLAN, "serf_wan": s.Ports.SerfWAN,
		"http": s.Ports.HTTP, "https": s.Ports.HTTPS, "grpc": s.Ports.GRPC, "dns": s.Ports.DNS,
	} {
		if p == -1 {
			continue
		}
		if p < 1 || p > 65535 {
			return fmt.Errorf("taskspec: ports.%s %d: want 1-65535, or -1 to disable", name, p)
		}
	}
	if g := s.Ports.GRPCTLS; g != 0 && g != -1 && (g < 1 || g > 65535) {
		return fmt.Errorf("taskspec: ports.grpc_tls %d: want 1-65535, or -1 or absent to disable", g)
	}
	if s.Ports.Server == -1 || s.Ports.SerfLAN == -1 {
		return errors.New("taskspec: ports.server and ports.serf_lan cannot be disabled")
	}
	if err := s.Secrets.validate(); err != nil {
		return err
	}
	if s.GossipEncryption && s.Secrets == nil {
		return errors.New("taskspec: gossip_encryption needs secrets (where to fetch the key)")
	}
	if s.TLS && s.Secrets == nil {
		return errors.New("taskspec: tls needs secrets (where to fetch the certificates)")
	}
	switch s.TLSRollout {
	case "", TLSOutgoing:
	case TLSAccept:
		if s.Role != RoleServer {
			return fmt.Errorf("taskspec: tls_rollout %q is for servers only (clients stay plaintext until servers accept TLS)", s.TLSRollout)
		}
	default:
		return fmt.Errorf("taskspec: tls_rollout %q: want %q, %q or empty", s.TLSRollout, TLSAccept, TLSOutgoing)
	}
	switch s.GossipRollout {
	case "", GossipOpen, GossipOutgoing:
	default:
		return fmt.Errorf("taskspec: gossip_rollout %q: want %q, %q or empty", s.GossipRollout, GossipOpen, GossipOutgoing)
	}
	if s.GossipRollout != "" && !s.GossipEncryption {
		return errors.New("taskspec: gossip_rollout needs gossip_encryption")
	}
	if s.TLSRollout != "" && !s.TLS {
		return errors.New("taskspec: tls_rollout needs tls")
	}
	if s.TLSTrustedCAs != "" {
		if !s.TLS || s.Role != RoleServer {
			return errors.New("taskspec: tls_trusted_cas is for servers with tls")
		}
		if _, _, err := ParseTrustedCAs(s.TLSTrustedCAs); err != nil {
			return fmt.Errorf("taskspec: tls_trusted_cas: %w", err)
		}
	}
	if s.TLS && s.Ports.HTTPS == -1 {
		return errors.New("taskspec: tls needs ports.https (the API is served over HTTPS only)")
	}
	if s.ACLReplication && (!s.ACL || s.Role != RoleServer || s.PrimaryDatacenter == "" || s.PrimaryDatacenter == s.Datacenter) {
		return errors.New("taskspec: acl_replication is for the servers of a secondary datacenter with acl (primary_datacenter another datacenter)")
	}
	if err := s.validateACLRollout(); err != nil {
		return err
	}
	if s.ACL && s.Secrets == nil {
		return errors.New("taskspec: acl needs secrets (where to fetch the agent token)")
	}
	if len(s.ExtraConfig) > 0 {
		var obj map[string]any
		if err := json.Unmarshal(s.ExtraConfig, &obj); err != nil {
			return fmt.Errorf("taskspec: extra_config must be a JSON object: %w", err)
		}
	}
	return nil
}

// validateACLRollout checks ACLRollout against the role and ACL.
func (s Spec) validateACLRollout() error {
	switch s.ACLRollout {
	case "":
		return nil
	case ACLOpen:
		if s.Role != RoleServer {
			return fmt.Errorf("taskspec: acl_rollout %q is for servers only (clients run without ACLs until every server has them)", s.ACLRollout)
		}
	case ACLAllow:
	default:
		return fmt.Errorf("taskspec: acl_rollout %q: want %q, %q or empty", s.ACLRollout, ACLOpen, ACLAllow)
	}
	if !s.ACL {
		return errors.New("taskspec: acl_rollout needs acl")
	}
	if s.ACLReplication {
		return errors.New("taskspec: acl_rollout is not for the servers of a secondary datacenter (acl_replication)")
	}
	return nil
}
