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
			// collide on it). No option enables it yet.
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
