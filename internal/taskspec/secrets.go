package taskspec

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
)

// SecretsRef tells the executor where and how to fetch its task's secrets
// (the gossip encryption key). The secrets themselves never travel in
// TaskInfo.data: Mesos keeps TaskInfo in the master's memory and checkpoints
// it on the agent for the task's lifetime and after. The executor trades
// this reference once, over the scheduler API, for the secrets.
type SecretsRef struct {
	// URL is the base URL of the scheduler's executor channel: since
	// this field's sibling CACert exists, https://host:port of the
	// scheduler's TLS listener for the /v1/executor/ routes. A spec from
	// an older scheduler has http://host:port of its plain API and no
	// CACert; the executor still follows it (tasks running across an
	// upgrade).
	URL string `json:"url"`
	// CACert (PEM, public) is the only CA the executor trusts for an
	// https URL: the service's CA, which issued the scheduler's
	// certificate. Required with https, refused with http.
	CACert string `json:"ca_cert,omitempty"`
	// Token is the task's own credential: an HMAC of the task ID under a
	// key only the scheduler holds. The scheduler accepts it only while
	// the task is a live record, so a token of a finished task is useless.
	Token string `json:"token"`
}

// SecretsPath is the scheduler API route the executor fetches its secrets
// from: GET SecretsPath?task_id=<id> with "Authorization: Bearer <token>".
const SecretsPath = "/v1/executor/secrets"

// Secrets is the scheduler's answer on SecretsPath.
type Secrets struct {
	// GossipKey is the key the agent encrypts serf gossip with (base64 of
	// 32 bytes); empty when gossip encryption is off.
	GossipKey string `json:"gossip_key,omitempty"`
	// GossipKeys are every key the cluster's keyring holds (GossipKey
	// first): a new agent joining during a rotation accepts all of them.
	GossipKeys []string `json:"gossip_keys,omitempty"`
	// ACLAgentToken is the agent's ACL token (acl.tokens.agent); empty
	// when ACLs are off.
	ACLAgentToken string `json:"acl_agent_token,omitempty"`
	// ACLReplicationToken (servers of a secondary datacenter only) is the
	// token they replicate the primary's ACLs with (acl.tokens.replication).
	ACLReplicationToken string `json:"acl_replication_token,omitempty"`
	// TLSCACert is the CA certificate (PEM) the agent verifies its peers
	// against; TLSCert and TLSKey (PEM) are a server's own certificate
	// and key (clients get theirs from the servers: auto_encrypt). Empty
	// when TLS is off.
	TLSCACert string `json:"tls_ca_cert,omitempty"`
	TLSCert   string `json:"tls_cert,omitempty"`
	TLSKey    string `json:"tls_key,omitempty"`
	// SecretsCopy (servers only) is the scheduler's whole secrets
	// document, which the executor keeps on the server's persistent
	// volume (mode 0600) so that a scheduler that lost its state gets the
	// cluster's secrets back from it (SecretsCopyPath).
	SecretsCopy string `json:"secrets_copy,omitempty"`
}

// SecretsCopyPath is the scheduler API route where a server's executor
// presents the copy from its volume: POST SecretsCopyPath?task_id=<id>
// with the task's credential as "Authorization: Bearer" and the copy as
// the body. The scheduler accepts it only while its secrets are lost.
const SecretsCopyPath = "/v1/executor/secrets-copy"

// SecretsCopyFile is the copy's file name in a server's data directory
// (on its persistent volume).
const SecretsCopyFile = "dcos-consul-secrets.json"

// SecretsLost is the status the secrets route answers while the
// scheduler's secrets are lost: a server's executor then presents its
// copy on SecretsCopyPath and asks again.
const SecretsLost = 409

// String never shows a secret.
func (Secrets) String() string { return "task-secrets{redacted}" }

// GoString is String for %#v.
func (s Secrets) GoString() string { return s.String() }

func (r *SecretsRef) validate() error {
	if r == nil {
		return nil
	}
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("taskspec: secrets.url %q: want http(s)://host:port of the scheduler API", r.URL)
	}
	if r.Token == "" {
		return errors.New("taskspec: secrets.token is empty")
	}
	if err := ValidChannel(r.URL, r.CACert); err != nil {
		return fmt.Errorf("taskspec: secrets: %w", err)
	}
	return nil
}

// ValidChannel checks that the scheduler URL u and the CA certificate
// caPEM make a usable executor channel: https with a CA certificate that
// parses (the executor trusts that CA only), or plain http with none (a
// spec or MESSAGE from a scheduler from before the TLS channel).
func ValidChannel(u, caPEM string) error {
	pu, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("scheduler URL %q: %w", u, err)
	}
	switch {
	case pu.Scheme == "https" && caPEM == "":
		return fmt.Errorf("scheduler URL %q is https but no CA certificate comes with it", u)
	case pu.Scheme == "https" && !x509.NewCertPool().AppendCertsFromPEM([]byte(caPEM)):
		return errors.New("the scheduler's CA certificate is not a PEM certificate")
	case pu.Scheme == "http" && caPEM != "":
		return fmt.Errorf("scheduler URL %q is plain http but a CA certificate comes with it", u)
	}
	return nil
}

// ValidGossipKey reports whether k is a usable Consul gossip key: base64 of
// 16, 24 or 32 bytes (AES-128/192/256). It never puts k in its error.
func ValidGossipKey(k string) error {
	b, err := base64.StdEncoding.DecodeString(k)
	if err != nil {
		return errors.New("gossip key is not base64")
	}
	switch len(b) {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("gossip key is %d bytes, want 16, 24 or 32", len(b))
}
