package state

import (
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
)

// TestTrustedCAsRestartServersOnly: other datacenters' CAs are part of
// the servers' configuration ID (their ca_file), not the clients'; a
// target without them keeps the ID it had before they existed; a
// reformatted bundle is the same target.
func TestTrustedCAsRestartServersOnly(t *testing.T) {
	ca, err := pki.NewCA(nil, "consul-dc2", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := config.Defaults()
	plain := TargetFrom(c)
	c.TLSTrustedCACerts = "\n" + ca.CertPEM + "\n"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	trusting := TargetFrom(c)
	if trusting.TLSTrustedCAs != ca.CertPEM {
		t.Fatalf("target's trusted CAs %q, want the canonical PEM", trusting.TLSTrustedCAs)
	}
	if trusting.ServerConfigID == plain.ServerConfigID || trusting.ClientConfigID != plain.ClientConfigID {
		t.Fatalf("server IDs %s -> %s, client IDs %s -> %s: want the servers' only changed",
			plain.ServerConfigID, trusting.ServerConfigID, plain.ClientConfigID, trusting.ClientConfigID)
	}
	c.TLSTrustedCACerts = ca.CertPEM
	if TargetFrom(c).ServerConfigID != trusting.ServerConfigID {
		t.Fatal("the same CA, reformatted, changed the servers' configuration ID")
	}
	if got := ConfigFromTarget(config.Defaults(), trusting).TrustedCAs(); got != ca.CertPEM {
		t.Fatalf("ConfigFromTarget lost the trusted CAs: %q", got)
	}
}
