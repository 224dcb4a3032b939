// Package secrets holds the service's own secrets: the Consul gossip
// encryption keyring, the key that signs per-task executor credentials and
// the operator token of the scheduler API. The scheduler generates each
// once (crypto/rand), keeps them in its state store under one key, and
// hands them out only over the channels docs/security.md describes.
//
// Nothing here ever formats a secret into an error or a log field.
package secrets

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/pki"
)

// Key is the state store key of the secrets document.
const Key = "secrets"

// Store is the part of the state store secrets need.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, value []byte) error
}

// Secrets is the stored document. GossipKeys[0] is the primary key (the
// one agents encrypt with); the others are still accepted (a rotation in
// progress).
type Secrets struct {
	GossipKeys []string `json:"gossip_keys"`
	// RotatingTo is the key a gossip key rotation under way installs
	// (also in GossipKeys); "" when none is.
	RotatingTo  string `json:"rotating_to,omitempty"`
	ExecutorKey []byte `json:"executor_key"`
	// OldExecutorKeys still verify credentials (never sign new ones):
	// after secrets recovered from a server's copy, the key tasks
	// launched while they were lost got their credentials under.
	OldExecutorKeys [][]byte `json:"old_executor_keys,omitempty"`
	OperatorToken   string   `json:"operator_token"`
	// Consul ACL secrets (UUIDs, as Consul wants them): the initial
	// management token the scheduler bootstraps ACLs with, its own
	// narrower token, and the token every agent uses.
	ManagementToken string `json:"management_token"`
	SchedulerToken  string `json:"scheduler_token"`
	AgentToken      string `json:"agent_token"`
	// ManagementNext is the management secret a rotation under way
	// creates in Consul (the stored ManagementToken still works);
	// ManagementOld is the one a rotation retires once ManagementNext is
	// the management token. Both "" when no rotation is under way.
	ManagementNext string `json:"management_next,omitempty"`
	ManagementOld  string `json:"management_old,omitempty"`
	// CA is the service's certificate authority for Consul's TLS
	// (generated with the other secrets, whether TLS is on or not, so
	// that it exists before any task needs it).
	CA pki.CA `json:"ca"`
	// UserCA is the CA the user brought (security.tls.ca_*_file): it
	// replaces CA in memory and is never written to the store.
	UserCA pki.CA `json:"-"`
	// ReplicationToken is a secondary datacenter's ACL replication token
	// (security.acl.replication_token_secret): in memory only, like UserCA.
	ReplicationToken string `json:"-"`
}

// ActiveCA is the CA that signs: the user's when one was given.
func (s Secrets) ActiveCA() pki.CA {
	if !s.UserCA.Empty() {
		return s.UserCA
	}
	return s.CA
}

// String never shows a secret (a %v of a Secrets in a log stays safe).
func (Secrets) String() string { return "secrets{redacted}" }

// GoString is String for %#v.
func (s Secrets) GoString() string { return s.String() }

// GossipKey is the primary gossip key.
func (s Secrets) GossipKey() string {
	if len(s.GossipKeys) == 0 {
		return ""
	}
	return s.GossipKeys[0]
}

// Complete reports whether every secret is there.
func (s Secrets) Complete() bool {
	return len(s.GossipKeys) > 0 && len(s.ExecutorKey) >= 32 && len(s.OperatorToken) >= 32 &&
		s.ManagementToken != "" && s.SchedulerToken != "" && s.AgentToken != ""
}

// Fill generates every missing secret from rnd (nil: crypto/rand) and
// reports whether anything was added.
func Fill(s Secrets, rnd io.Reader) (Secrets, bool, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	changed := false
	if len(s.GossipKeys) == 0 {
		k, err := NewGossipKey(rnd)
		if err != nil {
			return s, false, err
		}
		s.GossipKeys = []string{k}
		changed = true
	}
	if len(s.ExecutorKey) < 32 {
		b := make([]byte, 32)
		if _, err := io.ReadFull(rnd, b); err != nil {
			return s, false, fmt.Errorf("secrets: executor key: %w", err)
		}
		s.ExecutorKey = b
		changed = true
	}
	if len(s.OperatorToken) < 32 {
		t, err := randomToken(rnd)
		if err != nil {
			return s, false, err
		}
		s.OperatorToken = t
		changed = true
	}
	for _, p := range []*string{&s.ManagementToken, &s.SchedulerToken, &s.AgentToken} {
		if *p != "" {
			continue
		}
		u, err := newUUID(rnd)
		if err != nil {
			return s, false, err
		}
		*p = u
		changed = true
	}
	return s, changed, nil
}

