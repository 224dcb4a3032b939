package universe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap/zaptest"

	"github.com/dcos-consul/dcos-consul/internal/zktest"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/credentials"
	"github.com/dcos-consul/dcos-consul/scheduler/store"
)

// TestZKCredentialsSecretProtectsTheState follows the option
// service.zookeeper_credentials_secret from the package to ZooKeeper: the
// rendered app mounts the DC/OS secret as a file and names that file, not
// the credentials, in its env; the scheduler's configuration and
// credentials reader take the file from the sandbox (where Marathon
// mounts it); the state store opened with them creates its nodes with a
// digest ACL, which an anonymous ZooKeeper client cannot read.
func TestZKCredentialsSecretProtectsTheState(t *testing.T) {
	addr := zktest.Addr(t)
	s := source(t)
	app := render(t, s, `{"service": {"zookeeper_credentials_secret": "consul/zk"}}`)
	env := appEnv(t, app)
	file := env[config.EnvZKCredentialsFile]
	if file == "" || filepath.IsAbs(file) {
		t.Fatalf("%s = %q: want the sandbox-relative path of the mounted secret", config.EnvZKCredentialsFile, file)
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	secret := "consul-e2e:" + hex.EncodeToString(b)
	for k, v := range env {
		if strings.Contains(v, secret) {
			t.Fatalf("env %s holds the credentials", k)
		}
	}
	// Marathon mounts the secret's value at containerPath in the sandbox,
	// the scheduler's working directory.
	sandbox := t.TempDir()
	if err := os.MkdirAll(filepath.Join(sandbox, filepath.Dir(file)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sandbox, file), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, err := loadEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	if c.ZK == "" || c.ZKCredentialsSecret != "consul/zk" {
		t.Fatalf("config: ZK %q, credentials secret %q", c.ZK, c.ZKCredentialsSecret)
	}
	auth, err := credentials.ReadZK(filepath.Join(sandbox, c.ZKCredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if auth.User != "consul-e2e" || auth.Password != secret[len("consul-e2e:"):] {
		t.Fatalf("credentials read: %v", auth)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	service := "zk-secret-test-" + hex.EncodeToString(b[:4])
	st, err := store.OpenZK(ctx, store.Config{ZK: addr, Service: service, Logger: zaptest.NewLogger(t), ZKAuth: &auth, LockWait: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Destroy(ctx); err != nil {
			t.Logf("cleanup: %v", err)
		}
	}()
	if err := st.Put(ctx, "secrets", []byte(`{"gossip":"x"}`)); err != nil {
		t.Fatal(err)
	}
	anon, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, _, err := anon.Get(store.ServiceRootPath(service) + "/secrets"); !errors.Is(err, zk.ErrNoAuth) {
		t.Fatalf("an anonymous read of the secrets node: %v, want ErrNoAuth", err)
	}
}
