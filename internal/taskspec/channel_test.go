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

func testCAPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestSecretsRefChannel(t *testing.T) {
	ca := testCAPEM(t)
	for name, tc := range map[string]struct {
		ref  SecretsRef
		want string // "" accepted
	}{
		"https with its CA":           {SecretsRef{URL: "https://10.0.0.1:9443", CACert: ca, Token: "t"}, ""},
		"older spec: http and no CA":  {SecretsRef{URL: "http://10.0.0.1:8080", Token: "t"}, ""},
		"https without a CA":          {SecretsRef{URL: "https://10.0.0.1:9443", Token: "t"}, "no CA certificate"},
		"https with a CA that is not": {SecretsRef{URL: "https://10.0.0.1:9443", CACert: "not pem", Token: "t"}, "not a PEM certificate"},
		"http with a CA":              {SecretsRef{URL: "http://10.0.0.1:8080", CACert: ca, Token: "t"}, "plain http"},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.ref.validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

// A spec written by a scheduler from before the TLS channel (no ca_cert,
// an http URL) still decodes: its running tasks keep working across the
// upgrade.
func TestDecodeOlderSpecWithPlainSecretsURL(t *testing.T) {
	old := `{"version":1,"role":"client","node_name":"x","datacenter":"dc1","data_dir":"d","gossip_encryption":true,` +
		`"secrets":{"url":"http://10.0.0.1:8080","token":"tok"},` +
		`"ports":{"server":1,"serf_lan":2,"serf_wan":3,"http":4,"https":-1,"grpc":-1,"dns":-1}}`
	s, err := Decode([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if s.Secrets == nil || s.Secrets.URL != "http://10.0.0.1:8080" || s.Secrets.CACert != "" {
		t.Fatalf("secrets = %+v", s.Secrets)
	}
}

func TestMessagesCarryTheChannelCA(t *testing.T) {
	ca := testCAPEM(t)
	data, err := EncodeTLSRenew("https://10.0.0.1:9443", ca)
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeTLSRenew(data)
	if err != nil || m.CACert != ca || m.SchedulerURL != "https://10.0.0.1:9443" {
		t.Fatalf("DecodeTLSRenew = %+v, %v", m, err)
	}
	data, err = EncodeSecretsCopyRequest("https://10.0.0.1:9443", ca, true)
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeSecretsCopyRequest(data)
	if err != nil || c.CACert != ca || !c.Refresh {
		t.Fatalf("DecodeSecretsCopyRequest = %+v, %v", c, err)
	}
	if _, err := EncodeTLSRenew("https://10.0.0.1:9443", ""); err == nil || !strings.Contains(err.Error(), "no CA certificate") {
		t.Fatalf("https without a CA: %v", err)
	}
	// A MESSAGE that names https but brings no CA is refused by the
	// executor (it would otherwise fall back to the system's roots).
	if _, err := DecodeTLSRenew([]byte(`{"version":1,"kind":"tls_renew","scheduler_url":"https://10.0.0.1:9443"}`)); err == nil {
		t.Fatal("an https TLS renewal MESSAGE without a CA was accepted")
	}
}
