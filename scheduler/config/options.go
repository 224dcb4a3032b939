package config

// Option ties an environment variable to where its value comes from.
type Option struct {
	Env string
	// Path is the package option in config.json that the template passes
	// as this variable ("servers.count"); empty when the template sets a
	// fixed value or the variable does not come from the template.
	Path string
	// Source says who sets the variable on DC/OS.
	Source Source
}

// Source is who sets an environment variable.
type Source string

const (
	// FromOption: the package template, from the option Path.
	FromOption Source = "option"
	// FromTemplate: the package template, a fixed value or a resource URI
	// (MESOS_MASTER, STATE_ZK, EXECUTOR_URI, ...).
	FromTemplate Source = "template"
	// FromMarathon: Marathon itself (the scheduler's API port).
	FromMarathon Source = "marathon"
	// FromCosmos: Cosmos, when it uninstalls the service (SDK_UNINSTALL).
	FromCosmos Source = "cosmos"
	// DevOnly: not set on DC/OS; used by `dcos-consul dev` and tests.
	DevOnly Source = "dev"
)

// Options is the whole environment contract, in the order of config.json.
var Options = []Option{
	{EnvServiceName, "service.name", FromOption},
	{EnvUser, "service.user", FromOption},
	{EnvRole, "service.role", FromOption},
	{EnvPrincipal, "service.service_account", FromOption},
	{EnvServiceAccountSecret, "service.service_account_secret", FromOption},
	// Set by the template only when a service account secret is given:
	// the sandbox path of the file Marathon writes the secret to.
	{EnvServiceAccountCredential, "", FromTemplate},
	{EnvLogLevel, "service.log_level", FromOption},
	{EnvFailover, "service.failover_timeout_seconds", FromOption},

	{EnvServerCount, "servers.count", FromOption},
	{EnvServerCPUs, "servers.cpus", FromOption},
	{EnvServerMem, "servers.mem", FromOption},
	{EnvServerDisk, "servers.disk", FromOption},
	{EnvServerDiskType, "servers.disk_type", FromOption},
	{EnvServerPlacement, "servers.placement_constraint", FromOption},
	{EnvReplaceAft, "servers.replace_after_seconds", FromOption},

	{EnvClientsEnabled, "clients.enabled", FromOption},
	{EnvClientCPUs, "clients.cpus", FromOption},
	{EnvClientMem, "clients.mem", FromOption},
	{EnvClientsOnPublic, "clients.public_agents", FromOption},
	{EnvClientBatch, "clients.update_batch_percent", FromOption},

	{EnvDatacenter, "consul.datacenter", FromOption},
	{EnvDomain, "consul.domain", FromOption},
	{EnvRaftMultiplier, "consul.raft_multiplier", FromOption},
	{EnvUI, "consul.ui", FromOption},
	{EnvExtraConfig, "consul.extra_config", FromOption},
	{EnvWANJoin, "consul.wan_join", FromOption},
	{EnvPrimaryDatacenter, "consul.primary_datacenter", FromOption},

	{EnvPortServer, "ports.server", FromOption},
	{EnvPortSerfLAN, "ports.serf_lan", FromOption},
	{EnvPortSerfWAN, "ports.serf_wan", FromOption},
	{EnvPortHTTP, "ports.http", FromOption},
	{EnvPortHTTPS, "ports.https", FromOption},
	{EnvPortGRPC, "ports.grpc", FromOption},
	{EnvPortGRPCTLS, "ports.grpc_tls", FromOption},
	{EnvPortDNS, "ports.dns", FromOption},

	{EnvTLS, "security.tls.enabled", FromOption},
	{EnvTLSCACertFile, "security.tls.ca_cert_file", FromOption},
	{EnvTLSCAKeyFile, "security.tls.ca_key_file", FromOption},
	{EnvTLSTrustedCACerts, "security.tls.trusted_ca_certs", FromOption},
	{EnvACL, "security.acl.enabled", FromOption},
	{EnvACLReplicationTokenSecret, "security.acl.replication_token_secret", FromOption},
	// Set by the template only when the secret is given: its sandbox path.
	{EnvACLReplicationTokenFile, "", FromTemplate},
	{EnvGossipKey, "security.gossip_encryption.enabled", FromOption},
	{EnvGossipKeySecret, "security.gossip_encryption.key_secret", FromOption},
	{EnvGossipKeyFile, "", FromTemplate},

	{EnvBackupTarget, "backup.target", FromOption},
	{EnvBackupInterval, "backup.interval_minutes", FromOption},
	{EnvBackupKeep, "backup.keep", FromOption},

	// Fixed by the template for DC/OS: the leading master through
	// ZooKeeper, ZooKeeper for the state, Mesos-DNS's domain, and the URI
	// of the dcos-consul binary the executors fetch.
	{EnvMesosMaster, "", FromTemplate},
	{EnvZK, "", FromTemplate},
	{EnvMesosDNSDomain, "", FromTemplate},
	{EnvExecutorURI, "", FromTemplate},

	// Marathon sets PORT_API for the port named "api" (and PORT0).
	{EnvAPIPort, "", FromMarathon},
	{EnvAPIPort0, "", FromMarathon},
	// ... and PORT_EXECUTOR for the port named "executor" (and PORT1).
	{EnvExecutorPort, "", FromMarathon},
	{EnvExecutorPort1, "", FromMarathon},

	// Cosmos adds SDK_UNINSTALL=true to the app on dcos package uninstall.
	{EnvUninstall, "", FromCosmos},

	// Development only: the file store directory (unused when STATE_ZK is
	// set) and the simulator's DNS server for the executors.
	{EnvStateDir, "", DevOnly},
	{EnvExecutorDNSServer, "", DevOnly},
	{EnvTLSServerCertLifetime, "", DevOnly},
	{EnvAPIHost, "", DevOnly},
	{EnvOperatorTokenFile, "", DevOnly},
	// Not set by the package: plain Mesos and tests. On DC/OS the
	// framework secret comes through DCOS_SERVICE_ACCOUNT_CREDENTIAL.
	{EnvFrameworkSecretFile, "", DevOnly},
	{EnvZKCredentialsSecret, "service.zookeeper_credentials_secret", FromOption},
	// Set by the template only when the secret is given: its sandbox path.
	{EnvZKCredentialsFile, "", FromTemplate},
	{EnvDCOSJWKSURL, "service.dcos_jwks_url", FromOption},
}

// OptionOf returns the config.json option of an environment variable, or
// "" if it does not come from an option.
func OptionOf(env string) string {
	for _, o := range Options {
		if o.Env == env {
			return o.Path
		}
	}
	return ""
}
