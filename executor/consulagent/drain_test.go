package consulagent

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
)

// drainCluster is three TLS servers (0-2) and a client (3) on ips.
type drainCluster struct {
	ips       []string
	ports     taskspec.Ports
	https     int
	ca        pki.CA
	specs     []taskspec.Spec
	envs      []Env
	agents    []*Agent
	servers   []*api.Client // each server's own HTTPS API
	client    *api.Client   // the client agent's HTTPS API
	seen      *observer.ObservedLogs
	log       *zap.Logger
	sandboxes []string
}

func startDrainCluster(ctx context.Context, t testing.TB, ips []string) *drainCluster {
	t.Helper()
	p := freePorts(t, ips, 4)
	now := time.Now()
	ca, err := pki.NewCA(nil, "test", now)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := ca.Parse(now)
	obs, seen := observer.New(zapcore.WarnLevel)
	c := &drainCluster{ips: ips, ports: testPorts(p), https: p[3], ca: ca, seen: seen,
		log: zap.New(zapcore.NewTee(testLogger(t).Core(), obs)), agents: make([]*Agent, 4)}
	t.Cleanup(func() {
		for _, a := range c.agents {
			if a != nil {
				a.Stop()
			}
		}
	})
	for i := 0; i < 3; i++ {
		cert, err := pki.IssueServer(parsed, pki.ServerRequest{Datacenter: "dc1", Hosts: []string{ips[i]}}, nil, now)
		if err != nil {
			t.Fatal(err)
		}
		spec := tlsSpec(serverSpec(fmt.Sprintf("drain-server-%d", i), 3, c.ports), c.https)
		spec.JoinAddrs = []string{addr(ips[0], c.ports.SerfLAN)}
		c.specs = append(c.specs, spec)
		c.sandboxes = append(c.sandboxes, t.TempDir())
		c.envs = append(c.envs, Env{BindIP: ips[i], Sandbox: c.sandboxes[i], TLSCACert: ca.CertPEM, TLSCert: cert.CertPEM, TLSKey: cert.KeyPEM})
	}
	c.specs = append(c.specs, tlsSpec(taskspec.Spec{Version: taskspec.Version, Role: taskspec.RoleClient, NodeName: "drain-client", Datacenter: "dc1",
		Ports: c.ports, DataDir: "consul-data", JoinAddrs: []string{addr(ips[0], c.ports.SerfLAN)}, LogLevel: "INFO"}, c.https))
	c.sandboxes = append(c.sandboxes, t.TempDir())
	c.envs = append(c.envs, Env{BindIP: ips[3], Sandbox: c.sandboxes[3], TLSCACert: ca.CertPEM})
	for i := range c.specs {
		if c.agents[i], err = Start(ctx, c.specs[i], c.envs[i], c.log); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range c.agents {
		if err := a.Ready(ctx); err != nil {
			t.Fatalf("%s not ready: %v", a.spec.NodeName, err)
		}
	}
	for i := 0; i < 3; i++ {
		cfg := api.DefaultConfig()
		cfg.Address, cfg.Scheme = addr(ips[i], c.https), "https"
		cfg.TLSConfig.CAPem = []byte(ca.CertPEM)
		sc, err := api.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.servers = append(c.servers, sc)
	}
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Scheme = addr(ips[3], c.https), "https"
	cfg.TLSConfig.InsecureSkipVerify = true // the client's HTTPS certificate is from Consul's own CA
	if c.client, err = api.NewClient(cfg); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "a write through the client", func() error { return put(c.client, "drain", 0) })
	return c
}

func put(c *api.Client, key string, v int) error {
	_, err := c.KV().Put(&api.KVPair{Key: key, Value: []byte(strconv.Itoa(v))}, nil)
	return err
}

// clientServer is the server the client sends its RPCs to (from the
// servers' established TCP connections), made a follower first if it
// leads (as the scheduler hands leadership over before a restart).
func (c *drainCluster) clientServer(t *testing.T) int {
	t.Helper()
	victim := -1
	eventually(t, time.Minute, "the client's server found, and not the leader", func() error {
		if err := put(c.client, "drain", 0); err != nil {
			return err
		}
		victim = -1
		for i := 0; i < 3; i++ {
			if n, err := established(c.ips[i], c.ports.Server, c.ips[3]); err != nil {
				return err
			} else if n > 0 {
				victim = i
			}
		}
		if victim < 0 {
			return errors.New("no RPC connection from the client to a server")
		}
		leader, err := c.servers[victim].Status().Leader()
		if err != nil {
			return err
		}
		if leader == addr(c.ips[victim], c.ports.Server) {
			if _, err := c.servers[victim].Operator().RaftLeaderTransfer(nil); err != nil {
				return fmt.Errorf("transfer leadership off the client's server: %w", err)
			}
			return errors.New("the client's server was the leader; leadership transferred")
		}
		return nil
	})
	return victim
}

