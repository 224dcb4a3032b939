package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testGossipKey = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="

func secretFile(t *testing.T, name, v string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFederationOptions(t *testing.T) {
	key := secretFile(t, "key", testGossipKey+"\n")
	tok := secretFile(t, "tok", " 6a1e33a6-8d57-4b39-a5b3-0f7e3f1c2d11\n")
	c, err := Load(env(map[string]string{EnvDatacenter: "dc2", EnvPrimaryDatacenter: "dc1",
		EnvGossipKeyFile: key, EnvACLReplicationTokenFile: tok}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Secondary() || c.Primary() != "dc1" {
		t.Errorf("dc2 with primary dc1: Secondary %v Primary %q", c.Secondary(), c.Primary())
	}
	if k, ok, err := c.GossipKeyFromFile(); k != testGossipKey || !ok || err != nil {
		t.Errorf("GossipKeyFromFile: %v %v", ok, err)
	}
	if r, err := c.ReplicationToken(); r != "6a1e33a6-8d57-4b39-a5b3-0f7e3f1c2d11" || err != nil {
		t.Errorf("ReplicationToken: %v", err)
	}
	// The primary: its own datacenter, named or not.
	for _, pd := range []string{"", "dc1"} {
		c, err := Load(env(map[string]string{EnvPrimaryDatacenter: pd, EnvGossipKeyFile: key}))
		if err != nil || c.Secondary() || c.Primary() != "dc1" {
			t.Errorf("primary %q: Secondary %v Primary %q %v", pd, c.Secondary(), c.Primary(), err)
		}
	}
	// A secondary without ACLs replicates nothing.
	if _, err := Load(env(map[string]string{EnvDatacenter: "dc2", EnvPrimaryDatacenter: "dc1", EnvACL: "false"})); err != nil {
		t.Errorf("secondary without ACLs: %v", err)
	}
}

func TestFederationBadValues(t *testing.T) {
	secret := "6a1e33a6-8d57-4b39-a5b3-0f7e3f1c2d11"
	tok := secretFile(t, "tok", secret)
	notKey := secretFile(t, "notkey", "not-a-key-"+secret)
	shortKey := secretFile(t, "short", "c2hvcnQ=")
	twoTokens := secretFile(t, "two", secret+"\n"+secret)
	for _, tc := range []struct {
		name string
		env  map[string]string
		bad  string // the variable named
		says string
	}{
		{"secondary without a replication token", map[string]string{EnvDatacenter: "dc2", EnvPrimaryDatacenter: "dc1"},
			EnvACLReplicationTokenSecret, "created in the primary datacenter dc1"},
		{"a secret without its file", map[string]string{EnvGossipKeySecret: "consul/gossip-key"}, EnvGossipKeyFile, "set together with"},
		{"a replication token in the primary", map[string]string{EnvACLReplicationTokenFile: tok},
			EnvACLReplicationTokenFile, "secondary datacenter"},
		{"a missing token file", map[string]string{EnvDatacenter: "dc2", EnvPrimaryDatacenter: "dc1", EnvACLReplicationTokenFile: "/nonexistent/tok"},
			EnvACLReplicationTokenFile, "no such file"},
		{"two tokens", map[string]string{EnvDatacenter: "dc2", EnvPrimaryDatacenter: "dc1", EnvACLReplicationTokenFile: twoTokens},
			EnvACLReplicationTokenFile, "one ACL token"},
		{"a bad primary name", map[string]string{EnvPrimaryDatacenter: "DC 1"}, EnvPrimaryDatacenter, "datacenter name"},
		{"not a key", map[string]string{EnvGossipKeyFile: notKey}, EnvGossipKeyFile, "not base64"},
		{"a short key", map[string]string{EnvGossipKeyFile: shortKey}, EnvGossipKeyFile, "5 bytes"},
		{"a missing key file", map[string]string{EnvGossipKeyFile: "/nonexistent/key"}, EnvGossipKeyFile, "no such file"},
		{"a key file without encryption", map[string]string{EnvGossipKeyFile: shortKey, EnvGossipKey: "false"}, EnvGossipKeyFile, "gossip encryption is off"},
	} {
		_, err := Load(env(tc.env))
		var ve *ValueError
		if err == nil || !errors.As(err, &ve) {
			t.Errorf("%s: %v, want a ValueError", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.bad) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v\nwant it to name %s and say %q", tc.name, err, tc.bad, tc.says)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows the file's content: %v", tc.name, err)
		}
	}
}

func TestPrimaryDatacenterIsFixedAtInstall(t *testing.T) {
	tok := secretFile(t, "tok", "6a1e33a6-8d57-4b39-a5b3-0f7e3f1c2d11")
	old := Defaults()
	old.Datacenter = "dc2"
	secondary := old
	secondary.PrimaryDatacenter, secondary.ACLReplicationTokenFile = "dc1", tok
	var ue *UpdateError
	if _, err := CheckUpdate(old, secondary); !errors.As(err, &ue) || ue.Refused[0].Env != EnvPrimaryDatacenter {
		t.Fatalf("a primary becoming a secondary: %v, want refused", err)
	}
	// Naming the install's own datacenter is no change.
	same := old
	same.PrimaryDatacenter = "dc2"
	if _, err := CheckUpdate(old, same); err != nil {
		t.Fatalf("primary_datacenter set to the own datacenter: %v", err)
	}
	// A new token file is the scheduler's business.
	other := secondary
	other.ACLReplicationTokenFile = tok + ".new"
	if ch, err := CheckUpdate(secondary, other); err != nil || len(ch.Fields) != 1 || ch.Fields[0].Effect != EffectScheduler {
		t.Fatalf("a new replication token file: %+v %v", ch, err)
	}
}
