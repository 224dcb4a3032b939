package taskspec

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func testCert(t *testing.T, cn string, isCA bool) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		BasicConstraintsValid: true, IsCA: isCA}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestTrustedCAsInTheSpec(t *testing.T) {
	dc2, dc3 := testCert(t, "dc2 CA", true), testCert(t, "dc3 CA", true)
	canon, certs, err := ParseTrustedCAs("\n" + dc2 + "\r\n" + dc3 + dc2)
	if err != nil || len(certs) != 2 || canon != dc2+dc3 {
		t.Fatalf("%v, %d certificates, canonical:\n%s", err, len(certs), canon)
	}
	s := validSpec()
	s.Version = Version
	s.TLS, s.Ports.HTTPS, s.Secrets = true, 8501, &SecretsRef{URL: "http://127.0.0.1:1", Token: "t"}
	s.TLSTrustedCAs = canon
	data, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Decode(data); err != nil || got.TLSTrustedCAs != canon {
		t.Fatalf("round trip: %v %q", err, got.TLSTrustedCAs)
	}
	for name, tc := range map[string]struct {
		edit func(*Spec)
		want string
	}{
		"client":        {func(s *Spec) { s.Role, s.BootstrapExpect = RoleClient, 0 }, "for servers with tls"},
		"without TLS":   {func(s *Spec) { s.TLS, s.Ports.HTTPS = false, -1 }, "for servers with tls"},
		"not a CA":      {func(s *Spec) { s.TLSTrustedCAs = testCert(t, "server", false) }, "not a CA certificate"},
		"not PEM":       {func(s *Spec) { s.TLSTrustedCAs = "ca" }, "no PEM certificate"},
		"trailing junk": {func(s *Spec) { s.TLSTrustedCAs = dc2 + "junk" }, "text after certificate 1"},
		"a key": {func(s *Spec) {
			s.TLSTrustedCAs = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}))
		}, "want only CERTIFICATE blocks"},
	} {
		bad := s
		tc.edit(&bad)
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "tls_trusted_cas") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
