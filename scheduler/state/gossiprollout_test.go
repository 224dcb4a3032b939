package state

import (
	"strings"
	"testing"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// TestGossipRolloutPhases: turning gossip encryption on goes through
// Consul's three steps, each restarting every agent once all tasks run the
// previous one, and ends as a cluster installed with it (no restart when
// the finished phase is cleared); a scheduler restarted in any phase, or
// between the writes of the change, resumes it.
func TestGossipRolloutPhases(t *testing.T) {
	off, _ := tlsConfigs()
	off.GossipEncryption = false
	on := off
	on.GossipEncryption = true
	before := TargetFrom(off)
	d := DecideStart(&off, &before, on)
	if d.Err != nil {
		t.Fatalf("turning gossip encryption on refused: %v", d.Err)
	}
	var phases []Target
	cur := d.Target
	for i := 1; i <= GossipPhases; i++ {
		if cur.GossipPhaseNumber() != i {
			t.Fatalf("phase %d, want %d", cur.GossipPhaseNumber(), i)
		}
		phases = append(phases, cur)
		prev := before
		if i > 1 {
			prev = phases[i-2]
		}
		if cur.ServerConfigID == prev.ServerConfigID || cur.ClientConfigID == prev.ClientConfigID {
			t.Errorf("phase %d restarts neither servers nor clients", i)
		}
		ts := runningOn(cur)
		c := ts[ClientName("a2")]
		c.ConfigID = prev.ClientConfigID
		ts[c.Name] = c
		if _, adv, why := Rollouts(cur, ts, false); adv || !strings.Contains(why, c.Name) || !strings.Contains(why, "gossip encryption on, phase") {
			t.Fatalf("phase %d with a client on the previous one: advanced %v, why %q", i, adv, why)
		}
		next, adv, _ := Rollouts(cur, runningOn(cur), false)
		if !adv {
			t.Fatalf("phase %d rolled out did not advance", i)
		}
		cur = next
	}
	want := map[int][2]bool{1: {false, false}, 2: {false, true}, 3: {true, true}}
	for i, p := range phases {
		r := p.GossipRollout()
		in, out := r == "", r != taskspec.GossipOpen
		if w := want[i+1]; in != w[0] || out != w[1] {
			t.Errorf("phase %d: verify incoming %v outgoing %v, want %v", i+1, in, out, w)
		}
	}
	steady := TargetFrom(on)
	if cur.GossipPhase != "" || cur.ServerConfigID != steady.ServerConfigID || cur.ClientConfigID != steady.ClientConfigID ||
		cur.ServerConfigID != phases[2].ServerConfigID {
		t.Error("the finished rollout must be the target of an install with gossip encryption, with no further restart")
	}
	for _, stored := range phases {
		if d := DecideStart(&on, &stored, on); d.Target.GossipPhase != stored.GossipPhase || d.Target.ServerConfigID != stored.ServerConfigID {
			t.Errorf("restarted in phase %d: resumed %q", stored.GossipPhaseNumber(), d.Target.GossipPhase)
		}
	}
	if d := DecideStart(&on, &before, on); d.Target.GossipPhaseNumber() != 1 {
		t.Errorf("stored target without gossip encryption under a configuration with it: phase %d, want 1", d.Target.GossipPhaseNumber())
	}
}
