package config

import (
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/pki"
)

func newTestCA(t *testing.T, name string) pki.CA {
	t.Helper()
	ca, err := pki.NewCA(nil, name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// TestTrustedCAsValidated: security.tls.trusted_ca_certs takes PEM CA
// certificates with TLS on; anything else is refused naming the option,
// without echoing the bundle.
func TestTrustedCAsValidated(t *testing.T) {
	dc2, dc3 := newTestCA(t, "consul-dc2"), newTestCA(t, "consul-dc3")
	both := dc2.CertPEM + "\n\n" + dc3.CertPEM
	c, err := Load(env(map[string]string{EnvTLSTrustedCACerts: both}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.TrustedCAs(); got != strings.TrimSpace(dc2.CertPEM)+"\n"+dc3.CertPEM && got != dc2.CertPEM+dc3.CertPEM {
		t.Fatalf("canonical bundle:\n%s", got)
	}
	if c, err := Load(env(nil)); err != nil || c.TrustedCAs() != "" {
		t.Fatalf("unset: %v %q", err, c.TrustedCAs())
	}

	parsed, err := dc2.Parse(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	server, err := pki.IssueServer(parsed, pki.ServerRequest{Datacenter: "dc2", Hosts: []string{"127.0.0.1"}}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{EnvTLSTrustedCACerts: "not a certificate"}, "no PEM certificate"},
		{map[string]string{EnvTLSTrustedCACerts: dc2.CertPEM + "trailing"}, "not a PEM certificate"},
		{map[string]string{EnvTLSTrustedCACerts: dc2.KeyPEM}, "want only CERTIFICATE blocks"},
		{map[string]string{EnvTLSTrustedCACerts: server.CertPEM}, "is not a CA certificate"},
		{map[string]string{EnvTLSTrustedCACerts: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, "certificate 1"},
		{map[string]string{EnvTLSTrustedCACerts: dc2.CertPEM, EnvTLS: "false"}, "empty while TLS is off"},
	} {
		_, err := Load(env(tc.env))
		if err == nil || !strings.Contains(err.Error(), EnvTLSTrustedCACerts) || !strings.Contains(err.Error(), "security.tls.trusted_ca_certs") ||
			!strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.40q: %v, want refused naming the option and %q", tc.env[EnvTLSTrustedCACerts], err, tc.want)
			continue
		}
		if line := strings.SplitN(tc.env[EnvTLSTrustedCACerts], "\n", 3); len(line) > 1 && len(line[1]) > 8 && strings.Contains(err.Error(), line[1]) {
			t.Errorf("the error shows the option's text: %v", err)
		}
	}
}

// TestTrustedCAsChangeRestartsServers: adding, changing or removing the
// trusted CAs restarts the servers one at a time (their ca_file is read
// at start), clients not; reformatting the same certificates is no change.
func TestTrustedCAsChangeRestartsServers(t *testing.T) {
	dc2, dc3 := newTestCA(t, "consul-dc2"), newTestCA(t, "consul-dc3")
	base := Defaults()
	withDC2 := base
	withDC2.TLSTrustedCACerts = dc2.CertPEM
	withBoth := base
	withBoth.TLSTrustedCACerts = dc2.CertPEM + dc3.CertPEM
	for _, tc := range []struct {
		name     string
		old, new Config
	}{{"added", base, withDC2}, {"another added", withDC2, withBoth}, {"removed", withBoth, base}} {
		ch, err := CheckUpdate(tc.old, tc.new)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !ch.RestartServers() || ch.RestartClients() || len(ch.Fields) != 1 || ch.Fields[0].Option != "security.tls.trusted_ca_certs" {
			t.Fatalf("%s: %v, want the servers restarted", tc.name, ch)
		}
		if s := ch.String(); strings.Contains(s, "BEGIN") || (tc.name == "added" && !strings.Contains(s, "consul-dc2")) {
			t.Fatalf("%s: the change shows the PEM: %s", tc.name, s)
		}
		t.Logf("%s: %s", tc.name, ch)
	}
	reformatted := withDC2
	reformatted.TLSTrustedCACerts = "\n  " + strings.ReplaceAll(dc2.CertPEM, "\n", "\r\n") + "\n" + dc2.CertPEM
	if err := reformatted.Validate(); err != nil {
		t.Fatal(err)
	}
	if ch, err := CheckUpdate(withDC2, reformatted); err != nil || !ch.None() {
		t.Fatalf("the same certificate reformatted and repeated: %v %v", ch, err)
	}
}
