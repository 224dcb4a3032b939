// Package state is the scheduler's plain data: the target derived from the
// configuration, one record per Consul task, and the pure function that
// turns a Mesos status update into a task's new state.
//
// Nothing here does I/O; the scheduler persists these records through its
// store and hands them to the decision packages (reconcile, offers, plan).
package state

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// Names of tasks. Servers are consul-server-<i>, clients consul-client-<agent>.
const (
	ServerPrefix = "consul-server-"
	ClientPrefix = "consul-client-"
	// VolumePath is the persistent volume's container path (relative to the
	// sandbox), which is the servers' Consul data directory.
	VolumePath = "consul-data"
	// ClientDataDir is the clients' data directory inside the sandbox.
	ClientDataDir = "consul-data"
)

// Reservation label keys. Every dynamically reserved resource of a server
// carries both, so an offer says whose it is.
const (
	LabelTask        = "dcos_consul_task"
	LabelReservation = "dcos_consul_reservation"
	// LabelService names the service (SERVICE_NAME) on reservations made
	// since adoption exists: a reservation labelled for another service
	// sharing the role is never adopted nor destroyed.
	LabelService = "dcos_consul_service"
)

// ServerName is the stable name of server i.
func ServerName(i int) string { return fmt.Sprintf("%s%d", ServerPrefix, i) }

// ServerIndex is i for the name consul-server-<i> (canonical decimal),
// false for any other name.
func ServerIndex(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, ServerPrefix)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || ServerName(i) != name {
		return 0, false
	}
	return i, true
}

// ClientName is the stable name of the client on an agent.
func ClientName(agentID string) string { return ClientPrefix + strings.ToLower(agentID) }

// Resources is what one task asks for.
type Resources struct {
	CPUs     float64 `json:"cpus"`
	Mem      float64 `json:"mem"`
	Disk     float64 `json:"disk"` // servers only: the persistent volume
	DiskType string  `json:"disk_type,omitempty"`
}

// Target is the desired state, derived from the configuration alone.
type Target struct {
	ServiceName     string          `json:"service_name"`
	Role            string          `json:"role"`
	Principal       string          `json:"principal"`
	User            string          `json:"user"`
	Servers         int             `json:"servers"`
	Server          Resources       `json:"server"`
	Client          Resources       `json:"client"`
	ClientsEnabled  bool            `json:"clients_enabled"`
	ClientsOnPublic bool            `json:"clients_on_public"`
	Placement       [][]string      `json:"placement,omitempty"`
	Ports           taskspec.Ports  `json:"ports"`
	Datacenter      string          `json:"datacenter"`
	Domain          string          `json:"domain"`
	RaftMultiplier  int             `json:"raft_multiplier"`
	UI              bool            `json:"ui"`
	LogLevel        string          `json:"log_level"`
	ExtraConfig     json.RawMessage `json:"extra_config,omitempty"`
	// WANJoin: other datacenters' servers the servers join over serf WAN.
	WANJoin []string `json:"wan_join,omitempty"`
	// PrimaryDatacenter: the ACL primary datacenter of a federation,
	// set on every agent; empty when consul.primary_datacenter is unset.
	// Fixed at install (config.CheckUpdate refuses a change).
	PrimaryDatacenter string `json:"primary_datacenter,omitempty"`
	// Secondary: a secondary datacenter with ACLs: its servers replicate
	// the primary's ACLs with the operator's replication token.
	Secondary      bool          `json:"secondary,omitempty"`
	MesosDNSDomain string        `json:"mesos_dns_domain"`
	DNSServer      string        `json:"dns_server,omitempty"`
	ExecutorURI    string        `json:"executor_uri"`
	ReplaceAfter   time.Duration `json:"replace_after"`
	// ClientBatchPercent: clients restarted at a time by a rolling
	// restart, in percent (0 in targets stored before it: 5).
	ClientBatchPercent int `json:"client_batch_percent,omitempty"`
	// Uninstall: remove every task, volume and reservation, then the
	// framework (the SDK uninstall protocol). Not part of ConfigID.
	Uninstall bool `json:"uninstall,omitempty"`
	// ServerConfigID and ClientConfigID hash what a running server or
	// client depends on: a task launched with another one needs a rolling
	// restart. Each follows config.CheckUpdate's effects: server resources
	// and raft_multiplier restart servers only, client resources clients
	// only, the log level nothing (new incarnations get it).
	ServerConfigID string `json:"server_config_id"`
	ClientConfigID string `json:"client_config_id"`
	// ConfigID identifies the two together (the framework's label, logs).
	ConfigID string `json:"config_id"`
	// GossipEncryption: agents encrypt serf gossip with the key the
	// scheduler keeps (security.gossip_encryption.enabled). Fixed at
	// install (config.CheckUpdate refuses a change), so not hashed.
	GossipEncryption bool `json:"gossip_encryption,omitempty"`
	// ACL: agents enforce ACLs, default deny (security.acl.enabled).
	// Turning it on in a running cluster is rolled out in phases
	// (ACLPhase); off is refused (config.CheckUpdate). Not hashed: the
	// rollout's phases are.
	ACL bool `json:"acl,omitempty"`
	// TLS: agents use TLS for RPC and serve their API over HTTPS only
	// (Ports.HTTP is -1); fixed at install like GossipEncryption.
	TLS bool `json:"tls,omitempty"`
	// TLSTrustedCAs (with TLS): other datacenters' CA certificates (PEM,
	// canonical) the servers trust besides the service's CA
	// (security.tls.trusted_ca_certs); a change restarts the servers.
	TLSTrustedCAs string `json:"tls_trusted_cas,omitempty"`
	// TLSPhase: TLS is being turned on in a running cluster and this is
	// the phase rolled out now (taskspec.TLSAccept, then TLSOutgoing);
	// empty once every agent runs TLS as installed with it. Stored with
	// the target, so a restarted scheduler resumes the phase it was in
	// (TLSRollout).
	TLSPhase string `json:"tls_phase,omitempty"`
	// GossipPhase: gossip encryption is being turned on in a running
	// cluster and this is the phase rolled out now (GossipRollout).
	GossipPhase string `json:"gossip_phase,omitempty"`
	// ACLPhase: ACLs are being turned on in a running cluster and this
	// is the phase rolled out now (ACLFor, Rollouts).
	ACLPhase string `json:"acl_phase,omitempty"`
	// Secrets is how a launched task reaches its secrets; set by the
	// running scheduler, never stored or shown.
	Secrets *SecretsAccess `json:"-"`
}

