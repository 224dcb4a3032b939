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
}

// Policy names and rules. The scheduler's own token holds what it uses:
// raft and autopilot reads, peer removal and force-leave (operator write),
// the keyring, and reads of nodes and agents.
const (
	PolicyScheduler = "dcos-consul-scheduler"
	PolicyAgent     = "dcos-consul-agent"
	PolicyDNS       = "dcos-consul-anonymous-dns"

	rulesScheduler = `operator = "write"
keyring = "write"
agent_prefix "" { policy = "read" }
node_prefix "" { policy = "read" }
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
	if t.Management == "" || t.Scheduler == "" || t.Agent == "" {
		return nil, errors.New("consulacl: a token is missing")
	}
	var done []string
	anon, err := Client(addr, "")
	if err != nil {
		return nil, err
	}
	_, _, berr := anon.ACL().BootstrapWithToken(t.Management)
	if berr == nil {
		done = append(done, "ACL system bootstrapped with the stored management token")
	}
	mgmt, err := Client(addr, t.Management)
	if err != nil {
		return nil, err
	}
	wo := (&consulapi.WriteOptions{}).WithContext(ctx)
	qo := (&consulapi.QueryOptions{}).WithContext(ctx)
	self, _, err := mgmt.ACL().TokenReadSelf(qo)
	if err != nil || self == nil {
		return done, fmt.Errorf("consulacl: bootstrap: %v; and the stored management token does not work: %v", redact(berr, t), redact(err, t))
	}
	for _, p := range []struct{ name, rules, desc string }{
		{PolicyScheduler, rulesScheduler, "the dcos-consul scheduler's rights"},
		{PolicyAgent, rulesAgent, "every dcos-consul agent's node registration"},
		{PolicyDNS, rulesDNS, "DNS for anonymous clients: node and service reads"},
	} {
		created, err := ensurePolicy(mgmt, p.name, p.rules, p.desc, qo, wo)
		if err != nil {
			return done, fmt.Errorf("consulacl: policy %s: %v", p.name, redact(err, t))
		}
		if created {
			done = append(done, "policy "+p.name+" created")
		}
	}
	for _, tk := range []struct{ secret, policy, desc string }{
		{t.Scheduler, PolicyScheduler, "dcos-consul scheduler"},
		{t.Agent, PolicyAgent, "dcos-consul agents"},
	} {
		created, err := ensureToken(addr, mgmt, tk.secret, tk.policy, tk.desc, wo)
		if err != nil {
			return done, fmt.Errorf("consulacl: token for %s: %v", tk.desc, redact(err, t))
		}
		if created {
			done = append(done, "token for "+tk.desc+" created")
		}
	}
	updated, err := ensureAnonymousDNS(mgmt, qo, wo)
	if err != nil {
		return done, fmt.Errorf("consulacl: anonymous token: %v", redact(err, t))
	}
	if updated {
		done = append(done, "anonymous token given "+PolicyDNS)
	}
	return done, nil
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
func redact(err error, t Tokens) string {
	if err == nil {
		return "<nil>"
	}
	s := err.Error()
	for _, v := range []string{t.Management, t.Scheduler, t.Agent} {
		if v != "" {
			s = strings.ReplaceAll(s, v, "<redacted>")
		}
	}
	return s
}
