// Package pki is the service's certificate authority for Consul's TLS: a
// CA (ECDSA P-256, crypto/x509) generated once or brought by the user, and
// the server certificates it issues. Every function is pure over its
// inputs (the random source and the clock are arguments), so certificate
// contents, names and lifetimes are tested without a network.
//
// Nothing here formats a private key into an error.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sort"
	"strings"
	"time"
)

// Lifetimes. The CA outlives any cluster we expect to run without an
// operator looking at it; a server certificate is issued at every launch
// of a server, so a year means a server relaunched at least once a year
// never runs with an expired one (reissue before expiry on a running
// server is not implemented, see docs/security.md).
const (
	CALifetime     = 10 * 365 * 24 * time.Hour
	ServerLifetime = 365 * 24 * time.Hour
	// backdate covers clocks of agents slightly behind the scheduler's.
	backdate = 5 * time.Minute
)

// CA is a certificate authority: its certificate and key, PEM encoded.
type CA struct {
	CertPEM string `json:"cert_pem"`
	KeyPEM  string `json:"key_pem"`
}

// String never shows the key.
func (CA) String() string { return "ca{redacted}" }

// GoString is String for %#v.
func (c CA) GoString() string { return c.String() }

// Empty reports whether there is no CA.
func (c CA) Empty() bool { return c.CertPEM == "" && c.KeyPEM == "" }

// NewCA generates a CA named after the service: ECDSA P-256, self-signed,
// valid from now-5m for CALifetime. rnd nil means crypto/rand.
func NewCA(rnd io.Reader, name string, now time.Time) (CA, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
	if err != nil {
		return CA{}, fmt.Errorf("pki: CA key: %w", err)
	}
	serial, err := newSerial(rnd)
	if err != nil {
		return CA{}, err
	}
	ski, err := keyID(key.Public())
	if err != nil {
		return CA{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "dcos-consul CA " + name, Organization: []string{"dcos-consul"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          ski,
	}
	der, err := x509.CreateCertificate(rnd, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return CA{}, fmt.Errorf("pki: CA certificate: %w", err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return CA{}, fmt.Errorf("pki: CA key encoding: %w", err)
	}
	return CA{
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})),
	}, nil
}

// Parsed is a CA ready to sign.
type Parsed struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Parse checks that c is a usable CA at now: one PEM certificate that is
// a CA, allowed to sign certificates, valid now, and a private key (PKCS#8,
// EC or PKCS#1) that matches it. Errors say what is wrong without quoting
// the key.
func (c CA) Parse(now time.Time) (Parsed, error) {
	cb, _ := pem.Decode([]byte(c.CertPEM))
	if cb == nil || cb.Type != "CERTIFICATE" {
		return Parsed{}, errors.New("the CA certificate is not a PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return Parsed{}, fmt.Errorf("the CA certificate does not parse: %w", err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return Parsed{}, errors.New("the CA certificate is not a CA (basic constraints CA:TRUE missing)")
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return Parsed{}, errors.New("the CA certificate may not sign certificates (key usage keyCertSign missing)")
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return Parsed{}, fmt.Errorf("the CA certificate is not valid now (valid %s to %s)",
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	kb, _ := pem.Decode([]byte(c.KeyPEM))
	if kb == nil {
		return Parsed{}, errors.New("the CA key is not a PEM block")
	}
	signer, err := parseKey(kb)
	if err != nil {
		return Parsed{}, err
	}
	if !publicEqual(signer.Public(), cert.PublicKey) {
		return Parsed{}, errors.New("the CA key does not belong to the CA certificate")
	}
	return Parsed{Cert: cert, Key: signer}, nil
}

func parseKey(b *pem.Block) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, errors.New("the CA key is not a signing key")
		}
		return s, nil
	}
	if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("the CA key (PEM %q) is neither PKCS#8, EC nor PKCS#1", b.Type)
}

func publicEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// ServerRequest is what a server certificate names.
type ServerRequest struct {
	Datacenter string // Consul datacenter
	Domain     string // Consul domain ("consul" when empty)
	NodeName   string // the Consul node name (for the subject)
	// Hosts are the agent's addresses and host names (an IP is put in the
	// IP SANs, anything else in the DNS SANs).
	Hosts []string
	// Lifetime of the certificate; 0 means ServerLifetime.
	Lifetime time.Duration
}

