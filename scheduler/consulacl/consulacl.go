// Package consulacl bootstraps Consul's ACL system for the service: the
// management token the scheduler generated (and stored first), its own
// narrower token, the agents' token and the anonymous token's DNS policy.
//
// Every step is idempotent and the secrets are chosen by the scheduler, not
// by Consul, so a scheduler killed at any moment runs Bootstrap again from
// the start and ends in the same state: PUT /v1/acl/bootstrap with
// BootstrapSecret (Consul 1.15+) either creates the management token or
// answers that bootstrap is done, in which case the stored token must work.
package consulacl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dcos-consul/dcos-consul/scheduler/consulclient"
)

// Tokens are the secrets the scheduler generated (UUIDs).
type Tokens struct {
	Management string
	Scheduler  string
	Agent      string
	// SecondaryDC is set in a secondary datacenter of a federation (its
	// name), whose ACLs are replicated from the primary's with
	// Replication, the operator's token (secondary.go).
	SecondaryDC string
	Replication string
}

// Policy names and rules. The scheduler's own token holds what it uses,
// as Consul 1.16 checks it: the raft configuration and autopilot health
// (operator:read), raft peer removal, leadership transfer and force-leave
// (operator:write), and the gossip keyring: list, install, use, remove
// (keyring:write), and each server's own raft state and last log index
// for the lost-quorum verdict (GET /v1/agent/self: agent:read). Nothing
// else: it reads no node, service or key, and writes no agent.
// Snapshots (GET and PUT /v1/snapshot) need acl:write, as much as the
// management token, so they are taken with that token instead.
const (
	PolicyScheduler = "dcos-consul-scheduler"
	PolicyAgent     = "dcos-consul-agent"
	PolicyDNS       = "dcos-consul-anonymous-dns"

	rulesScheduler = `operator = "write"
keyring = "write"
agent_prefix "" { policy = "read" }
`
	// Each agent registers its node and reads services for its DNS and
	// anti-entropy (Consul's documented agent token policy).
	rulesAgent = `node_prefix "" { policy = "write" }
service_prefix "" { policy = "read" }
`
	// DNS answers for anonymous clients: service and node reads only.
	rulesDNS = `node_prefix "" { policy = "read" }
service_prefix "" { policy = "read" }
`
	anonymousAccessor = "00000000-0000-0000-0000-000000000002"
)

// Client returns a Consul API client for addr (host:port, or
// https://host:port with TLS) with token.
func Client(addr, token string) (*consulapi.Client, error) {
	return consulclient.New(addr, token, 15*time.Second)
}

// Bootstrap brings the ACL system of the cluster behind addr to the
// service's state. It returns what it did (for the log) or the first step
// that failed; the caller retries later (no leader yet, a server
// restarting). Errors never contain a token.
func Bootstrap(ctx context.Context, addr string, t Tokens) ([]string, error) {
	if t.SecondaryDC != "" {
		return Secondary(ctx, addr, t)
	}
	return Run(ctx, addr, t, Steps())
}

// Step is one step of the bootstrap: one Consul write at most (atomic in
// raft), idempotent, and needing nothing from an earlier run but the
// stored tokens. A scheduler killed at any moment has therefore done a
// prefix of the steps, the last one perhaps applied by Consul without
// its answer read: the same state as after that step.
type Step struct {
	Name string
	// Do does the step if it is not done yet; what it did is "" when
	// there was nothing to do.
	Do func(ctx context.Context, c *Conn) (string, error)
}

// Conn is what the steps work with: the cluster's address and the
// tokens, and a client with the management token once it works.
type Conn struct {
	Addr   string
	Tokens Tokens
	mgmt   *consulapi.Client
}

