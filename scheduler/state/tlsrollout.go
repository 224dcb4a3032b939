package state

import (
	"fmt"
	"strings"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// Turning TLS on in a running cluster goes through phases, each a rolling
// restart of the existing update machinery (servers one at a time through
// the quorum gate, the leader last; clients in batches), as Consul's guide
// for an existing datacenter says:
//
//  1. taskspec.TLSAccept: every server gets its certificate, the HTTPS
//     port and auto_encrypt.allow_tls, and accepts TLS and plaintext RPC
//     but still sends plaintext (the servers not restarted yet have no
//     certificate to answer TLS with). Clients do not restart.
//  2. taskspec.TLSOutgoing: servers send TLS and verify the servers' name;
//     clients get their certificates through auto_encrypt and send TLS
//     (every server accepts it now). Plaintext is still accepted.
//  3. TLSRequired: TLS as installed with it: servers refuse plaintext RPC
//     and every agent turns plain HTTP off; the scheduler reaches Consul
//     over HTTPS from here on (every agent serves it since phase 1 or 2).
//     Once rolled out the phase is cleared ("": no rollout), which
//     changes no configuration ID.
//
// Plain HTTP stays on until phase 3, so callers keep working while they
// move to HTTPS.

// TLSPhases is the number of phases of the rollout.
const TLSPhases = 3

// TLSRequired is Target.TLSPhase in the rollout's last phase.
const TLSRequired = "required"

// TLSFor is whether a task of role r runs with TLS, and its
// taskspec.Spec.TLSRollout, under t.
func (t Target) TLSFor(r taskspec.Role) (on bool, rollout string) {
	if !t.TLS {
		return false, ""
	}
	switch t.TLSPhase {
	case taskspec.TLSAccept:
		if r == taskspec.RoleServer {
			return true, taskspec.TLSAccept
		}
		return false, ""
	case taskspec.TLSOutgoing:
		return true, taskspec.TLSOutgoing
	}
	return true, ""
}

// ClientPorts are the ports of a client under t: no HTTPS nor gRPC TLS
// while clients run without TLS (the first phase of turning TLS on, where
// the target has those ports for the servers already), as in a target
// without TLS.
func (t Target) ClientPorts() taskspec.Ports {
	p := t.Ports
	if on, _ := t.TLSFor(taskspec.RoleClient); !on {
		p.HTTPS, p.GRPCTLS = -1, 0
	}
	return p
}

// withTLSPhase is t (TLS on) in phase of the rollout: plain HTTP on
// httpPort during a phase, off once it is over; the configuration IDs
// follow.
func (t Target) withTLSPhase(phase string, httpPort int) Target {
	t.TLSPhase = phase
	if phase == "" || phase == TLSRequired {
		t.Ports.HTTP = -1
	} else {
		t.Ports.HTTP = httpPort
	}
	return t.WithConfigID()
}

// TLSPhaseNumber is the rollout's phase, 1 to TLSPhases, or 0 when no
// rollout is under way.
func (t Target) TLSPhaseNumber() int {
	switch t.TLSPhase {
	case taskspec.TLSAccept:
		return 1
	case taskspec.TLSOutgoing:
		return 2
	case TLSRequired:
		return 3
	}
	return 0
}

// TLSPhaseWhat says what phase n of the rollout does.
func TLSPhaseWhat(n int) string {
	switch n {
	case 1:
		return "servers get their certificates and accept TLS and plaintext RPC"
	case 2:
		return "every agent sends TLS (clients get their certificates through auto_encrypt); plaintext is still accepted"
	case 3:
		return "servers refuse plaintext RPC and every agent turns plain HTTP off"
	}
	return ""
}

// carryTLSRollout is the target a starting scheduler runs when t has TLS
// on: the first phase of a rollout when the stored target ran without TLS
// (TLS was just turned on; httpPort is the plain HTTP port kept during
// the rollout), the stored phase when a rollout was under way (a
// restarted scheduler resumes it), t itself otherwise.
func carryTLSRollout(stored *Target, t Target, httpPort int) Target {
	if !t.TLS || t.Uninstall || stored == nil {
		return t
	}
	switch {
	case !stored.TLS:
		return t.withTLSPhase(taskspec.TLSAccept, httpPort)
	case stored.TLSPhase != "":
		return t.withTLSPhase(stored.TLSPhase, stored.Ports.HTTP)
	}
	return t
}

// TLSRollout decides whether the TLS rollout moves to its next phase: once
// every server and every launched client runs the current phase's
// configuration (the rolling restart of the phase is over), next is the
// target of the next phase and advanced is true. Otherwise why says what
// the phase waits for (empty when no rollout is under way).
func TLSRollout(t Target, ts Tasks) (next Target, advanced bool, why string) {
	n := t.TLSPhaseNumber()
	if n == 0 {
		return t, false, ""
	}
	if waiting := tlsPhaseWaiting(t, ts); len(waiting) > 0 {
		return t, false, fmt.Sprintf("turning TLS on, phase %d of %d (%s): waiting for %s to run this phase's configuration",
			n, TLSPhases, TLSPhaseWhat(n), strings.Join(waiting, ", "))
	}
	switch n {
	case 1:
		return t.withTLSPhase(taskspec.TLSOutgoing, t.Ports.HTTP), true, ""
	case 2:
		return t.withTLSPhase(TLSRequired, -1), true, ""
	}
	return t.withTLSPhase("", -1), true, ""
}

// tlsPhaseWaiting names the tasks not running t's configuration yet.
func tlsPhaseWaiting(t Target, ts Tasks) []string {
	var out []string
	for i := 0; i < t.Servers; i++ {
		name := ServerName(i)
		if s, ok := ts[name]; !ok || !onTarget(s, t) {
			out = append(out, name)
		}
	}
	for _, c := range ts.Sorted() {
		if c.Role != taskspec.RoleClient || c.Goal == GoalStop || !c.Launched() || onTarget(c, t) {
			continue
		}
		out = append(out, c.Name)
	}
	return out
}

// onTarget: the task runs, launched with t's configuration, and nothing
// is pending for it.
func onTarget(x Task, t Target) bool {
	return x.Running() && x.Goal == GoalRunning && !x.RestartQueued && x.ConfigID == t.ConfigIDOf(x.Role)
}
