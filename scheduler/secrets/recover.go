package secrets

// Recovery of the secrets after lost scheduler state (issue 12).
//
// Every server's executor keeps a copy of the secrets document on its
// persistent volume (CopyFor, written 0600 next to Consul's data). A
// scheduler that starts with adopted server records (or unexplained
// reservations) and no stored secrets is in the lost-secrets state: it
// generates nothing it would have to hand out, asks the servers for their
// copy, and stores the one Judge accepts. This file is the pure part:
// the copy's format and the decision to trust one.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// CopyVersion is the version of the copy document.
const CopyVersion = 1

// CopyFile is the copy's file name, in the server's data directory on its
// persistent volume.
const CopyFile = taskspec.SecretsCopyFile

// Copy is the document a server's volume holds.
type Copy struct {
	Version   int       `json:"version"`
	Service   string    `json:"service"`
	WrittenAt time.Time `json:"written_at"`
	Secrets   Secrets   `json:"secrets"`
}

// String never shows a secret.
func (Copy) String() string { return "secrets-copy{redacted}" }

// GoString is String for %#v.
func (c Copy) GoString() string { return c.String() }

// CopyFor encodes the copy handed to a server's executor: the stored
// document as it is (the user's CA and the replication token are never in
// it: they stay in the user's files).
func CopyFor(s Secrets, service string, now time.Time) (string, error) {
	b, err := json.Marshal(Copy{Version: CopyVersion, Service: service, WrittenAt: now.UTC(), Secrets: s})
	if err != nil {
		return "", fmt.Errorf("secrets: encode the copy: %w", err)
	}
	return string(b), nil
}

// ParseCopy reads a copy and checks it is whole; its errors name the
// field that is wrong, never a value.
func ParseCopy(b []byte) (Copy, error) {
	var c Copy
	if err := json.Unmarshal(b, &c); err != nil {
		return Copy{}, fmt.Errorf("the secrets copy is not readable JSON: %s", syntaxOnly(err))
	}
	if c.Version != CopyVersion {
		return Copy{}, fmt.Errorf("the secrets copy has version %d; this scheduler reads version %d", c.Version, CopyVersion)
	}
	if !c.Secrets.Complete() {
		return Copy{}, errors.New("the secrets copy is incomplete (a gossip key, the executor key, the operator token or an ACL token is missing)")
	}
	for _, k := range c.Secrets.GossipKeys {
		if err := taskspec.ValidGossipKey(k); err != nil {
			return Copy{}, fmt.Errorf("the secrets copy: %w", err)
		}
	}
	if c.Secrets.CA.Empty() {
		return Copy{}, errors.New("the secrets copy has no CA")
	}
	return c, nil
}

// Presenter is who offers a copy.
type Presenter struct {
	// Operator: the caller holds the operator token (the manual way).
	Operator bool
	// Task: the task ID a task credential was verified for ("" if none).
	Task string
	// AdoptedServer: Task is the live server record of a volume this
	// scheduler adopted (not one it placed itself).
	AdoptedServer bool
	// Agree is how many adopted servers (this one included) presented
	// the same copy (SameCopy) since the scheduler started; Need is a
	// majority of the servers. Only used when no Consul server answers.
	Agree, Need int
}

// Cluster is what the running Consul cluster said about a copy, read by
// the shell with the copy's own secrets.
type Cluster struct {
	// Reached: a server answered (over HTTPS verified against the copy's
	// CA when TLS is on). False when no server runs (all relaunching).
	Reached bool
	// Err is why no server answered, for the log and the API.
	Err string
	// ManagementOK: the copy's management token is a global-management
	// token of this cluster (ACLs on).
	ManagementOK bool
	// Keys is the cluster's LAN keyring, primary first (gossip on);
	// KeysErr why it could not be read.
	Keys    []string
	KeysErr string
}

// Uses is what the service uses (the target's security options).
type Uses struct {
	ACL, Gossip, TLS bool
	Service          string
}

// Verdict is the decision on one copy.
type Verdict struct {
	Accept bool
	// Verified: the running cluster confirmed the copy (else it was
	// accepted on the presenter's word: no server answered).
	Verified bool
	Why      string
}

