package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap/zaptest"

	"github.com/dcos-consul/dcos-consul/internal/zktest"
	"github.com/dcos-consul/dcos-consul/scheduler/credentials"
)

// With digest credentials every node the store creates is readable and
// writable by that identity only: a client without them (or with others)
// can neither read the secrets nor delete a task record, and the store
// itself keeps working, a reopen and a destroy included.
func TestZKDigestACL(t *testing.T) {
	addr := zktest.Addr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	service := "acl-test-" + randomToken()[:8]
	root := ServiceRootPath(service)
	auth := &credentials.ZK{User: "dcos-consul", Password: "pw-" + randomToken()}
	owner := rawZK(t, addr)
	if err := owner.AddAuth("digest", auth.Auth()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := deleteTree(owner, root); err != nil {
			t.Logf("cleanup %s: %v", root, err)
		}
	})
	open := func() *ZKStore {
		s, err := OpenZK(ctx, Config{ZK: addr, Service: service, Logger: zaptest.NewLogger(t), ZKAuth: auth, LockWait: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	if err := s.Put(ctx, "secrets", []byte(`{"k":"v"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, PutOp("tasks/consul-server-0", []byte("{}"))); err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{root, root + "/secrets", root + "/tasks", root + "/tasks/consul-server-0"} {
		acl, _, err := owner.GetACL(p)
		if err != nil {
			t.Fatalf("GetACL %s: %v", p, err)
		}
		want := zk.DigestACL(zk.PermAll, auth.User, auth.Password)
		if len(acl) != 1 || acl[0] != want[0] {
			t.Errorf("%s has ACL %+v, want only %+v", p, acl, want)
		}
	}

	anonymous := rawZK(t, addr)
	intruder := rawZK(t, addr)
	if err := intruder.AddAuth("digest", []byte(auth.User+":wrong")); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*zk.Conn{"anonymous": anonymous, "wrong password": intruder} {
		if _, _, err := c.Get(root + "/secrets"); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("%s: read of the secrets node: %v, want ErrNoAuth", name, err)
		}
		if _, _, err := c.Children(root + "/tasks"); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("%s: list of the task records: %v, want ErrNoAuth", name, err)
		}
		if err := c.Delete(root+"/tasks/consul-server-0", -1); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("%s: delete of a task record: %v, want ErrNoAuth", name, err)
		}
		if _, err := c.Set(root+"/secrets", []byte("x"), -1); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("%s: overwrite of the secrets node: %v, want ErrNoAuth", name, err)
		}
		if _, err := c.Create(root+"/tasks/intruder", nil, 0, zk.WorldACL(zk.PermAll)); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("%s: create under the service: %v, want ErrNoAuth", name, err)
		}
	}
	if v, err := s.Get(ctx, "tasks/consul-server-0"); err != nil || string(v) != "{}" {
		t.Fatalf("the task record after the attempts: %q, %v", v, err)
	}

	// A reopen (the next scheduler) finds everything; then an uninstall
	// removes it all.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	if v, err := s.Get(ctx, "secrets"); err != nil || string(v) != `{"k":"v"}` {
		t.Fatalf("secrets after a reopen: %q, %v", v, err)
	}
	if err := s.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := owner.Exists(root); err != nil || ok {
		t.Fatalf("after Destroy %s exists=%v (%v)", root, ok, err)
	}
}

// Without credentials the nodes stay open, as before (and as other
// DC/OS services' nodes are).
func TestZKNoCredentialsWorldACL(t *testing.T) {
	if got := nodeACL(nil); len(got) != 1 || got[0].Scheme != "world" {
		t.Fatalf("nodeACL(nil) = %+v", got)
	}
	got := nodeACL(&credentials.ZK{User: "u", Password: "p"})
	if len(got) != 1 || got[0].Scheme != "digest" || got[0].ID[:2] != "u:" || got[0].Perms != zk.PermAll {
		t.Fatalf("nodeACL(u:p) = %+v", got)
	}
}
