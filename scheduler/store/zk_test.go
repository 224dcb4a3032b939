package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap/zaptest"

	"github.com/dcos-consul/dcos-consul/internal/zktest"
)

// The ZooKeeper tests run against a real ZooKeeper: 127.0.0.1:2181 or
// $ZK_TEST_ADDR (start one with .ci/zookeeper.sh). Without one they skip,
// unless $CI is set: then they fail.

// rawZK is a plain client for checking the tree and cleaning up.
func rawZK(t testing.TB, addr string) *zk.Conn {
	t.Helper()
	c, ev, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(zkLogger{zaptest.NewLogger(t).Sugar()}))
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(20 * time.Second)
	for c.State() != zk.StateHasSession {
		select {
		case <-ev:
		case <-timeout:
			t.Fatal("raw ZooKeeper client: no session")
		}
	}
	t.Cleanup(c.Close)
	return c
}

func deleteTree(c *zk.Conn, p string) error {
	kids, _, err := c.Children(p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, k := range kids {
		if err := deleteTree(c, p+"/"+k); err != nil {
			return err
		}
	}
	err = c.Delete(p, -1)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	return err
}

func zkOpener(addr string) opener {
	return func(t *testing.T, service string, lockWait time.Duration) (Store, error) {
		t.Cleanup(func() {
			c := rawZK(t, addr)
			if err := deleteTree(c, ServiceRootPath(service)); err != nil {
				t.Logf("cleanup %s: %v", ServiceRootPath(service), err)
			}
		})
		return OpenZK(context.Background(), Config{ZK: addr, Service: service, LockWait: lockWait, Logger: zaptest.NewLogger(t)})
	}
}

func TestZKStoreConformance(t *testing.T) {
	runConformance(t, zkOpener(zktest.Addr(t)))
}

func TestZKStoreLayout(t *testing.T) {
	addr := zktest.Addr(t)
	svc := uniqueService(t)
	s := mustOpen(t, zkOpener(addr), svc)
	raw := rawZK(t, addr)
	root := ServiceRootPath(svc)
	if !strings.HasPrefix(root, "/dcos-service-test__") {
		t.Fatalf("root %s", root)
	}
	mustPut(t, s, "tasks/consul-server-0", `{"state":"RUNNING"}`)
	mustPut(t, s, "framework-id", "fw-1")
	data, _, err := raw.Get(root + "/tasks/consul-server-0")
	if err != nil || string(data) != `{"state":"RUNNING"}` {
		t.Fatalf("node %s/tasks/consul-server-0: %q %v (values are stored raw, one node per key)", root, data, err)
	}
	data, st, err := raw.Get(root + "/" + lockNode)
	if err != nil || st.EphemeralOwner == 0 {
		t.Fatalf("lock node: %v, ephemeral owner %v", err, st)
	}
	var li lockInfo
	if err := json.Unmarshal(data, &li); err != nil || li.Owner == "" || li.PID != os.Getpid() {
		t.Fatalf("lock node data %s: %v", data, err)
	}
	if err := s.Delete(ctxT(t), "tasks/consul-server-0"); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := raw.Exists(root + "/tasks"); ok {
		t.Errorf("%s/tasks still exists after its last key was deleted", root)
	}
	kids, _, _ := raw.Children(root)
	sort.Strings(kids)
	if strings.Join(kids, ",") != "__epoch,__lock,framework-id" {
		t.Errorf("children of %s: %v, want __epoch, __lock and the one key", root, kids)
	}
	if got := mustList(t, s, ""); strings.Join(got, ",") != "framework-id" {
		t.Errorf("List hides the lock node: %v", got)
	}
	s.Close()
	if ok, _, _ := raw.Exists(root + "/" + lockNode); ok {
		t.Errorf("lock node left after Close")
	}
}

func TestZKStoreChroot(t *testing.T) {
	addr := zktest.Addr(t)
	raw := rawZK(t, addr)
	chroot := fmt.Sprintf("/dcos-consul-test-chroot-%d", time.Now().UnixNano())
	t.Cleanup(func() { deleteTree(raw, chroot) })
	s, err := OpenZK(context.Background(), Config{ZK: "zk://" + addr + chroot, Service: "consul", Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustPut(t, s, "framework-id", "x")
	if data, _, err := raw.Get(chroot + "/dcos-service-consul/framework-id"); err != nil || string(data) != "x" {
		t.Fatalf("chrooted node: %q %v", data, err)
	}
}

func TestZKStoreSurvivesKill(t *testing.T) {
	addr := zktest.Addr(t)
	svc := uniqueService(t)
	t.Cleanup(func() { deleteTree(rawZK(t, addr), ServiceRootPath(svc)) })
	crashTest(t, []string{"STORE_CRASH_HELPER=zk", "STORE_CRASH_ZK=" + addr, "STORE_CRASH_SERVICE=" + svc},
		func() (Store, error) {
			// The killed scheduler's lock goes with its session (4 s).
			return OpenZK(context.Background(), Config{ZK: addr, Service: svc, LockWait: 30 * time.Second, Logger: zaptest.NewLogger(t)})
		})
}

// restartZK restarts the ZooKeeper under test with $ZK_TEST_RESTART_CMD, or
// .ci/zookeeper.sh restart for the local default.
func restartZK(t *testing.T) {
	t.Helper()
	cmdline := os.Getenv("ZK_TEST_RESTART_CMD")
	if cmdline == "" {
		if os.Getenv("ZK_TEST_ADDR") != "" {
			t.Skip("ZK_TEST_ADDR is set but ZK_TEST_RESTART_CMD is not: cannot restart that ZooKeeper")
		}
		cmdline = "../../.ci/zookeeper.sh restart"
	}
	start := time.Now()
	out, err := exec.Command("sh", "-c", cmdline).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("restart ZooKeeper (%s): %v\n%s", cmdline, err, out)
		}
		t.Skipf("cannot restart ZooKeeper (%s): %v\n%s", cmdline, err, out)
	}
	t.Logf("ZooKeeper restarted in %s: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(out)))
}

func TestZKStoreSurvivesZooKeeperRestart(t *testing.T) {
	addr := zktest.Addr(t)
	svc := uniqueService(t)
	s := mustOpen(t, zkOpener(addr), svc)

	type result struct {
		key     string
		err     error
		latency time.Duration
	}
	results := make(chan result, 10000)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("tasks/w%d-%05d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				start := time.Now()
				err := s.Apply(ctx, PutOp(k, []byte(k)), PutOp(fmt.Sprintf("last/w%d", w), []byte(k)))
				cancel()
				results <- result{k, err, time.Since(start)}
				time.Sleep(5 * time.Millisecond)
			}
		}(w)
	}
	var acked []string
	var failed []result
	var slowest time.Duration
	collect := func(n int) {
		for len(acked) < n {
			select {
			case r := <-results:
				if r.err != nil {
					failed = append(failed, r)
				} else {
					acked = append(acked, r.key)
				}
				slowest = max(slowest, r.latency)
			case <-time.After(90 * time.Second):
				t.Fatalf("writes stalled: %d acknowledged", len(acked))
			}
		}
	}
	collect(20)
	before := len(acked)
	restartZK(t)
	collect(before + 40)
	close(stop)
	wg.Wait()
	close(results)
	for r := range results {
		if r.err != nil {
			failed = append(failed, r)
		} else {
			acked = append(acked, r.key)
		}
		slowest = max(slowest, r.latency)
	}
	for _, f := range failed {
		t.Errorf("write %s failed across the restart (the deadline was 60 s): %v", f.key, f.err)
	}
	for _, k := range acked {
		v, err := s.Get(ctxT(t), k)
		if err != nil || string(v) != k {
			t.Fatalf("acknowledged write %s lost across the ZooKeeper restart: %q %v", k, v, err)
		}
	}
	keys := mustList(t, s, "tasks/")
	if len(keys) != len(acked) {
		t.Errorf("List: %d keys, %d acknowledged writes", len(keys), len(acked))
	}
	t.Logf("%d writes acknowledged, all present; slowest write %s (waited out the restart)", len(acked), slowest.Round(time.Millisecond))
}

