// Package config is the scheduler's whole configuration, read from the
// environment that Marathon gives it (universe/marathon.json.mustache sets
// every variable below from the package options), validated at start.
//
// The environment variable names are a contract with the package template:
// tests in internal/universe render the template the way Cosmos does and
// feed its env through Load, so a variable the template passes that Load
// does not read, or one Load reads that the template does not pass, fails a
// test. Options lists every variable with the config.json option it comes
// from.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/backup"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
	"github.com/dcos-consul/dcos-consul/scheduler/placement"
)

// Env var names. Marathon itself sets PORT_API / PORT0 for the scheduler's
// port; every other name is set by the package template, except the
// development-only ones listed in DevOnly.
const (
	EnvServiceName              = "SERVICE_NAME"
	EnvUser                     = "FRAMEWORK_USER"
	EnvRole                     = "FRAMEWORK_ROLE"
	EnvPrincipal                = "FRAMEWORK_PRINCIPAL"
	EnvServiceAccountSecret     = "SERVICE_ACCOUNT_SECRET"
	EnvServiceAccountCredential = "DCOS_SERVICE_ACCOUNT_CREDENTIAL"
	EnvLogLevel                 = "LOG_LEVEL"
	EnvMesosMaster              = "MESOS_MASTER"
	EnvZK                       = "STATE_ZK"
	EnvStateDir                 = "STATE_DIR"
	EnvAPIPort                  = "PORT_API"
	EnvAPIPort0                 = "PORT0"
	// EnvExecutorPort is the port of the executor channel: the scheduler's
	// TLS listener for the /v1/executor/ routes (Marathon sets it for the
	// port named "executor", and PORT1); unset off DC/OS: a free port
	// chosen at start, advertised in the task specs.
	EnvExecutorPort      = "PORT_EXECUTOR"
	EnvExecutorPort1     = "PORT1"
	EnvExecutorURI       = "EXECUTOR_URI"
	EnvMesosDNSDomain    = "MESOS_DNS_DOMAIN"
	EnvExecutorDNSServer = "EXECUTOR_DNS_SERVER"
	// EnvAPIHost is the address the scheduler API listens on and that
	// executors reach it at (dev: a loopback address); unset, the API
	// listens on every address and is advertised as $HOST (which
	// Marathon sets to the agent's host name).
	EnvAPIHost = "API_HOST"
	// EnvOperatorTokenFile (dev): the scheduler writes its operator token
	// to this file (mode 0600) for the operator commands on this machine.
	EnvOperatorTokenFile = "OPERATOR_TOKEN_FILE"

	EnvServerCount     = "SERVER_COUNT"
	EnvServerCPUs      = "SERVER_CPUS"
	EnvServerMem       = "SERVER_MEM"
	EnvServerDisk      = "SERVER_DISK"
	EnvServerDiskType  = "SERVER_DISK_TYPE"
	EnvServerPlacement = "SERVER_PLACEMENT"

	EnvClientsEnabled  = "CLIENTS_ENABLED"
	EnvClientCPUs      = "CLIENT_CPUS"
	EnvClientMem       = "CLIENT_MEM"
	EnvClientsOnPublic = "CLIENTS_ON_PUBLIC_AGENTS"
	EnvClientBatch     = "CLIENT_UPDATE_BATCH_PERCENT"

	EnvDatacenter     = "CONSUL_DATACENTER"
	EnvDomain         = "CONSUL_DOMAIN"
	EnvRaftMultiplier = "CONSUL_RAFT_MULTIPLIER"
	EnvUI             = "CONSUL_UI"
	EnvExtraConfig    = "CONSUL_EXTRA_CONFIG"
	EnvWANJoin        = "CONSUL_WAN_JOIN"

	EnvPortServer  = "CONSUL_PORT_SERVER"
	EnvPortSerfLAN = "CONSUL_PORT_SERF_LAN"
	EnvPortSerfWAN = "CONSUL_PORT_SERF_WAN"
	EnvPortHTTP    = "CONSUL_PORT_HTTP"
	EnvPortHTTPS   = "CONSUL_PORT_HTTPS"
	EnvPortGRPC    = "CONSUL_PORT_GRPC"
	EnvPortGRPCTLS = "CONSUL_PORT_GRPC_TLS"
	EnvPortDNS     = "CONSUL_PORT_DNS"

	EnvTLS = "SECURITY_TLS_ENABLED"
	// EnvTLSCACertFile and EnvTLSCAKeyFile name files (PEM) holding a CA
	// the user brings instead of the one the scheduler generates: paths,
	// never the key itself (the environment is visible in Marathon and
	// /master/state).
	EnvTLSCACertFile = "SECURITY_TLS_CA_CERT_FILE"
	EnvTLSCAKeyFile  = "SECURITY_TLS_CA_KEY_FILE"
	// EnvTLSTrustedCACerts holds (the PEM itself: CA certificates are
	// public) the CA certificates of other datacenters whose servers this
	// install's servers trust, for TLS across a WAN federation of installs
	// that each have their own CA (trustedca.go).
	EnvTLSTrustedCACerts = "SECURITY_TLS_TRUSTED_CA_CERTS"
	// EnvTLSServerCertLifetime (dev and tests only) shortens the servers'
	// certificates' lifetime, to see their renewal happen.
	EnvTLSServerCertLifetime = "TLS_SERVER_CERT_LIFETIME"

	EnvACL        = "SECURITY_ACL_ENABLED"
	EnvGossipKey  = "SECURITY_GOSSIP_ENCRYPTION_ENABLED"
	EnvFailover   = "FRAMEWORK_FAILOVER_TIMEOUT"
	EnvReplaceAft = "SERVER_REPLACE_AFTER"

	EnvBackupTarget   = "BACKUP_TARGET"
	EnvBackupInterval = "BACKUP_INTERVAL"
	EnvBackupKeep     = "BACKUP_KEEP"

	// EnvUninstall is set ("true") by Cosmos on `dcos package uninstall`
	// (the DC/OS SDK uninstall protocol, label DCOS_COMMONS_UNINSTALL):
	// Marathon restarts the scheduler with it, and the scheduler then
	// removes everything the service made.
	EnvUninstall = "SDK_UNINSTALL"
)

