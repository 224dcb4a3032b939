package scheduler

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap/zaptest"

	"github.com/dcos-consul/dcos-consul/internal/zktest"
)

// zkForTest connects to the ZooKeeper of the CI (127.0.0.1:2181 or
// $ZK_TEST_ADDR) or skips.
func zkForTest(t *testing.T) (*zk.Conn, string) {
	t.Helper()
	addr := zktest.Addr(t)
	conn, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogger(zkQuiet{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn, addr
}

// registerMaster writes a master info node the way Mesos does.
func registerMaster(t *testing.T, conn *zk.Conn, path string, seq int, hostport string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(hostport)
	p, _ := strconv.Atoi(port)
	doc := fmt.Sprintf(`{"id":"m%d","hostname":"h%d","port":%d,"address":{"hostname":"h%d","ip":"%s","port":%d},"version":"1.12.0"}`, seq, seq, p, seq, host, p)
	if _, err := conn.Create(fmt.Sprintf("%s/json.info_%010d", path, seq), []byte(doc), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
}

func zkTree(t *testing.T, conn *zk.Conn) string {
	t.Helper()
	root := fmt.Sprintf("/dcos-consul-scheduler-test-%d", time.Now().UnixNano())
	for _, p := range []string{root, root + "/mesos"} {
		if _, err := conn.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		children, _, _ := conn.Children(root + "/mesos")
		for _, c := range children {
			_ = conn.Delete(root+"/mesos/"+c, -1)
		}
		_ = conn.Delete(root+"/mesos", -1)
		_ = conn.Delete(root, -1)
	})
	return root + "/mesos"
}

func TestDetectLeaderFromZooKeeper(t *testing.T) {
	conn, addr := zkForTest(t)
	path := zkTree(t, conn)
	log := zaptest.NewLogger(t)
	if _, err := detectLeader(context.Background(), "zk://"+addr+path, log); err == nil || !strings.Contains(err.Error(), "no Mesos master has registered") {
		t.Fatalf("empty path: %v", err)
	}
	registerMaster(t, conn, path, 7, "127.2.201.7:5050")
	registerMaster(t, conn, path, 3, "127.2.201.3:5050")
	got, err := detectLeader(context.Background(), "zk://"+addr+path, log)
	if err != nil || got != "127.2.201.3:5050" {
		t.Fatalf("leader %q %v, want the lowest sequence 127.2.201.3:5050", got, err)
	}
}

func TestSchedulerFindsTheMasterThroughZooKeeper(t *testing.T) {
	conn, addr := zkForTest(t)
	path := zkTree(t, conn)
	m := startFakeMaster(t, "127.2.200.5")
	registerMaster(t, conn, path, 1, m.addr)
	stop := runAgainstURL(t, "zk://"+addr+path, Options{})
	defer stop()
	waitFor(t, "SUBSCRIBE at the master found in ZooKeeper", 30*time.Second, func() bool {
		subs, _ := m.snapshot()
		return len(subs) == 1
	})
}