// Steps are the bootstrap steps, in order: the management token first
// (everything else is done with it), then the policies, then the tokens
// that link them, then the anonymous token.
func Steps() []Step {
	steps := []Step{{Name: "bootstrap", Do: bootstrapStep}}
	for _, p := range []struct{ name, rules, desc string }{
		{PolicyScheduler, rulesScheduler, "the dcos-consul scheduler's rights"},
		{PolicyAgent, rulesAgent, "every dcos-consul agent's node registration"},
		{PolicyDNS, rulesDNS, "DNS for anonymous clients: node and service reads"},
	} {
		p := p
		steps = append(steps, Step{Name: "policy " + p.name, Do: func(ctx context.Context, c *Conn) (string, error) {
			created, err := ensurePolicy(c.mgmt, p.name, p.rules, p.desc, query(ctx), write(ctx))
			if err != nil || !created {
				return "", err
			}
			return "policy " + p.name + " created", nil
		}})
	}
	for _, tk := range []struct {
		secret func(Tokens) string
		policy string
		desc   string
	}{
		{func(t Tokens) string { return t.Scheduler }, PolicyScheduler, "dcos-consul scheduler"},
		{func(t Tokens) string { return t.Agent }, PolicyAgent, "dcos-consul agents"},
	} {
		tk := tk
		steps = append(steps, Step{Name: "token for " + tk.desc, Do: func(ctx context.Context, c *Conn) (string, error) {
			created, err := ensureToken(c.Addr, c.mgmt, tk.secret(c.Tokens), tk.policy, tk.desc, write(ctx))
			if err != nil || !created {
				return "", err
			}
			return "token for " + tk.desc + " created", nil
		}})
	}
	steps = append(steps, Step{Name: "anonymous token", Do: func(ctx context.Context, c *Conn) (string, error) {
		updated, err := ensureAnonymousDNS(c.mgmt, query(ctx), write(ctx))
		if err != nil || !updated {
			return "", err
		}
		return "anonymous token given " + PolicyDNS, nil
	}})
	return steps
}

// Run runs steps in order against addr until one fails. Errors never
// contain t's tokens.
func Run(ctx context.Context, addr string, t Tokens, steps []Step) ([]string, error) {
	if t.Management == "" || t.Scheduler == "" || t.Agent == "" {
		return nil, errors.New("consulacl: a token is missing")
	}
	mgmt, err := Client(addr, t.Management)
	if err != nil {
		return nil, err
	}
	c := &Conn{Addr: addr, Tokens: t, mgmt: mgmt}
	var done []string
	for _, st := range steps {
		did, err := st.Do(ctx, c)
		if err != nil {
			return done, fmt.Errorf("consulacl: %s: %s", st.Name, redact(err, t))
		}
		if did != "" {
			done = append(done, did)
		}
	}
	return done, nil
}

// bootstrapStep: PUT /v1/acl/bootstrap with the stored management secret
// either creates the management token or answers that the ACL system is
// bootstrapped already; either way the stored token must then work.
func bootstrapStep(ctx context.Context, c *Conn) (string, error) {
	anon, err := Client(c.Addr, "")
	if err != nil {
		return "", err
	}
	var did string
	_, _, berr := anon.ACL().BootstrapWithToken(c.Tokens.Management)
	if berr == nil {
		did = "ACL system bootstrapped with the stored management token"
	}
	self, _, err := c.mgmt.ACL().TokenReadSelf(query(ctx))
	if err != nil || self == nil {
		return "", fmt.Errorf("%v; and the stored management token does not work: %v", redact(berr, c.Tokens), redact(err, c.Tokens))
	}
	return did, nil
}

func query(ctx context.Context) *consulapi.QueryOptions {
	return (&consulapi.QueryOptions{}).WithContext(ctx)
}

func write(ctx context.Context) *consulapi.WriteOptions {
	return (&consulapi.WriteOptions{}).WithContext(ctx)
}

