package scheduler

import (
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/reconcile"
)

func TestRenewalPick(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	year := 365 * 24 * time.Hour
	fresh := func(n string) serverCert {
		return serverCert{Name: n, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(year)}
	}
	due := func(n string, left time.Duration) serverCert {
		return serverCert{Name: n, NotBefore: now.Add(left - year), NotAfter: now.Add(left)}
	}
	healthy := &reconcile.RaftHealth{Healthy: true}
	for _, c := range []struct {
		name    string
		running int
		certs   []serverCert
		health  *reconcile.RaftHealth
		want    string
		why     string
	}{
		{"all fresh", 3, []serverCert{fresh("s0"), fresh("s1"), fresh("s2")}, healthy, "", "no server certificate is due"},
		{"the one expiring first", 3, []serverCert{due("s0", 90*24*time.Hour), fresh("s1"), due("s2", 30*24*time.Hour)}, healthy, "s2", "expires at"},
		{"a server down", 2, []serverCert{due("s0", time.Hour), fresh("s1")}, healthy, "", "waiting for all 3 servers"},
		{"one did not answer", 3, []serverCert{due("s0", time.Hour), fresh("s1")}, healthy, "", "waiting for all 3 servers"},
		{"raft unhealthy", 3, []serverCert{due("s0", time.Hour), fresh("s1"), fresh("s2")}, &reconcile.RaftHealth{}, "", "healthy raft"},
		{"no raft view", 3, []serverCert{due("s0", time.Hour), fresh("s1"), fresh("s2")}, nil, "", "healthy raft"},
	} {
		got, why := renewalPick(now, 3, c.running, c.certs, c.health)
		if got != c.want || !strings.Contains(why, c.why) {
			t.Errorf("%s: %q (%s), want %q (%s)", c.name, got, why, c.want, c.why)
		}
	}
	if renewCheckEvery(0) != time.Hour || renewCheckEvery(3*time.Minute) != 10*time.Second {
		t.Error("check interval")
	}
}