// TestDrainBeforeStop: in a real 3-server cluster with TLS and a client,
// the server the client sends its RPCs to is drained: its own HTTPS API
// refuses a write with 429, nothing applied; the scheduler's reads (raft
// configuration) still work on it and it stays a voter; it presents the
// same certificate (its TLS files were written back for Consul's reload
// and removed again). Writes through the client go on succeeding while it
// drains and once it has stopped: the client moved to another server at
// its first refused request instead of failing the writes that meet the
// stop.
func TestDrainBeforeStop(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a real Consul cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startDrainCluster(ctx, t, []string{"127.3.0.90", "127.3.0.91", "127.3.0.92", "127.3.0.93"})
	victim := c.clientServer(t)
	leaders := 0
	for i := 0; i < 3; i++ {
		if c.agents[i].Leads() {
			leaders++
			if i == victim {
				t.Errorf("server %d leads, but its raft leader is another", i)
			}
		}
	}
	if leaders != 1 {
		t.Errorf("%d servers say they lead, want 1", leaders)
	}
	serialBefore, err := c.agents[victim].presentedSerial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Writers busy through the client from before the drain until after
	// the stop.
	failed := writeThrough(c.client, func() {
		if err := c.agents[victim].Drain(); err != nil {
			t.Errorf("drain: %v", err)
			return
		}
		checkDraining(ctx, t, c.agents[victim], c.servers[victim], serialBefore, c.sandboxes[victim])
		time.Sleep(time.Second)
		c.agents[victim].Stop()
	})
	if len(failed) > 0 {
		t.Errorf("%d writes through the client failed while its server drained and stopped, first: %v", len(failed), failed[0])
	}
	if n := clientLines(c.seen, "Retrying RPC to server", "IP:"+c.ips[victim]+" "); n == 0 {
		t.Errorf("the client never retried a request the draining server %s refused: the test did not drain the client's server", c.ips[victim])
	}
	if n := clientLines(c.seen, "RPC failed to server", ""); n > 0 {
		t.Errorf("the client logged %d failed RPCs", n)
	}
}

// TestClientBackOnRestartedServer is a rolling restart's pattern: the
// client's server A drains and stops while writers are busy, comes back
// in place (same data dir and address), and leads; then the two others
// drain, so the client goes back to A. Its connection pool still held the
// session to A's previous process: Consul cached idle streams on it
// (MaxStreams), and a write given one of those failed ("rpc error making
// call: stream closed"). With no stream cached the pool opens one, finds
// the session shut and dials A again.
func TestClientBackOnRestartedServer(t *testing.T) {
	if testing.Short() {
		t.Skip("forms a real Consul cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := startDrainCluster(ctx, t, []string{"127.3.0.94", "127.3.0.95", "127.3.0.96", "127.3.0.97"})
	a := c.clientServer(t)
	failed := writeThrough(c.client, func() {
		if err := c.agents[a].Drain(); err != nil {
			t.Errorf("drain: %v", err)
		}
		time.Sleep(time.Second)
		c.agents[a].Stop()
		// The executor's exit closes the sockets Consul's shutdown
		// leaves open (accepted RPC sessions); here it is the test's
		// own process.
		if err := shutdownSockets(c.ips[a], c.ports.Server); err != nil {
			t.Error(err)
		}
	})
	if len(failed) > 0 {
		t.Errorf("%d writes failed while the client's server drained and stopped, first: %v", len(failed), failed[0])
	}
	var err error
	if c.agents[a], err = Start(ctx, c.specs[a], c.envs[a], c.log); err != nil {
		t.Fatalf("restart in place: %v", err)
	}
	if err := c.agents[a].Ready(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "the restarted server leads", func() error {
		leader, err := c.servers[a].Status().Leader()
		if err != nil {
			return err
		}
		if leader == addr(c.ips[a], c.ports.Server) {
			return nil
		}
		req, _ := http.NewRequest(http.MethodPost, "https://"+addr(c.ips[a], c.https)+"/v1/operator/raft/transfer-leader?id="+c.agents[a].NodeID(), nil)
		pool, _ := pki.Pool(c.ca.CertPEM)
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return fmt.Errorf("leader %s; transfer asked: %s", leader, resp.Status)
	})
	// The others drain: the client goes back to A.
	failed = writeThrough(c.client, func() {
		for i := 0; i < 3; i++ {
			if i != a {
				if err := c.agents[i].Drain(); err != nil {
					t.Errorf("drain: %v", err)
				}
			}
		}
	})
	if len(failed) > 0 {
		t.Errorf("%d writes through the client failed once it went back to the restarted server, first: %v", len(failed), failed[0])
	}
	if n, _ := established(c.ips[a], c.ports.Server, c.ips[3]); n == 0 {
		t.Errorf("the client did not go back to the restarted server")
	}
}

// BenchmarkWriteThroughClient: KV writes through a client agent of a
// 3-server TLS cluster, 8 at a time, with no idle RPC stream kept (the
// product) and with Consul's default (32 on a client).
//
//	go test ./executor/consulagent/ -run '^$' -bench WriteThroughClient -benchtime 3000x
func BenchmarkWriteThroughClient(b *testing.B) {
	for _, bc := range []struct {
		name    string
		streams int
	}{{"no-idle-stream", 0}, {"consul-default", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			defer func(v int) { rpcIdleStreams = v }(rpcIdleStreams)
			rpcIdleStreams = bc.streams
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			c := startDrainCluster(ctx, b, []string{"127.3.0.100", "127.3.0.101", "127.3.0.102", "127.3.0.103"})
			var next, failed atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := put(c.client, fmt.Sprintf("bench/%d", w), w); err != nil {
							failed.Add(1)
						}
					}
				}(w)
			}
			wg.Wait()
			b.StopTimer()
			if failed.Load() > 0 {
				b.Errorf("%d writes failed", failed.Load())
			}
		})
	}
}

