// Package config is the scheduler's whole configuration, read from the
// environment that Marathon gives it (universe/marathon.json.mustache sets
// every variable below from the package options), validated at start.
//
// The environment variable names are a contract with the package template:
// tests render the template and feed its env through Load.
package config

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Env var names. Marathon itself sets PORT_API / PORT0 for the scheduler's
// port and MESOS_SANDBOX; every other name is set by the package template.
const (
	EnvServiceName          = "SERVICE_NAME"
	EnvUser                 = "FRAMEWORK_USER"
	EnvRole                 = "FRAMEWORK_ROLE"
	EnvPrincipal            = "FRAMEWORK_PRINCIPAL"
	EnvServiceAccountSecret = "SERVICE_ACCOUNT_SECRET"
	EnvLogLevel             = "LOG_LEVEL"
	EnvMesosMaster          = "MESOS_MASTER"
	EnvZK                   = "STATE_ZK"
	EnvStateDir             = "STATE_DIR"
	EnvAPIPort              = "PORT_API"
	EnvAPIPort0             = "PORT0"
	EnvExecutorURI          = "EXECUTOR_URI"
	EnvMesosDNSDomain       = "MESOS_DNS_DOMAIN"
	EnvExecutorDNSServer    = "EXECUTOR_DNS_SERVER"

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

	EnvDatacenter     = "CONSUL_DATACENTER"
	EnvDomain         = "CONSUL_DOMAIN"
	EnvRaftMultiplier = "CONSUL_RAFT_MULTIPLIER"
	EnvUI             = "CONSUL_UI"
	EnvExtraConfig    = "CONSUL_EXTRA_CONFIG"

	EnvPortServer  = "CONSUL_PORT_SERVER"
	EnvPortSerfLAN = "CONSUL_PORT_SERF_LAN"
	EnvPortSerfWAN = "CONSUL_PORT_SERF_WAN"
	EnvPortHTTP    = "CONSUL_PORT_HTTP"
	EnvPortHTTPS   = "CONSUL_PORT_HTTPS"
	EnvPortGRPC    = "CONSUL_PORT_GRPC"
	EnvPortDNS     = "CONSUL_PORT_DNS"

	EnvTLS        = "SECURITY_TLS_ENABLED"
	EnvACL        = "SECURITY_ACL_ENABLED"
	EnvGossipKey  = "SECURITY_GOSSIP_ENCRYPTION_ENABLED"
	EnvFailover   = "FRAMEWORK_FAILOVER_TIMEOUT"
	EnvReplaceAft = "SERVER_REPLACE_AFTER"
)

// Ports are Consul's ports; -1 disables an optional listener.
type Ports struct {
	Server, SerfLAN, SerfWAN, HTTP, HTTPS, GRPC, DNS int
}

// Config is the validated scheduler configuration.
type Config struct {
	ServiceName          string
	User                 string
	Role                 string
	Principal            string
	ServiceAccountSecret string // a secret's path, never its value
	LogLevel             string
	MesosMaster          string // http(s)://host:port or zk://hosts/mesos
	ZK                   string // ZooKeeper connection string; empty: file store
	StateDir             string // file store directory when ZK is empty
	APIPort              int
	ExecutorURI          string
	MesosDNSDomain       string
	ExecutorDNSServer    string // ip:port; empty: the system resolver

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

	Ports Ports

	TLS, ACL, GossipEncryption bool

	FailoverTimeout time.Duration
	ReplaceAfter    time.Duration
}

// Defaults are the values of every option the environment leaves unset.
func Defaults() Config {
	return Config{
		ServiceName:     "consul",
		User:            "nobody",
		Role:            "consul-role",
		Principal:       "consul-principal",
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
		Ports:           Ports{Server: 8300, SerfLAN: 8301, SerfWAN: 8302, HTTP: 8500, HTTPS: -1, GRPC: -1, DNS: 8600},
		FailoverTimeout: 7 * 24 * time.Hour,
		ReplaceAfter:    10 * time.Minute,
	}
}

// FromEnviron loads the configuration from the process environment.
func FromEnviron() (Config, error) { return Load(os.LookupEnv) }

