package state

import (
	"fmt"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// Turning ACLs on in a running cluster follows Consul's documented way
// for an existing datacenter (default policy allow until every agent has
// its token), each phase a rolling restart (servers one at a time
// through the quorum gate, clients in batches), the phase stored with
// the target as TLS's is:
//
//  1. taskspec.ACLOpen: servers enable ACLs with default policy allow
//     and no agent token (the service's tokens do not exist in Consul
//     before the bootstrap, and Consul refuses an unknown token even
//     under allow). Clients do not restart. Once every server runs it,
//     the scheduler bootstraps ACLs (management token, policies, the
//     scheduler's, the agents' and the anonymous DNS tokens); the phase
//     ends only once that bootstrap succeeded.
//  2. taskspec.ACLAllow: every agent enables ACLs, default allow, with
//     its agent token.
//  3. ACLRequired: default deny, as installed with ACLs; cleared once
//     rolled out, which changes no configuration ID.

// ACLPhases is the number of phases of the ACL rollout.
const ACLPhases = 3

// ACLRequired is Target.ACLPhase in the rollout's last phase.
const ACLRequired = "required"

// ACLFor is whether a task of role r runs with ACLs, and its
// taskspec.Spec.ACLRollout, under t.
func (t Target) ACLFor(r taskspec.Role) (on bool, rollout string) {
	if !t.ACL {
		return false, ""
	}
	switch t.ACLPhase {
	case taskspec.ACLOpen:
		if r == taskspec.RoleServer {
			return true, taskspec.ACLOpen
		}
		return false, ""
	case taskspec.ACLAllow:
		return true, taskspec.ACLAllow
	}
	return true, ""
}

// ACLPhaseNumber is the ACL rollout's phase, 1 to ACLPhases, or 0 when
// none is under way.
func (t Target) ACLPhaseNumber() int {
	if !t.ACL {
		return 0
	}
	switch t.ACLPhase {
	case taskspec.ACLOpen:
		return 1
	case taskspec.ACLAllow:
		return 2
	case ACLRequired:
		return 3
	}
	return 0
}

// ACLPhaseWhat says what phase n of the ACL rollout does.
func ACLPhaseWhat(n int) string {
	switch n {
	case 1:
		return "servers enable ACLs with default policy allow; then the scheduler bootstraps ACLs (management, scheduler, agent and anonymous DNS tokens)"
	case 2:
		return "every agent enables ACLs with default policy allow and its agent token"
	case 3:
		return "every agent switches to default policy deny (as installed with ACLs)"
	}
	return ""
}

// ACLEnforced: every agent runs ACLs with default deny (installed with
// them, or turned on and rolled out), so Consul itself decides who may
// do what.
func (t Target) ACLEnforced() bool { return t.ACL && t.ACLPhaseNumber() == 0 }

// ACLTokensWithheld: the service's ACL tokens may not exist in Consul
// yet (ACLs are being turned on, phase 1, and this scheduler has not seen
// the bootstrap succeed), so the scheduler calls Consul without a token
// (anonymous, which default allow lets through) rather than with one
// Consul would refuse. bootstrapped: this scheduler's ACL bootstrap
// succeeded.
func ACLTokensWithheld(t Target, bootstrapped bool) bool {
	return t.ACLPhaseNumber() == 1 && !bootstrapped
}

// ACLBootstrapWaits says what the ACL bootstrap waits for under t ("":
// it may run now): in phase 1 of turning ACLs on, every server running
// the phase's configuration (ACLs enabled), so that the bootstrap never
// reaches a leader without ACLs. Outside a rollout it may always run.
func ACLBootstrapWaits(t Target, ts Tasks) string {
	if !t.ACL || t.ACLPhaseNumber() != 1 {
		return ""
	}
	var waiting []string
	for i := 0; i < t.Servers; i++ {
		name := ServerName(i)
		if s, ok := ts[name]; !ok || !onTarget(s, t) {
			waiting = append(waiting, name)
		}
	}
	if len(waiting) == 0 {
		return ""
	}
	return fmt.Sprintf("turning ACLs on: the bootstrap waits until every server runs ACLs (not yet: %v)", waiting)
}

// carryACLRollout is carryTLSRollout for ACLs: the first phase when the
// stored target ran without ACLs, the stored phase when a rollout was
// under way, t itself otherwise.
func carryACLRollout(stored *Target, t Target) Target {
	if !t.ACL || t.Uninstall || stored == nil {
		return t
	}
	switch {
	case !stored.ACL:
		t.ACLPhase = taskspec.ACLOpen
	case stored.ACLPhase != "":
		t.ACLPhase = stored.ACLPhase
	default:
		return t
	}
	return t.WithConfigID()
}

// aclNext is the ACL rollout's next phase after n ("" after the last).
func aclNext(n int) string {
	switch n {
	case 1:
		return taskspec.ACLAllow
	case 2:
		return ACLRequired
	}
	return ""
}
