package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// Federation with the secure defaults (ACLs and gossip encryption on).
// Secrets come from files whose paths are in the environment, never the
// secrets themselves (the environment shows in Marathon and
// /master/state); on DC/OS the package mounts DC/OS secrets there.
const (
	// EnvPrimaryDatacenter is Consul's primary_datacenter, the one whose
	// ACL system is authoritative; empty: this install's own datacenter.
	EnvPrimaryDatacenter = "CONSUL_PRIMARY_DATACENTER"
	// EnvGossipKeyFile names a file holding the gossip key (base64, as
	// `consul keygen` prints it) every federated datacenter shares;
	// empty: the scheduler generates one.
	EnvGossipKeyFile = "SECURITY_GOSSIP_ENCRYPTION_KEY_FILE"
	// EnvACLReplicationTokenFile names a file holding the ACL token a
	// secondary datacenter's servers replicate ACLs with (Consul's
	// tokens.replication), created by the operator in the primary.
	EnvACLReplicationTokenFile = "SECURITY_ACL_REPLICATION_TOKEN_FILE"
	// EnvGossipKeySecret and EnvACLReplicationTokenSecret are the names
	// of the DC/OS secrets (never their values) that the package mounts
	// into the scheduler's sandbox and names in the two variables above,
	// as it does with the service account secret.
	EnvGossipKeySecret           = "SECURITY_GOSSIP_ENCRYPTION_KEY_SECRET"
	EnvACLReplicationTokenSecret = "SECURITY_ACL_REPLICATION_TOKEN_SECRET"
)

// Primary is the ACL primary datacenter: consul.primary_datacenter, or
// this install's own datacenter.
func (c Config) Primary() string {
	if c.PrimaryDatacenter != "" {
		return c.PrimaryDatacenter
	}
	return c.Datacenter
}

// Secondary: this install is a secondary datacenter of a federation. With
// ACLs it does not bootstrap them: it replicates the primary's.
func (c Config) Secondary() bool { return c.Primary() != c.Datacenter }

// GossipKeyFromFile reads the shared gossip key; ok is false when no
// file is configured. Errors name the file, never its content.
func (c Config) GossipKeyFromFile() (key string, ok bool, err error) {
	if c.GossipKeyFile == "" {
		return "", false, nil
	}
	key, err = readGossipKey(c.GossipKeyFile)
	if err != nil {
		return "", false, fmt.Errorf("%s %s (the shared gossip key, security.gossip_encryption.key_secret on DC/OS): %w", EnvGossipKeyFile, c.GossipKeyFile, err)
	}
	return key, true, nil
}

func readGossipKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", errors.New(fileReason(err))
	}
	key := strings.TrimSpace(string(b))
	if err := taskspec.ValidGossipKey(key); err != nil {
		return "", fmt.Errorf("%w (make one with `consul keygen`)", err)
	}
	return key, nil
}

// ReplicationToken reads the ACL replication token; "" when no file is
// configured. Errors name the file, never its content.
func (c Config) ReplicationToken() (string, error) {
	if c.ACLReplicationTokenFile == "" {
		return "", nil
	}
	tok, err := readToken(c.ACLReplicationTokenFile)
	if err != nil {
		return "", fmt.Errorf("%s %s (the ACL replication token, security.acl.replication_token_secret on DC/OS): %w", EnvACLReplicationTokenFile, c.ACLReplicationTokenFile, err)
	}
	return tok, nil
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", errors.New(fileReason(err))
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", errors.New("want one ACL token (its SecretID) and nothing else")
	}
	return tok, nil
}

// validFederation checks the federation options together.
func (c Config) validFederation() error {
	var errs []error
	for _, s := range []struct{ secretEnv, secret, fileEnv, file string }{
		{EnvGossipKeySecret, c.GossipKeySecret, EnvGossipKeyFile, c.GossipKeyFile},
		{EnvACLReplicationTokenSecret, c.ACLReplicationTokenSecret, EnvACLReplicationTokenFile, c.ACLReplicationTokenFile},
	} {
		if s.secret != "" && s.file == "" {
			errs = append(errs, bad(s.fileEnv, "", "set together with "+s.secretEnv+" (the package sets both when the secret is given)"))
		}
	}
	if c.PrimaryDatacenter != "" && !validDatacenter(c.PrimaryDatacenter) {
		errs = append(errs, bad(EnvPrimaryDatacenter, c.PrimaryDatacenter, "a datacenter name (1-63 lower-case letters, digits, '-' and '_'), or empty for this install's own datacenter"))
	}
	if c.GossipKeyFile != "" {
		if !c.GossipEncryption {
			errs = append(errs, bad(EnvGossipKeyFile, c.GossipKeyFile, "empty while gossip encryption is off (security.gossip_encryption.enabled)"))
		} else if _, err := readGossipKey(c.GossipKeyFile); err != nil {
			errs = append(errs, bad(EnvGossipKeyFile, c.GossipKeyFile, "a readable file with a gossip key, base64 of 16, 24 or 32 bytes: "+err.Error()))
		}
	}
	switch {
	case c.ACLReplicationTokenFile != "" && !(c.ACL && c.Secondary()):
		env, v := EnvACLReplicationTokenFile, c.ACLReplicationTokenFile
		if c.ACLReplicationTokenSecret != "" {
			env, v = EnvACLReplicationTokenSecret, c.ACLReplicationTokenSecret // the option the user set
		}
		errs = append(errs, bad(env, v,
			"empty unless this install is a secondary datacenter with ACLs (consul.primary_datacenter another datacenter, security.acl.enabled): the primary's ACLs are bootstrapped, not replicated"))
	case c.ACLReplicationTokenFile != "":
		if _, err := readToken(c.ACLReplicationTokenFile); err != nil {
			errs = append(errs, bad(EnvACLReplicationTokenFile, c.ACLReplicationTokenFile, "a readable file with the replication token: "+err.Error()))
		}
	case c.ACL && c.Secondary():
		errs = append(errs, bad(EnvACLReplicationTokenSecret, c.ACLReplicationTokenSecret,
			"the DC/OS secret (off DC/OS: "+EnvACLReplicationTokenFile+", its file) of an ACL replication token created in the primary datacenter "+c.Primary()+" (policy: docs/operations.md, Federating datacenters): a secondary datacenter with ACLs does not bootstrap them, it replicates the primary's"))
	}
	return errors.Join(errs...)
}

// fileReason is why a file could not be read, without its path (the
// caller names it) and never its content.
func fileReason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
