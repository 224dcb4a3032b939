package taskspec

import (
	"strings"
	"testing"
)

func validSpec() Spec {
	return Spec{
		Role: RoleServer, NodeName: "consul-server-0", Datacenter: "dc1", Domain: "consul",
		BootstrapExpect: 3, JoinDNSNames: []string{"consul-server-0.consul.mesos"},
		Ports:   Ports{Server: 8300, SerfLAN: 8301, SerfWAN: 8302, HTTP: 8500, HTTPS: -1, GRPC: -1, DNS: 8600},
		DataDir: "consul-data",
	}
}

func TestRoundTrip(t *testing.T) {
	data, err := Encode(validSpec())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != Version || got.NodeName != "consul-server-0" || got.BootstrapExpect != 3 {
		t.Fatalf("round trip lost fields: %+v", got)
	}
}

func TestDecodeRefuses(t *testing.T) {
	for name, tc := range map[string]struct{ data, want string }{
		"empty":          {"", "empty"},
		"not json":       {"{", "not a task spec"},
		"future version": {`{"version":2}`, "version 2 is not supported"},
		"unknown field":  {`{"version":1,"role":"server","surprise":1}`, "surprise"},
		"bad role":       {`{"version":1,"role":"agent","node_name":"x","datacenter":"dc1","data_dir":"d","ports":{"server":1,"serf_lan":2,"serf_wan":3,"http":4,"https":-1,"grpc":-1,"dns":-1}}`, "role"},
		"port zero":      {`{"version":1,"role":"client","node_name":"x","datacenter":"dc1","data_dir":"d","ports":{"server":1,"serf_lan":2,"serf_wan":3,"http":0,"https":-1,"grpc":-1,"dns":-1}}`, "ports.http"},
		"extra not obj":  {`{"version":1,"role":"client","node_name":"x","datacenter":"dc1","data_dir":"d","extra_config":[1],"ports":{"server":1,"serf_lan":2,"serf_wan":3,"http":4,"https":-1,"grpc":-1,"dns":-1}}`, "extra_config"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Decode([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode(%s) = %v, want an error containing %q", tc.data, err, tc.want)
			}
		})
	}
}

func TestServerNeedsBootstrapExpect(t *testing.T) {
	s := validSpec()
	s.BootstrapExpect = 0
	if _, err := Encode(s); err == nil || !strings.Contains(err.Error(), "bootstrap_expect") {
		t.Fatalf("Encode with bootstrap_expect 0 = %v", err)
	}
}

func TestJoinUpdate(t *testing.T) {
	data, err := EncodeJoinUpdate([]string{"127.0.0.2:8301", "127.0.0.3:8301"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := DecodeJoinUpdate(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(u.JoinAddrs) != 2 || u.JoinAddrs[1] != "127.0.0.3:8301" {
		t.Fatalf("got %+v", u)
	}
	if _, err := EncodeJoinUpdate([]string{"127.0.0.2"}); err == nil {
		t.Fatal("an address without a port was accepted")
	}
	for _, bad := range []string{"", "hi", `{"version":9,"kind":"join"}`, `{"version":1,"kind":"other"}`, `{"version":1,"kind":"join","join_addrs":["x"]}`} {
		if _, err := DecodeJoinUpdate([]byte(bad)); err == nil {
			t.Errorf("DecodeJoinUpdate(%q) accepted", bad)
		}
	}
}

// TestACLRolloutValidated: the ACL rollout's phases need ACLs, the
// first is for servers only, and none is for a secondary's servers.
func TestACLRolloutValidated(t *testing.T) {
	withACL := func(role Role, phase string) Spec {
		s := validSpec()
		s.Version, s.Role = Version, role
		if role == RoleClient {
			s.BootstrapExpect = 0
		}
		s.ACL, s.ACLRollout = true, phase
		s.Secrets = &SecretsRef{URL: "http://127.0.0.1:1", Token: "t"}
		return s
	}
	for _, s := range []Spec{withACL(RoleServer, ACLOpen), withACL(RoleServer, ACLAllow), withACL(RoleClient, ACLAllow), withACL(RoleClient, "")} {
		if err := s.Validate(); err != nil {
			t.Errorf("%s %q: %v", s.Role, s.ACLRollout, err)
		}
	}
	noACL := withACL(RoleServer, ACLAllow)
	noACL.ACL = false
	secondary := withACL(RoleServer, ACLAllow)
	secondary.ACLReplication, secondary.Datacenter, secondary.PrimaryDatacenter = true, "dc2", "dc1"
	for name, c := range map[string]struct {
		s    Spec
		want string
	}{
		"client in the servers' phase": {withACL(RoleClient, ACLOpen), "servers only"},
		"unknown phase":                {withACL(RoleServer, "later"), "want"},
		"no ACLs":                      {noACL, "needs acl"},
		"a secondary's server":         {secondary, "secondary"},
	} {
		if err := c.s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
		}
	}
}
