package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func mustCA(t *testing.T) (CA, Parsed) {
	t.Helper()
	ca, err := NewCA(nil, "consul", t0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.Parse(t0)
	if err != nil {
		t.Fatal(err)
	}
	return ca, p
}

func TestNewCAIsAnECDSAP256CA(t *testing.T) {
	ca, p := mustCA(t)
	if !p.Cert.IsCA || p.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatalf("not a signing CA: %+v", p.Cert)
	}
	k, ok := p.Cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		t.Fatalf("CA key is %T, want ECDSA P-256", p.Cert.PublicKey)
	}
	if got := p.Cert.NotAfter.Sub(t0); got != CALifetime {
		t.Errorf("CA lifetime %s, want %s", got, CALifetime)
	}
	if !strings.Contains(ca.KeyPEM, "PRIVATE KEY") || strings.Contains(ca.String()+ca.GoString(), "PRIVATE") {
		t.Errorf("String shows the key or KeyPEM is not a key")
	}
	// Two CAs from crypto/rand differ.
	ca2, _ := NewCA(nil, "consul", t0)
	if ca2.KeyPEM == ca.KeyPEM || ca2.CertPEM == ca.CertPEM {
		t.Error("two CAs are the same")
	}
}

func TestIssueServerNamesAndVerifies(t *testing.T) {
	ca, p := mustCA(t)
	iss, err := IssueServer(p, ServerRequest{Datacenter: "dc1", Domain: "consul.", NodeName: "consul-server-0",
		Hosts: []string{"10.0.1.7", "agent-3.example.com", "10.0.1.7", "LOCALHOST"}}, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode([]byte(iss.CertPEM))
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	wantDNS := []string{"server.dc1.consul", "agent-3.example.com", "localhost"}
	if strings.Join(cert.DNSNames, ",") != strings.Join(wantDNS, ",") {
		t.Errorf("DNS SANs %v, want %v", cert.DNSNames, wantDNS)
	}
	var ips []string
	for _, ip := range cert.IPAddresses {
		ips = append(ips, ip.String())
	}
	if strings.Join(ips, ",") != "10.0.1.7,127.0.0.1" {
		t.Errorf("IP SANs %v", ips)
	}
	if got := cert.NotAfter.Sub(t0); got != ServerLifetime {
		t.Errorf("lifetime %s, want %s", got, ServerLifetime)
	}
	if !cert.NotBefore.Before(t0) {
		t.Errorf("not backdated: %s", cert.NotBefore)
	}
	pool, err := Pool(ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"server.dc1.consul", "10.0.1.7", "127.0.0.1", "localhost"} {
		for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
				t.Errorf("%s usage %v: %v", name, u, err)
			}
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "server.dc2.consul", CurrentTime: t0}); err == nil {
		t.Error("the certificate verifies for another datacenter")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: t0.Add(ServerLifetime + time.Hour)}); err == nil {
		t.Error("the certificate verifies after its expiry")
	}
	other, _ := NewCA(nil, "other", t0)
	op, _ := Pool(other.CertPEM)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: op, CurrentTime: t0}); err == nil {
		t.Error("the certificate verifies under another CA")
	}
	// The key is the certificate's.
	kb, _ := pem.Decode([]byte(iss.KeyPEM))
	k, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil || !k.PublicKey.Equal(cert.PublicKey) {
		t.Fatalf("the key does not match: %v", err)
	}
}

func TestIssueServerNeverOutlivesTheCA(t *testing.T) {
	_, p := mustCA(t)
	late := p.Cert.NotAfter.Add(-24 * time.Hour)
	iss, err := IssueServer(p, ServerRequest{Datacenter: "dc1"}, nil, late)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode([]byte(iss.CertPEM))
	cert, _ := x509.ParseCertificate(b.Bytes)
	if !cert.NotAfter.Equal(p.Cert.NotAfter) {
		t.Errorf("NotAfter %s, want the CA's %s", cert.NotAfter, p.Cert.NotAfter)
	}
	if _, err := IssueServer(p, ServerRequest{}, nil, t0); err == nil {
		t.Error("no datacenter accepted")
	}
}

func TestSANsDefaultDomain(t *testing.T) {
	dns, ips := SANs(ServerRequest{Datacenter: "east", Hosts: []string{"::1", " host-b ", "host-a"}})
	if strings.Join(dns, ",") != "server.east.consul,host-a,host-b,localhost" {
		t.Errorf("DNS %v", dns)
	}
	if len(ips) != 2 || !ips[0].Equal(net.ParseIP("127.0.0.1")) && !ips[1].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("IPs %v", ips)
	}
}

func TestParseRefusesWhatCannotSign(t *testing.T) {
	ca, p := mustCA(t)
	other, _ := NewCA(nil, "other", t0)
	leaf, _ := IssueServer(p, ServerRequest{Datacenter: "dc1"}, nil, t0)
	rsaLike, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	kb, _ := x509.MarshalPKCS8PrivateKey(rsaLike)
	pkcs8 := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}))
	for name, c := range map[string]struct {
		ca   CA
		at   time.Time
		want string
	}{
		"key of another CA": {CA{CertPEM: ca.CertPEM, KeyPEM: other.KeyPEM}, t0, "does not belong"},
		"other pkcs8 key":   {CA{CertPEM: ca.CertPEM, KeyPEM: pkcs8}, t0, "does not belong"},
		"a leaf":            {CA{CertPEM: leaf.CertPEM, KeyPEM: leaf.KeyPEM}, t0, "not a CA"},
		"no cert":           {CA{CertPEM: "hello", KeyPEM: ca.KeyPEM}, t0, "not a PEM CERTIFICATE"},
		"no key":            {CA{CertPEM: ca.CertPEM, KeyPEM: "x"}, t0, "not a PEM block"},
		"expired":           {ca, t0.Add(CALifetime + time.Hour), "not valid now"},
	} {
		_, err := c.ca.Parse(c.at)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "PRIVATE KEY-----") {
			t.Errorf("%s: the error quotes a key", name)
		}
	}
	// A PKCS#8 encoding of the CA's own key is accepted.
	kb2, _ := x509.MarshalPKCS8PrivateKey(p.Key)
	if _, err := (CA{CertPEM: ca.CertPEM, KeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb2}))}).Parse(t0); err != nil {
		t.Errorf("PKCS#8 CA key: %v", err)
	}
}

func TestRenewalDueAfterTwoThirds(t *testing.T) {
	nb := t0
	na := t0.Add(300 * 24 * time.Hour)
	if RenewalDue(nb, na, t0.Add(199*24*time.Hour)) {
		t.Error("due with more than a third left")
	}
	if !RenewalDue(nb, na, t0.Add(201*24*time.Hour)) || !RenewalDue(nb, na, na.Add(time.Hour)) {
		t.Error("not due with less than a third left, or expired")
	}
	_, p := mustCA(t)
	iss, _ := IssueServer(p, ServerRequest{Datacenter: "dc1", Lifetime: 3 * time.Minute}, nil, t0)
	b, _ := pem.Decode([]byte(iss.CertPEM))
	cert, _ := x509.ParseCertificate(b.Bytes)
	if cert.NotAfter.Sub(t0) != 3*time.Minute || t0.Sub(cert.NotBefore) != 9*time.Second {
		t.Errorf("a 3-minute certificate: %s to %s", cert.NotBefore, cert.NotAfter)
	}
}