// Ports are Consul's ports; -1 disables an optional listener. GRPC is
// plaintext gRPC, GRPCTLS gRPC over TLS (Consul 1.14+ keeps them apart).
type Ports struct {
	Server, SerfLAN, SerfWAN, HTTP, HTTPS, GRPC, DNS, GRPCTLS int
}

// Config is the validated scheduler configuration.
type Config struct {
	ServiceName          string
	User                 string
	Role                 string // unset: <service name>-role (see DefaultRole)
	Principal            string // unset: <service name>-principal (see DefaultPrincipal)
	ServiceAccountSecret string // the secret's name in the DC/OS secret store, never its value
	// ServiceAccountCredential is the sandbox path of the file Marathon
	// writes the service account secret to (DC/OS strict mode); empty when
	// no secret is configured.
	ServiceAccountCredential string
	LogLevel                 string
	MesosMaster              string // http(s)://host:port or zk://hosts/mesos
	ZK                       string // ZooKeeper connection string; empty: file store
	StateDir                 string // file store directory when ZK is empty
	APIPort                  int
	// ExecutorPort is the executor channel's TLS port (0: any free port).
	ExecutorPort      int
	ExecutorURI       string
	MesosDNSDomain    string
	ExecutorDNSServer string // ip:port; empty: the system resolver
	// APIHost: the API listens on it and executors reach it there;
	// empty: every address, advertised as $HOST.
	APIHost string
	// OperatorTokenFile: where to write the operator token (dev); empty:
	// nowhere.
	OperatorTokenFile string

	ServerCount     int
	ServerCPUs      float64
	ServerMem       float64 // MB
	ServerDisk      float64 // MB
	ServerDiskType  string  // ROOT or MOUNT
	ServerPlacement string  // Marathon-style constraint JSON, may be empty

	ClientsEnabled  bool
	ClientCPUs      float64
	ClientMem       float64
	ClientsOnPublic bool

	Datacenter     string
	Domain         string
	RaftMultiplier int
	UI             bool
	ExtraConfig    json.RawMessage
	// WANJoin: other datacenters' servers (host or host:port, comma or
	// space separated; Mesos-DNS names of another service included) that
	// the servers join over serf WAN.
	WANJoin string
	// PrimaryDatacenter: the ACL primary datacenter of a federation
	// (federation.go); empty: this install's own datacenter.
	PrimaryDatacenter string

	Ports Ports

	TLS, ACL, GossipEncryption bool
	// TLSCACertFile and TLSCAKeyFile: the user's own CA (both or none).
	TLSCACertFile, TLSCAKeyFile string
	// TLSTrustedCACerts: other datacenters' CA certificates (PEM bundle)
	// the servers trust besides this service's CA; empty: none.
	TLSTrustedCACerts string
	// GossipKeyFile: the shared gossip key of federated datacenters;
	// ACLReplicationTokenFile: a secondary datacenter's ACL replication
	// token (federation.go). Paths, never the secrets.
	GossipKeyFile, ACLReplicationTokenFile string
	// GossipKeySecret and ACLReplicationTokenSecret: the DC/OS secrets'
	// names the package mounted as those files.
	GossipKeySecret, ACLReplicationTokenSecret string
	// TLSServerCertLifetime: 0 is pki.ServerLifetime (a year).
	TLSServerCertLifetime time.Duration

	FailoverTimeout time.Duration
	ReplaceAfter    time.Duration
	// ClientBatchPercent: a rolling restart restarts this percentage of
	// the clients at a time (at least 1).
	ClientBatchPercent int

	// BackupTarget is where the backup plan keeps Consul snapshots
	// (file:///dir or http(s)://host/path/); empty: STATE_DIR/snapshots
	// with the file store, no scheduled snapshots with ZooKeeper.
	BackupTarget   string
	BackupInterval time.Duration
	BackupKeep     int

	// Uninstall: SDK_UNINSTALL is true (strconv.ParseBool): run the
	// uninstall plan (kill tasks, destroy volumes, unreserve, delete the
	// stored state, tear down the framework) instead of the service.
	Uninstall bool

	// FrameworkSecretFile: a file holding the principal's secret for
	// HTTP Basic framework authentication (plain Mesos); see auth.go.
	FrameworkSecretFile string
	// ZKCredentialsFile: a file holding user:password; the ZooKeeper
	// store's nodes then carry a digest ACL for that identity only.
	ZKCredentialsFile string
	// ZKCredentialsSecret: the DC/OS secret's name the package mounted as
	// ZKCredentialsFile.
	ZKCredentialsSecret string
	// DCOSJWKSURL: DC/OS IAM's JSON Web Key Set; set, DC/OS tokens are
	// accepted on the mutating API routes besides the operator token.
	DCOSJWKSURL string
}

