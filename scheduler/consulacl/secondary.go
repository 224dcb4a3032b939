package consulacl

import (
	"context"
	"errors"
	"fmt"

	consulapi "github.com/hashicorp/consul/api"
)

// A secondary datacenter of a federation does not bootstrap ACLs: its
// servers replicate the primary's policies and tokens (Consul's
// enable_token_replication with the operator's replication token, which
// needs acl = "write" in the primary). Its scheduler makes this
// datacenter's own tokens with the replication token:
//
//   - a management token, local to this datacenter (global-management,
//     valid here only), with the stored management secret: what the
//     scheduler and the operator use here, as the bootstrap token in the
//     primary (snapshots, `consul acl management-token`);
//   - the scheduler's and the agents' policies, named for the datacenter
//     and valid in it only (policies are global: they are written in the
//     primary, through this datacenter's servers, and replicated back);
//   - the scheduler's and the agents' tokens, local to this datacenter.
//
// The anonymous token is the primary's (global, replicated): its policy
// is the primary's to set. Every step is idempotent and the secrets are
// the scheduler's, so a scheduler killed anywhere runs the steps again
// from the start to the same end, as Bootstrap in the primary.

// SecondaryPolicy is the name of a policy of the secondary datacenter dc.
func SecondaryPolicy(name, dc string) string { return name + "-" + dc }

// Secondary sets up the ACL tokens of secondary datacenter
// t.SecondaryDC behind addr with t.Replication, the operator's
// replication token (Bootstrap calls it). Errors never contain a token.
func Secondary(ctx context.Context, addr string, t Tokens) ([]string, error) {
	if t.Replication == "" {
		return nil, errors.New("consulacl: a secondary datacenter needs the ACL replication token (security.acl.replication_token_secret)")
	}
	repl, err := Client(addr, t.Replication)
	if err != nil {
		return nil, err
	}
	return Run(ctx, addr, t, SecondarySteps(t.SecondaryDC, repl))
}

// SecondarySteps are the steps of a secondary datacenter dc, done with
// repl, a client holding the replication token.
func SecondarySteps(dc string, repl *consulapi.Client) []Step {
	steps := []Step{{Name: "local management token", Do: func(ctx context.Context, c *Conn) (string, error) {
		created, err := ensureLocalToken(c.Addr, repl, c.Tokens.Management, &consulapi.ACLTokenPolicyLink{ID: globalManagement},
			"dcos-consul management token of datacenter "+dc, write(ctx))
		if err != nil || !created {
			return "", err
		}
		return "local management token created in " + dc, nil
	}}}
	for _, p := range []struct{ name, rules, desc string }{
		{SecondaryPolicy(PolicyScheduler, dc), rulesScheduler, "the dcos-consul scheduler's rights in " + dc},
		{SecondaryPolicy(PolicyAgent, dc), rulesAgent, "every dcos-consul agent's node registration in " + dc},
	} {
		p := p
		steps = append(steps, Step{Name: "policy " + p.name, Do: func(ctx context.Context, c *Conn) (string, error) {
			created, err := ensurePolicyIn(repl, p.name, p.rules, p.desc, []string{dc}, query(ctx), write(ctx))
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
		{func(t Tokens) string { return t.Scheduler }, SecondaryPolicy(PolicyScheduler, dc), "dcos-consul scheduler of datacenter " + dc},
		{func(t Tokens) string { return t.Agent }, SecondaryPolicy(PolicyAgent, dc), "dcos-consul agents of datacenter " + dc},
	} {
		tk := tk
		steps = append(steps, Step{Name: "token for " + tk.desc, Do: func(ctx context.Context, c *Conn) (string, error) {
			created, err := ensureLocalToken(c.Addr, repl, tk.secret(c.Tokens), &consulapi.ACLTokenPolicyLink{Name: tk.policy}, tk.desc, write(ctx))
			if err != nil || !created {
				return "", err
			}
			return "token for " + tk.desc + " created", nil
		}})
	}
	return steps
}

// ensureLocalToken creates a token local to the datacenter behind addr
// with the given secret and policy, unless a token with that secret
// exists (it reads itself).
func ensureLocalToken(addr string, by *consulapi.Client, secret string, policy *consulapi.ACLTokenPolicyLink, desc string, wo *consulapi.WriteOptions) (bool, error) {
	own, err := Client(addr, secret)
	if err != nil {
		return false, err
	}
	if tok, _, err := own.ACL().TokenReadSelf(nil); err == nil && tok != nil {
		return false, nil
	}
	_, _, err = by.ACL().TokenCreate(&consulapi.ACLToken{SecretID: secret, Description: desc, Local: true,
		Policies: []*consulapi.ACLTokenPolicyLink{policy}}, wo)
	if err != nil {
		return false, fmt.Errorf("create a local token (the replication token needs acl = \"write\"; policies replicate from the primary within seconds): %w", err)
	}
	return true, nil
}

// ensurePolicyIn is ensurePolicy for a policy valid in dcs only.
func ensurePolicyIn(c *consulapi.Client, name, rules, desc string, dcs []string, qo *consulapi.QueryOptions, wo *consulapi.WriteOptions) (bool, error) {
	p, _, err := c.ACL().PolicyReadByName(name, qo)
	if err != nil && !notFound(err) {
		return false, err
	}
	if p != nil {
		if p.Rules == rules && sameStrings(p.Datacenters, dcs) {
			return false, nil
		}
		p.Rules, p.Description, p.Datacenters = rules, desc, dcs
		_, _, err := c.ACL().PolicyUpdate(p, wo)
		return err == nil, err
	}
	_, _, err = c.ACL().PolicyCreate(&consulapi.ACLPolicy{Name: name, Rules: rules, Description: desc, Datacenters: dcs}, wo)
	return err == nil, err
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
