package state

import (
	"strings"
	"testing"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// tlsConfigs are a cluster's configuration with TLS off (explicitly) and
// the same with TLS turned on, as an option update makes them.
func tlsConfigs() (off, on config.Config) {
	off = config.Defaults()
	off.ExecutorURI = "http://h/0.1.0/dcos-consul"
	off.TLS, off.Ports.HTTPS = false, -1
	on = off
	on.TLS, on.Ports.HTTPS, on.Ports.GRPCTLS = true, config.DefaultHTTPSPort, config.DefaultGRPCTLSPort
	return off, on
}

// runningOn is a cluster of tg's servers and two clients, every task
// running tg's configuration.
func runningOn(tg Target) Tasks {
	ts := Tasks{}
	for i := 0; i < tg.Servers; i++ {
		n := ServerName(i)
		ts[n] = Task{Name: n, Role: taskspec.RoleServer, Index: i, TaskID: n + "__1", State: "TASK_RUNNING", ConfigID: tg.ServerConfigID}
	}
	for _, a := range []string{"a1", "a2"} {
		n := ClientName(a)
		ts[n] = Task{Name: n, Role: taskspec.RoleClient, TaskID: n + "__1", State: "TASK_RUNNING", AgentID: a, ConfigID: tg.ClientConfigID}
	}
	return ts
}

// TestTLSRolloutPhases: turning TLS on starts phase 1 (servers only
// restart, plain HTTP kept), and each phase moves on only once every task
// runs its configuration: phase 2 restarts servers and clients, phase 3
// both again with plain HTTP off, and clearing the finished rollout
// restarts nothing. The steady target is TLS as installed with it.
func TestTLSRolloutPhases(t *testing.T) {
	off, on := tlsConfigs()
	before := TargetFrom(off)
	d := DecideStart(&off, &before, on)
	if d.Err != nil || !d.Write {
		t.Fatalf("turning TLS on refused: %v", d.Err)
	}
	p1 := d.Target
	if p1.TLSPhaseNumber() != 1 || p1.Ports.HTTP != off.Ports.HTTP {
		t.Fatalf("phase %d, HTTP port %d; want phase 1 with HTTP %d kept", p1.TLSPhaseNumber(), p1.Ports.HTTP, off.Ports.HTTP)
	}
	if p1.ServerConfigID == before.ServerConfigID || p1.ClientConfigID != before.ClientConfigID {
		t.Errorf("phase 1 must restart servers only (server ID changed %v, client ID changed %v)",
			p1.ServerConfigID != before.ServerConfigID, p1.ClientConfigID != before.ClientConfigID)
	}
	if on, r := p1.TLSFor(taskspec.RoleServer); !on || r != taskspec.TLSAccept {
		t.Errorf("phase 1 server: tls %v %q", on, r)
	}
	if on, _ := p1.TLSFor(taskspec.RoleClient); on {
		t.Error("phase 1 client runs TLS before the servers accept it")
	}

	// Half done: servers restarted, one still on the old configuration.
	ts := runningOn(before)
	for i := 0; i < 2; i++ {
		s := ts[ServerName(i)]
		s.ConfigID = p1.ServerConfigID
		ts[s.Name] = s
	}
	if _, adv, why := TLSRollout(p1, ts); adv || !strings.Contains(why, "consul-server-2") || !strings.Contains(why, "phase 1 of 3") {
		t.Fatalf("phase 1 not rolled out yet: advanced %v, why %q", adv, why)
	}
	p2, adv, _ := TLSRollout(p1, runningOn(p1))
	if !adv || p2.TLSPhaseNumber() != 2 || p2.Ports.HTTP != off.Ports.HTTP {
		t.Fatalf("phase 1 rolled out: advanced %v to phase %d (HTTP %d)", adv, p2.TLSPhaseNumber(), p2.Ports.HTTP)
	}
	if p2.ServerConfigID == p1.ServerConfigID || p2.ClientConfigID == p1.ClientConfigID {
		t.Error("phase 2 must restart servers and clients")
	}
	if on, r := p2.TLSFor(taskspec.RoleClient); !on || r != taskspec.TLSOutgoing {
		t.Errorf("phase 2 client: tls %v %q", on, r)
	}
	// A client relaunching (not running) holds the phase.
	ts = runningOn(p2)
	c := ts[ClientName("a1")]
	c.State = "TASK_STAGING"
	ts[c.Name] = c
	if _, adv, why := TLSRollout(p2, ts); adv || !strings.Contains(why, c.Name) {
		t.Fatalf("phase 2 with a client starting: advanced %v, why %q", adv, why)
	}
	p3, adv, _ := TLSRollout(p2, runningOn(p2))
	if !adv || p3.TLSPhaseNumber() != 3 || p3.Ports.HTTP != -1 {
		t.Fatalf("phase 2 rolled out: advanced %v to phase %d (HTTP %d)", adv, p3.TLSPhaseNumber(), p3.Ports.HTTP)
	}
	if p3.ServerConfigID == p2.ServerConfigID || p3.ClientConfigID == p2.ClientConfigID {
		t.Error("phase 3 must restart servers and clients")
	}
	done, adv, _ := TLSRollout(p3, runningOn(p3))
	if !adv || done.TLSPhase != "" {
		t.Fatalf("phase 3 rolled out: advanced %v, phase %q", adv, done.TLSPhase)
	}
	steady := TargetFrom(on)
	if done.ServerConfigID != p3.ServerConfigID || done.ClientConfigID != p3.ClientConfigID ||
		done.ServerConfigID != steady.ServerConfigID || done.ClientConfigID != steady.ClientConfigID {
		t.Error("the finished rollout must be the target of a cluster installed with TLS, with no further restart")
	}
	if _, adv, why := TLSRollout(done, runningOn(done)); adv || why != "" {
		t.Errorf("no rollout under way: advanced %v, why %q", adv, why)
	}
}

// TestTLSRolloutResumes: a scheduler killed at any point of the rollout
// (the phase stored with its target) resumes that phase at its next
// start, with the same configuration IDs (no task restarts for the
// restart); also when it was killed between storing the configuration and
// the target of the change (the stored target still without TLS).
func TestTLSRolloutResumes(t *testing.T) {
	off, on := tlsConfigs()
	before := TargetFrom(off)
	p1 := DecideStart(&off, &before, on).Target
	p2, _, _ := TLSRollout(p1, runningOn(p1))
	p3, _, _ := TLSRollout(p2, runningOn(p2))
	for _, stored := range []Target{p1, p2, p3} {
		d := DecideStart(&on, &stored, on)
		if d.Err != nil {
			t.Fatal(d.Err)
		}
		if d.Target.TLSPhase != stored.TLSPhase || d.Target.ServerConfigID != stored.ServerConfigID ||
			d.Target.ClientConfigID != stored.ClientConfigID || d.Target.Ports.HTTP != stored.Ports.HTTP {
			t.Errorf("restarted in phase %d: resumed phase %q (IDs %s/%s, HTTP %d), want %q (%s/%s, HTTP %d)",
				stored.TLSPhaseNumber(), d.Target.TLSPhase, d.Target.ServerConfigID, d.Target.ClientConfigID, d.Target.Ports.HTTP,
				stored.TLSPhase, stored.ServerConfigID, stored.ClientConfigID, stored.Ports.HTTP)
		}
	}
	// Killed between the configuration's write and the target's.
	d := DecideStart(&on, &before, on)
	if d.Target.TLSPhaseNumber() != 1 || d.Target.ServerConfigID != p1.ServerConfigID {
		t.Errorf("stored target without TLS under a TLS configuration: phase %d, want 1", d.Target.TLSPhaseNumber())
	}
	// A refused change during the rollout keeps its phase.
	bad := on
	bad.Datacenter = "dc9"
	d = DecideStart(&on, &p2, bad)
	if d.Err == nil || d.Target.TLSPhase != p2.TLSPhase || d.Target.ServerConfigID != p2.ServerConfigID {
		t.Errorf("refused change during phase 2: err %v, phase %q", d.Err, d.Target.TLSPhase)
	}
	// A cluster installed with TLS never enters a rollout.
	inst := TargetFrom(on)
	if d := DecideStart(&on, &inst, on); d.Target.TLSPhase != "" {
		t.Errorf("installed with TLS: phase %q", d.Target.TLSPhase)
	}
}
