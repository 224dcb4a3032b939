package consulagent

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/dcos-consul/dcos-consul/scheduler/pki"
)

// TestWANFederationTLS: two one-server datacenters with TLS (RPC
// verify_incoming, verify_outgoing, verify_server_hostname), federated
// over serf WAN. With certificates from one CA (every install given the
// same security.tls.ca_cert_file/ca_key_file) a request sent to dc1 for
// dc2 is forwarded over WAN RPC and answered; with each datacenter's own
// CA (the default: each install generates one) the WAN pool still forms
// (gossip is not TLS) but the forwarded request fails: TLS between
// datacenters needs the shared CA.
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
	for _, tc := range []struct {
		name     string
		dc2CA    pki.CA
		forwards bool
	}{
		{"one CA", shared, true},
		{"a CA each", newCA(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ip1, ip2 := "127.3.0.90", "127.3.0.91"
			if !tc.forwards {
				ip1, ip2 = "127.3.0.92", "127.3.0.93"
			}
			p := freePorts(t, []string{ip1, ip2}, 5)
			ports := testPorts(p)
			ports.SerfWAN = p[4]
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			start := func(ip, dc string, ca pki.CA, wan []string) {
				parsed, err := ca.Parse(now)
				if err != nil {
					t.Fatal(err)
				}
				cert, err := pki.IssueServer(parsed, pki.ServerRequest{Datacenter: dc, Hosts: []string{ip}}, nil, now)
				if err != nil {
					t.Fatal(err)
				}
				spec := tlsSpec(serverSpec("server-"+dc, 1, ports), p[3])
				spec.Datacenter, spec.WANJoin = dc, wan
				a, err := Start(ctx, spec, Env{BindIP: ip, Sandbox: t.TempDir(), TLSCACert: ca.CertPEM, TLSCert: cert.CertPEM, TLSKey: cert.KeyPEM}, testLogger(t))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(a.Stop)
				if err := a.Ready(ctx); err != nil {
					t.Fatal(err)
				}
			}
			start(ip1, "dc1", shared, nil)
			start(ip2, "dc2", tc.dc2CA, []string{addr(ip1, ports.SerfWAN)})

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
				if werr == nil || !tc.forwards || time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Second)
			}
			if tc.forwards && werr != nil {
				t.Fatalf("a write sent to dc1 for dc2 with one CA: %v", werr)
			}
			if !tc.forwards {
				if werr == nil {
					t.Fatal("a write sent to dc1 for dc2 succeeded although dc2's certificate is from another CA")
				}
				t.Logf("with a CA each, as expected: %v", werr)
			}
		})
	}
}
