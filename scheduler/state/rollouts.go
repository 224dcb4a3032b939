package state

import (
	"fmt"
	"strings"
)

// Rollouts decides whether the rollouts under way (TLS, gossip
// encryption, ACLs) move to their next phase: once every server and
// every launched client runs the target's configuration, each moves on
// (their next phases are restarted together); the first phase of the ACL
// rollout also waits for the ACL bootstrap (aclBootstrapped: this
// scheduler saw it succeed). Otherwise why says what they wait for
// (empty when none is under way).
func Rollouts(t Target, ts Tasks, aclBootstrapped bool) (next Target, advanced bool, why string) {
	tn, gn, an := t.TLSPhaseNumber(), t.GossipPhaseNumber(), t.ACLPhaseNumber()
	if tn == 0 && gn == 0 && an == 0 {
		return t, false, ""
	}
	if waiting := tlsPhaseWaiting(t, ts); len(waiting) > 0 {
		return t, false, fmt.Sprintf("%s: waiting for %s to run this phase's configuration", rolloutsUnderWay(t), strings.Join(waiting, ", "))
	}
	if an == 1 && !aclBootstrapped {
		return t, false, rolloutsUnderWay(t) + ": every server runs ACLs; waiting for the scheduler's ACL bootstrap (management token, policies, scheduler, agent and anonymous DNS tokens)"
	}
	if tn > 0 {
		t, _, _ = TLSRollout(t, ts)
	}
	if gn > 0 {
		t.GossipPhase = gossipNext(gn)
	}
	if an > 0 {
		t.ACLPhase = aclNext(an)
	}
	return t.WithConfigID(), true, ""
}

// rolloutsUnderWay names the rollouts of t under way with their phase.
func rolloutsUnderWay(t Target) string {
	var what []string
	if n := t.TLSPhaseNumber(); n > 0 {
		what = append(what, fmt.Sprintf("turning TLS on, phase %d of %d (%s)", n, TLSPhases, TLSPhaseWhat(n)))
	}
	if n := t.GossipPhaseNumber(); n > 0 {
		what = append(what, fmt.Sprintf("turning gossip encryption on, phase %d of %d (%s)", n, GossipPhases, GossipPhaseWhat(n)))
	}
	if n := t.ACLPhaseNumber(); n > 0 {
		what = append(what, fmt.Sprintf("turning ACLs on, phase %d of %d (%s)", n, ACLPhases, ACLPhaseWhat(n)))
	}
	return strings.Join(what, "; ")
}