// HTTPPort is the plain HTTP port agents listen on: -1 (off) with TLS,
// where the API is served over HTTPS only.
func (c Config) HTTPPort() int {
	if c.TLS {
		return -1
	}
	return c.Ports.HTTP
}

// DefaultHTTPSPort is the HTTPS port when TLS is on and ports.https is
// -1 (Consul's own default).
const DefaultHTTPSPort = 8501

// DefaultGRPCTLSPort is the gRPC TLS port when TLS is on and
// ports.grpc_tls is -1: Consul 1.16's own default for servers.
const DefaultGRPCTLSPort = 8503

// Defaults are the values of every option the environment leaves unset.
// They equal the defaults of the package's config.json (a test checks it).
func Defaults() Config {
	return Config{
		ServiceName:     "consul",
		User:            "nobody",
		Role:            DefaultRole("consul"),
		Principal:       DefaultPrincipal("consul"),
		LogLevel:        "info",
		MesosMaster:     "http://leader.mesos:5050",
		StateDir:        "state",
		APIPort:         8080,
		MesosDNSDomain:  "mesos",
		ServerCount:     3,
		ServerCPUs:      0.5,
		ServerMem:       512,
		ServerDisk:      1024,
		ServerDiskType:  "ROOT",
		ClientsEnabled:  true,
		ClientCPUs:      0.2,
		ClientMem:       256,
		Datacenter:      "dc1",
		Domain:          "consul",
		RaftMultiplier:  1,
		UI:              true,
		Ports:           Ports{Server: 8300, SerfLAN: 8301, SerfWAN: 8302, HTTP: 8500, HTTPS: DefaultHTTPSPort, GRPC: -1, DNS: 8600, GRPCTLS: DefaultGRPCTLSPort},
		FailoverTimeout: 7 * 24 * time.Hour,
		ReplaceAfter:    10 * time.Minute,

		ClientBatchPercent: 5,
		// Gossip encryption, ACLs (default deny, bootstrapped by the
		// scheduler) and TLS (the API over HTTPS only, on DefaultHTTPSPort:
		// what ports.https -1 means with TLS) are on by default: secure
		// unless switched off.
		GossipEncryption: true,
		ACL:              true,
		TLS:              true,
		BackupInterval:   6 * time.Hour,
		BackupKeep:       7,
	}
}

// DefaultRole is the Mesos role a service uses when none is configured,
// the DC/OS SDK's convention: "<name>-role", folders joined with "__"
// ("dev/consul" → "dev__consul-role"). Each installed service gets its own
// role, so two services never see each other's reservations.
func DefaultRole(serviceName string) string { return sdkName(serviceName) + "-role" }

// DefaultPrincipal is the principal used when none is configured:
// "<name>-principal", folders joined with "__".
func DefaultPrincipal(serviceName string) string { return sdkName(serviceName) + "-principal" }

func sdkName(serviceName string) string {
	return strings.ReplaceAll(strings.Trim(serviceName, "/"), "/", "__")
}

// FromEnviron loads the configuration from the process environment.
func FromEnviron() (Config, error) { return Load(os.LookupEnv) }

