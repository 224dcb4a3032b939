package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/pki"
)

func TestTLSOnServesHTTPSOnItsDefaultPort(t *testing.T) {
	for _, e := range []map[string]string{nil, {EnvTLS: "true"}, {EnvTLS: "true", EnvPortHTTPS: "-1"}} {
		c, err := Load(env(e))
		if err != nil {
			t.Fatal(err)
		}
		if !c.TLS || c.Ports.HTTPS != DefaultHTTPSPort {
			t.Fatalf("%v: TLS %v, HTTPS port %d, want on by default, on %d", e, c.TLS, c.Ports.HTTPS, DefaultHTTPSPort)
		}
	}
	c, err := Load(env(map[string]string{EnvTLS: "false"}))
	if err != nil || c.TLS || c.Ports.HTTPS != -1 {
		t.Fatalf("TLS switched off: %v, TLS %v, HTTPS port %d", err, c.TLS, c.Ports.HTTPS)
	}
	_, err = Load(env(map[string]string{EnvTLS: "false", EnvPortHTTPS: "8501"}))
	if err == nil || !strings.Contains(err.Error(), EnvPortHTTPS) || !strings.Contains(err.Error(), "needs TLS") {
		t.Fatalf("an HTTPS port without TLS: %v, want refused naming %s", err, EnvPortHTTPS)
	}
	c, err = Load(env(map[string]string{EnvTLS: "true", EnvPortHTTPS: "9443"}))
	if err != nil || c.Ports.HTTPS != 9443 {
		t.Fatalf("%v %d", err, c.Ports.HTTPS)
	}
}

// gRPC is served over TLS on its own port with TLS (Consul's 8503 unless
// set), and that port is refused without TLS; plaintext gRPC stays as set.
func TestTLSOnServesGRPCOverTLS(t *testing.T) {
	c, err := Load(env(map[string]string{EnvTLS: "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Ports.GRPCTLS != DefaultGRPCTLSPort || c.Ports.GRPC != -1 {
		t.Fatalf("gRPC TLS port %d, plaintext gRPC %d", c.Ports.GRPCTLS, c.Ports.GRPC)
	}
	if !hasPort(c.Ports.List(), DefaultGRPCTLSPort) {
		t.Errorf("ports %v miss the gRPC TLS port", c.Ports.List())
	}
	c, err = Load(env(map[string]string{EnvTLS: "true", EnvPortGRPCTLS: "9503"}))
	if err != nil || c.Ports.GRPCTLS != 9503 {
		t.Fatalf("%v %d", err, c.Ports.GRPCTLS)
	}
	if c, err := Load(env(map[string]string{EnvTLS: "false"})); err != nil || c.Ports.GRPCTLS != -1 {
		t.Fatalf("without TLS: %v, gRPC TLS port %d", err, c.Ports.GRPCTLS)
	}
	_, err = Load(env(map[string]string{EnvTLS: "false", EnvPortGRPCTLS: "8503"}))
	if err == nil || !strings.Contains(err.Error(), EnvPortGRPCTLS) || !strings.Contains(err.Error(), "needs TLS") {
		t.Fatalf("a gRPC TLS port without TLS: %v", err)
	}
	_, err = Load(env(map[string]string{EnvTLS: "true", EnvPortGRPCTLS: "8501"}))
	if err == nil || !strings.Contains(err.Error(), "already uses it") {
		t.Fatalf("the gRPC TLS port on the HTTPS port: %v", err)
	}
}

func hasPort(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func TestUserCAIsCheckedAtLoad(t *testing.T) {
	dir := t.TempDir()
	ca, _ := pki.NewCA(nil, "user", time.Now())
	other, _ := pki.NewCA(nil, "other", time.Now())
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert, key, wrong := write("ca.pem", ca.CertPEM), write("ca-key.pem", ca.KeyPEM), write("other-key.pem", other.KeyPEM)
	c, err := Load(env(map[string]string{EnvTLS: "true", EnvTLSCACertFile: cert, EnvTLSCAKeyFile: key}))
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.UserCA()
	if err != nil || !ok || got.CertPEM != ca.CertPEM {
		t.Fatalf("UserCA: %v %v", ok, err)
	}
	_, err = Load(env(map[string]string{EnvTLS: "true", EnvTLSCACertFile: cert, EnvTLSCAKeyFile: wrong}))
	if err == nil || !strings.Contains(err.Error(), "security.tls.ca_key_file") || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("a key of another CA: %v", err)
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Fatal("the error quotes the key")
	}
	_, err = Load(env(map[string]string{EnvTLS: "true", EnvTLSCAKeyFile: key}))
	if err == nil || !strings.Contains(err.Error(), EnvTLSCACertFile) {
		t.Fatalf("a key without a certificate: %v", err)
	}
}
