package consulacl

import (
	"context"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// TestManagementRotationOnARealServer: the management token is rotated in
// two Consul steps (create the new one with the old, delete the old with
// the new), each idempotent, so a scheduler killed between them and run
// again ends in the same state. Afterwards the new token does everything,
// the old one nothing, and the bootstrap (run at every scheduler start)
// accepts the rotated token.
func TestManagementRotationOnARealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Consul server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addr, _ := startACLServer(ctx, t, "127.3.1.30")
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := Bootstrap(ctx, addr, tokens)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	const next = "4fc25f97-5d3c-4ec3-9f96-b25f4dad5e05"
	for run := 0; run < 2; run++ { // the second run: as after a kill once the token was created
		created, err := EnsureManagement(ctx, addr, tokens.Management, next)
		if err != nil || created != (run == 0) {
			t.Fatalf("ensure run %d: created %v, %v", run, created, err)
		}
	}
	for _, secret := range []string{tokens.Management, next} { // both work between the steps
		if err := kvPut(addr, secret); err != nil {
			t.Fatalf("between the steps, a management token cannot write: %v", err)
		}
	}
	if _, err := DeleteBySecret(ctx, addr, next, next); err == nil {
		t.Fatal("a token was allowed to delete itself")
	}
	for run := 0; run < 2; run++ {
		deleted, err := DeleteBySecret(ctx, addr, next, tokens.Management)
		if err != nil || deleted != (run == 0) {
			t.Fatalf("delete run %d: deleted %v, %v", run, deleted, err)
		}
	}
	if err := kvPut(addr, tokens.Management); err == nil || !strings.Contains(err.Error(), "ACL not found") {
		t.Fatalf("the old management token still works or fails otherwise: %v", err)
	}
	if err := kvPut(addr, next); err != nil {
		t.Fatalf("the new management token: %v", err)
	}
	rotated := tokens
	rotated.Management = next
	if done, err := Bootstrap(ctx, addr, rotated); err != nil || len(done) != 0 {
		t.Fatalf("bootstrap after the rotation: %v %v, want nothing to do", done, err)
	}
	if _, err := Bootstrap(ctx, addr, tokens); err == nil {
		t.Fatal("bootstrap with the retired management token succeeded")
	}
}

func kvPut(addr, token string) error {
	c, err := Client(addr, token)
	if err != nil {
		return err
	}
	_, err = c.KV().Put(&consulapi.KVPair{Key: "rotation", Value: []byte(token[:4])}, nil)
	return err
}
