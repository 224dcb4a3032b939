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

// writeKeyrings makes the data directory's keyring files match the
// scheduler's keyring. With one key (no rotation under way) Consul keeps
// it in memory (disable_keyring_file) and any keyring file left by an
// earlier run is removed: it would be readable through the Mesos agent's
// /files API, and a stale one would win over encrypt. With several keys
// (an agent started during a rotation) they are written, primary first,
// mode 0600, as Consul writes them.
func writeKeyrings(spec taskspec.Spec, env Env, dataDir string) error {
	if !spec.GossipEncryption {
		return nil
	}
	keys := keyringKeys(env.GossipKey, env.GossipKeys)
	if len(keys) == 1 {
		for _, f := range []string{lanKeyringFile, wanKeyringFile} {
			if err := os.Remove(filepath.Join(dataDir, f)); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("consulagent: removing the old %s: %w", f, err)
			}
		}
		return nil
	}
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
