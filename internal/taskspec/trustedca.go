package taskspec

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// MaxTrustedCAs bounds the CA certificates a server trusts beyond its
// own service's CA (security.tls.trusted_ca_certs): one per other
// datacenter of a federation is the use.
const MaxTrustedCAs = 32

// ParseTrustedCAs parses a PEM bundle of CA certificates (other
// datacenters' CAs, which a server trusts besides its own service's):
// only CERTIFICATE blocks, each a CA certificate (basic constraints,
// CA:true), nothing else but whitespace, 1 to MaxTrustedCAs of them. It
// returns the bundle re-encoded canonically (one block after the other,
// duplicates dropped), so that reformatting the same certificates is no
// change. Expiry is not checked: Consul skips an expired root, and a
// datacenter's CA expiring must not stop another's scheduler. Errors
// name the certificate (its position, its subject), never reproduce the
// input.
func ParseTrustedCAs(bundle string) (canonical string, certs []*x509.Certificate, err error) {
	rest := []byte(bundle)
	var out bytes.Buffer
	seen := map[string]bool{}
	for n := 1; ; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return "", nil, fmt.Errorf("PEM block %d is a %q, want only CERTIFICATE blocks (CA certificates are public; never a key)", n, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return "", nil, fmt.Errorf("certificate %d: %w", n, err)
		}
		if !c.BasicConstraintsValid || !c.IsCA {
			return "", nil, fmt.Errorf("certificate %d (%s) is not a CA certificate (basic constraints CA:true): give each other datacenter's CA certificate (its scheduler's GET /v1/tls/ca), not a server's", n, c.Subject)
		}
		if seen[string(c.Raw)] {
			continue
		}
		seen[string(c.Raw)] = true
		certs = append(certs, c)
		_ = pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	if strings.TrimSpace(string(rest)) != "" {
		if len(certs) == 0 {
			return "", nil, errors.New("no PEM certificate (-----BEGIN CERTIFICATE-----) in it")
		}
		return "", nil, fmt.Errorf("text after certificate %d that is not a PEM certificate", len(certs))
	}
	if len(certs) == 0 {
		return "", nil, errors.New("no PEM certificate (-----BEGIN CERTIFICATE-----) in it")
	}
	if len(certs) > MaxTrustedCAs {
		return "", nil, fmt.Errorf("%d CA certificates, at most %d", len(certs), MaxTrustedCAs)
	}
	return out.String(), certs, nil
}
