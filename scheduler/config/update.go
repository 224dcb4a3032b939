package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Effect is what applying one changed setting takes.
type Effect string

const (
	// EffectScheduler: the scheduler applies it when it starts; no task
	// restarts (log level, timeouts, credentials, the master's address).
	EffectScheduler Effect = "scheduler"
	// EffectServers: the servers restart one at a time, each waiting for
	// the previous one to be a healthy voter again.
	EffectServers Effect = "restart-servers"
	// EffectClients: the clients restart.
	EffectClients Effect = "restart-clients"
	// EffectAllTasks: servers (one at a time) and clients restart.
	EffectAllTasks Effect = "restart-all"
	// EffectScaleServers: servers are added or removed one at a time.
	EffectScaleServers Effect = "scale-servers"
	// EffectClientSet: clients are started or stopped (enabled, public agents).
	EffectClientSet Effect = "client-set"
	// EffectNewPlacements: applies to servers placed from now on
	// (replacements, new servers); running servers are not moved.
	EffectNewPlacements Effect = "new-placements"
)

// FieldChange is one setting whose value changed, and what applying it
// takes.
type FieldChange struct {
	Env      string
	Option   string // config.json option; "" for template-fixed settings
	Old, New string
	Effect   Effect
}

func (f FieldChange) String() string {
	name := f.Env
	if f.Option != "" {
		name = f.Option
	}
	return fmt.Sprintf("%s %q -> %q (%s)", name, f.Old, f.New, f.Effect)
}

// Change is the difference between the stored target configuration and
// the one the scheduler started with. The zero Change means "no change".
type Change struct {
	Fields []FieldChange
	// ServersFrom and ServersTo are the server counts; equal unless
	// servers.count changed.
	ServersFrom, ServersTo int
}

// None reports whether nothing changed.
func (c Change) None() bool { return len(c.Fields) == 0 }

// RestartServers reports whether running servers must be restarted (one
// at a time) to apply the change.
func (c Change) RestartServers() bool {
	return c.has(EffectServers) || c.has(EffectAllTasks)
}

// RestartClients reports whether running clients must be restarted.
func (c Change) RestartClients() bool {
	return c.has(EffectClients) || c.has(EffectAllTasks)
}

func (c Change) has(e Effect) bool {
	for _, f := range c.Fields {
		if f.Effect == e {
			return true
		}
	}
	return false
}

func (c Change) String() string {
	if c.None() {
		return "no change"
	}
	parts := make([]string, len(c.Fields))
	for i, f := range c.Fields {
		parts[i] = f.String()
	}
	return strings.Join(parts, "; ")
}

// Refusal is one change that cannot be applied to a running service: why,
// and what to do instead.
type Refusal struct {
	Env, Option string
	Old, New    string
	Why         string
	Instead     string
}

func (r Refusal) String() string {
	name := r.Env
	if r.Option != "" {
		name = r.Option + " (" + r.Env + ")"
	}
	return fmt.Sprintf("%s cannot change from %q to %q: %s. Instead: %s", name, r.Old, r.New, r.Why, r.Instead)
}

// UpdateError lists every refused change. The scheduler keeps running
// with the stored configuration and reports this error (logs, /v1/plans)
// until the options are set back.
type UpdateError struct {
	Refused []Refusal
}

func (e *UpdateError) Error() string {
	parts := make([]string, len(e.Refused))
	for i, r := range e.Refused {
		parts[i] = r.String()
	}
	return "config: the new configuration cannot be applied to the running service, which keeps its current configuration; " +
		"set these options back to their current values (Edit in the DC/OS UI, or dcos marathon app update): " +
		strings.Join(parts, "; ")
}

// reinstall is the advice for settings that are fixed for the life of a
// service.
const reinstall = "install a second service with the new value under another service.name, move the data over (consul snapshot save on this one, consul snapshot restore on the new one), then uninstall this one"

type updateRule struct {
	env    string
	get    func(Config) string
	effect Effect // when allowed
	// refuse, when set, explains why a change is refused and what to do.
	why, instead string
	// hidden: the value may hold secrets; changes show fingerprints.
	hidden bool
	// allow, when set, says which changes (old, new) are applied with
	// effect; the others are refused with why.
	allow func(o, n string) bool
}

