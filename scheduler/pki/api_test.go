package pki

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

func TestIssueAPINamesTheHostAndServesOnly(t *testing.T) {
	ca, p := mustCA(t)
	pool, _ := Pool(ca.CertPEM)
	for _, host := range []string{"10.0.1.7", "Sched-Host.example.com."} {
		iss, err := IssueAPI(p, []string{host}, 0, nil, t0)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode([]byte(iss.CertPEM))
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.ToLower(strings.TrimSuffix(host, "."))
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
		// Not a Consul server's certificate, nor a client's.
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "server.dc1.consul", CurrentTime: t0}); err == nil {
			t.Errorf("%s: verifies as a Consul server", host)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
			t.Errorf("%s: usable as a client certificate", host)
		}
		if got := cert.NotAfter.Sub(t0); got != APILifetime {
			t.Errorf("lifetime %s, want %s", got, APILifetime)
		}
	}
	if _, err := IssueAPI(p, []string{" "}, 0, nil, t0); err == nil {
		t.Error("a certificate for no host was issued")
	}
	short, _ := IssueAPI(p, []string{"h"}, CALifetime*2, nil, t0)
	b, _ := pem.Decode([]byte(short.CertPEM))
	cert, _ := x509.ParseCertificate(b.Bytes)
	if cert.NotAfter.After(p.Cert.NotAfter) {
		t.Errorf("outlives the CA: %s > %s", cert.NotAfter, p.Cert.NotAfter)
	}
}