// Load reads every variable through lookup, applies defaults and validates.
// The error names the variable, the value and what is allowed.
func Load(lookup func(string) (string, bool)) (Config, error) {
	c := Defaults()
	r := reader{lookup: lookup}
	r.str(EnvServiceName, &c.ServiceName)
	r.str(EnvUser, &c.User)
	r.str(EnvRole, &c.Role)
	r.str(EnvPrincipal, &c.Principal)
	r.str(EnvServiceAccountSecret, &c.ServiceAccountSecret)
	r.str(EnvLogLevel, &c.LogLevel)
	r.str(EnvMesosMaster, &c.MesosMaster)
	r.str(EnvZK, &c.ZK)
	r.str(EnvStateDir, &c.StateDir)
	r.integer(EnvAPIPort0, &c.APIPort)
	r.integer(EnvAPIPort, &c.APIPort)
	r.str(EnvExecutorURI, &c.ExecutorURI)
	r.str(EnvMesosDNSDomain, &c.MesosDNSDomain)
	r.str(EnvExecutorDNSServer, &c.ExecutorDNSServer)
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
	r.integer(EnvPortServer, &c.Ports.Server)
	r.integer(EnvPortSerfLAN, &c.Ports.SerfLAN)
	r.integer(EnvPortSerfWAN, &c.Ports.SerfWAN)
	r.integer(EnvPortHTTP, &c.Ports.HTTP)
	r.integer(EnvPortHTTPS, &c.Ports.HTTPS)
	r.integer(EnvPortGRPC, &c.Ports.GRPC)
	r.integer(EnvPortDNS, &c.Ports.DNS)
	r.boolean(EnvTLS, &c.TLS)
	r.boolean(EnvACL, &c.ACL)
	r.boolean(EnvGossipKey, &c.GossipEncryption)
	r.duration(EnvFailover, &c.FailoverTimeout)
	r.duration(EnvReplaceAft, &c.ReplaceAfter)
	if r.err != nil {
		return Config{}, r.err
	}
	if extra = strings.TrimSpace(extra); extra != "" {
		c.ExtraConfig = json.RawMessage(extra)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks every option against what is allowed.
func (c Config) Validate() error {
	bad := func(env string, v any, allowed string) error {
		return fmt.Errorf("config: %s=%v is not allowed: %s", env, v, allowed)
	}
	if !validServiceName(c.ServiceName) {
		return bad(EnvServiceName, c.ServiceName, "lower-case letters, digits, '-' and '/' (for folders), starting with a letter, at most 63 characters per part")
	}
	if c.Role == "" || c.Role == "*" || strings.ContainsAny(c.Role, " \t") {
		return bad(EnvRole, c.Role, "a non-empty Mesos role other than '*' without spaces")
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return bad(EnvLogLevel, c.LogLevel, "one of debug, info, warn, error")
	}
	if err := validMaster(c.MesosMaster); err != nil {
		return bad(EnvMesosMaster, c.MesosMaster, err.Error())
	}
	if c.ZK == "" && c.StateDir == "" {
		return bad(EnvStateDir, c.StateDir, "a directory for the file state store (or set "+EnvZK+")")
	}
	if c.ExecutorDNSServer != "" {
		if _, _, err := net.SplitHostPort(c.ExecutorDNSServer); err != nil {
			return bad(EnvExecutorDNSServer, c.ExecutorDNSServer, "ip:port of a DNS server, or empty for the system resolver")
		}
	}
	if c.APIPort < 0 || c.APIPort > 65535 {
		return bad(EnvAPIPort, c.APIPort, "0-65535")
	}
	switch c.ServerCount {
	case 1, 3, 5, 7:
	default:
		return bad(EnvServerCount, c.ServerCount, "1, 3, 5 or 7")
	}
	if c.ServerCPUs < 0.1 {
		return bad(EnvServerCPUs, c.ServerCPUs, "at least 0.1")
	}
	if c.ServerMem < 128 {
		return bad(EnvServerMem, c.ServerMem, "at least 128 (MB)")
	}
	if c.ServerDisk < 64 {
		return bad(EnvServerDisk, c.ServerDisk, "at least 64 (MB)")
	}
	if c.ServerDiskType != "ROOT" && c.ServerDiskType != "MOUNT" {
		return bad(EnvServerDiskType, c.ServerDiskType, "ROOT or MOUNT")
	}
	if c.ServerPlacement != "" {
		var cons [][]string
		if err := json.Unmarshal([]byte(c.ServerPlacement), &cons); err != nil {
			return bad(EnvServerPlacement, c.ServerPlacement, `a Marathon constraint list such as [["hostname","UNIQUE"]]`)
		}
	}
	if c.ClientCPUs < 0.05 {
		return bad(EnvClientCPUs, c.ClientCPUs, "at least 0.05")
	}
	if c.ClientMem < 64 {
		return bad(EnvClientMem, c.ClientMem, "at least 64 (MB)")
	}
	if !validLabel(c.Datacenter) {
		return bad(EnvDatacenter, c.Datacenter, "lower-case letters, digits, '-' and '_'")
	}
	if !validLabel(c.Domain) {
		return bad(EnvDomain, c.Domain, "a DNS label")
	}
	if c.RaftMultiplier < 1 || c.RaftMultiplier > 10 {
		return bad(EnvRaftMultiplier, c.RaftMultiplier, "1-10")
	}
	if len(c.ExtraConfig) > 0 {
		var obj map[string]any
		if err := json.Unmarshal(c.ExtraConfig, &obj); err != nil {
			return bad(EnvExtraConfig, string(c.ExtraConfig), "a JSON object of Consul agent configuration")
		}
	}
	if err := c.Ports.validate(); err != nil {
		return err
	}
	if c.TLS {
		return bad(EnvTLS, c.TLS, "false: TLS is not supported yet")
	}
	if c.ACL {
		return bad(EnvACL, c.ACL, "false: ACLs are not supported yet")
	}
	if c.GossipEncryption {
		return bad(EnvGossipKey, c.GossipEncryption, "false: gossip encryption is not supported yet")
	}
	if c.FailoverTimeout < time.Minute {
		return bad(EnvFailover, c.FailoverTimeout, "at least 1m")
	}
	if c.ReplaceAfter < 10*time.Second {
		return bad(EnvReplaceAft, c.ReplaceAfter, "at least 10s")
	}
	return nil
}

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
	}
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
			return fmt.Errorf("config: %s=%d is not allowed: %s", n.env, n.port, allowed)
		}
		if other, ok := seen[n.port]; ok {
			return fmt.Errorf("config: %s=%d is not allowed: the port is already used by %s", n.env, n.port, other)
		}
		seen[n.port] = n.env
	}
	return nil
}