// Load reads every variable through lookup, applies defaults and validates.
// Every problem is reported, each naming the variable, the package option
// it comes from, the value and what is allowed.
func Load(lookup func(string) (string, bool)) (Config, error) {
	c := Defaults()
	// ports.https's and ports.grpc_tls's defaults are -1 (config.json):
	// DefaultHTTPSPort and DefaultGRPCTLSPort with TLS, set below, and off
	// with TLS switched off.
	c.Ports.HTTPS, c.Ports.GRPCTLS = -1, -1
	r := reader{lookup: lookup}
	r.str(EnvServiceName, &c.ServiceName)
	r.str(EnvUser, &c.User)
	var role, principal string
	r.str(EnvRole, &role)
	r.str(EnvPrincipal, &principal)
	r.str(EnvServiceAccountSecret, &c.ServiceAccountSecret)
	r.str(EnvServiceAccountCredential, &c.ServiceAccountCredential)
	r.str(EnvLogLevel, &c.LogLevel)
	r.str(EnvFrameworkSecretFile, &c.FrameworkSecretFile)
	r.str(EnvZKCredentialsFile, &c.ZKCredentialsFile)
	r.str(EnvZKCredentialsSecret, &c.ZKCredentialsSecret)
	r.str(EnvDCOSJWKSURL, &c.DCOSJWKSURL)
	r.str(EnvMesosMaster, &c.MesosMaster)
	r.str(EnvZK, &c.ZK)
	r.str(EnvStateDir, &c.StateDir)
	r.integer(EnvAPIPort0, &c.APIPort)
	r.integer(EnvAPIPort, &c.APIPort)
	r.integer(EnvExecutorPort1, &c.ExecutorPort)
	r.integer(EnvExecutorPort, &c.ExecutorPort)
	r.str(EnvExecutorURI, &c.ExecutorURI)
	r.str(EnvMesosDNSDomain, &c.MesosDNSDomain)
	r.str(EnvExecutorDNSServer, &c.ExecutorDNSServer)
	r.str(EnvAPIHost, &c.APIHost)
	r.str(EnvOperatorTokenFile, &c.OperatorTokenFile)
	r.integer(EnvServerCount, &c.ServerCount)
	r.float(EnvServerCPUs, &c.ServerCPUs)
	r.float(EnvServerMem, &c.ServerMem)
	r.float(EnvServerDisk, &c.ServerDisk)
	r.str(EnvServerDiskType, &c.ServerDiskType)
	r.str(EnvServerPlacement, &c.ServerPlacement)
	r.boolean(EnvClientsEnabled, &c.ClientsEnabled)
	r.float(EnvClientCPUs, &c.ClientCPUs)
	r.float(EnvClientMem, &c.ClientMem)
	r.boolean(EnvClientsOnPublic, &c.ClientsOnPublic)
	r.str(EnvDatacenter, &c.Datacenter)
	r.str(EnvDomain, &c.Domain)
	r.integer(EnvRaftMultiplier, &c.RaftMultiplier)
	r.boolean(EnvUI, &c.UI)
	var extra string
	r.str(EnvExtraConfig, &extra)
	r.str(EnvWANJoin, &c.WANJoin)
	r.str(EnvPrimaryDatacenter, &c.PrimaryDatacenter)
	r.str(EnvGossipKeyFile, &c.GossipKeyFile)
	r.str(EnvACLReplicationTokenFile, &c.ACLReplicationTokenFile)
	r.str(EnvGossipKeySecret, &c.GossipKeySecret)
	r.str(EnvACLReplicationTokenSecret, &c.ACLReplicationTokenSecret)
	r.integer(EnvPortServer, &c.Ports.Server)
	r.integer(EnvPortSerfLAN, &c.Ports.SerfLAN)
	r.integer(EnvPortSerfWAN, &c.Ports.SerfWAN)
	r.integer(EnvPortHTTP, &c.Ports.HTTP)
	r.integer(EnvPortHTTPS, &c.Ports.HTTPS)
	r.integer(EnvPortGRPC, &c.Ports.GRPC)
	r.integer(EnvPortGRPCTLS, &c.Ports.GRPCTLS)
	r.integer(EnvPortDNS, &c.Ports.DNS)
	r.boolean(EnvTLS, &c.TLS)
	r.str(EnvTLSCACertFile, &c.TLSCACertFile)
	r.str(EnvTLSCAKeyFile, &c.TLSCAKeyFile)
	r.str(EnvTLSTrustedCACerts, &c.TLSTrustedCACerts)
	r.duration(EnvTLSServerCertLifetime, &c.TLSServerCertLifetime)
	r.boolean(EnvACL, &c.ACL)
	r.boolean(EnvGossipKey, &c.GossipEncryption)
	r.duration(EnvFailover, &c.FailoverTimeout)
	r.duration(EnvReplaceAft, &c.ReplaceAfter)
	// Cosmos sets SDK_UNINSTALL=true on uninstall. Uninstalling destroys
	// every volume, so only a value that parses as true does it: empty is
	// false, and anything unparsable is an error (nothing is destroyed).
	r.boolean(EnvUninstall, &c.Uninstall)
	r.integer(EnvClientBatch, &c.ClientBatchPercent)
	r.str(EnvBackupTarget, &c.BackupTarget)
	r.duration(EnvBackupInterval, &c.BackupInterval)
	r.integer(EnvBackupKeep, &c.BackupKeep)

	// An empty role or principal means the per-service default, as in the
	// DC/OS SDK: the package's defaults are "".
	c.Role = strings.TrimSpace(role)
	if c.Role == "" {
		c.Role = DefaultRole(c.ServiceName)
	}
	c.Principal = strings.TrimSpace(principal)
	if c.Principal == "" {
		c.Principal = DefaultPrincipal(c.ServiceName)
	}
	c.ServerPlacement = strings.TrimSpace(c.ServerPlacement)
	if extra = strings.TrimSpace(extra); extra != "" {
		c.ExtraConfig = json.RawMessage(extra)
	}
	if c.TLS && c.Ports.HTTPS == -1 {
		// The API is served over HTTPS only with TLS: -1 means Consul's
		// default HTTPS port then.
		c.Ports.HTTPS = DefaultHTTPSPort
	}
	if c.TLS && c.Ports.GRPCTLS == -1 {
		// gRPC (xDS, peering) is served over TLS with TLS: -1 means
		// Consul's default gRPC TLS port then.
		c.Ports.GRPCTLS = DefaultGRPCTLSPort
	}
	errs := r.errs
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return c, nil
}

