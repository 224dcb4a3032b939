package state

import (
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
