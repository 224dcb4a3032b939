package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"crypto/rand"
)

// APILifetime is the lifetime of the certificate of the scheduler's
// executor channel; the scheduler reissues it in memory when RenewalDue
// says so (it is never stored).
const APILifetime = 30 * 24 * time.Hour

// IssueAPI issues the certificate the scheduler's executor channel (the
// /v1/executor/ routes over TLS) presents: a new ECDSA P-256 key, the
// hosts executors dial (an IP in the IP SANs, anything else in the DNS
// SANs), server authentication only (it is no Consul server's and no
// client's certificate), valid from now-5m for life (APILifetime when 0)
// but never past the CA. rnd nil means crypto/rand.
func IssueAPI(ca Parsed, hosts []string, life time.Duration, rnd io.Reader, now time.Time) (Issued, error) {
	var dns []string
	var ips []net.IP
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.TrimSpace(h), ".")
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else if h != "" {
			dns = append(dns, strings.ToLower(h))
		}
	}
	if len(dns)+len(ips) == 0 {
		return Issued{}, errors.New("pki: the executor channel's certificate needs the host executors reach the scheduler at")
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	if life <= 0 {
		life = APILifetime
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
	if err != nil {
		return Issued{}, fmt.Errorf("pki: executor channel key: %w", err)
	}
	serial, err := newSerial(rnd)
	if err != nil {
		return Issued{}, err
	}
	notAfter := now.Add(life)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	cn := strings.Join(hosts, ",")
	if len(dns) > 0 {
		cn = dns[0]
	} else if len(ips) > 0 {
		cn = ips[0].String()
	}
	tmpl := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        pkix.Name{CommonName: cn, Organization: []string{"dcos-consul"}, OrganizationalUnit: []string{"scheduler executor channel"}},
		NotBefore:      now.Add(-backdateOf(life)),
		NotAfter:       notAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:       dns,
		IPAddresses:    ips,
		AuthorityKeyId: ca.Cert.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rnd, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return Issued{}, fmt.Errorf("pki: executor channel certificate: %w", err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Issued{}, fmt.Errorf("pki: executor channel key encoding: %w", err)
	}
	return Issued{
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})),
	}, nil
}
