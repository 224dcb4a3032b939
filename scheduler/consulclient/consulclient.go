// Package consulclient is how the scheduler reaches the Consul agents'
// HTTP API: over plain HTTP on the task's http port when TLS is off, over
// HTTPS on its https port, verified against the service's CA, when TLS is
// on (the task's ports say which: with TLS the http port is -1).
//
// The trusted CA is process-wide (SetCA, once the scheduler loaded its
// secrets): every caller, the snapshots, the keyring, the ACL bootstrap,
// the raft views and the UI proxy, then verifies the same way.
package consulclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
)

var (
	mu    sync.RWMutex
	roots *x509.CertPool
)

// SetCA makes certPEM the CA Consul's HTTPS certificates must verify
// against ("" forgets it).
func SetCA(certPEM string) error {
	var p *x509.CertPool
	if certPEM != "" {
		var err error
		if p, err = pki.Pool(certPEM); err != nil {
			return err
		}
	}
	mu.Lock()
	roots = p
	mu.Unlock()
	return nil
}

// ErrNoCA: an https address but no CA to verify it with.
var ErrNoCA = errors.New("consulclient: Consul's API is HTTPS but the scheduler has no CA to verify it with")

// Addr is the API address of an agent at ip with ports: "ip:http" when
// plain HTTP is on, "https://ip:https" when only HTTPS is; ok is false
// when neither is (or ip is unknown).
func Addr(ip string, p taskspec.Ports) (string, bool) {
	switch {
	case ip == "":
		return "", false
	case p.HTTP > 0:
		return net.JoinHostPort(ip, strconv.Itoa(p.HTTP)), true
	case p.HTTPS > 0:
		return "https://" + net.JoinHostPort(ip, strconv.Itoa(p.HTTPS)), true
	}
	return "", false
}

// Split returns the scheme and host:port of addr (an Addr).
func Split(addr string) (scheme, host string) {
	if h, ok := strings.CutPrefix(addr, "https://"); ok {
		return "https", h
	}
	return "http", strings.TrimPrefix(addr, "http://")
}

// URL is the base URL of addr: http://host:port or https://host:port.
func URL(addr string) string {
	s, h := Split(addr)
	return s + "://" + h
}

// TLSConfig verifies Consul's servers against the CA (nil when none is
// set). The servers' certificates name their IP address, which the
// scheduler dials.
func TLSConfig() *tls.Config {
	mu.RLock()
	defer mu.RUnlock()
	if roots == nil {
		return nil
	}
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// HTTPClient is an HTTP client for Consul's API with timeout, through no
// proxy, verifying HTTPS against the CA.
func HTTPClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{Proxy: nil, TLSClientConfig: TLSConfig(), DisableKeepAlives: true,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext, TLSHandshakeTimeout: 10 * time.Second}
	return &http.Client{Timeout: timeout, Transport: tr}
}

// New is a consul/api client for addr with token ("" for none).
func New(addr, token string, timeout time.Duration) (*consulapi.Client, error) {
	scheme, host := Split(addr)
	if scheme == "https" && TLSConfig() == nil {
		return nil, ErrNoCA
	}
	cfg := consulapi.DefaultNonPooledConfig()
	cfg.Address, cfg.Scheme, cfg.Token = host, scheme, token
	cfg.HttpClient = HTTPClient(timeout)
	return consulapi.NewClient(cfg)
}