// SecretsAccess is how a task's executor reaches its secrets: the URL of
// the scheduler's executor channel (https, its TLS listener), the CA
// certificate that verifies it (PEM; empty with a plain http URL, as in
// tests that run no listener), and the credential of a task ID (which
// the scheduler alone can compute and check).
type SecretsAccess struct {
	URL        string
	CACert     func() string // nil with a plain URL
	Credential func(taskID string) string
}

// ConfigIDOf is the configuration ID tasks of a role are launched with.
func (t Target) ConfigIDOf(r taskspec.Role) string {
	if r == taskspec.RoleServer {
		return t.ServerConfigID
	}
	return t.ClientConfigID
}

// TargetFrom derives the target from a validated configuration.
func TargetFrom(c config.Config) Target {
	t := Target{
		ServiceName:     c.ServiceName,
		Role:            c.Role,
		Principal:       c.Principal,
		User:            c.User,
		Servers:         c.ServerCount,
		Server:          Resources{CPUs: c.ServerCPUs, Mem: c.ServerMem, Disk: c.ServerDisk, DiskType: c.ServerDiskType},
		Client:          Resources{CPUs: c.ClientCPUs, Mem: c.ClientMem},
		ClientsEnabled:  c.ClientsEnabled,
		ClientsOnPublic: c.ClientsOnPublic,
		Ports: taskspec.Ports{
			Server: c.Ports.Server, SerfLAN: c.Ports.SerfLAN, SerfWAN: c.Ports.SerfWAN,
			HTTP: c.Ports.HTTP, HTTPS: c.Ports.HTTPS, GRPC: c.Ports.GRPC, DNS: c.Ports.DNS,
		},
		Datacenter:        c.Datacenter,
		Domain:            c.Domain,
		RaftMultiplier:    c.RaftMultiplier,
		UI:                c.UI,
		LogLevel:          c.LogLevel,
		ExtraConfig:       c.ExtraConfig,
		WANJoin:           config.WANJoinList(c.WANJoin),
		PrimaryDatacenter: c.PrimaryDatacenter,
		Secondary:         c.ACL && c.Secondary(),
		MesosDNSDomain:    c.MesosDNSDomain,
		DNSServer:         c.ExecutorDNSServer,
		ExecutorURI:       c.ExecutorURI,
		ReplaceAfter:      c.ReplaceAfter,

		ClientBatchPercent: c.ClientBatchPercent,
		Uninstall:          c.Uninstall,
		GossipEncryption:   c.GossipEncryption,
		ACL:                c.ACL,
		TLS:                c.TLS,
		TLSTrustedCAs:      c.TrustedCAs(),
	}
	if c.TLS {
		// Plain HTTP is off with TLS: the port is neither reserved nor
		// advertised, and every caller uses HTTPS.
		t.Ports.HTTP = -1
		if c.Ports.GRPCTLS > 0 {
			t.Ports.GRPCTLS = c.Ports.GRPCTLS
		}
	}
	if x := strings.TrimSpace(string(c.ExtraConfig)); x == "" || x == "null" {
		t.ExtraConfig = nil // a configuration read back from JSON has "null"
	}
	if c.ServerPlacement != "" {
		_ = json.Unmarshal([]byte(c.ServerPlacement), &t.Placement) // validated by config
	}
	return t.WithConfigID()
}