// checkDraining: the draining server's own API refuses a write with 429;
// its raft configuration still reads, with it a voter; it presents the
// certificate it had and its key file is not left in the sandbox.
func checkDraining(ctx context.Context, t *testing.T, a *Agent, c *api.Client, serial, sandbox string) {
	t.Helper()
	err := put(c, "drain/own", 1)
	if err == nil || !strings.Contains(err.Error(), "429") {
		t.Errorf("a write to the draining server's own API: %v, want a 429", err)
	}
	rc, err := c.Operator().RaftGetConfiguration(nil)
	if err != nil {
		t.Errorf("raft configuration read on the draining server: %v", err)
	} else {
		for _, s := range rc.Servers {
			if s.ID == a.NodeID() && !s.Voter {
				t.Errorf("the draining server is not a voter: %+v", s)
			}
		}
	}
	if s, err := a.presentedSerial(ctx); err != nil || s != serial {
		t.Errorf("after the drain the server presents %s (%v), want %s", s, err, serial)
	}
	if _, err := os.Stat(tlsFiles(sandbox).Key); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the key file is still in the sandbox after the drain: %v", err)
	}
}

// writeThrough runs 8 writers through c for a second, then calls stop,
// then writes a second more; it returns the writes that failed.
func writeThrough(c *api.Client, stop func()) []error {
	var mu sync.Mutex
	var failed []error
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				if err := put(c, fmt.Sprintf("drain/%d", w), i); err != nil {
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
				}
			}
		}(w)
	}
	time.Sleep(time.Second)
	stop()
	time.Sleep(time.Second)
	close(done)
	wg.Wait()
	return failed
}

// clientLines counts the drain-client's log entries with message msg
// whose server field (printed: map[IP:... Port:... Zone:...]) contains
// server.
func clientLines(seen *observer.ObservedLogs, msg, server string) int {
	n := 0
	for _, e := range seen.FilterMessage(msg).All() {
		f := e.ContextMap()
		if f["consul_node"] == "drain-client" && strings.Contains(fmt.Sprint(f["server"]), server) {
			n++
		}
	}
	return n
}

// established counts the ESTABLISHED TCP connections (/proc/net/tcp) from
// peerIP to ip:port.
func established(ip string, port int, peerIP string) (int, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	local := procAddr(ip) + ":" + fmt.Sprintf("%04X", port)
	peer := procAddr(peerIP) + ":"
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 3 && fs[1] == local && strings.HasPrefix(fs[2], peer) && fs[3] == "01" {
			n++
		}
	}
	return n, sc.Err()
}

// shutdownSockets shuts down (both ways) every socket of this process
// accepted on ip:port, as the exit of the process holding them would.
func shutdownSockets(ip string, port int) error {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return err
	}
	local := procAddr(ip) + ":" + fmt.Sprintf("%04X", port)
	inodes := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		fs := strings.Fields(line)
		if len(fs) > 9 && fs[1] == local && fs[3] == "01" {
			inodes["socket:["+fs[9]+"]"] = true
		}
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, fd := range fds {
		target, err := os.Readlink("/proc/self/fd/" + fd.Name())
		if err != nil || !inodes[target] {
			continue
		}
		n, _ := strconv.Atoi(fd.Name())
		if err := syscall.Shutdown(n, syscall.SHUT_RDWR); err != nil {
			return fmt.Errorf("shutdown of fd %d: %w", n, err)
		}
	}
	return nil
}

// procAddr is an IPv4 address as /proc/net/tcp writes it (hex, little
// endian).
func procAddr(ip string) string {
	b := net.ParseIP(ip).To4()
	return strings.ToUpper(hex.EncodeToString([]byte{b[3], b[2], b[1], b[0]}))
}
