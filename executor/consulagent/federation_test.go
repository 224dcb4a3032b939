package consulagent

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// A secondary datacenter's agents name the primary; its servers
// replicate ACLs with the replication token, its clients do not get it.
func TestConfigSecondaryDatacenter(t *testing.T) {
	ports := taskspec.Ports{Server: 8300, SerfLAN: 8301, SerfWAN: 8302, HTTP: 8500, HTTPS: -1, GRPC: -1, DNS: 8600}
	spec := serverSpec("consul-server-0", 1, ports)
	spec.Datacenter, spec.PrimaryDatacenter = "dc2", "dc1"
	spec.ACL, spec.ACLReplication = true, true
	spec.Secrets = &taskspec.SecretsRef{URL: "http://127.0.0.1:1", Token: "x"}
	env := Env{BindIP: "127.3.0.41", Sandbox: "/sb", ACLAgentToken: "agent-secret", ACLReplicationToken: "repl-secret"}
	got := decode(t, spec, env)
	if got["primary_datacenter"] != "dc1" {
		t.Errorf("primary_datacenter %v", got["primary_datacenter"])
	}
	acl := got["acl"].(map[string]any)
	tokens := acl["tokens"].(map[string]any)
	if acl["enable_token_replication"] != true || tokens["replication"] != "repl-secret" || tokens["agent"] != "agent-secret" {
		t.Errorf("acl %v", acl)
	}
	if strings.Contains(env.String(), "repl-secret") {
		t.Errorf("Env.String shows the replication token: %s", env)
	}
	if _, err := Config(spec, Env{BindIP: "127.3.0.41", Sandbox: "/sb", ACLAgentToken: "agent-secret"}); err == nil {
		t.Error("a secondary's server started without a replication token")
	}

	client := spec
	client.Role, client.BootstrapExpect, client.ACLReplication = taskspec.RoleClient, 0, false
	got = decode(t, client, Env{BindIP: "127.3.0.41", Sandbox: "/sb", ACLAgentToken: "agent-secret"})
	acl = got["acl"].(map[string]any)
	if got["primary_datacenter"] != "dc1" || acl["enable_token_replication"] != nil || acl["tokens"].(map[string]any)["replication"] != nil {
		t.Errorf("client: primary %v acl %v", got["primary_datacenter"], acl)
	}
	client.ACLReplication = true
	if err := client.Validate(); err == nil {
		t.Error("a client spec with acl_replication is valid")
	}
	// Not federated: Consul's default (the agent's own datacenter).
	plain := serverSpec("consul-server-0", 1, ports)
	if got := decode(t, plain, Env{BindIP: "127.3.0.41", Sandbox: "/sb"}); got["primary_datacenter"] != nil {
		t.Errorf("primary_datacenter %v without the option", got["primary_datacenter"])
	}
}

func decode(t *testing.T, spec taskspec.Spec, env Env) map[string]any {
	t.Helper()
	doc, err := Config(spec, env)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(doc, &got); err != nil {
		t.Fatal(err)
	}
	return got
}
