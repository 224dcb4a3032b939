package realmesos

// Small helpers of the same shape as internal/dev's test helpers (they live
// in _test.go files there, so they cannot be imported).

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/miekg/dns"
)

// eventually retries f every half second until it returns nil or the
// timeout passes; then it fails the test with f's last error. Every 30 s
// it logs what it still waits on.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	start := time.Now()
	deadline, report := start.Add(timeout), start.Add(30*time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		// A slow wait says what it waits on (the timings in the docs
		// come from these logs).
		if time.Now().After(report) {
			t.Logf("still waiting for %s after %s: %v", what, time.Since(start).Round(time.Second), err)
			report = time.Now().Add(30 * time.Second)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// consulConfig is the one place these tests build a Consul API
// configuration: the agent at hostPort, the service's ACL management token
// (read from the scheduler s once it works there: the scheduler
// bootstraps ACLs after the servers elect a leader), a timeout on every
// request.
func consulConfig(t *testing.T, s *Scheduler, hostPort string) *consul.Config {
	t.Helper()
	return &consul.Config{Address: hostPort, Token: managementToken(t, s, hostPort),
		HttpClient: &http.Client{Timeout: 10 * time.Second}}
}

// consulClient talks to the Consul agent on ip:8500 (the HTTP port the
// scheduler gives every task).
func consulClient(t *testing.T, s *Scheduler, ip string) *consul.Client {
	t.Helper()
	c, err := consul.NewClient(consulConfig(t, s, net.JoinHostPort(ip, "8500")))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	tokenMu sync.Mutex
	tokens  = map[*Scheduler]string{}
)

// managementToken is s's management token, once it reads itself at
// hostPort (or the agent runs without ACLs).
func managementToken(t *testing.T, s *Scheduler, hostPort string) string {
	t.Helper()
	tokenMu.Lock()
	defer tokenMu.Unlock()
	if tok, ok := tokens[s]; ok {
		return tok
	}
	var tok string
	eventually(t, 4*time.Minute, "the ACL management token works at "+hostPort, func() error {
		var err error
		if tok, err = s.ManagementToken(context.Background()); err != nil {
			return err
		}
		cl, err := consul.NewClient(&consul.Config{Address: hostPort, Token: tok, HttpClient: &http.Client{Timeout: 10 * time.Second}})
		if err != nil {
			return err
		}
		if _, _, err = cl.ACL().TokenReadSelf(nil); err != nil && !strings.Contains(err.Error(), "ACL support disabled") {
			return err
		}
		return nil
	})
	tokens[s] = tok
	return tok
}

// raftPeers returns the raft configuration as node name → server.
func raftPeers(c *consul.Client) (map[string]*consul.RaftServer, error) {
	cfg, err := c.Operator().RaftGetConfiguration(nil)
	if err != nil {
		return nil, err
	}
	out := map[string]*consul.RaftServer{}
	for _, s := range cfg.Servers {
		out[s.Node] = s
	}
	return out, nil
}

func resolveA(server, name string) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	cl := &dns.Client{Timeout: 3 * time.Second}
	r, _, err := cl.Exchange(m, server)
	if err != nil {
		return nil, err
	}
	var ips []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
		}
	}
	return ips, nil
}

// memberAlive is serf's StatusAlive (1); 3 is left, 4 failed.
const memberAlive = 1

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