// ValueError is one bad setting: the variable, the package option it comes
// from, the value and what is allowed.
type ValueError struct {
	Env     string
	Option  string // the config.json option, e.g. "servers.count"; "" if none
	Value   string
	Allowed string
}

func (e *ValueError) Error() string {
	opt := ""
	if e.Option != "" {
		opt = " (option " + e.Option + ")"
	}
	return fmt.Sprintf("config: %s=%q%s is not allowed: %s", e.Env, e.Value, opt, e.Allowed)
}

func bad(env string, v any, allowed string) error {
	return &ValueError{Env: env, Option: OptionOf(env), Value: fmt.Sprint(v), Allowed: allowed}
}

// Validate checks every option against what is allowed and reports every
// problem (errors.Join of *ValueError).
func (c Config) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if !validServiceName(c.ServiceName) {
		add(bad(EnvServiceName, c.ServiceName, "lower-case letters, digits and '-', starting with a letter and not ending with '-', at most 63 characters; '/' separates folders (dev/consul)"))
	}
	if c.User == "" || strings.ContainsAny(c.User, " \t\n/:") {
		add(bad(EnvUser, c.User, "a Linux user name that exists on every agent, such as nobody or root"))
	}
	add(validRole(c.Role))
	if c.Principal == "" || strings.ContainsAny(c.Principal, " \t\n") {
		add(bad(EnvPrincipal, c.Principal, "a Mesos principal without spaces, or empty for <service name>-principal"))
	}
	if (c.ServiceAccountSecret == "") != (c.ServiceAccountCredential == "") {
		add(bad(EnvServiceAccountCredential, c.ServiceAccountCredential,
			"set together with "+EnvServiceAccountSecret+" (the package sets both when service.service_account_secret is given)"))
	}
	add(c.validateAuth())
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		add(bad(EnvLogLevel, c.LogLevel, "one of debug, info, warn, error"))
	}
	if err := validMaster(c.MesosMaster); err != nil {
		add(bad(EnvMesosMaster, c.MesosMaster, err.Error()))
	}
	if c.ZK == "" && c.StateDir == "" {
		add(bad(EnvStateDir, c.StateDir, "a directory for the file state store (or set "+EnvZK+")"))
	}
	if c.ZK != "" {
		add(validZK(c.ZK))
	}
	if c.ExecutorDNSServer != "" {
		if _, _, err := net.SplitHostPort(c.ExecutorDNSServer); err != nil {
			add(bad(EnvExecutorDNSServer, c.ExecutorDNSServer, "ip:port of a DNS server, or empty for the system resolver"))
		}
	}
	if c.APIHost != "" && net.ParseIP(c.APIHost) == nil {
		add(bad(EnvAPIHost, c.APIHost, "an IP address to listen on, or empty for every interface"))
	}
	if c.APIPort < 0 || c.APIPort > 65535 {
		add(bad(EnvAPIPort, c.APIPort, "0-65535"))
	}
	if c.ExecutorPort < 0 || c.ExecutorPort > 65535 {
		add(bad(EnvExecutorPort, c.ExecutorPort, "0-65535"))
	}
	if !validDomain(c.MesosDNSDomain) {
		add(bad(EnvMesosDNSDomain, c.MesosDNSDomain, "a DNS domain such as mesos"))
	}
	switch c.ServerCount {
	case 1, 3, 5, 7:
	default:
		add(bad(EnvServerCount, c.ServerCount, "1, 3, 5 or 7 (an odd number of servers keeps a majority through failures)"))
	}
	if !finiteAtLeast(c.ServerCPUs, MinServerCPUs) {
		add(bad(EnvServerCPUs, c.ServerCPUs, fmt.Sprintf("a finite number, at least %g", MinServerCPUs)))
	}
	if !finiteAtLeast(c.ServerMem, MinServerMem) {
		add(bad(EnvServerMem, c.ServerMem, fmt.Sprintf("a finite number, at least %g (MB)", MinServerMem)))
	}
	if !finiteAtLeast(c.ServerDisk, MinServerDisk) {
		add(bad(EnvServerDisk, c.ServerDisk, fmt.Sprintf("a finite number, at least %g (MB)", MinServerDisk)))
	}
	if c.ServerDiskType != "ROOT" && c.ServerDiskType != "MOUNT" {
		add(bad(EnvServerDiskType, c.ServerDiskType, "ROOT or MOUNT"))
	}
	if _, err := ParsePlacement(c.ServerPlacement); err != nil {
		add(bad(EnvServerPlacement, c.ServerPlacement, err.Error()))
	}
	if !finiteAtLeast(c.ClientCPUs, MinClientCPUs) {
		add(bad(EnvClientCPUs, c.ClientCPUs, fmt.Sprintf("a finite number, at least %g", MinClientCPUs)))
	}
	if !finiteAtLeast(c.ClientMem, MinClientMem) {
		add(bad(EnvClientMem, c.ClientMem, fmt.Sprintf("a finite number, at least %g (MB)", MinClientMem)))
	}
	if !validDatacenter(c.Datacenter) {
		add(bad(EnvDatacenter, c.Datacenter, "1-63 lower-case letters, digits, '-' and '_' (Consul's rule for datacenter names)"))
	}
	if !validDomain(c.Domain) {
		add(bad(EnvDomain, c.Domain, "a DNS domain such as consul or consul.example (lower-case labels of letters, digits and '-')"))
	}
	if c.RaftMultiplier < 1 || c.RaftMultiplier > 10 {
		add(bad(EnvRaftMultiplier, c.RaftMultiplier, "1-10 (1 for production, higher on slow machines)"))
	}
	add(validExtraConfig(c.ExtraConfig))
	add(c.Ports.validate())
	add(c.validTLSCA())
	add(c.validTrustedCAs())
	if c.TLSServerCertLifetime != 0 && c.TLSServerCertLifetime < time.Minute {
		add(bad(EnvTLSServerCertLifetime, c.TLSServerCertLifetime, "at least 1m, or unset for a year"))
	}
	if c.Ports.HTTPS != -1 && !c.TLS {
		add(bad(EnvPortHTTPS, c.Ports.HTTPS, "-1 while TLS is off: Consul's HTTPS listener needs TLS (security.tls.enabled)"))
	}
	if c.Ports.GRPCTLS != -1 && !c.TLS {
		add(bad(EnvPortGRPCTLS, c.Ports.GRPCTLS, "-1 while TLS is off: Consul's gRPC TLS listener needs TLS (security.tls.enabled)"))
	}
	if c.FailoverTimeout < MinFailoverTimeout {
		add(bad(EnvFailover, c.FailoverTimeout, "at least "+MinFailoverTimeout.String()))
	}
	if c.ReplaceAfter < MinReplaceAfter {
		add(bad(EnvReplaceAft, c.ReplaceAfter, "at least "+MinReplaceAfter.String()))
	}
	if c.ClientBatchPercent < 1 || c.ClientBatchPercent > 100 {
		add(bad(EnvClientBatch, c.ClientBatchPercent, "1-100 (percent of the clients restarted at a time)"))
	}
	if err := validWANJoin(c.WANJoin); err != nil {
		add(err)
	}
	if c.WANJoin != "" && c.Ports.SerfWAN <= 0 {
		add(bad(EnvWANJoin, c.WANJoin, "empty while the serf WAN port is disabled (ports.serf_wan -1)"))
	}
	add(c.validFederation())
	if c.BackupTarget != "" {
		if _, err := backup.Open(c.BackupTarget); err != nil {
			add(fmt.Errorf("%s: %w", EnvBackupTarget, err))
		}
	}
	if c.BackupInterval < MinBackupInterval {
		add(bad(EnvBackupInterval, c.BackupInterval, "at least "+MinBackupInterval.String()))
	}
	if c.BackupKeep < 1 {
		add(bad(EnvBackupKeep, c.BackupKeep, "at least 1"))
	}
	return errors.Join(errs...)
}