// configHashes hashes, per role, the fields a running Consul agent
// depends on. Counts, placement, timeouts and the log level are not part
// of them: changing those does not restart tasks (config.CheckUpdate).
func (t Target) configHashes() (server, client, both string) {
	type shared struct {
		Ports                         taskspec.Ports
		Datacenter, Domain            string
		UI                            bool
		Extra                         string
		DNSDomain, DNSServer, ExecURI string
		// Gossip: the gossip rollout's phase, absent outside one (every
		// agent takes each phase).
		Gossip string `json:",omitempty"`
	}
	extra := string(t.ExtraConfig)
	var b bytes.Buffer
	if json.Compact(&b, t.ExtraConfig) == nil {
		extra = b.String() // re-indenting is no change (config.CheckUpdate)
	}
	sh := shared{t.Ports, t.Datacenter, t.Domain, t.UI, extra, t.MesosDNSDomain, t.DNSServer, t.ExecutorURI, t.gossipMark()}
	csh := sh
	csh.Ports = t.ClientPorts()
	// The TLS rollout's phases are absent outside a rollout: the IDs of
	// clusters that never went through one stay.
	_, serverTLS := t.TLSFor(taskspec.RoleServer)
	_, clientTLS := t.TLSFor(taskspec.RoleClient)
	// Likewise the ACL rollout's.
	_, serverACL := t.ACLFor(taskspec.RoleServer)
	_, clientACL := t.ACLFor(taskspec.RoleClient)
	server = hash(struct {
		Shared         shared
		Server         Resources
		RaftMultiplier int
		WANJoin        []string `json:",omitempty"` // absent when empty: IDs from before it existed stay
		TLSRollout     string   `json:",omitempty"`
		TrustedCAs     string   `json:",omitempty"` // absent when empty, like WANJoin
		ACLRollout     string   `json:",omitempty"`
	}{sh, t.Server, t.RaftMultiplier, t.WANJoin, serverTLS, t.TLSTrustedCAs, serverACL})
	client = hash(struct {
		Shared     shared
		Client     Resources
		TLSRollout string `json:",omitempty"`
		ACLRollout string `json:",omitempty"`
	}{csh, t.Client, clientTLS, clientACL})
	return server, client, hash([]string{server, client})
}

