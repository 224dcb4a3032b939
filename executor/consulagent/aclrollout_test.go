package consulagent

import (
	"encoding/json"
	"testing"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// TestConfigACLRollout: the phases of turning ACLs on: a server without
// an agent token under default allow, then every agent with its token
// under allow, then default deny as installed with ACLs.
func TestConfigACLRollout(t *testing.T) {
	const agentToken = "6f0c8f3e-58d5-4c5e-9c3f-5d9f1b2a7e41"
	for _, tc := range []struct {
		role      taskspec.Role
		phase     string
		policy    string
		withToken bool
	}{
		{taskspec.RoleServer, taskspec.ACLOpen, "allow", false},
		{taskspec.RoleServer, taskspec.ACLAllow, "allow", true},
		{taskspec.RoleClient, taskspec.ACLAllow, "allow", true},
		{taskspec.RoleServer, "", "deny", true},
		{taskspec.RoleClient, "", "deny", true},
	} {
		spec := serverSpec("consul-server-0", 1, testPorts([]int{8300, 8301, 8500}))
		if tc.role == taskspec.RoleClient {
			spec.Role, spec.BootstrapExpect, spec.NodeName = taskspec.RoleClient, 0, "consul-client-a"
		}
		spec.ACL, spec.ACLRollout = true, tc.phase
		spec.Secrets = &taskspec.SecretsRef{URL: "http://127.0.0.1:1", Token: "t"}
		doc, err := Config(spec, Env{BindIP: "127.3.0.40", Sandbox: "/sb", ACLAgentToken: agentToken})
		if err != nil {
			t.Fatalf("%s %q: %v", tc.role, tc.phase, err)
		}
		var got struct {
			ACL struct {
				Enabled       bool              `json:"enabled"`
				DefaultPolicy string            `json:"default_policy"`
				DownPolicy    string            `json:"down_policy"`
				Persistence   bool              `json:"enable_token_persistence"`
				Tokens        map[string]string `json:"tokens"`
			} `json:"acl"`
		}
		if err := json.Unmarshal(doc, &got); err != nil {
			t.Fatal(err)
		}
		a := got.ACL
		if !a.Enabled || a.DefaultPolicy != tc.policy || a.DownPolicy != "extend-cache" || a.Persistence {
			t.Errorf("%s %q: acl %+v, want enabled, default %s, down extend-cache, no persistence", tc.role, tc.phase, a, tc.policy)
		}
		if has := a.Tokens["agent"] == agentToken; has != tc.withToken {
			t.Errorf("%s %q: agent token set %v, want %v", tc.role, tc.phase, has, tc.withToken)
		}
	}
	// A client never runs the first phase, and the phase needs ACLs.
	client := serverSpec("consul-client-a", 1, testPorts([]int{8300, 8301, 8500}))
	client.Role, client.BootstrapExpect = taskspec.RoleClient, 0
	client.ACL, client.ACLRollout = true, taskspec.ACLOpen
	client.Secrets = &taskspec.SecretsRef{URL: "http://127.0.0.1:1", Token: "t"}
	if _, err := Config(client, Env{BindIP: "127.3.0.40", Sandbox: "/sb", ACLAgentToken: agentToken}); err == nil {
		t.Error("a client in the servers-only phase was accepted")
	}
	noACL := serverSpec("consul-server-0", 1, testPorts([]int{8300, 8301, 8500}))
	noACL.ACLRollout = taskspec.ACLAllow
	if _, err := Config(noACL, Env{BindIP: "127.3.0.40", Sandbox: "/sb"}); err == nil {
		t.Error("an ACL phase without ACLs was accepted")
	}
}
