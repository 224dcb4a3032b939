package consulacl

import (
	"context"
	"errors"
	"fmt"
	"strings"

	consulapi "github.com/hashicorp/consul/api"
)

// EnsureManagement makes next a global-management token, created with the
// working management token cur unless next works already. It reports
// whether it created it. Consul takes the secret the scheduler chose, so
// running it again after a crash finds the token and does nothing.
func EnsureManagement(ctx context.Context, addr, cur, next string) (bool, error) {
	return EnsureManagementIn(ctx, addr, cur, next, false)
}

// EnsureManagementIn is EnsureManagement; local makes the new token local
// to the datacenter behind addr, as a secondary datacenter's management
// token is (secondary.go): its current one, local, could not create a
// global token, which is written in the primary.
func EnsureManagementIn(ctx context.Context, addr, cur, next string, local bool) (bool, error) {
	if cur == "" || next == "" || cur == next {
		return false, errors.New("consulacl: a management rotation needs the current token and a different new one")
	}
	own, err := Client(addr, next)
	if err != nil {
		return false, err
	}
	if tok, _, err := own.ACL().TokenReadSelf(query(ctx)); err == nil && tok != nil {
		return false, nil
	}
	mgmt, err := Client(addr, cur)
	if err != nil {
		return false, err
	}
	_, _, err = mgmt.ACL().TokenCreate(&consulapi.ACLToken{SecretID: next,
		Description: "dcos-consul management token (rotated)", Local: local,
		Policies: []*consulapi.ACLTokenPolicyLink{{ID: globalManagement}}}, write(ctx))
	if err != nil {
		return false, fmt.Errorf("consulacl: create the new management token: %s", redact(err, Tokens{}, cur, next))
	}
	if _, _, err := own.ACL().TokenReadSelf(query(ctx)); err != nil {
		return true, fmt.Errorf("consulacl: the new management token does not read itself: %s", redact(err, Tokens{}, cur, next))
	}
	return true, nil
}

// DeleteBySecret deletes, with the token by, the token whose secret is
// old. A token already gone (Consul answers "ACL not found" to its
// secret) is not an error: deleted reports whether this call deleted it.
func DeleteBySecret(ctx context.Context, addr, by, old string) (deleted bool, err error) {
	if by == "" || old == "" || by == old {
		return false, errors.New("consulacl: a token cannot delete itself")
	}
	oc, err := Client(addr, old)
	if err != nil {
		return false, err
	}
	tok, _, err := oc.ACL().TokenReadSelf(query(ctx))
	if err != nil {
		if aclNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("consulacl: read the old token: %s", redact(err, Tokens{}, by, old))
	}
	bc, err := Client(addr, by)
	if err != nil {
		return false, err
	}
	if _, err := bc.ACL().TokenDelete(tok.AccessorID, write(ctx)); err != nil {
		return false, fmt.Errorf("consulacl: delete the old token %s: %s", tok.AccessorID, redact(err, Tokens{}, by, old))
	}
	return true, nil
}

// aclNotFound: Consul's answer to a secret it does not know (403 "ACL not
// found"), as opposed to a token it knows without the right (403
// "Permission denied") or a server that cannot answer.
func aclNotFound(err error) bool {
	return err != nil && strings.Contains(err.Error(), "ACL not found")
}
