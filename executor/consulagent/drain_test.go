package consulagent

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
)

// TestDrainBeforeStop: in a real 3-server cluster with TLS and a client,
// the server the client sends its RPCs to (found from the server's
// established TCP connections; leadership is moved off it first, as the
// scheduler does before a restart) is drained: its own HTTPS API refuses
// a write with 429, nothing applied; the scheduler's reads (raft
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
	ips := []string{"127.3.0.90", "127.3.0.91", "127.3.0.92", "127.3.0.93"}
	p := freePorts(t, ips, 4)
	ports := testPorts(p)
	now := time.Now()
	ca, err := pki.NewCA(nil, "test", now)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := ca.Parse(now)
	obs, seen := observer.New(zapcore.WarnLevel)
	log := zap.New(zapcore.NewTee(testLogger(t).Core(), obs))
	agents := make([]*Agent, 4)
	t.Cleanup(func() {
		for _, a := range agents {
			if a != nil {
				a.Stop()
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sandboxes := make([]string, 4)
	for i := 0; i < 3; i++ {
		cert, err := pki.IssueServer(parsed, pki.ServerRequest{Datacenter: "dc1", Hosts: []string{ips[i]}}, nil, now)
		if err != nil {
			t.Fatal(err)
		}
		spec := tlsSpec(serverSpec(fmt.Sprintf("drain-server-%d", i), 3, ports), p[3])
		spec.JoinAddrs = []string{addr(ips[0], ports.SerfLAN)}
		sandboxes[i] = t.TempDir()
		if agents[i], err = Start(ctx, spec, Env{BindIP: ips[i], Sandbox: sandboxes[i], TLSCACert: ca.CertPEM, TLSCert: cert.CertPEM, TLSKey: cert.KeyPEM}, log); err != nil {
			t.Fatal(err)
		}
	}
	cl := tlsSpec(taskspec.Spec{Version: taskspec.Version, Role: taskspec.RoleClient, NodeName: "drain-client", Datacenter: "dc1",
		Ports: ports, DataDir: "consul-data", JoinAddrs: []string{addr(ips[0], ports.SerfLAN)}, LogLevel: "INFO"}, p[3])
	if agents[3], err = Start(ctx, cl, Env{BindIP: ips[3], Sandbox: t.TempDir(), TLSCACert: ca.CertPEM}, log); err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		if err := a.Ready(ctx); err != nil {
			t.Fatalf("%s not ready: %v", a.spec.NodeName, err)
		}
	}
	servers := make([]*api.Client, 3)
	for i := range servers {
		cfg := api.DefaultConfig()
		cfg.Address, cfg.Scheme = addr(ips[i], p[3]), "https"
		cfg.TLSConfig.CAPem = []byte(ca.CertPEM)
		if servers[i], err = api.NewClient(cfg); err != nil {
			t.Fatal(err)
		}
	}
	ccfg := api.DefaultConfig()
	ccfg.Address, ccfg.Scheme = addr(ips[3], p[3]), "https"
	ccfg.TLSConfig.InsecureSkipVerify = true // the client's HTTPS certificate is from Consul's own CA
	client, err := api.NewClient(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	put := func(c *api.Client, v int) error {
		_, err := c.KV().Put(&api.KVPair{Key: "drain", Value: []byte(strconv.Itoa(v))}, nil)
		return err
	}
	eventually(t, 2*time.Minute, "a write through the client", func() error { return put(client, 0) })

	// The server the client uses, not the leader.
	var victim int
	eventually(t, time.Minute, "the client's server found, and not the leader", func() error {
		if err := put(client, 0); err != nil {
			return err
		}
		victim = -1
		for i := 0; i < 3; i++ {
			if n, err := established(ips[i], ports.Server, ips[3]); err != nil {
				return err
			} else if n > 0 {
				victim = i
			}
		}
		if victim < 0 {
			return errors.New("no RPC connection from the client to a server")
		}
		leader, err := servers[victim].Status().Leader()
		if err != nil {
			return err
		}
		if leader == addr(ips[victim], ports.Server) {
			if _, err := servers[victim].Operator().RaftLeaderTransfer(nil); err != nil {
				return fmt.Errorf("transfer leadership off the client's server: %w", err)
			}
			return errors.New("the client's server was the leader; leadership transferred")
		}
		return nil
	})
	serialBefore, err := agents[victim].presentedSerial(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Writers busy through the client from before the drain until after
	// the stop.
	failed := writeThrough(client, func() {
		if err := agents[victim].Drain(); err != nil {
			t.Errorf("drain: %v", err)
			return
		}
		checkDraining(ctx, t, agents[victim], servers[victim], serialBefore, sandboxes[victim])
		time.Sleep(time.Second)
		agents[victim].Stop()
	})
	if len(failed) > 0 {
		t.Errorf("%d writes through the client failed while its server drained and stopped, first: %v", len(failed), failed[0])
	}
	if n := clientLines(seen, "Retrying RPC to server", "IP:"+ips[victim]+" "); n == 0 {
		t.Errorf("the client never retried a request the draining server %s refused: the test did not drain the client's server", ips[victim])
	}
	if n := clientLines(seen, "RPC failed to server", ""); n > 0 {
		t.Errorf("the client logged %d failed RPCs", n)
	}
}

// checkDraining: the draining server's own API refuses a write with 429;
// its raft configuration still reads, with it a voter; it presents the
// certificate it had and its key file is not left in the sandbox.
func checkDraining(ctx context.Context, t *testing.T, a *Agent, c *api.Client, serial, sandbox string) {
	t.Helper()
	_, err := c.KV().Put(&api.KVPair{Key: "drain/own", Value: []byte("x")}, nil)
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
				key := fmt.Sprintf("drain/%d", w)
				if _, err := c.KV().Put(&api.KVPair{Key: key, Value: []byte(strconv.Itoa(i))}, nil); err != nil {
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

// procAddr is an IPv4 address as /proc/net/tcp writes it (hex, little
// endian).
func procAddr(ip string) string {
	b := net.ParseIP(ip).To4()
	return strings.ToUpper(hex.EncodeToString([]byte{b[3], b[2], b[1], b[0]}))
}
