package realmesos

// Small helpers of the same shape as internal/dev's test helpers (they live
// in _test.go files there, so they cannot be imported).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/miekg/dns"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
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
// configuration: the agent at hostPort (with TLS, on by default, its HTTPS
// port instead, verified as consulTLS says), the service's ACL
// management token (read from the scheduler s once it works there: the
// scheduler bootstraps ACLs after the servers elect a leader), a timeout
// on every request.
func consulConfig(t *testing.T, s *Scheduler, hostPort string) *consul.Config {
	t.Helper()
	cfg := &consul.Config{Address: hostPort, HttpClient: &http.Client{Timeout: 10 * time.Second}}
	if tr := consulTLS(t, s); tr != nil {
		cfg.Address, cfg.Scheme = net.JoinHostPort(hostOf(hostPort), strconv.Itoa(config.DefaultHTTPSPort)), "https"
		cfg.HttpClient.Transport = tr
	}
	cfg.Token = managementToken(t, s, cfg)
	return cfg
}

// consulClient talks to the Consul agent on ip: on 8500 (the HTTP port the
// scheduler gives every task) with TLS off, over HTTPS on 8501 with TLS.
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
	tlsMu   sync.Mutex
	tlsTrs  = map[*Scheduler]*http.Transport{}
)

// consulTLS is how the tests reach s's Consul agents over HTTPS: nil with
// TLS off (the scheduler's GET /v1/tls/ca answers 404); else one
// keep-alive transport, shared by every configuration (one each kept its
// idle connections open until Consul's 200 connections per client address
// answered 429), verifying with the service's CA plus Consul's own CA
// roots, which sign the clients' auto_encrypt certificates, read from a
// server (GET /v1/connect/ca/roots, verified against the service's CA).
func consulTLS(t *testing.T, s *Scheduler) *http.Transport {
	t.Helper()
	tlsMu.Lock()
	defer tlsMu.Unlock()
	if tr, ok := tlsTrs[s]; ok {
		return tr
	}
	var tc *tls.Config
	eventually(t, 4*time.Minute, "the service's CA and Consul's CA roots", func() error {
		ca, code, err := s.get(context.Background(), "/v1/tls/ca")
		if err != nil {
			return err
		}
		if code == http.StatusNotFound {
			tc = nil // TLS off
			return nil
		}
		pool := x509.NewCertPool()
		if code != http.StatusOK || !pool.AppendCertsFromPEM(ca) {
			return fmt.Errorf("GET /v1/tls/ca: %d %q", code, ca)
		}
		var ep struct{ Servers []string }
		b, _, err := s.get(context.Background(), "/v1/endpoints/https")
		if err != nil || json.Unmarshal(b, &ep) != nil || len(ep.Servers) == 0 {
			return fmt.Errorf("no server listed at /v1/endpoints/https yet: %v %s", err, b)
		}
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{RootCAs: pool.Clone(), MinVersion: tls.VersionTLS12}}}
		var errs []string
		for _, a := range ep.Servers {
			resp, err := hc.Get("https://" + a + "/v1/connect/ca/roots")
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			var roots struct{ Roots []struct{ RootCert string } }
			err = json.NewDecoder(resp.Body).Decode(&roots)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || len(roots.Roots) == 0 {
				errs = append(errs, fmt.Sprintf("%s: %s %v", a, resp.Status, err))
				continue
			}
			for _, r := range roots.Roots {
				pool.AppendCertsFromPEM([]byte(r.RootCert))
			}
			tc = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
			return nil
		}
		return fmt.Errorf("Consul's CA roots: %s", strings.Join(errs, "; "))
	})
	var tr *http.Transport
	if tc != nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy, tr.TLSClientConfig = nil, tc
	}
	tlsTrs[s] = tr
	return tr
}

// managementToken is s's management token, once it reads itself at the
// agent at (or the agent runs without ACLs).
func managementToken(t *testing.T, s *Scheduler, at *consul.Config) string {
	t.Helper()
	tokenMu.Lock()
	defer tokenMu.Unlock()
	if tok, ok := tokens[s]; ok {
		return tok
	}
	var tok string
	eventually(t, 4*time.Minute, "the ACL management token works at "+at.Address, func() error {
		var err error
		if tok, err = s.ManagementToken(context.Background()); err != nil {
			return err
		}
		cfg := *at
		cfg.Token = tok
		cl, err := consul.NewClient(&cfg)
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