// finiteAtLeast: NaN fails every comparison and +Inf passes "at least",
// and neither can be stored (JSON has no NaN or Inf).
func finiteAtLeast(f, lo float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) && f >= lo }

// Lower bounds of the numeric options; config.json has the same minimums.
const (
	MinServerCPUs      = 0.1
	MinServerMem       = 128.0
	MinServerDisk      = 64.0
	MinClientCPUs      = 0.05
	MinClientMem       = 64.0
	MinFailoverTimeout = time.Minute
	MinReplaceAfter    = 10 * time.Second
	MinBackupInterval  = 10 * time.Second
)

func (p Ports) validate() error {
	type named struct {
		env      string
		port     int
		optional bool
	}
	all := []named{
		{EnvPortServer, p.Server, false}, {EnvPortSerfLAN, p.SerfLAN, false},
		{EnvPortSerfWAN, p.SerfWAN, true}, {EnvPortHTTP, p.HTTP, false},
		{EnvPortHTTPS, p.HTTPS, true}, {EnvPortGRPC, p.GRPC, true}, {EnvPortDNS, p.DNS, true},
		{EnvPortGRPCTLS, p.GRPCTLS, true},
	}
	var errs []error
	seen := map[int]string{}
	for _, n := range all {
		if n.port == -1 && n.optional {
			continue
		}
		if n.port < 1 || n.port > 65535 {
			allowed := "1-65535"
			if n.optional {
				allowed += ", or -1 to disable"
			}
			errs = append(errs, bad(n.env, n.port, allowed))
			continue
		}
		if other, ok := seen[n.port]; ok {
			errs = append(errs, bad(n.env, n.port, "a port no other Consul listener uses; "+other+" already uses it"))
			continue
		}
		seen[n.port] = n.env
	}
	return errors.Join(errs...)
}

