package consulagent

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/dcos-consul/dcos-consul/scheduler/pki"
)

func TestCheckServerCert(t *testing.T) {
	now := time.Now()
	ca, _ := pki.NewCA(nil, "test", now)
	other, _ := pki.NewCA(nil, "other", now)
	p, _ := ca.Parse(now)
	op, _ := other.Parse(now)
	good, _ := pki.IssueServer(p, pki.ServerRequest{Datacenter: "dc1", Hosts: []string{"127.0.0.1"}}, nil, now)
	foreign, _ := pki.IssueServer(op, pki.ServerRequest{Datacenter: "dc1", Hosts: []string{"127.0.0.1"}}, nil, now)
	if _, err := checkServerCert(ca.CertPEM, good.CertPEM, good.KeyPEM, now); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string][3]string{
		"key of another certificate": {ca.CertPEM, good.CertPEM, foreign.KeyPEM},
		"another CA":                 {ca.CertPEM, foreign.CertPEM, foreign.KeyPEM},
		"no CA":                      {"", good.CertPEM, good.KeyPEM},
	} {
		_, err := checkServerCert(c[0], c[1], c[2], now)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: the error shows the key: %v", name, err)
		}
	}
	if _, err := checkServerCert(ca.CertPEM, good.CertPEM, good.KeyPEM, now.Add(2*pki.ServerLifetime)); err == nil {
		t.Error("an expired certificate accepted")
	}
}

// TestTLSReloadInPlace: a running TLS server loads a new certificate
// without a restart; its HTTPS API presents it at once, a write works
// after it, the files are gone again, and a certificate from another CA
// is refused while the agent keeps presenting the one it has.
func TestTLSReloadInPlace(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real Consul server")
	}
	ips := []string{"127.3.0.84"}
	p := freePorts(t, ips, 4)
	ports := testPorts(p)
	now := time.Now()
	ca, _ := pki.NewCA(nil, "test", now)
	parsed, _ := ca.Parse(now)
	req := pki.ServerRequest{Datacenter: "dc1", Hosts: []string{ips[0]}}
	first, err := pki.IssueServer(parsed, req, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sbox := t.TempDir()
	a, err := Start(ctx, tlsSpec(serverSpec("tls-reload", 1, ports), p[3]),
		Env{BindIP: ips[0], Sandbox: sbox, TLSCACert: ca.CertPEM, TLSCert: first.CertPEM, TLSKey: first.KeyPEM}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	if err := a.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := a.presentedSerial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := pki.IssueServer(parsed, req, nil, time.Now())
	info, err := a.ReloadTLS(ctx, ca.CertPEM, second.CertPEM, second.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := a.presentedSerial(ctx)
	if after == before || after != info.Serial || info.NotAfter.IsZero() {
		t.Fatalf("serial before %s, after %s, reported %+v", before, after, info)
	}
	if _, err := os.Stat(tlsFiles(sbox).Key); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the key file is still in the sandbox: %v", err)
	}
	other, _ := pki.NewCA(nil, "other", now)
	op, _ := other.Parse(now)
	foreign, _ := pki.IssueServer(op, req, nil, time.Now())
	if _, err := a.ReloadTLS(ctx, ca.CertPEM, foreign.CertPEM, foreign.KeyPEM); err == nil {
		t.Error("a certificate of another CA was loaded")
	}
	if s, _ := a.presentedSerial(ctx); s != after {
		t.Errorf("after a refused reload the server presents %s, want %s", s, after)
	}
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Scheme = addr(ips[0], p[3]), "https"
	cfg.TLSConfig.CAPem = []byte(ca.CertPEM)
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, err = c.KV().Put(&api.KVPair{Key: "reload", Value: []byte("ok")}, nil)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatalf("KV write after the reload: %v", err)
	}
}
