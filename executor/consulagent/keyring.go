package consulagent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// Consul's keyring files inside the data directory (agent.SerfLANKeyring,
// agent.SerfWANKeyring). Consul prefers them to the encrypt setting, and
// takes their first key as the primary.
const (
	lanKeyringFile = "serf/local.keyring"
	wanKeyringFile = "serf/remote.keyring"
)

// keyringKeys is the keyring the agent starts with: the primary first,
// then the other keys the scheduler says are in use, without duplicates.
func keyringKeys(primary string, all []string) []string {
	out := []string{primary}
	for _, k := range all {
		if k != primary && k != "" {
			dup := false
			for _, o := range out {
				dup = dup || o == k
			}
			if !dup {
				out = append(out, k)
			}
		}
	}
	return out
}

// writeKeyrings writes the scheduler's keyring over whatever the data
// directory holds: a server relaunched on its volume after a rotation it
// missed would otherwise start with a keyring the cluster no longer uses
// (Consul ignores encrypt when a keyring file exists). Mode 0600, as
// Consul writes them.
func writeKeyrings(spec taskspec.Spec, env Env, dataDir string) error {
	if !spec.GossipEncryption {
		return nil
	}
	keys := keyringKeys(env.GossipKey, env.GossipKeys)
	for _, k := range keys {
		if err := taskspec.ValidGossipKey(k); err != nil {
			return fmt.Errorf("consulagent: keyring: %w", err)
		}
	}
	b, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	files := []string{lanKeyringFile}
	if spec.Role == taskspec.RoleServer && spec.Ports.SerfWAN > 0 {
		files = append(files, wanKeyringFile)
	}
	for _, f := range files {
		path := filepath.Join(dataDir, f)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("consulagent: keyring directory: %w", err)
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return fmt.Errorf("consulagent: writing %s: %w", f, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("consulagent: writing %s: %w", f, err)
		}
	}
	return nil
}