// Judge decides whether to store a presented copy as the service's
// secrets. It accepts only while the secrets are lost, only from the
// operator or a live server task on an adopted volume, only a copy of
// this service, and, when a server answers, only a copy the cluster
// confirms: its management token is global-management (ACLs), its
// keyring and the cluster's share their primary keys (gossip). When no
// server answers (every server is being relaunched onto its volume), the
// copy from an adopted server's own volume is accepted unverified; the
// ACL bootstrap then checks its management token against Consul.
func Judge(lost bool, p Presenter, c Copy, u Uses, cl Cluster) Verdict {
	switch {
	case !lost:
		return Verdict{Why: "the scheduler's secrets are not lost: there is nothing to recover"}
	case !p.Operator && p.Task == "":
		return Verdict{Why: "a copy is accepted only from the operator or a server task's executor"}
	case !p.Operator && !p.AdoptedServer:
		return Verdict{Why: fmt.Sprintf("task %s is not a live server on a volume adopted after the state loss", p.Task)}
	case c.Service != "" && u.Service != "" && c.Service != u.Service:
		return Verdict{Why: fmt.Sprintf("the copy belongs to service %q, not %q", c.Service, u.Service)}
	}
	from := "the operator"
	if !p.Operator {
		from = "server task " + p.Task
	}
	if !cl.Reached && !p.Operator && p.Agree < p.Need {
		return Verdict{Why: fmt.Sprintf("no Consul server answers to verify the copy from %s (%s): waiting until a majority of the servers (%d) present the same copy from their volumes, %d so far", from, orNone(cl.Err), p.Need, p.Agree)}
	}
	if !cl.Reached {
		return Verdict{Accept: true, Why: fmt.Sprintf("copy from %s accepted unverified: no Consul server answers (%s); the ACL bootstrap verifies its management token once the servers run", from, orNone(cl.Err))}
	}
	if u.ACL && !cl.ManagementOK {
		return Verdict{Why: fmt.Sprintf("the copy from %s is refused: the cluster does not accept its management token as global-management", from)}
	}
	if u.Gossip {
		if why := sharedPrimaries(c.Secrets.GossipKeys, cl.Keys, cl.KeysErr); why != "" {
			return Verdict{Why: fmt.Sprintf("the copy from %s is refused: %s", from, why)}
		}
	}
	return Verdict{Accept: true, Verified: true, Why: fmt.Sprintf("copy from %s verified against the running cluster (ACL management token: %v, gossip keyring: %v, TLS CA: %v)", from, u.ACL, u.Gossip, u.TLS)}
}

// SameCopy is what copies must share to count as the same: the
// secrets the running cluster depends on (not when they were written).
func SameCopy(c Copy) string {
	h := sha256.New()
	for _, k := range c.Secrets.GossipKeys {
		h.Write([]byte(k + "\x00"))
	}
	for _, v := range []string{c.Secrets.ManagementToken, c.Secrets.SchedulerToken, c.Secrets.AgentToken, c.Secrets.CA.CertPEM, string(c.Secrets.ExecutorKey)} {
		h.Write([]byte(v + "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sharedPrimaries: agents given the copy's keyring must talk to the
// running ones: the copy's primary key is in the cluster's keyring, and
// the cluster's primary is in the copy's. "" when they are.
func sharedPrimaries(copyKeys, live []string, liveErr string) string {
	if len(live) == 0 {
		return "the cluster answered no gossip keyring (" + orNone(liveErr) + ")"
	}
	if !contains(live, copyKeys[0]) {
		return "its primary gossip key is not in the cluster's keyring"
	}
	if !contains(copyKeys, live[0]) {
		return "the cluster's primary gossip key is not in its keyring"
	}
	return ""
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func orNone(s string) string {
	if s == "" {
		return "no answer"
	}
	return s
}

// Recovered is what the scheduler stores from an accepted copy: the
// copy's secrets, with the executor key of the lost-secrets period kept
// as an accepted one (tasks launched during it hold credentials under it)
// and the copy's own executor key still signing (the adopted tasks'
// credentials are under it).
func Recovered(c Copy, interim Secrets) Secrets {
	s := c.Secrets
	if len(interim.ExecutorKey) > 0 && string(interim.ExecutorKey) != string(s.ExecutorKey) {
		s.OldExecutorKeys = append(append([][]byte(nil), s.OldExecutorKeys...), interim.ExecutorKey)
	}
	s.UserCA, s.ReplicationToken = interim.UserCA, interim.ReplicationToken
	return s
}