// tcpProxy forwards to ZooKeeper and can cut the client off, to expire its
// session while the server stays up.
type tcpProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	blocked bool
	conns   []net.Conn
}

func newProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.block() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.blocked {
				p.mu.Unlock()
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) block() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *tcpProxy) unblock() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = false
}

func TestZKStoreSessionExpiry(t *testing.T) {
	addr := zktest.Addr(t)
	svc := uniqueService(t)
	raw := rawZK(t, addr)
	t.Cleanup(func() { deleteTree(raw, ServiceRootPath(svc)) })
	p := newProxy(t, addr)
	s, err := OpenZK(context.Background(), Config{ZK: p.addr(), Service: svc, SessionTimeout: 4 * time.Second, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustPut(t, s, "framework-id", "fw-1")
	oldSession := s.conn.SessionID()

	p.block()
	// While cut off, a write with a short deadline fails, loudly.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err = s.Put(ctx, "tasks/during-outage", []byte("x"))
	cancel()
	if err == nil {
		t.Fatal("a write while ZooKeeper is unreachable returned nil")
	}
	t.Logf("write during the outage: %v", err)
	// Let the server expire the session (4 s) and drop the lock node.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, _, err := raw.Exists(ServiceRootPath(svc) + "/" + lockNode)
		if err == nil && !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the session never expired")
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.unblock()

	// The next write gets a new session, takes the lock again and succeeds.
	if err := s.Put(ctxT(t), "tasks/after-expiry", []byte("y")); err != nil {
		t.Fatalf("write after the session expired: %v", err)
	}
	if s.conn.SessionID() == oldSession {
		t.Errorf("session id unchanged: it did not expire")
	}
	wantGet(t, s, "framework-id", "fw-1")
	wantGet(t, s, "tasks/after-expiry", "y")
	// The failed write may or may not have been applied (its outcome was
	// unknown); the store must not have lost anything acknowledged.
	data, st, err := raw.Get(ServiceRootPath(svc) + "/" + lockNode)
	if err != nil || st.EphemeralOwner != s.conn.SessionID() {
		t.Fatalf("lock not held by the new session: %v owner=%x session=%x", err, st.EphemeralOwner, s.conn.SessionID())
	}
	var li lockInfo
	_ = json.Unmarshal(data, &li)
	if li.Owner != s.owner {
		t.Fatalf("lock owner %q, want %q", li.Owner, s.owner)
	}
}

func TestZKStoreLockLostAfterExpiry(t *testing.T) {
	addr := zktest.Addr(t)
	svc := uniqueService(t)
	raw := rawZK(t, addr)
	t.Cleanup(func() { deleteTree(raw, ServiceRootPath(svc)) })
	p := newProxy(t, addr)
	a, err := OpenZK(context.Background(), Config{ZK: p.addr(), Service: svc, SessionTimeout: 4 * time.Second, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	mustPut(t, a, "framework-id", "fw-a")
	p.block()
	// A second scheduler starts meanwhile; it gets the lock once a's
	// session expires.
	b, err := OpenZK(context.Background(), Config{ZK: addr, Service: svc, LockWait: 30 * time.Second, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatalf("second scheduler: %v", err)
	}
	defer b.Close()
	mustPut(t, b, "framework-id", "fw-b")
	p.unblock()
	err = a.Put(ctxT(t), "framework-id", []byte("fw-a-again"))
	if !errors.Is(err, ErrLockLost) {
		t.Fatalf("write by the scheduler that lost the lock: %v, want ErrLockLost", err)
	}
	if _, err := a.Get(ctxT(t), "framework-id"); !errors.Is(err, ErrLockLost) {
		t.Fatalf("read by the scheduler that lost the lock: %v, want ErrLockLost", err)
	}
	wantGet(t, b, "framework-id", "fw-b")
	a.Close()
	if ok, _, _ := raw.Exists(ServiceRootPath(svc) + "/" + lockNode); !ok {
		t.Fatal("closing the loser removed the winner's lock")
	}
}

func TestZKStoreNoServer(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := OpenZK(ctx, Config{ZK: dead, Service: "consul", Logger: zaptest.NewLogger(t)})
	if err == nil {
		t.Fatal("open with no ZooKeeper: nil error")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("open took %s, past its 2 s deadline", d)
	}
	t.Logf("no server: %v", err)
}

// A scheduler whose lock was taken over without it noticing (its session
// never expired) cannot write: every write checks the epoch.
func TestZKStoreFencedByEpoch(t *testing.T) {
	addr := zktest.Addr(t)
	svc := uniqueService(t)
	s := mustOpen(t, zkOpener(addr), svc)
	mustPut(t, s, "framework-id", "fw-1")
	mustPut(t, s, "tasks/a", "1")
	raw := rawZK(t, addr)
	// Another holder advances the epoch.
	if _, err := raw.Set(ServiceRootPath(svc)+"/"+epochNode, []byte(`{"owner":"someone-else"}`), -1); err != nil {
		t.Fatal(err)
	}
	for name, write := range map[string]func() error{
		"update": func() error { return s.Put(ctxT(t), "framework-id", []byte("fw-2")) },
		"create": func() error { return s.Put(ctxT(t), "tasks/b", []byte("2")) },
		"delete": func() error { return s.Delete(ctxT(t), "tasks/a") },
		"batch":  func() error { return s.Apply(ctxT(t), PutOp("tasks/c", nil), DeleteOp("tasks/a")) },
	} {
		if err := write(); !errors.Is(err, ErrLockLost) {
			t.Errorf("%s after the epoch moved: %v, want ErrLockLost", name, err)
		}
	}
	for k, want := range map[string]string{"framework-id": "fw-1", "tasks/a": "1"} {
		data, _, err := raw.Get(ServiceRootPath(svc) + "/" + k)
		if err != nil || string(data) != want {
			t.Errorf("%s = %q %v: a fenced write went through", k, data, err)
		}
	}
	if ok, _, _ := raw.Exists(ServiceRootPath(svc) + "/tasks/b"); ok {
		t.Error("tasks/b created by a fenced write")
	}
}

func TestZKStoreDestroyRemovesNode(t *testing.T) {
	addr := zktest.Addr(t)
	svc := uniqueService(t)
	s, err := zkOpener(addr)(t, svc, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "tasks/consul-server-0", "x")
	if err := s.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := rawZK(t, addr).Exists(ServiceRootPath(svc)); ok || err != nil {
		t.Fatalf("%s still exists after Destroy (%v)", ServiceRootPath(svc), err)
	}
}
