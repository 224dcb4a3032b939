package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	consulconfig "github.com/hashicorp/consul/agent/config"
)

// blockedKeys are the Consul agent settings consul.extra_config may not
// set, by Consul's canonical name (a path through nested objects), with
// who owns them or why they are refused. They are checked on the
// configuration as Consul's own decoder reads it: keys in any letter case,
// aliases and deprecated top-level keys (acl_datacenter, verify_incoming,
// ...) all land on these fields.
var blockedKeys = []struct{ path, why string }{
	// Security: the service manages these (or refuses them until it can).
	{"encrypt", "the security.gossip_encryption option: the scheduler generates and keeps the key"},
	{"encrypt_verify_incoming", "the security.gossip_encryption option"},
	{"encrypt_verify_outgoing", "the security.gossip_encryption option"},
	{"disable_keyring_file", "the security.gossip_encryption option (key rotation needs the keyring file)"},
	{"acl", "the security.acl option"},
	{"primary_datacenter", "the consul.primary_datacenter option (the ACL primary datacenter of a federation)"},
	{"tls", "the security.tls option"},
	{"auto_encrypt", "the security.tls option"},
	{"auto_config", "the security.tls and security.acl options"},
	{"server_name", "the security.tls option"},
	{"enable_script_checks", "nobody: script checks let anyone who can register a check run commands on the agent's host"},
	{"enable_local_script_checks", "nobody: script checks run commands on the agent's host"},
	{"watches", "nobody: watch handlers run commands on the agent's host"},
	{"disable_remote_exec", "nobody: consul exec runs commands on the agent's host"},
	{"enable_debug", "nobody: it serves the agent's profiling endpoints to every caller"},
	// Data placement and identity.
	{"data_dir", "the framework (the server's persistent volume)"},
	{"node_name", "the framework (the task name)"},
	{"node_id", "the framework (each agent keeps its own in its data directory)"},
	{"disable_host_node_id", "the framework"},
	{"datacenter", "the consul.datacenter option"},
	{"domain", "the consul.domain option"},
	{"server", "the framework (servers.count decides which tasks are servers)"},
	{"bootstrap", "the framework (servers.count)"},
	{"bootstrap_expect", "the framework (servers.count)"},
	{"read_replica", "the framework (servers.count)"},
	{"ports", "the ports options"},
	{"ui", "the consul.ui option"},
	{"ui_config.enabled", "the consul.ui option"},
	// Addresses and membership.
	{"bind_addr", "the framework (the agent's address)"},
	{"advertise_addr", "the framework (the agent's address)"},
	{"advertise_addr_ipv4", "the framework (the agent's address)"},
	{"advertise_addr_ipv6", "the framework (the agent's address)"},
	{"client_addr", "the framework (the agent's address)"},
	{"addresses", "the framework (the agent's address)"},
	{"serf_lan", "the framework (the agent's address)"},
	{"serf_wan", "the framework (the agent's address)"},
	{"retry_join", "the framework (it joins the servers' Mesos-DNS names)"},
	{"leave_on_terminate", "the framework (a kill is a graceful leave)"},
	{"skip_leave_on_interrupt", "the framework (a kill is a graceful leave)"},
	{"rejoin_after_leave", "the framework (a relaunched agent rejoins)"},
}

// deprecatedKeys are Consul's deprecated top-level keys (agent/config
// DeprecatedConfig) that feed blocked settings; refused by name as well,
// in any letter case, whatever Consul makes of them.
var deprecatedKeys = map[string]string{
	"acl_agent_master_token": "acl", "acl_agent_token": "acl", "acl_token": "acl",
	"acl_enable_key_list_policy": "acl", "acl_master_token": "acl", "acl_replication_token": "acl",
	"enable_acl_replication": "acl", "acl_datacenter": "acl", "acl_default_policy": "acl",
	"acl_down_policy": "acl", "acl_ttl": "acl",
	"ca_file": "tls", "ca_path": "tls", "cert_file": "tls", "key_file": "tls",
	"tls_cipher_suites": "tls", "tls_min_version": "tls", "verify_incoming": "tls",
	"verify_incoming_https": "tls", "verify_incoming_rpc": "tls", "verify_outgoing": "tls",
	"verify_server_hostname": "tls", "tls_prefer_server_cipher_suites": "tls",
	"start_join": "retry_join",
}

// Fingerprint stands for a value that is never shown (extra_config may
// hold secrets): the first 8 bytes of its SHA-256, enough to tell two
// values apart in logs and the plan.
func Fingerprint(v string) string {
	if v == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// extraConfigValue is what errors show of extra configuration.
func extraConfigValue(raw json.RawMessage) string {
	return "<not shown, " + Fingerprint(compactJSON(raw)) + ">"
}

// validExtraConfig checks consul.extra_config: a JSON object that Consul's
// own decoder reads without error or unknown key, and that sets none of
// blockedKeys. Its errors name keys, never values.
func validExtraConfig(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" { // null: a Config stored as JSON without extra config
		return nil
	}
	fail := func(allowed string) error { return bad(EnvExtraConfig, extraConfigValue(raw), allowed) }
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return fail(`empty, or a JSON object of Consul agent configuration such as {"log_json": true}`)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if owner, ok := deprecatedKeys[strings.ToLower(k)]; ok {
			return fail(fmt.Sprintf("Consul agent configuration without %q (a deprecated form of %q): %s", k, owner, whyBlocked(owner)))
		}
	}
	c, md, err := consulconfig.FileSource{Name: "consul.extra_config", Format: "json", Data: string(raw)}.Parse()
	if err != nil {
		return fail("Consul agent configuration that Consul can decode: " + decodeProblem(err))
	}
	if len(md.Unused) > 0 {
		u := append([]string(nil), md.Unused...)
		sort.Strings(u)
		return fail(fmt.Sprintf("Consul agent configuration with keys Consul knows; unknown: %s", strings.Join(u, ", ")))
	}
	for _, b := range blockedKeys {
		if isSet(reflect.ValueOf(c), strings.Split(b.path, ".")) {
			return fail(fmt.Sprintf("Consul agent configuration without %q: it is set by %s (keys are matched as Consul reads them: any letter case, aliases)", b.path, b.why))
		}
	}
	return nil
}

func whyBlocked(path string) string {
	for _, b := range blockedKeys {
		if b.path == path {
			return "it is set by " + b.why
		}
	}
	return "it is managed by the framework"
}

// mapstructure's errors quote the offending value; keep the key and the
// expected type only.
var decodeKeyRe = regexp.MustCompile(`'([^']*)' expected type '([^']*)'`)

func decodeProblem(err error) string {
	var out []string
	for _, m := range decodeKeyRe.FindAllStringSubmatch(err.Error(), -1) {
		out = append(out, fmt.Sprintf("%s must be %s", m[1], m[2]))
	}
	if len(out) == 0 {
		return "it refused the document (details not shown: they would include values)"
	}
	return strings.Join(out, "; ")
}

// isSet reports whether the field at path (mapstructure names) of the
// decoded Consul configuration v holds anything.
func isSet(v reflect.Value, path []string) bool {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return false
		}
		if len(path) == 0 {
			return true // set, even to false or ""
		}
		v = v.Elem()
	}
	if len(path) == 0 {
		return !v.IsZero()
	}
	if v.Kind() != reflect.Struct {
		return false
	}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("mapstructure"), ",")
		if name == path[0] {
			return isSet(v.Field(i), path[1:])
		}
	}
	return false
}