func ensurePolicy(c *consulapi.Client, name, rules, desc string, qo *consulapi.QueryOptions, wo *consulapi.WriteOptions) (bool, error) {
	p, _, err := c.ACL().PolicyReadByName(name, qo)
	if err != nil && !notFound(err) {
		return false, err
	}
	if p != nil {
		if p.Rules == rules {
			return false, nil
		}
		p.Rules, p.Description = rules, desc
		_, _, err := c.ACL().PolicyUpdate(p, wo)
		return err == nil, err
	}
	_, _, err = c.ACL().PolicyCreate(&consulapi.ACLPolicy{Name: name, Rules: rules, Description: desc}, wo)
	return err == nil, err
}

// ensureToken creates the token with the given secret unless a token with
// that secret exists (it reads itself).
func ensureToken(addr string, mgmt *consulapi.Client, secret, policy, desc string, wo *consulapi.WriteOptions) (bool, error) {
	own, err := Client(addr, secret)
	if err != nil {
		return false, err
	}
	if tok, _, err := own.ACL().TokenReadSelf(nil); err == nil && tok != nil {
		return false, nil
	}
	_, _, err = mgmt.ACL().TokenCreate(&consulapi.ACLToken{SecretID: secret, Description: desc,
		Policies: []*consulapi.ACLTokenPolicyLink{{Name: policy}}}, wo)
	return err == nil, err
}

func ensureAnonymousDNS(c *consulapi.Client, qo *consulapi.QueryOptions, wo *consulapi.WriteOptions) (bool, error) {
	tok, _, err := c.ACL().TokenRead(anonymousAccessor, qo)
	if err != nil {
		return false, err
	}
	for _, p := range tok.Policies {
		if p.Name == PolicyDNS {
			return false, nil
		}
	}
	tok.Policies = append(tok.Policies, &consulapi.ACLTokenPolicyLink{Name: PolicyDNS})
	_, _, err = c.ACL().TokenUpdate(tok, wo)
	return err == nil, err
}

func notFound(err error) bool {
	var se consulapi.StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		return true
	}
	return strings.Contains(err.Error(), "not found")
}

// redact keeps tokens out of an error text (Consul does not echo them,
// but an error is cheap to clean).
func redact(err error, t Tokens, more ...string) string {
	if err == nil {
		return "<nil>"
	}
	s := err.Error()
	for _, v := range append([]string{t.Management, t.Scheduler, t.Agent, t.Replication}, more...) {
		if v != "" {
			s = strings.ReplaceAll(s, v, "<redacted>")
		}
	}
	return s
}

// globalManagement is Consul's built-in global-management policy.
const globalManagement = "00000000-0000-0000-0000-000000000001"

// AfterRestore makes the service's tokens t work again after a snapshot
// restore replaced Consul's ACL state with the snapshot's. Restored from
// this install (or from one without ACLs, whose ACL system is not
// bootstrapped), the bootstrap simply runs. Restored from another
// install, t's management token is unknown to the restored state: it is
// created there again, with the same secret and global-management, with
// previous, the other install's management token stored beside the
// snapshot; then the bootstrap re-creates the scheduler and agent tokens
// with t's secrets. The running agents keep their (t's) agent token, and
// nothing stored by the scheduler changes.
func AfterRestore(ctx context.Context, addr, previous string, t Tokens) ([]string, error) {
	done, err := Bootstrap(ctx, addr, t)
	if err == nil {
		return done, nil
	}
	if previous == "" || previous == t.Management || t.SecondaryDC != "" {
		return done, fmt.Errorf("%w (and the snapshot has no other install's management token beside it)", err)
	}
	prev, cerr := Client(addr, previous)
	if cerr != nil {
		return nil, cerr
	}
	_, _, cerr = prev.ACL().TokenCreate(&consulapi.ACLToken{SecretID: t.Management,
		Description: "dcos-consul management token (re-created after a snapshot restore)",
		Policies:    []*consulapi.ACLTokenPolicyLink{{ID: globalManagement}}}, write(ctx))
	if cerr != nil {
		return nil, fmt.Errorf("consulacl: re-create the management token with the snapshot's: %s", redact(cerr, t, previous))
	}
	done, err = Bootstrap(ctx, addr, t)
	return append([]string{"management token re-created in the restored ACL state"}, done...), err
}