// List returns the enabled ports, sorted, for resource requests.
func (p Ports) List() []int {
	var out []int
	for _, v := range []int{p.Server, p.SerfLAN, p.SerfWAN, p.HTTP, p.HTTPS, p.GRPC, p.DNS} {
		if v > 0 {
			out = append(out, v)
		}
	}
	sort.Ints(out)
	return out
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

func validServiceName(s string) bool {
	s = strings.TrimPrefix(s, "/")
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, "/") {
		if len(part) == 0 || len(part) > 63 || part[0] < 'a' || part[0] > 'z' {
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

func validLabel(s string) bool {
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

type reader struct {
	lookup func(string) (string, bool)
	err    error
}

func (r *reader) get(env string) (string, bool) {
	if r.err != nil {
		return "", false
	}
	v, ok := r.lookup(env)
	return v, ok
}

func (r *reader) str(env string, dst *string) {
	if v, ok := r.get(env); ok {
		*dst = v
	}
}

func (r *reader) integer(env string, dst *int) {
	v, ok := r.get(env)
	if !ok || v == "" {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		r.err = fmt.Errorf("config: %s=%q is not allowed: an integer", env, v)
		return
	}
	*dst = n
}

func (r *reader) float(env string, dst *float64) {
	v, ok := r.get(env)
	if !ok || v == "" {
		return
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		r.err = fmt.Errorf("config: %s=%q is not allowed: a number", env, v)
		return
	}
	*dst = f
}

func (r *reader) boolean(env string, dst *bool) {
	v, ok := r.get(env)
	if !ok || v == "" {
		return
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		r.err = fmt.Errorf("config: %s=%q is not allowed: true or false", env, v)
		return
	}
	*dst = b
}

func (r *reader) duration(env string, dst *time.Duration) {
	v, ok := r.get(env)
	if !ok || v == "" {
		return
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		r.err = fmt.Errorf("config: %s=%q is not allowed: a duration such as 90s, 10m or 168h", env, v)
		return
	}
	*dst = d
}