func hash(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// PortList is the enabled ports of the target, sorted.
func (t Target) PortList() []int {
	var out []int
	p := t.Ports
	for _, v := range []int{p.Server, p.SerfLAN, p.SerfWAN, p.HTTP, p.HTTPS, p.GRPC, p.DNS, p.GRPCTLS} {
		if v > 0 {
			out = append(out, v)
		}
	}
	sort.Ints(out)
	return out
}

// Goal is what the operator or the scheduler wants of a task.
type Goal string

const (
	GoalRunning Goal = ""        // keep it running
	GoalRestart Goal = "RESTART" // kill it, relaunch in place
	GoalReplace Goal = "REPLACE" // kill it, relaunch on another agent
	GoalStop    Goal = "STOP"    // kill it, then forget it
	// GoalDecommission: a server above the configured count: its raft
	// peer is removed first, then it is killed, then its record goes (and
	// with it the reservation and volume, destroyed at the next offer).
	GoalDecommission Goal = "DECOMMISSION"
)

// Reservation identifies a server's reserved resources and volume.
type Reservation struct {
	// ID is the value of LabelReservation on every reserved resource.
	ID            string `json:"id"`
	PersistenceID string `json:"persistence_id"`
	// Confirmed is true once Mesos has shown the reservation exists (an
	// offer carried it, or a task ran on it). Until then a relaunch may
	// RESERVE and CREATE again.
	Confirmed bool `json:"confirmed"`
}

// Task is the scheduler's record of one Consul task (both the desired slot
// and its current incarnation).
type Task struct {
	Name     string        `json:"name"`
	Role     taskspec.Role `json:"role"`
	Index    int           `json:"index,omitempty"`
	TaskID   string        `json:"task_id,omitempty"`
	AgentID  string        `json:"agent_id,omitempty"`
	Hostname string        `json:"hostname,omitempty"`
	IP       string        `json:"ip,omitempty"`
	// State is the Mesos task state name of the current incarnation;
	// empty when it was never launched. TASK_STAGING is written before the
	// ACCEPT that launches it.
	State       string         `json:"state,omitempty"`
	Reason      string         `json:"reason,omitempty"`
	Message     string         `json:"message,omitempty"`
	Healthy     *bool          `json:"healthy,omitempty"`
	Reservation *Reservation   `json:"reservation,omitempty"`
	Ports       taskspec.Ports `json:"ports"`
	ConfigID    string         `json:"config_id,omitempty"`
	Goal        Goal           `json:"goal,omitempty"`
	// Failures counts consecutive failed incarnations (reset on RUNNING).
	Failures   int       `json:"failures,omitempty"`
	LaunchedAt time.Time `json:"launched_at,omitempty"`
	// RunningSince is when the current incarnation last became
	// TASK_RUNNING (the scheduler's clock); zero when it is not running.
	RunningSince time.Time `json:"running_since,omitempty"`
	UpdatedAt    time.Time `json:"updated_at,omitempty"`
	// OldPeer is the raft address (ip:port) of the incarnation a
	// replacement moved away from; the replacement is placed only after
	// that peer is removed from raft (then it is cleared).
	OldPeer string `json:"old_peer,omitempty"`
	// PeerRemoved: a decommissioned server's raft peer is removed; it may
	// be killed now.
	PeerRemoved bool `json:"peer_removed,omitempty"`
	// PeerRemovedAt: when the scheduler last saw that removal done; a raft
	// read begun after it tells whether Consul's leader re-added the
	// server (it adds an alive server it finds in serf back to raft).
	PeerRemovedAt time.Time `json:"peer_removed_at,omitempty"`
	// LeaveSentAt: when the scheduler asked this incarnation's executor to
	// leave the Consul cluster gracefully (a server going away for good:
	// scale-down, replace); zero when it did not. Kept so that a restarted
	// scheduler waits for the same leave, then falls back on its timeout.
	LeaveSentAt time.Time `json:"leave_sent_at,omitempty"`
	// LeaveResentAt: when the leave MESSAGE was last sent again (Mesos
	// delivers a MESSAGE at most once: a lost one is resent while the task
	// still runs, until LeaveSentAt's fallback deadline); zero when never.
	LeaveResentAt time.Time `json:"leave_resent_at,omitempty"`
	// Left: the incarnation ended after leaving gracefully (its executor's
	// terminal status said so, taskspec.LabelLeft): serf saw it leave and
	// the raft leader removed its peer; nothing is left to prune.
	Left bool `json:"left,omitempty"`
	// Replacement is true from the moment a server is moved to another
	// agent until its new incarnation runs and is a healthy raft voter
	// (reconcile clears it): replacements go one at a time.
	Replacement bool `json:"replacement,omitempty"`
	// FailingSince is when the task went TASK_UNREACHABLE (or its
	// server failed) without coming back; zero otherwise.
	FailingSince time.Time `json:"failing_since,omitempty"`
	// AgentValues are the placement constraint values (hostname, @zone,
	// @region, attributes) of the agent a server was placed on, recorded
	// at placement: later placements compare with them.
	AgentValues map[string]string `json:"agent_values,omitempty"`
	// Adopted says what was adopted for this record with no record of its
	// own (the scheduler's state was lost): a running task of the previous
	// framework, or a reservation and volume found in an offer. The deploy
	// plan lists it.
	Adopted string `json:"adopted,omitempty"`
	// RecoverPeers (outage recovery): the raft peers the next incarnation
	// of this server starts with (peers.json); cleared once it runs.
	RecoverPeers []taskspec.RaftPeer `json:"recover_peers,omitempty"`
	// ExecutorTLS: this incarnation's spec sends its executor to the
	// scheduler's executor channel over TLS (an https URL and the CA).
	// False for incarnations launched by a scheduler from before that
	// channel (and adopted ones): the plain API still answers their
	// executor routes, and MESSAGEs to them name the plain API.
	ExecutorTLS bool `json:"executor_tls,omitempty"`
	// RecoverReplace (outage recovery): a server lost when the operator
	// confirmed the recovery; it is replaced by a new server (new volume)
	// through the normal replacement path once the survivors have a
	// leader, never relaunched on its old raft data.
	RecoverReplace bool `json:"recover_replace,omitempty"`
	// RestartQueued: the operator restarted a whole plan or phase (POST
	// /v1/plans/<plan>/restart): the task is restarted in place in its turn
	// of a rolling restart (servers one at a time through the quorum gate,
	// clients in batches), as a configuration change would; cleared when
	// it is killed for it, or by forceComplete.
	RestartQueued bool `json:"restart_queued,omitempty"`
	// RestartWhy says why the scheduler itself queued the restart (a
	// snapshot restore that replaced Consul's CA roots: the client agents
	// present auto_encrypt certificates of the replaced CA until they
	// restart); empty for a plan restart. Cleared with RestartQueued.
	RestartWhy string `json:"restart_why,omitempty"`
}

// Launched reports whether an incarnation exists (launched or about to be).
func (t Task) Launched() bool { return t.TaskID != "" && t.State != "" }

// Active reports whether the current incarnation may be alive.
func (t Task) Active() bool { return t.Launched() && !IsTerminal(t.State) }

// Running reports whether the current incarnation is TASK_RUNNING.
func (t Task) Running() bool { return t.State == "TASK_RUNNING" }

// Tasks is the whole set of records, by name.
type Tasks map[string]Task

// Sorted returns the records ordered: servers by index, then clients by name.
// It sorts small keys, not the records (a record is a few hundred bytes and
// every API snapshot sorts all of them: 10,000 at scale).
func (ts Tasks) Sorted() []Task {
	type key struct {
		server bool
		index  int
		name   string // the record's name, ordering the others
		at     string // its key in ts
	}
	keys := make([]key, 0, len(ts))
	for n, t := range ts {
		keys = append(keys, key{server: t.Role == taskspec.RoleServer, index: t.Index, name: t.Name, at: n})
	}
	slices.SortFunc(keys, func(a, b key) int {
		switch {
		case a.server != b.server:
			if a.server {
				return -1
			}
			return 1
		case a.server && a.index != b.index:
			return cmp.Compare(a.index, b.index)
		}
		return strings.Compare(a.name, b.name)
	})
	out := make([]Task, len(keys))
	for i, k := range keys {
		out[i] = ts[k.at]
	}
	return out
}

// ByTaskID finds the record whose current incarnation has this task ID.
func (ts Tasks) ByTaskID(id string) (Task, bool) {
	for _, t := range ts {
		if t.TaskID == id {
			return t, true
		}
	}
	return Task{}, false
}

// OnAgent lists the records placed on an agent.
func (ts Tasks) OnAgent(agentID string) []Task {
	var out []Task
	for _, t := range ts {
		if t.AgentID == agentID {
			out = append(out, t)
		}
	}
	return out
}

// Clone copies the map (records are values).
func (ts Tasks) Clone() Tasks {
	out := make(Tasks, len(ts))
	for k, v := range ts {
		out[k] = v
	}
	return out
}

// NameOfTaskID returns the record name a task ID was made for
// (<name>__<uuid>), or "" when the ID is not one of ours.
func NameOfTaskID(id string) string {
	i := strings.Index(id, "__")
	if i <= 0 {
		return ""
	}
	name := id[:i]
	if strings.HasPrefix(name, ServerPrefix) || strings.HasPrefix(name, ClientPrefix) {
		return name
	}
	return ""
}

// NewTaskID builds a task ID for a record name from a unique suffix.
func NewTaskID(name, unique string) string { return name + "__" + unique }

// WithConfigID returns t with its configuration IDs recomputed (after a
// field changed).
func (t Target) WithConfigID() Target {
	t.ServerConfigID, t.ClientConfigID, t.ConfigID = t.configHashes()
	return t
}
