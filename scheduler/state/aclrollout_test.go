package state

import (
	"strings"
	"testing"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// aclTargets: a cluster without ACLs, and the target a scheduler starts
// with once the option is turned on.
func aclTargets(t *testing.T) (before, start Target) {
	off, _ := tlsConfigs()
	off.ACL = false
	on := off
	on.ACL = true
	before = TargetFrom(off)
	d := DecideStart(&off, &before, on)
	if d.Err != nil || !d.Write {
		t.Fatalf("turning ACLs on refused: %v", d.Err)
	}
	return before, d.Target
}

// TestACLRolloutPhases: turning ACLs on starts phase 1 (servers only
// restart, ACLs with default allow and no agent token), which moves on
// only once every server runs it and the bootstrap succeeded; phase 2
// restarts every agent with its token under allow, phase 3 every agent
// with default deny; clearing the finished rollout restarts nothing, and
// the end is the target of an install with ACLs.
func TestACLRolloutPhases(t *testing.T) {
	before, p1 := aclTargets(t)
	if p1.ACLPhaseNumber() != 1 {
		t.Fatalf("phase %d, want 1", p1.ACLPhaseNumber())
	}
	if p1.ServerConfigID == before.ServerConfigID || p1.ClientConfigID != before.ClientConfigID {
		t.Fatal("phase 1 must restart the servers only")
	}
	for _, c := range []struct {
		role    taskspec.Role
		on      bool
		rollout string
	}{{taskspec.RoleServer, true, taskspec.ACLOpen}, {taskspec.RoleClient, false, ""}} {
		if on, r := p1.ACLFor(c.role); on != c.on || r != c.rollout {
			t.Errorf("phase 1 %s: ACL %v %q, want %v %q", c.role, on, r, c.on, c.rollout)
		}
	}
	// A server still on the configuration without ACLs: nothing moves,
	// and the bootstrap waits too.
	ts := runningOn(p1)
	s := ts[ServerName(1)]
	s.ConfigID = before.ServerConfigID
	ts[s.Name] = s
	if _, adv, why := Rollouts(p1, ts, true); adv || !strings.Contains(why, s.Name) || !strings.Contains(why, "turning ACLs on, phase 1 of 3") {
		t.Fatalf("phase 1 with a server not restarted: advanced %v, why %q", adv, why)
	}
	if w := ACLBootstrapWaits(p1, ts); !strings.Contains(w, s.Name) {
		t.Fatalf("the bootstrap does not wait for %s: %q", s.Name, w)
	}
	// Every server on phase 1: the bootstrap may run; the phase waits
	// for it.
	if w := ACLBootstrapWaits(p1, runningOn(p1)); w != "" {
		t.Fatalf("the bootstrap waits with every server on phase 1: %q", w)
	}
	if !ACLTokensWithheld(p1, false) || ACLTokensWithheld(p1, true) {
		t.Fatal("phase 1: the scheduler's token must be withheld until the bootstrap succeeded, and only then")
	}
	if _, adv, why := Rollouts(p1, runningOn(p1), false); adv || !strings.Contains(why, "waiting for the scheduler's ACL bootstrap") {
		t.Fatalf("phase 1 rolled out, no bootstrap yet: advanced %v, why %q", adv, why)
	}
	p2, adv, _ := Rollouts(p1, runningOn(p1), true)
	if !adv || p2.ACLPhaseNumber() != 2 {
		t.Fatalf("phase 1 rolled out and bootstrapped: advanced %v to phase %d", adv, p2.ACLPhaseNumber())
	}
	if p2.ServerConfigID == p1.ServerConfigID || p2.ClientConfigID == p1.ClientConfigID {
		t.Fatal("phase 2 must restart servers and clients")
	}
	for _, r := range []taskspec.Role{taskspec.RoleServer, taskspec.RoleClient} {
		if on, ro := p2.ACLFor(r); !on || ro != taskspec.ACLAllow {
			t.Errorf("phase 2 %s: ACL %v %q", r, on, ro)
		}
	}
	if ACLTokensWithheld(p2, false) || ACLBootstrapWaits(p2, Tasks{}) != "" {
		t.Fatal("from phase 2 on the tokens exist: never withheld, the bootstrap never waits")
	}
	ts = runningOn(p2)
	c := ts[ClientName("a1")]
	c.ConfigID = p1.ClientConfigID
	ts[c.Name] = c
	if _, adv, why := Rollouts(p2, ts, false); adv || !strings.Contains(why, c.Name) {
		t.Fatalf("phase 2 with a client not restarted: advanced %v, why %q", adv, why)
	}
	// A scheduler restarted in phase 2 has not run its bootstrap yet: the
	// phase moves on all the same.
	p3, adv, _ := Rollouts(p2, runningOn(p2), false)
	if !adv || p3.ACLPhaseNumber() != 3 || p3.ServerConfigID == p2.ServerConfigID || p3.ClientConfigID == p2.ClientConfigID {
		t.Fatalf("phase 3: advanced %v, phase %d, restarts every agent", adv, p3.ACLPhaseNumber())
	}
	if on, ro := p3.ACLFor(taskspec.RoleClient); !on || ro != "" || p3.ACLEnforced() {
		t.Fatalf("phase 3: ACL %v %q (default deny), enforced everywhere already %v", on, ro, p3.ACLEnforced())
	}
	done, adv, _ := Rollouts(p3, runningOn(p3), false)
	_, on := tlsConfigs()
	on.TLS, on.Ports.HTTPS, on.Ports.GRPCTLS = false, -1, -1
	on.ACL = true
	steady := TargetFrom(on)
	if !adv || done.ACLPhase != "" || !done.ACLEnforced() || done.ServerConfigID != p3.ServerConfigID || done.ClientConfigID != p3.ClientConfigID ||
		done.ServerConfigID != steady.ServerConfigID || done.ClientConfigID != steady.ClientConfigID {
		t.Fatal("the finished rollout must be the target of an install with ACLs, with no further restart")
	}
	if _, adv, why := Rollouts(done, runningOn(done), false); adv || why != "" {
		t.Fatalf("no rollout: advanced %v, why %q", adv, why)
	}
}

// TestACLRolloutResumes: a scheduler restarted in any phase resumes the
// stored one; a stored target without ACLs under a configuration with
// them starts phase 1; a stored target with ACLs and no phase starts none.
func TestACLRolloutResumes(t *testing.T) {
	before, p1 := aclTargets(t)
	p2, _, _ := Rollouts(p1, runningOn(p1), true)
	p3, _, _ := Rollouts(p2, runningOn(p2), true)
	off, _ := tlsConfigs()
	off.ACL = false
	on := off
	on.ACL = true
	for _, stored := range []Target{p1, p2, p3} {
		d := DecideStart(&on, &stored, on)
		if d.Target.ACLPhase != stored.ACLPhase || d.Target.ServerConfigID != stored.ServerConfigID || d.Target.ClientConfigID != stored.ClientConfigID {
			t.Errorf("restarted in phase %d: resumed %q", stored.ACLPhaseNumber(), d.Target.ACLPhase)
		}
	}
	if d := DecideStart(&off, &before, on); d.Target.ACLPhaseNumber() != 1 {
		t.Errorf("stored without ACLs, configuration with them: phase %d, want 1", d.Target.ACLPhaseNumber())
	}
	installed := TargetFrom(on)
	if d := DecideStart(&on, &installed, on); d.Target.ACLPhase != "" || d.Target.ServerConfigID != installed.ServerConfigID {
		t.Errorf("installed with ACLs: phase %q", d.Target.ACLPhase)
	}
	// Turning them off is refused: the running target stays, phase and all.
	if d := DecideStart(&on, &p2, off); d.Err == nil || d.Target.ACLPhase != p2.ACLPhase || !d.Target.ACL {
		t.Errorf("turning ACLs off in phase 2: err %v, target phase %q ACL %v", d.Err, d.Target.ACLPhase, d.Target.ACL)
	}
}

// TestACLRolloutWithTLS: ACLs and TLS turned on at once (a service
// installed before both defaults) go through their phases together, the
// ACL bootstrap holding both in phase 1.
func TestACLRolloutWithTLS(t *testing.T) {
	off, on := tlsConfigs()
	off.ACL = false
	on.ACL = true
	before := TargetFrom(off)
	d := DecideStart(&off, &before, on)
	cur := d.Target
	if cur.ACLPhaseNumber() != 1 || cur.TLSPhaseNumber() != 1 {
		t.Fatalf("phases ACL %d TLS %d, want 1 and 1", cur.ACLPhaseNumber(), cur.TLSPhaseNumber())
	}
	if _, adv, _ := Rollouts(cur, runningOn(cur), false); adv {
		t.Fatal("TLS moved on while the ACL bootstrap was not done")
	}
	for i := 2; i <= 3; i++ {
		next, adv, _ := Rollouts(cur, runningOn(cur), true)
		if !adv || next.ACLPhaseNumber() != i || next.TLSPhaseNumber() != i {
			t.Fatalf("phase %d: ACL %d TLS %d", i, next.ACLPhaseNumber(), next.TLSPhaseNumber())
		}
		cur = next
	}
	done, _, _ := Rollouts(cur, runningOn(cur), true)
	steady := TargetFrom(on)
	if done.ACLPhase != "" || done.TLSPhase != "" || done.ServerConfigID != steady.ServerConfigID || done.ClientConfigID != steady.ClientConfigID {
		t.Fatal("both rolled out must be the target of an install with both")
	}
}