// List returns the enabled ports, sorted, for resource requests.
func (p Ports) List() []int {
	var out []int
	for _, v := range []int{p.Server, p.SerfLAN, p.SerfWAN, p.HTTP, p.HTTPS, p.GRPC, p.DNS, p.GRPCTLS} {
		if v > 0 {
			out = append(out, v)
		}
	}
	sort.Ints(out)
	return out
}

// ParsePlacement parses and checks a placement constraint option (see
// package placement: operators, fields, values, regular expressions).
func ParsePlacement(s string) ([]placement.Constraint, error) { return placement.Parse(s) }

// WANJoinList splits CONSUL_WAN_JOIN into its addresses.
func WANJoinList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

func validWANJoin(s string) error {
	for _, a := range WANJoinList(s) {
		host, port := a, ""
		if h, p, err := net.SplitHostPort(a); err == nil {
			host, port = h, p
		}
		if host == "" || strings.ContainsAny(host, "/@[]") {
			return bad(EnvWANJoin, s, fmt.Sprintf("server addresses or names, host or host:port, separated by commas (%q is not one)", a))
		}
		if port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return bad(EnvWANJoin, s, fmt.Sprintf("ports 1-65535 (%q)", a))
			}
		}
	}
	return nil
}

func validRole(role string) error {
	// Mesos role rules (master/validation.cpp, roles::validate): not empty,
	// not "*" (the default role cannot hold reservations), no "." or ".."
	// path components, no leading '-', no whitespace or '/' at the ends.
	fail := func() error {
		return bad(EnvRole, role, "a Mesos role other than '*': no spaces, not starting with '-' or '/', no '.' or '..' parts; empty for <service name>-role")
	}
	if role == "" || role == "*" || strings.HasPrefix(role, "-") || strings.HasPrefix(role, "/") || strings.HasSuffix(role, "/") {
		return fail()
	}
	if strings.ContainsAny(role, " \t\n\\") {
		return fail()
	}
	for _, part := range strings.Split(role, "/") {
		if part == "" || part == "." || part == ".." || part == "*" {
			return fail()
		}
	}
	return nil
}