func fstr(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// compactJSON drops insignificant whitespace so that re-indenting the
// extra configuration is not a change.
func compactJSON(raw []byte) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

var updateRules = []updateRule{
	{env: EnvServiceName, get: func(c Config) string { return c.ServiceName },
		why:     "the service name is the Marathon app id, the Mesos framework name, the tasks' DNS names and the key of the stored state",
		instead: reinstall},
	{env: EnvUser, get: func(c Config) string { return c.User },
		why:     "the servers' data on their persistent volumes belongs to the current user; Consul running as another user could not read or write it",
		instead: reinstall},
	{env: EnvRole, get: func(c Config) string { return c.Role },
		why:     "the servers' reserved resources and persistent volumes are held under the current role; with another role the service would lose them",
		instead: reinstall},
	{env: EnvPrincipal, get: func(c Config) string { return c.Principal },
		why:     "the reservations and volumes were made by the current principal, and Mesos lets only it release them",
		instead: "keep the principal; to change the service account's credentials, change service.service_account_secret; for another principal, " + reinstall},
	{env: EnvServiceAccountSecret, get: func(c Config) string { return c.ServiceAccountSecret }, effect: EffectScheduler},
	{env: EnvTLSServerCertLifetime, get: func(c Config) string { return c.TLSServerCertLifetime.String() }, effect: EffectScheduler},
	{env: EnvServiceAccountCredential, get: func(c Config) string { return c.ServiceAccountCredential }, effect: EffectScheduler},
	{env: EnvLogLevel, get: func(c Config) string { return c.LogLevel }, effect: EffectScheduler},
	{env: EnvFrameworkSecretFile, get: func(c Config) string { return c.FrameworkSecretFile }, effect: EffectScheduler},
	{env: EnvZKCredentialsFile, get: func(c Config) string { return c.ZKCredentialsFile },
		why:     "the state's nodes in ZooKeeper carry the ACL of the identity they were created with; another identity could not read or change them",
		instead: "keep " + EnvZKCredentialsFile + " (the file may change, not the identity in it)"},
	{env: EnvZKCredentialsSecret, get: func(c Config) string { return c.ZKCredentialsSecret },
		why:     "the state's nodes in ZooKeeper carry the ACL of the identity they were created with; another identity could not read or change them",
		instead: "keep service.zookeeper_credentials_secret as it was at install and the user:password in it as they were at install"},
	{env: EnvDCOSJWKSURL, get: func(c Config) string { return c.DCOSJWKSURL }, effect: EffectScheduler},
	{env: EnvFailover, get: func(c Config) string { return c.FailoverTimeout.String() }, effect: EffectScheduler},
	{env: EnvMesosMaster, get: func(c Config) string { return c.MesosMaster }, effect: EffectScheduler},
	{env: EnvZK, get: func(c Config) string { return c.ZK },
		why:     "the service's state (framework ID, tasks, reservations) is stored there; a scheduler using another store would not find its own tasks",
		instead: "keep STATE_ZK; the package sets it for you"},
	{env: EnvStateDir, get: func(c Config) string { return c.StateDir },
		why:     "the service's state is stored there; a scheduler using another directory would not find its own tasks",
		instead: "keep STATE_DIR"},
	{env: EnvAPIPort, get: func(c Config) string { return strconv.Itoa(c.APIPort) }, effect: EffectScheduler},
	{env: EnvExecutorPort, get: func(c Config) string { return strconv.Itoa(c.ExecutorPort) }, effect: EffectScheduler},
	{env: EnvAPIHost, get: func(c Config) string { return c.APIHost }, effect: EffectScheduler},
	{env: EnvOperatorTokenFile, get: func(c Config) string { return c.OperatorTokenFile }, effect: EffectScheduler},

	{env: EnvServerCount, get: func(c Config) string { return strconv.Itoa(c.ServerCount) }, effect: EffectScaleServers},
	{env: EnvServerCPUs, get: func(c Config) string { return fstr(c.ServerCPUs) }, effect: EffectServers},
	{env: EnvServerMem, get: func(c Config) string { return fstr(c.ServerMem) }, effect: EffectServers},
	{env: EnvServerDisk, get: func(c Config) string { return fstr(c.ServerDisk) },
		why:     "the servers' persistent volumes were created with the current size and Mesos cannot resize a volume",
		instead: reinstall},
	{env: EnvServerDiskType, get: func(c Config) string { return c.ServerDiskType },
		why:     "the servers' persistent volumes were created on the current disk type and cannot move to another",
		instead: reinstall},
	{env: EnvServerPlacement, get: func(c Config) string { return c.ServerPlacement }, effect: EffectNewPlacements},
	{env: EnvReplaceAft, get: func(c Config) string { return c.ReplaceAfter.String() }, effect: EffectScheduler},
	{env: EnvWANJoin, get: func(c Config) string { return strings.Join(WANJoinList(c.WANJoin), ",") }, effect: EffectServers},
	// "" for a primary (the option empty or naming the install's own
	// datacenter): only becoming, leaving or moving a secondary counts.
	{env: EnvPrimaryDatacenter, get: func(c Config) string {
		if !c.Secondary() {
			return ""
		}
		return c.PrimaryDatacenter
	},
		why:     "the ACL system of a datacenter is either bootstrapped in it (a primary) or replicated from its primary (a secondary): a running datacenter cannot change sides",
		instead: "keep consul.primary_datacenter as it was at install; to join a federation as a secondary, " + reinstall},
	{env: EnvGossipKeyFile, get: func(c Config) string { return c.GossipKeyFile }, effect: EffectScheduler},
	{env: EnvACLReplicationTokenFile, get: func(c Config) string { return c.ACLReplicationTokenFile }, effect: EffectScheduler},
	{env: EnvGossipKeySecret, get: func(c Config) string { return c.GossipKeySecret }, effect: EffectScheduler},
	{env: EnvACLReplicationTokenSecret, get: func(c Config) string { return c.ACLReplicationTokenSecret }, effect: EffectScheduler},
	{env: EnvBackupTarget, get: func(c Config) string { return c.BackupTarget }, effect: EffectScheduler},
	{env: EnvBackupInterval, get: func(c Config) string { return c.BackupInterval.String() }, effect: EffectScheduler},
	{env: EnvBackupKeep, get: func(c Config) string { return strconv.Itoa(c.BackupKeep) }, effect: EffectScheduler},

	{env: EnvClientsEnabled, get: func(c Config) string { return strconv.FormatBool(c.ClientsEnabled) }, effect: EffectClientSet},
	{env: EnvClientCPUs, get: func(c Config) string { return fstr(c.ClientCPUs) }, effect: EffectClients},
	{env: EnvClientMem, get: func(c Config) string { return fstr(c.ClientMem) }, effect: EffectClients},
	{env: EnvClientsOnPublic, get: func(c Config) string { return strconv.FormatBool(c.ClientsOnPublic) }, effect: EffectClientSet},
	{env: EnvClientBatch, get: func(c Config) string { return strconv.Itoa(c.ClientBatchPercent) }, effect: EffectScheduler},

	{env: EnvDatacenter, get: func(c Config) string { return c.Datacenter },
		why:     "Consul servers keep their datacenter in their raft data and refuse to start in another one",
		instead: reinstall + " (or federate the two datacenters over the serf WAN port)"},
	{env: EnvDomain, get: func(c Config) string { return c.Domain },
		why:     "during a rolling restart half of the agents would answer DNS under the old domain and half under the new one, and applications resolving either would fail",
		instead: "keep consul.domain and add the new name with Consul's alt_domain in consul.extra_config, e.g. {\"alt_domain\": \"new.domain\"}"},
	{env: EnvRaftMultiplier, get: func(c Config) string { return strconv.Itoa(c.RaftMultiplier) }, effect: EffectServers},
	{env: EnvUI, get: func(c Config) string { return strconv.FormatBool(c.UI) }, effect: EffectAllTasks},
	{env: EnvExtraConfig, get: func(c Config) string { return compactJSON(c.ExtraConfig) }, effect: EffectAllTasks, hidden: true},

	{env: EnvPortServer, get: func(c Config) string { return strconv.Itoa(c.Ports.Server) },
		why:     "servers reach each other on it; during a rolling restart the restarted servers could not reach the others and the cluster would lose its leader",
		instead: reinstall},
	{env: EnvPortSerfLAN, get: func(c Config) string { return strconv.Itoa(c.Ports.SerfLAN) },
		why:     "every agent gossips on it; during a rolling restart the agents would split into two pools",
		instead: reinstall},
	{env: EnvPortSerfWAN, get: func(c Config) string { return strconv.Itoa(c.Ports.SerfWAN) },
		why:     "federated datacenters reach this one's servers on it",
		instead: reinstall},
	// With TLS plain HTTP is off whatever ports.http says: only the port
	// agents listen on counts (state.TargetFrom drops it likewise).
	{env: EnvPortHTTP, get: func(c Config) string { return strconv.Itoa(c.HTTPPort()) }, effect: EffectAllTasks},
	{env: EnvPortHTTPS, get: func(c Config) string { return strconv.Itoa(c.Ports.HTTPS) }, effect: EffectAllTasks},
	{env: EnvPortGRPC, get: func(c Config) string { return strconv.Itoa(c.Ports.GRPC) }, effect: EffectAllTasks},
	{env: EnvPortGRPCTLS, get: func(c Config) string { return strconv.Itoa(c.Ports.GRPCTLS) }, effect: EffectAllTasks},
	{env: EnvPortDNS, get: func(c Config) string { return strconv.Itoa(c.Ports.DNS) }, effect: EffectAllTasks},

	// Turning TLS on is rolled out in phases (state.TLSRollout); off is
	// refused.
	{env: EnvTLS, get: func(c Config) string { return strconv.FormatBool(c.TLS) }, effect: EffectAllTasks,
		allow:   func(o, n string) bool { return o == "false" && n == "true" },
		why:     "turning TLS off on a running cluster is not supported: during the rolling restart the agents still requiring TLS (RPC verify_incoming) would refuse the ones without it, so writes would fail (turning it on is supported: it is rolled out in phases)",
		instead: "keep security.tls.enabled on; to run without TLS, " + reinstall},
	{env: EnvTLSCACertFile, get: func(c Config) string { return c.TLSCACertFile },
		why:     "a new CA on a running cluster is not supported yet: during the rolling restart servers of the old and the new CA would refuse each other's certificates",
		instead: "keep security.tls.ca_cert_file as it was at install"},
	{env: EnvTLSCAKeyFile, get: func(c Config) string { return c.TLSCAKeyFile },
		why:     "a new CA on a running cluster is not supported yet: during the rolling restart servers of the old and the new CA would refuse each other's certificates",
		instead: "keep security.tls.ca_key_file as it was at install"},
	// Other datacenters' CAs the servers trust: in their ca_file, read at
	// start, so the servers restart one at a time. Compared canonically:
	// reformatting the same certificates is no change.
	{env: EnvTLSTrustedCACerts, get: func(c Config) string { return trustedCAsMark(c) }, effect: EffectServers},
	// Turning ACLs on is rolled out in phases (state.ACLFor), except in a
	// secondary datacenter; off is refused.
	{env: EnvACL, get: aclMark, effect: EffectAllTasks,
		allow: func(o, n string) bool { return o == "false" && n == "true" },
		why: "turning ACLs off on a running cluster is not supported: every anonymous client would read and write the KV store and the catalog again (during the rolling restart, those reaching an agent already restarted first); " +
			"turning them on is supported (rolled out in phases, default policy allow until every agent has its token), but not in a secondary datacenter of a federation (" + aclSecondaryMark + "), whose ACLs are replicated from the primary's, set up at install",
		instead: "keep security.acl.enabled as it is; to run without ACLs, or to turn them on in a secondary datacenter, " + reinstall},
	// Turning gossip encryption on is rolled out in Consul's three steps
	// (state.Rollouts); off is refused.
	{env: EnvGossipKey, get: func(c Config) string { return strconv.FormatBool(c.GossipEncryption) }, effect: EffectAllTasks,
		allow:   func(o, n string) bool { return o == "false" && n == "true" },
		why:     "turning gossip encryption off on a running cluster is not supported (turning it on is: it is rolled out in Consul's three steps)",
		instead: "keep security.gossip_encryption.enabled on; to run without it, " + reinstall},

	{env: EnvExecutorURI, get: func(c Config) string { return c.ExecutorURI }, effect: EffectAllTasks},
	{env: EnvMesosDNSDomain, get: func(c Config) string { return c.MesosDNSDomain }, effect: EffectAllTasks},
	{env: EnvExecutorDNSServer, get: func(c Config) string { return c.ExecutorDNSServer }, effect: EffectAllTasks},
}

// aclSecondaryMark is what a secondary datacenter's security.acl.enabled
// compares as when on: turning ACLs on there is refused.
const aclSecondaryMark = "true, secondary datacenter"

// aclMark is security.acl.enabled as CheckUpdate compares it: "true" or
// "false", and aclSecondaryMark for a secondary datacenter with ACLs, so
// that turning them on there is not the allowed false -> true.
func aclMark(c Config) string {
	if c.ACL && c.Secondary() {
		return aclSecondaryMark
	}
	return strconv.FormatBool(c.ACL)
}

// CheckUpdate classifies the change from old (the stored target
// configuration of a running service) to new (the configuration the
// scheduler started with, e.g. after Edit in the DC/OS UI). Both must be
// valid (Validate). It returns every changed setting with its effect, or
// an *UpdateError naming every change that cannot be applied, why, and
// what to do instead. It is pure: the scheduler calls it at start, keeps
// old on error, and stores new otherwise.
//
// Uninstall is not a configuration change and is not compared: the
// scheduler checks it before anything else.
func CheckUpdate(old, new Config) (Change, error) {
	ch := Change{ServersFrom: old.ServerCount, ServersTo: new.ServerCount}
	var refused []Refusal
	for _, r := range updateRules {
		o, n := r.get(old), r.get(new)
		if o == n {
			continue
		}
		if r.hidden {
			o, n = Fingerprint(o), Fingerprint(n)
		}
		if r.why != "" && (r.allow == nil || !r.allow(o, n)) {
			refused = append(refused, Refusal{Env: r.env, Option: OptionOf(r.env), Old: o, New: n, Why: r.why, Instead: r.instead})
			continue
		}
		ch.Fields = append(ch.Fields, FieldChange{Env: r.env, Option: OptionOf(r.env), Old: o, New: n, Effect: r.effect})
	}
	if len(refused) > 0 {
		return Change{}, &UpdateError{Refused: refused}
	}
	return ch, nil
}