// RenewalDue reports whether a certificate valid from notBefore to
// notAfter should be replaced at now: when less than a third of its
// lifetime is left (four months of a year), so that a renewal that waits
// for a healthy cluster still has months to happen.
func RenewalDue(notBefore, notAfter, now time.Time) bool {
	return notAfter.Sub(now) < notAfter.Sub(notBefore)/3
}

// ServerName is the name Consul's verify_server_hostname checks:
// server.<datacenter>.<domain>.
func ServerName(datacenter, domain string) string {
	if domain == "" {
		domain = "consul"
	}
	return "server." + datacenter + "." + strings.TrimSuffix(domain, ".")
}

// SANs are the names and addresses a server certificate of r holds:
// server.<dc>.<domain>, localhost and 127.0.0.1 always, then r.Hosts,
// each once, sorted.
func SANs(r ServerRequest) (dns []string, ips []net.IP) {
	seenD, seenI := map[string]bool{}, map[string]bool{}
	addD := func(s string) {
		s = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
		if s != "" && !seenD[s] {
			seenD[s] = true
			dns = append(dns, s)
		}
	}
	addI := func(ip net.IP) {
		if !seenI[ip.String()] {
			seenI[ip.String()] = true
			ips = append(ips, ip)
		}
	}
	addD(ServerName(r.Datacenter, r.Domain))
	addD("localhost")
	addI(net.IPv4(127, 0, 0, 1).To4())
	for _, h := range r.Hosts {
		if ip := net.ParseIP(strings.TrimSpace(h)); ip != nil {
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			addI(ip)
			continue
		}
		addD(h)
	}
	sort.Strings(dns[1:]) // server.<dc>.<domain> stays first
	sort.Slice(ips, func(i, j int) bool { return ips[i].String() < ips[j].String() })
	return dns, ips
}

// Issued is a certificate and its key, PEM encoded.
type Issued struct {
	CertPEM string
	KeyPEM  string
}

// String never shows the key.
func (Issued) String() string { return "issued{redacted}" }

// IssueServer issues a Consul server certificate under ca: a new ECDSA
// P-256 key, SANs from SANs(r), server and client authentication (Consul
// servers dial each other with it), valid from now-5m for ServerLifetime
// but never past the CA. rnd nil means crypto/rand.
func IssueServer(ca Parsed, r ServerRequest, rnd io.Reader, now time.Time) (Issued, error) {
	if r.Datacenter == "" {
		return Issued{}, errors.New("pki: a server certificate needs the datacenter")
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
	if err != nil {
		return Issued{}, fmt.Errorf("pki: server key: %w", err)
	}
	serial, err := newSerial(rnd)
	if err != nil {
		return Issued{}, err
	}
	dns, ips := SANs(r)
	life := r.Lifetime
	if life <= 0 {
		life = ServerLifetime
	}
	notAfter := now.Add(life)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	cn := dns[0]
	tmpl := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        pkix.Name{CommonName: cn, Organization: []string{"dcos-consul"}, OrganizationalUnit: []string{r.NodeName}},
		NotBefore:      now.Add(-backdateOf(life)),
		NotAfter:       notAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:       dns,
		IPAddresses:    ips,
		AuthorityKeyId: ca.Cert.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rnd, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return Issued{}, fmt.Errorf("pki: server certificate: %w", err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Issued{}, fmt.Errorf("pki: server key encoding: %w", err)
	}
	return Issued{
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})),
	}, nil
}

// Pool is a certificate pool holding the CA certificate(s) in certPEM.
func Pool(certPEM string) (*x509.CertPool, error) {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM([]byte(certPEM)) {
		return nil, errors.New("pki: no PEM certificate in the CA certificate")
	}
	return p, nil
}

// Fingerprint is the SHA-256 of the first certificate in certPEM
// ("sha256:<hex>"), for logs: the certificate is public, but a short
// name reads better.
func Fingerprint(certPEM string) string {
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil {
		return "none"
	}
	sum := sha256.Sum256(b.Bytes)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// backdateOf is the backdate of a certificate of lifetime life: 5 minutes,
// but no more than a twentieth of a short (test) lifetime.
func backdateOf(life time.Duration) time.Duration {
	if life/20 < backdate {
		return life / 20
	}
	return backdate
}

func newSerial(rnd io.Reader) (*big.Int, error) {
	s, err := rand.Int(rnd, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

func keyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("pki: public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return sum[:20], nil
}
