// Package zktest finds the real ZooKeeper that tests of the state store,
// the master detection and the fault suite run against: 127.0.0.1:2181 (or
// $ZK_TEST_ADDR), started by .ci/zookeeper.sh. Without one a test skips,
// unless $CI is set: then it fails, so CI never passes by skipping.
package zktest

import (
	"net"
	"os"
	"testing"
	"time"
)

// Addr returns the ZooKeeper address if a server accepts connections there;
// otherwise it skips t, or fails it when $CI is set.
func Addr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("ZK_TEST_ADDR")
	if addr == "" {
		addr = "127.0.0.1:2181"
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		return addr
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("no ZooKeeper answers at %s (CI is set, so this fails instead of skipping): %v; run .ci/zookeeper.sh", addr, err)
	}
	t.Skipf("no ZooKeeper at %s (%v): run .ci/zookeeper.sh or set ZK_TEST_ADDR; skipping", addr, err)
	return ""
}
