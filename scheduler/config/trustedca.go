package config

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// TLS across a WAN federation: each install has its own CA (generated,
// or the user's), and its servers verify other datacenters' servers on
// WAN RPC (verify_outgoing, verify_server_hostname) and are verified by
// them (verify_incoming) against their ca_file. security.tls.trusted_ca_certs
// adds the other datacenters' CA certificates to the servers' ca_file.

// TrustedCAs is security.tls.trusted_ca_certs re-encoded canonically
// (taskspec.ParseTrustedCAs), "" when unset, with TLS off, or invalid
// (Validate refuses it).
func (c Config) TrustedCAs() string {
	if !c.TLS || strings.TrimSpace(c.TLSTrustedCACerts) == "" {
		return ""
	}
	canon, _, err := taskspec.ParseTrustedCAs(c.TLSTrustedCACerts)
	if err != nil {
		return ""
	}
	return canon
}

// validTrustedCAs checks security.tls.trusted_ca_certs: PEM CA
// certificates, with TLS on. The error shows the option's size, not the
// bundle.
func (c Config) validTrustedCAs() error {
	if strings.TrimSpace(c.TLSTrustedCACerts) == "" {
		return nil
	}
	shown := trustedCAsValue(c.TLSTrustedCACerts)
	if !c.TLS {
		return bad(EnvTLSTrustedCACerts, shown, "empty while TLS is off (security.tls.enabled): other datacenters' CAs are trusted for TLS")
	}
	if _, _, err := taskspec.ParseTrustedCAs(c.TLSTrustedCACerts); err != nil {
		return bad(EnvTLSTrustedCACerts, shown, "PEM CA certificates of the other datacenters (each one's `dcos consul --name <service> tls ca` or its scheduler's GET /v1/tls/ca), one after the other: "+err.Error())
	}
	return nil
}

// trustedCAsValue is what errors show of the option: its size.
func trustedCAsValue(v string) string { return "<" + strconv.Itoa(len(v)) + " bytes>" }

// trustedCAsMark names the trusted CA certificates (subject and SHA-256
// prefix each) for update plans and logs, instead of the PEM; "" with
// none (or TLS off), a fingerprint of the text if it does not parse
// (Validate refuses it).
func trustedCAsMark(c Config) string {
	if !c.TLS || strings.TrimSpace(c.TLSTrustedCACerts) == "" {
		return ""
	}
	_, certs, err := taskspec.ParseTrustedCAs(c.TLSTrustedCACerts)
	if err != nil {
		return Fingerprint(c.TLSTrustedCACerts)
	}
	parts := make([]string, len(certs))
	for i, crt := range certs {
		sum := sha256.Sum256(crt.Raw)
		parts[i] = crt.Subject.CommonName + " (sha256:" + hex.EncodeToString(sum[:8]) + ")"
	}
	return strings.Join(parts, ", ")
}
