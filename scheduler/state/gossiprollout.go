package state

import (
	"fmt"
	"strings"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// Turning gossip encryption on in a running cluster follows Consul's
// three steps, each a rolling restart of every agent (servers one at a
// time through the quorum gate, clients in batches), the phase stored
// with the target as TLS's is:
//
//  1. taskspec.GossipOpen: encrypt with the key, encrypt_verify_incoming
//     and encrypt_verify_outgoing false (plain and encrypted gossip both
//     read, plain sent).
//  2. taskspec.GossipOutgoing: encrypt_verify_outgoing true (encrypted
//     sent; plain still read from the agents not restarted yet).
//  3. GossipRequired: both true, as installed with gossip encryption;
//     cleared once rolled out, which changes no configuration ID.

// GossipPhases is the number of phases of the gossip rollout.
const GossipPhases = 3

// GossipRequired is Target.GossipPhase in the rollout's last phase.
const GossipRequired = "required"

// GossipRollout is taskspec.Spec.GossipRollout of every task under t.
func (t Target) GossipRollout() string {
	if !t.GossipEncryption {
		return ""
	}
	switch t.GossipPhase {
	case taskspec.GossipOpen, taskspec.GossipOutgoing:
		return t.GossipPhase
	}
	return ""
}

// gossipMark is what the configuration IDs hash of the gossip rollout.
func (t Target) gossipMark() string { return t.GossipRollout() }

// GossipPhaseNumber is the gossip rollout's phase, 1 to GossipPhases, or
// 0 when none is under way.
func (t Target) GossipPhaseNumber() int {
	switch t.GossipPhase {
	case taskspec.GossipOpen:
		return 1
	case taskspec.GossipOutgoing:
		return 2
	case GossipRequired:
		return 3
	}
	return 0
}

// GossipPhaseWhat says what phase n of the gossip rollout does.
func GossipPhaseWhat(n int) string {
	switch n {
	case 1:
		return "every agent encrypts gossip with the key and still reads and sends plain gossip"
	case 2:
		return "every agent sends encrypted gossip only"
	case 3:
		return "every agent reads encrypted gossip only"
	}
	return ""
}

// carryGossipRollout is carryTLSRollout for gossip encryption.
func carryGossipRollout(stored *Target, t Target) Target {
	if !t.GossipEncryption || t.Uninstall || stored == nil {
		return t
	}
	switch {
	case !stored.GossipEncryption:
		t.GossipPhase = taskspec.GossipOpen
	case stored.GossipPhase != "":
		t.GossipPhase = stored.GossipPhase
	default:
		return t
	}
	return t.WithConfigID()
}

// gossipNext is the gossip rollout's next phase after n.
func gossipNext(n int) string {
	switch n {
	case 1:
		return taskspec.GossipOutgoing
	case 2:
		return GossipRequired
	}
	return ""
}

// Rollouts decides whether the rollouts under way (TLS, gossip
// encryption) move to their next phase: once every server and every
// launched client runs the target's configuration, each moves on (their
// next phases are restarted together). Otherwise why says what they wait
// for (empty when none is under way).
func Rollouts(t Target, ts Tasks) (next Target, advanced bool, why string) {
	tn, gn := t.TLSPhaseNumber(), t.GossipPhaseNumber()
	if tn == 0 && gn == 0 {
		return t, false, ""
	}
	if waiting := tlsPhaseWaiting(t, ts); len(waiting) > 0 {
		var what []string
		if tn > 0 {
			what = append(what, fmt.Sprintf("turning TLS on, phase %d of %d (%s)", tn, TLSPhases, TLSPhaseWhat(tn)))
		}
		if gn > 0 {
			what = append(what, fmt.Sprintf("turning gossip encryption on, phase %d of %d (%s)", gn, GossipPhases, GossipPhaseWhat(gn)))
		}
		return t, false, fmt.Sprintf("%s: waiting for %s to run this phase's configuration", strings.Join(what, "; "), strings.Join(waiting, ", "))
	}
	if tn > 0 {
		t, _, _ = TLSRollout(t, ts)
	}
	if gn > 0 {
		t.GossipPhase = gossipNext(gn)
		t = t.WithConfigID()
	}
	return t, true, ""
}