func validMaster(m string) error {
	u, err := url.Parse(m)
	if err != nil {
		return fmt.Errorf("a master URL (http://host:port) or zk://host:port/path: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return fmt.Errorf("a master URL (http://host:port) or zk://host:port/path")
		}
	case "zk":
		if u.Host == "" || u.Path == "" {
			return fmt.Errorf("zk://host:port[,host:port]/path")
		}
	default:
		return fmt.Errorf("a master URL (http://host:port) or zk://host:port/path")
	}
	return nil
}

func validZK(zk string) error {
	for _, hp := range strings.Split(zk, ",") {
		if _, port, err := net.SplitHostPort(strings.TrimSpace(hp)); err != nil || port == "" {
			return bad(EnvZK, zk, "host:port[,host:port...] of ZooKeeper, such as master.mesos:2181, or empty for the file store")
		}
	}
	return nil
}

func validServiceName(s string) bool {
	s = strings.TrimPrefix(s, "/")
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, "/") {
		if len(part) == 0 || len(part) > 63 || part[0] < 'a' || part[0] > 'z' || part[len(part)-1] == '-' {
			return false
		}
		for _, r := range part {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func validDatacenter(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func validDomain(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

type reader struct {
	lookup func(string) (string, bool)
	errs   []error
}

func (r *reader) str(env string, dst *string) {
	if v, ok := r.lookup(env); ok {
		*dst = v
	}
}

func (r *reader) integer(env string, dst *int) {
	v, ok := r.lookup(env)
	if !ok || v == "" {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		r.errs = append(r.errs, bad(env, v, "an integer"))
		return
	}
	*dst = n
}

func (r *reader) float(env string, dst *float64) {
	v, ok := r.lookup(env)
	if !ok || v == "" {
		return
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		r.errs = append(r.errs, bad(env, v, "a finite number"))
		return
	}
	*dst = f
}

func (r *reader) boolean(env string, dst *bool) {
	v, ok := r.lookup(env)
	if !ok || v == "" {
		return
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		r.errs = append(r.errs, bad(env, v, "true or false"))
		return
	}
	*dst = b
}

func (r *reader) duration(env string, dst *time.Duration) {
	v, ok := r.lookup(env)
	if !ok || v == "" {
		return
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		r.errs = append(r.errs, bad(env, v, "a duration such as 90s, 10m or 168h"))
		return
	}
	*dst = d
}

// DecodeStored reads a configuration stored as JSON (the scheduler keeps
// the one its target came from) and validates it as Load would.
func DecodeStored(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("not a configuration (%v)", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("not a valid configuration (%v)", err)
	}
	return c, nil
}

// UserCA reads the CA the user brought (TLSCACertFile, TLSCAKeyFile);
// ok is false when none is configured.
func (c Config) UserCA() (ca pki.CA, ok bool, err error) {
	if c.TLSCACertFile == "" && c.TLSCAKeyFile == "" {
		return pki.CA{}, false, nil
	}
	cert, err := os.ReadFile(c.TLSCACertFile)
	if err != nil {
		return pki.CA{}, false, fmt.Errorf("%s (security.tls.ca_cert_file): %w", EnvTLSCACertFile, err)
	}
	key, err := os.ReadFile(c.TLSCAKeyFile)
	if err != nil {
		// The error names the path, never the content.
		return pki.CA{}, false, fmt.Errorf("%s (security.tls.ca_key_file): %w", EnvTLSCAKeyFile, err)
	}
	return pki.CA{CertPEM: string(cert), KeyPEM: string(key)}, true, nil
}

// validTLSCA checks a CA the user brought: both files, readable, a CA
// certificate valid now that may sign, and its key. Errors name the
// option and the file, never the key's content.
func (c Config) validTLSCA() error {
	if c.TLSCACertFile == "" && c.TLSCAKeyFile == "" {
		return nil
	}
	if c.TLSCACertFile == "" {
		return bad(EnvTLSCACertFile, "", "the CA certificate file that goes with "+EnvTLSCAKeyFile+" (give both files of your CA, or neither to let the scheduler generate one)")
	}
	if c.TLSCAKeyFile == "" {
		return bad(EnvTLSCACertFile, c.TLSCACertFile, "a CA certificate file together with "+EnvTLSCAKeyFile+" (give both files of your CA, or neither to let the scheduler generate one)")
	}
	if _, err := os.Stat(c.TLSCACertFile); err != nil {
		return bad(EnvTLSCACertFile, c.TLSCACertFile, "a readable PEM file with your CA's certificate ("+errors.Unwrap(err).Error()+")")
	}
	if _, err := os.Stat(c.TLSCAKeyFile); err != nil {
		return bad(EnvTLSCAKeyFile, c.TLSCAKeyFile, "a readable PEM file with your CA's private key ("+errors.Unwrap(err).Error()+")")
	}
	ca, _, err := c.UserCA()
	if err != nil {
		return err
	}
	if _, err := ca.Parse(time.Now()); err != nil {
		return bad(EnvTLSCAKeyFile, c.TLSCAKeyFile, "the key of a CA whose certificate is in "+c.TLSCACertFile+" ("+EnvTLSCACertFile+"), valid now and allowed to sign: "+err.Error())
	}
	return nil
}
