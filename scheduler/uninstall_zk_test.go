package scheduler

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dcos-consul/dcos-consul/internal/zktest"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/store"
)

// An uninstall leaves nothing in ZooKeeper: not the keys, not the store's
// own __epoch and __lock nodes, not the service node. Here the scheduler
// starts in uninstall mode on a service whose state is only what opening
// the store creates (as after an uninstall that stopped before its end, or
// a second start of the uninstalled scheduler, which Marathon does until
// the package is removed); the full uninstall path (tasks, reservations,
// framework, then the same removal) is TestSimUninstallRemovesTasks....
func TestUninstallRemovesTheZooKeeperNode(t *testing.T) {
	addr := zktest.Addr(t)
	svc := fmt.Sprintf("test-uninstall-%d", time.Now().UnixNano())
	root := store.ServiceRootPath(svc)
	conn, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// What a previous scheduler left: the service node and its __epoch.
	st, err := store.OpenZK(context.Background(), store.Config{ZK: "zk://" + addr, Service: svc, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if ok, _, err := conn.Exists(root + "/__epoch"); err != nil || !ok {
		t.Fatalf("%s/__epoch after opening the store: %v %v (the test's premise)", root, ok, err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.ServiceName = svc
	cfg.ZK = addr
	cfg.Uninstall = true
	cfg.MesosMaster = "http://127.0.0.1:1" // nothing to tear down: never reached
	cfg.ExecutorURI = "http://127.0.0.1:1/dcos-consul"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- RunWith(ctx, cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), Options{Listener: ln,
			onStart: func(*Scheduler) { close(started) }})
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("the uninstalling scheduler stopped at once: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the uninstalling scheduler did not start")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, _, err := conn.Exists(root)
		if err == nil && !ok {
			break
		}
		if time.Now().After(deadline) {
			kids, _, _ := conn.Children(root)
			t.Fatalf("%s still exists after the uninstall (children %v, err %v)", root, kids, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("scheduler returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("scheduler did not stop")
	}
	if ok, _, _ := conn.Exists(root); ok {
		t.Fatalf("%s came back when the scheduler stopped", root)
	}
}