// newUUID is a random (version 4) UUID, the form Consul wants for token
// secrets.
func newUUID(rnd io.Reader) (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", fmt.Errorf("secrets: ACL token: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// NewGossipKey returns a fresh Consul gossip key: base64 of 32 random
// bytes (AES-256), what `consul keygen` makes.
func NewGossipKey(rnd io.Reader) (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", fmt.Errorf("secrets: gossip key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func randomToken(rnd io.Reader) (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", fmt.Errorf("secrets: operator token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// LoadOrCreate reads the secrets from st, generates the missing ones and
// writes them back before returning: every secret a task or a caller may
// need exists durably before the scheduler launches anything. rnd nil
// means crypto/rand.
func LoadOrCreate(ctx context.Context, st Store, rnd io.Reader, notFound error) (Secrets, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var s Secrets
	b, err := st.Get(ctx, Key)
	switch {
	case errors.Is(err, notFound):
	case err != nil:
		return Secrets{}, fmt.Errorf("read the secrets: %w", err)
	default:
		if err := json.Unmarshal(b, &s); err != nil {
			// Never regenerate over a document that cannot be read: agents
			// already hold its gossip key.
			return Secrets{}, fmt.Errorf("the stored secrets (state key %q) are not readable JSON; fix or restore them: %w", Key, errors.New(syntaxOnly(err)))
		}
		for _, k := range s.GossipKeys {
			if err := taskspec.ValidGossipKey(k); err != nil {
				return Secrets{}, fmt.Errorf("the stored secrets (state key %q): %w", Key, err)
			}
		}
	}
	s, changed, err := Fill(s, rnd)
	if err != nil {
		return Secrets{}, err
	}
	if s.CA.Empty() {
		ca, err := pki.NewCA(rnd, "consul", time.Now())
		if err != nil {
			return Secrets{}, err
		}
		s.CA, changed = ca, true
	}
	if changed {
		b, err := json.Marshal(s)
		if err != nil {
			return Secrets{}, fmt.Errorf("secrets: encode: %w", err)
		}
		if err := st.Put(ctx, Key, b); err != nil {
			return Secrets{}, fmt.Errorf("write the secrets: %w", err)
		}
	}
	return s, nil
}

// syntaxOnly keeps the kind of a JSON error without the bytes around it.
func syntaxOnly(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("JSON syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	}
	return "not a secrets document"
}

// Credential is the per-task credential of taskID: HMAC-SHA256 of the task
// ID under the executor key, base64url.
func (s Secrets) Credential(taskID string) string {
	m := hmac.New(sha256.New, s.ExecutorKey)
	m.Write([]byte("dcos-consul executor secrets\x00" + taskID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// VerifyCredential reports whether token is taskID's credential (in
// constant time).
func (s Secrets) VerifyCredential(taskID, token string) bool {
	if len(s.ExecutorKey) == 0 || taskID == "" {
		return false
	}
	ok := hmac.Equal([]byte(s.Credential(taskID)), []byte(token))
	for _, k := range s.OldExecutorKeys {
		ok = hmac.Equal([]byte(Secrets{ExecutorKey: k}.Credential(taskID)), []byte(token)) || ok
	}
	return ok
}

// VerifyOperator reports whether token is the operator token (in constant
// time).
func (s Secrets) VerifyOperator(token string) bool {
	if s.OperatorToken == "" || token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(s.OperatorToken), []byte(token)) == 1
}

// Needs are what a task uses: gossip encryption, ACLs, TLS; Server is
// set for a server with TLS, which receives a certificate naming it.
type Needs struct {
	Gossip, ACL, TLS bool
	// Replication: a secondary datacenter's server, which replicates the
	// primary's ACLs with the replication token.
	Replication bool
	Server      *pki.ServerRequest
	// CopyFor (a server: its service's name) asks for the copy of the
	// whole document that the server keeps on its volume.
	CopyFor string
}

// ForTask is what a task's executor receives: only what it uses. With
// TLS every agent gets the CA certificate, and a server a certificate
// and key issued now (rnd nil: crypto/rand) under the active CA.
func (s Secrets) ForTask(n Needs, rnd io.Reader, now time.Time) (taskspec.Secrets, error) {
	var out taskspec.Secrets
	if n.TLS {
		ca := s.ActiveCA()
		out.TLSCACert = ca.CertPEM
		if n.Server != nil {
			p, err := ca.Parse(now)
			if err != nil {
				return taskspec.Secrets{}, fmt.Errorf("the service's CA: %w", err)
			}
			iss, err := pki.IssueServer(p, *n.Server, rnd, now)
			if err != nil {
				return taskspec.Secrets{}, err
			}
			out.TLSCert, out.TLSKey = iss.CertPEM, iss.KeyPEM
		}
	}
	if n.Gossip {
		out.GossipKey, out.GossipKeys = s.GossipKey(), append([]string(nil), s.GossipKeys...)
	}
	if n.ACL {
		out.ACLAgentToken = s.AgentToken
	}
	if n.CopyFor != "" {
		c, err := CopyFor(s, n.CopyFor, now)
		if err != nil {
			return taskspec.Secrets{}, err
		}
		out.SecretsCopy = c
	}
	if n.Replication {
		if s.ReplicationToken == "" {
			return taskspec.Secrets{}, errors.New("no ACL replication token (security.acl.replication_token_secret)")
		}
		out.ACLReplicationToken = s.ReplicationToken
	}
	return out, nil
}

// BeginRotation starts a gossip key rotation: a new key joins the keyring
// as RotatingTo (the primary stays). A rotation already under way is
// resumed as it is (changed false).
func BeginRotation(s Secrets, rnd io.Reader) (Secrets, bool, error) {
	if s.RotatingTo != "" {
		return s, false, nil
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	k, err := NewGossipKey(rnd)
	if err != nil {
		return s, false, err
	}
	s.GossipKeys = append(append([]string(nil), s.GossipKeys...), k)
	s.RotatingTo = k
	return s, true, nil
}

// UseGossipKey makes key, the gossip key federated datacenters share
// (security.gossip_encryption.key_secret), the service's key. A new service
// (fresh: no server launched yet) simply takes it as its only key; a
// running one rotates to it: it becomes RotatingTo (replacing a rotation
// under way to another key, whose key is removed with the old ones at
// the end), and the rotation's steps finish the change. changed is false
// when key is already the primary and nothing rotates.
func UseGossipKey(s Secrets, key string, fresh bool) (Secrets, bool) {
	if s.GossipKey() == key && s.RotatingTo == "" {
		return s, false
	}
	if fresh {
		s.GossipKeys, s.RotatingTo = []string{key}, ""
		return s, true
	}
	if s.RotatingTo == key {
		return s, false
	}
	keys := append([]string(nil), s.GossipKeys...)
	found := false
	for _, k := range keys {
		found = found || k == key
	}
	if !found {
		keys = append(keys, key)
	}
	s.GossipKeys, s.RotatingTo = keys, key
	return s, true
}

// PromoteRotation makes the rotation's key the primary, once every agent
// uses it; the old keys stay until they are removed.
func PromoteRotation(s Secrets) Secrets {
	if s.RotatingTo == "" {
		return s
	}
	keys := []string{s.RotatingTo}
	for _, k := range s.GossipKeys {
		if k != s.RotatingTo {
			keys = append(keys, k)
		}
	}
	s.GossipKeys = keys
	return s
}

// FinishRotation keeps only the new key, once the old ones are removed
// from every agent.
func FinishRotation(s Secrets) Secrets {
	if s.RotatingTo == "" {
		return s
	}
	s.GossipKeys = []string{s.RotatingTo}
	s.RotatingTo = ""
	return s
}

// BeginManagementRotation starts a rotation of the ACL management token:
// a new secret is chosen and stored as ManagementNext before Consul hears
// of it, so a scheduler killed at any later moment finds it and resumes.
// A rotation already under way is resumed as it is (changed false).
func BeginManagementRotation(s Secrets, rnd io.Reader) (Secrets, bool, error) {
	if s.ManagementNext != "" || s.ManagementOld != "" {
		return s, false, nil
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	u, err := newUUID(rnd)
	if err != nil {
		return s, false, err
	}
	s.ManagementNext = u
	return s, true, nil
}

// PromoteManagement makes ManagementNext the management token, once
// Consul holds it with global-management; the old secret is kept as
// ManagementOld until its token is deleted.
func PromoteManagement(s Secrets) Secrets {
	if s.ManagementNext == "" {
		return s
	}
	s.ManagementOld, s.ManagementToken, s.ManagementNext = s.ManagementToken, s.ManagementNext, ""
	return s
}

// FinishManagement forgets the old secret, once its token is deleted.
func FinishManagement(s Secrets) Secrets {
	s.ManagementOld = ""
	return s
}
