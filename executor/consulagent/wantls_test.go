package consulagent

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dcos-consul/dcos-consul/scheduler/pki"
)

// TestWANFederationTLS: two one-server datacenters with TLS (RPC
// verify_incoming, verify_outgoing, verify_server_hostname), federated
// over serf WAN. With certificates from one CA (every install given the
// same security.tls.ca_cert_file/ca_key_file) a request sent to dc1 for
// dc2 is forwarded over WAN RPC and answered; with each datacenter's own
// CA (the default: each install generates one) the WAN pool still forms
// (gossip is not TLS) but the forwarded request fails, and still fails
// when only dc2 trusts dc1's CA (dc1 does not verify dc2's server);
// with a CA each and each server trusting the other's CA
// (spec.TLSTrustedCAs, security.tls.trusted_ca_certs) it is answered.
// In the first case dc2's server, which joins the WAN pool, also joins it
// once more (reannounceAfter).
func TestWANFederationTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("forms two real Consul datacenters")
	}
	now := time.Now()
	newCA := func() pki.CA {
		ca, err := pki.NewCA(nil, "test", now)
		if err != nil {
			t.Fatal(err)
		}
		return ca
	}
	shared := newCA()
	dc2Own := newCA()
	for _, tc := range []struct {
		name     string
		dc2CA    pki.CA
		ips      [2]string
		dc1Trust string // CAs dc1's server trusts besides its own
		dc2Trust string
		forwards bool
	}{
		{"one CA", shared, [2]string{"127.3.0.90", "127.3.0.91"}, "", "", true},
		{"a CA each", newCA(), [2]string{"127.3.0.92", "127.3.0.93"}, "", "", false},
		{"a CA each, only dc2 trusting dc1's", dc2Own, [2]string{"127.3.0.96", "127.3.0.97"}, "", shared.CertPEM, false},
		{"a CA each, each trusting the other", dc2Own, [2]string{"127.3.0.94", "127.3.0.95"}, dc2Own.CertPEM, shared.CertPEM, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip1, ip2 := tc.ips[0], tc.ips[1]
			p := freePorts(t, []string{ip1, ip2}, 5)
			ports := testPorts(p)
			ports.SerfWAN = p[4]
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			obs, logs := observer.New(zap.InfoLevel)
			start := func(ip, dc string, ca pki.CA, trust string, wan []string) {
				parsed, err := ca.Parse(now)
				if err != nil {
					t.Fatal(err)
				}
				cert, err := pki.IssueServer(parsed, pki.ServerRequest{Datacenter: dc, Hosts: []string{ip}}, nil, now)
				if err != nil {
					t.Fatal(err)
				}
				spec := tlsSpec(serverSpec("server-"+dc, 1, ports), p[3])
				spec.Datacenter, spec.WANJoin, spec.TLSTrustedCAs = dc, wan, trust
				if err := spec.Validate(); err != nil {
					t.Fatal(err)
				}
				log := zap.New(zapcore.NewTee(testLogger(t).Core(), obs))
				a, err := Start(ctx, spec, Env{BindIP: ip, Sandbox: t.TempDir(), TLSCACert: ca.CertPEM, TLSCert: cert.CertPEM, TLSKey: cert.KeyPEM}, log)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(a.Stop)
				if err := a.Ready(ctx); err != nil {
					t.Fatal(err)
				}
			}
			start(ip1, "dc1", shared, tc.dc1Trust, nil)
			start(ip2, "dc2", tc.dc2CA, tc.dc2Trust, []string{addr(ip1, ports.SerfWAN)})

			pool, _ := pki.Pool(shared.CertPEM)
			cfg := api.DefaultConfig()
			cfg.Address, cfg.Scheme = addr(ip1, p[3]), "https"
			cfg.Transport.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: "server.dc1.consul"}
			dc1, err := api.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			// The WAN pool forms either way.
			deadline := time.Now().Add(2 * time.Minute)
			for {
				dcs, err := dc1.Catalog().Datacenters()
				if err == nil && strings.Join(dcs, ",") != "dc1" && len(dcs) == 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("datacenters seen from dc1: %v %v", dcs, err)
				}
				time.Sleep(time.Second)
			}
			var werr error
			deadline = time.Now().Add(time.Minute)
			for {
				_, werr = dc1.KV().Put(&api.KVPair{Key: "x", Value: []byte("v")}, &api.WriteOptions{Datacenter: "dc2"})
				// Refused: it must be for the certificate, not because dc2
				// is not ready yet (then try again).
				refused := werr != nil && strings.Contains(werr.Error(), "certificate")
				if werr == nil || (!tc.forwards && refused) || time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Second)
			}
			if tc.forwards && werr != nil {
				t.Fatalf("a write sent to dc1 for dc2 (%s): %v", tc.name, werr)
			}
			if !tc.forwards {
				if werr == nil {
					t.Fatalf("a write sent to dc1 for dc2 succeeded (%s)", tc.name)
				}
				if !strings.Contains(werr.Error(), "certificate") {
					t.Fatalf("a write sent to dc1 for dc2 (%s) failed, but not for the certificate: %v", tc.name, werr)
				}
				t.Logf("%s, as expected: %v", tc.name, werr)
			}
			if tc.name != "one CA" {
				return
			}
			eventually(t, reannounceAfter+time.Minute, "the repeated WAN join", func() error {
				if n := logs.FilterMessageSnippet("joined the WAN pool once more").Len(); n != 1 {
					return fmt.Errorf("%d servers joined the WAN pool once more (want dc2's)", n)
				}
				return nil
			})
		})
	}
}
