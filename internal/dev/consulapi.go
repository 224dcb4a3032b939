package dev

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/secrets"
)

// envValue is the value dev gives the scheduler for key ("" if none).
func (c *Cluster) envValue(key string) string {
	v := ""
	for _, kv := range c.opts.ExtraEnv {
		if x, ok := strings.CutPrefix(kv, key+"="); ok {
			v = strings.TrimSpace(x)
		}
	}
	return v
}

// ConsulTLS reports whether this dev cluster's Consul runs with TLS: as
// dev told the scheduler (--env, an option update), else the default (on).
func (c *Cluster) ConsulTLS() bool {
	on, err := strconv.ParseBool(c.envValue(config.EnvTLS))
	if err != nil {
		return config.Defaults().TLS
	}
	return on
}

// consulHTTPSPort is the Consul HTTPS port with TLS.
func (c *Cluster) consulHTTPSPort() int {
	if p, err := strconv.Atoi(c.envValue(config.EnvPortHTTPS)); err == nil && p > 0 {
		return p
	}
	return config.DefaultHTTPSPort
}

// FetchCA reads the CA certificate from the scheduler's API (GET
// /v1/tls/ca, public).
func (c *Cluster) FetchCA(ctx context.Context) (string, error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, c.SchedulerURL+secrets.CAPath, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", secrets.CAPath, resp.Status)
	}
	return string(b), nil
}

// ConsulConfig is how a caller reaches the Consul agent at ip on this dev
// cluster, with token ("" for none): plain HTTP on the HTTP port, or with
// TLS, HTTPS on the HTTPS port verified against the service's CA (from
// the scheduler's API) and, when a server answers for them, Consul's own
// CA roots, which sign the clients' auto_encrypt certificates. Without
// those roots only servers verify (enough to wait for a leader); see
// ConsulConfigAll.
func (c *Cluster) ConsulConfig(ctx context.Context, ip, token string) (*consul.Config, error) {
	cfg, _, err := c.consulConfig(ctx, ip, token)
	return cfg, err
}

// ConsulConfigAll is ConsulConfig for any agent, clients included: with
// TLS it waits, until ctx ends, for Consul's CA roots (a configuration
// built without them would fail every call to a client agent for good).
func (c *Cluster) ConsulConfigAll(ctx context.Context, ip, token string) (*consul.Config, error) {
	for {
		cfg, roots, err := c.consulConfig(ctx, ip, token)
		if err == nil && (roots || !c.ConsulTLS()) {
			return cfg, nil
		}
		if err == nil {
			err = errors.New("no server answered GET /v1/connect/ca/roots over HTTPS verified by the service's CA")
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("Consul's CA roots, which sign the clients' HTTPS certificates: %w (%v)", ctx.Err(), err)
		case <-time.After(time.Second):
		}
	}
}

// consulConfig is ConsulConfig, and whether Consul's CA roots are in its
// TLS roots.
func (c *Cluster) consulConfig(ctx context.Context, ip, token string) (*consul.Config, bool, error) {
	cfg := consul.DefaultNonPooledConfig()
	cfg.Token = token
	if !c.ConsulTLS() {
		cfg.Address, cfg.Scheme = net.JoinHostPort(ip, strconv.Itoa(c.consulHTTPPort())), "http"
		return cfg, false, nil
	}
	pool, pems, roots, err := c.consulRoots(ctx)
	if err != nil {
		return nil, false, err
	}
	cfg.Address, cfg.Scheme = net.JoinHostPort(ip, strconv.Itoa(c.consulHTTPSPort())), "https"
	cfg.HttpClient = &http.Client{Timeout: 30 * time.Second, Transport: c.transports.get(pems, pool)}
	return cfg, roots, nil
}

// transportCache holds one keep-alive HTTPS transport per set of TLS
// roots, shared by every configuration built with those roots. A
// transport per configuration (callers build one per poll) kept its idle
// connections open for good, and Consul, which allows 200 HTTP
// connections per client address (limits.http_max_conns_per_client),
// then answered 429 to every call from this process.
type transportCache struct {
	mu     sync.Mutex
	byPEMs map[string]*http.Transport
}

// get is the transport verifying with pool, whose certificates are pems.
func (tc *transportCache) get(pems string, pool *x509.CertPool) *http.Transport {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tr, ok := tc.byPEMs[pems]; ok {
		return tr
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if tc.byPEMs == nil {
		tc.byPEMs = map[string]*http.Transport{}
	}
	tc.byPEMs[pems] = tr
	return tr
}

// consulRoots: the service's CA, plus Consul's own CA roots (roots true)
// when a server answers for them over HTTPS verified by the service's CA;
// ?stale lets a server answer from its own state while there is no leader.
// pems is the pool's certificates as PEM, in the order read.
func (c *Cluster) consulRoots(ctx context.Context) (pool *x509.CertPool, pems string, roots bool, err error) {
	ca, err := c.FetchCA(ctx)
	if err != nil {
		return nil, "", false, fmt.Errorf("the service's CA: %w", err)
	}
	pool = x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(ca)) {
		return nil, "", false, errors.New("the scheduler's /v1/tls/ca is not a PEM certificate")
	}
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{RootCAs: pool.Clone(), MinVersion: tls.VersionTLS12}}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	port := strconv.Itoa(c.consulHTTPSPort())
	for _, a := range c.Sim.Agents() {
		resp, err := hc.Get("https://" + net.JoinHostPort(a.IP, port) + "/v1/connect/ca/roots?stale")
		if err != nil {
			continue
		}
		var roots struct{ Roots []struct{ RootCert string } }
		err = json.NewDecoder(resp.Body).Decode(&roots)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(roots.Roots) == 0 {
			continue
		}
		pems := ca
		for _, r := range c.seenRoots.add(roots.Roots) {
			pool.AppendCertsFromPEM([]byte(r))
			pems += "\n" + r
		}
		return pool, pems, true, nil
	}
	return pool, ca, false, nil
}

// seenRoots is every Consul CA root certificate a Cluster has read, in
// the order first read. The HTTPS configurations trust all of them: a
// restore of another install's snapshot replaces Consul's CA, and the
// client agents keep presenting their certificate of the replaced CA
// (docs/operations.md, section 5), as a caller that keeps the roots it
// trusted would see them.
type seenRoots struct {
	mu   sync.Mutex
	pems []string
}

// add records roots and returns every root seen.
func (s *seenRoots) add(roots []struct{ RootCert string }) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range roots {
		if !slices.Contains(s.pems, r.RootCert) {
			s.pems = append(s.pems, r.RootCert)
		}
	}
	return slices.Clone(s.pems)
}
