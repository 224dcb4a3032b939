package consulacl

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/executor/consulagent"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// fedServer starts a one-server datacenter dc on ip as the executor
// starts one with ACLs and gossip encryption (the key federated
// datacenters share); a secondary (primary set) joins the primary's WAN
// address and replicates ACLs with replication. It returns the HTTP and
// serf WAN addresses once the agent runs.
func fedServer(ctx context.Context, t *testing.T, ip, dc, primary, wanJoin, agentToken, replication string) (httpAddr, wanAddr string) {
	t.Helper()
	ports := freePorts(t, ip, 4)
	spec := taskspec.Spec{Version: taskspec.Version, Role: taskspec.RoleServer, NodeName: "server-" + dc, Datacenter: dc,
		BootstrapExpect: 1, DataDir: "consul-data", LogLevel: "WARN", RaftMultiplier: 1,
		Ports: taskspec.Ports{Server: ports[0], SerfLAN: ports[1], SerfWAN: ports[2], HTTP: ports[3], HTTPS: -1, GRPC: -1, DNS: -1},
		ACL:   true, GossipEncryption: true, Secrets: &taskspec.SecretsRef{URL: "http://127.0.0.1:1", Token: "x"},
		PrimaryDatacenter: primary}
	if primary != dc {
		spec.ACLReplication, spec.WANJoin = true, []string{wanJoin}
	}
	a, err := consulagent.Start(context.Background(), spec, consulagent.Env{BindIP: ip, Sandbox: t.TempDir(),
		ACLAgentToken: agentToken, ACLReplicationToken: replication,
		GossipKey: "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	if err := a.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(ip, strconv.Itoa(ports[3])), net.JoinHostPort(ip, strconv.Itoa(ports[2]))
}

// replicationPolicy is the policy docs/operations.md has operators create
// in the primary for a secondary's replication token (Consul's).
const replicationPolicy = `acl = "write"
operator = "write"
service_prefix "" {
  policy = "read"
  intentions = "read"
}
`

// TestSecondaryKilledAtEveryStep is TestBootstrapKilledAtEveryStep for a
// secondary datacenter: one primary (bootstrapped), and for every prefix
// of the secondary's steps a fresh secondary datacenter whose killed
// scheduler did that prefix; the next scheduler's run from the start
// succeeds, a further run finds nothing to do, and the tokens work: the
// local management token in the secondary only, the scheduler's and the
// agent's with their rights, anonymous KV reads refused.
func TestSecondaryKilledAtEveryStep(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real Consul servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	primaryAddr, primaryWAN := fedServer(ctx, t, "127.3.3.10", "dc1", "dc1", "", tokens.Agent, "")
	eventuallyOK(t, func() error { _, err := Bootstrap(ctx, primaryAddr, tokens); return err })
	mgmt, _ := Client(primaryAddr, tokens.Management)
	if _, _, err := mgmt.ACL().PolicyCreate(&consulapi.ACLPolicy{Name: "acl-replication", Rules: replicationPolicy}, nil); err != nil {
		t.Fatal(err)
	}
	repl, _, err := mgmt.ACL().TokenCreate(&consulapi.ACLToken{Description: "replication",
		Policies: []*consulapi.ACLTokenPolicyLink{{Name: "acl-replication"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}

	steps := SecondarySteps("dcx", nil)
	for k := 0; k <= len(steps); k++ {
		what := "before the first step"
		if k > 0 {
			what = "after step " + strconv.Itoa(k) + " (" + steps[k-1].Name + ")"
		}
		t.Run("killed "+what, func(t *testing.T) {
			dc := "dc" + strconv.Itoa(k+2)
			// This datacenter's own secrets, as its scheduler generates them.
			tk := Tokens{Management: uuid(t), Scheduler: uuid(t), Agent: uuid(t), SecondaryDC: dc, Replication: repl.SecretID}
			addr, _ := fedServer(ctx, t, "127.3.3."+strconv.Itoa(11+k), dc, "dc1", primaryWAN, tk.Agent, repl.SecretID)
			rc, _ := Client(addr, repl.SecretID)
			// The killed scheduler: the first k steps, retried until the
			// secondary reaches the primary.
			eventuallyOK(t, func() error { _, err := Run(ctx, addr, tk, SecondarySteps(dc, rc)[:k]); return err })
			var done []string
			eventuallyOK(t, func() (err error) { done, err = Bootstrap(ctx, addr, tk); return err })
			t.Logf("the next scheduler did %v", done)
			if k == len(steps) && len(done) != 0 {
				t.Errorf("after a complete setup the next one did %v", done)
			}
			if again, err := Bootstrap(ctx, addr, tk); err != nil || len(again) != 0 {
				t.Fatalf("a further run: %v %v, want nothing to do", again, err)
			}
			checkSecondaryTokens(t, addr, primaryAddr, dc, tk)
		})
	}
}

// TestSecondaryManagementRotation: a secondary's management token is
// rotated as the primary's (create the new one with the old, delete the
// old with the new), the new one local too.
func TestSecondaryManagementRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real Consul servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	primary := Tokens{Management: uuid(t), Scheduler: uuid(t), Agent: uuid(t)}
	primaryAddr, primaryWAN := fedServer(ctx, t, "127.3.4.10", "dc1", "dc1", "", primary.Agent, "")
	eventuallyOK(t, func() error { _, err := Bootstrap(ctx, primaryAddr, primary); return err })
	mgmt, _ := Client(primaryAddr, primary.Management)
	if _, _, err := mgmt.ACL().PolicyCreate(&consulapi.ACLPolicy{Name: "acl-replication", Rules: replicationPolicy}, nil); err != nil {
		t.Fatal(err)
	}
	repl, _, err := mgmt.ACL().TokenCreate(&consulapi.ACLToken{Policies: []*consulapi.ACLTokenPolicyLink{{Name: "acl-replication"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tk := Tokens{Management: uuid(t), Scheduler: uuid(t), Agent: uuid(t), SecondaryDC: "dc2", Replication: repl.SecretID}
	addr, _ := fedServer(ctx, t, "127.3.4.11", "dc2", "dc1", primaryWAN, tk.Agent, repl.SecretID)
	eventuallyOK(t, func() error { _, err := Bootstrap(ctx, addr, tk); return err })
	next := uuid(t)
	if _, err := EnsureManagementIn(ctx, addr, tk.Management, next, true); err != nil {
		t.Fatalf("the new management token: %v", err)
	}
	if _, err := DeleteBySecret(ctx, addr, next, tk.Management); err != nil {
		t.Fatalf("delete the old one: %v", err)
	}
	nc, _ := Client(addr, next)
	self, _, err := nc.ACL().TokenReadSelf(nil)
	if err != nil || !self.Local {
		t.Fatalf("the new management token in dc2: %+v %v, want a local token", self, err)
	}
	if _, err := nc.KV().Put(&consulapi.KVPair{Key: "k", Value: []byte("v")}, nil); err != nil {
		t.Fatalf("the new management token writes in dc2: %v", err)
	}
	old, _ := Client(addr, tk.Management)
	if _, _, err := old.ACL().TokenReadSelf(nil); !aclNotFound(err) {
		t.Fatalf("the old management token: %v, want ACL not found", err)
	}
	// The next setup run with the new secret stored finds everything in place.
	tk.Management = next
	if done, err := Bootstrap(ctx, addr, tk); err != nil || len(done) != 0 {
		t.Fatalf("the setup after the rotation: %v %v, want nothing to do", done, err)
	}
}

func checkSecondaryTokens(t *testing.T, addr, primaryAddr, dc string, tk Tokens) {
	t.Helper()
	m, _ := Client(addr, tk.Management)
	if _, err := m.KV().Put(&consulapi.KVPair{Key: "k", Value: []byte("v")}, nil); err != nil {
		t.Fatalf("the local management token in %s: %v", dc, err)
	}
	if _, _, err := m.KV().Get("k", &consulapi.QueryOptions{Datacenter: "dc1"}); !forbidden(err) {
		t.Fatalf("the local management token of %s in dc1: %v, want 403", dc, err)
	}
	sched, _ := Client(addr, tk.Scheduler)
	if _, err := sched.Operator().RaftGetConfiguration(nil); err != nil {
		t.Fatalf("the scheduler token: %v", err)
	}
	if _, err := sched.KV().Put(&consulapi.KVPair{Key: "y", Value: []byte("1")}, nil); !forbidden(err) {
		t.Fatalf("the scheduler token KV write: %v, want 403", err)
	}
	agent, _ := Client(addr, tk.Agent)
	self, _, err := agent.ACL().TokenReadSelf(nil)
	if err != nil || !self.Local || len(self.Policies) != 1 || self.Policies[0].Name != SecondaryPolicy(PolicyAgent, dc) {
		t.Fatalf("the agent token: %+v %v", self, err)
	}
	anon, _ := Client(addr, "")
	if p, _, err := anon.KV().Get("k", nil); p != nil || !forbidden(err) {
		t.Fatalf("anonymous KV read in %s: %v %v", dc, p, err)
	}
	// The secondary's policies are valid in it only.
	pm, _ := Client(primaryAddr, tokens.Management)
	p, _, err := pm.ACL().PolicyReadByName(SecondaryPolicy(PolicyScheduler, dc), nil)
	if err != nil || p == nil || strings.Join(p.Datacenters, ",") != dc {
		t.Fatalf("policy %s in the primary: %+v %v", SecondaryPolicy(PolicyScheduler, dc), p, err)
	}
}

func uuid(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
