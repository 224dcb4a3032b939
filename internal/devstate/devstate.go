// Package devstate is where a running `dcos-consul dev` says it is: a small
// JSON file in its work dir and the same file at a well-known place in the
// user's home, so that `dcos-consul consul ...`, `dcos-consul dev status`,
// `dev stop` and `dev fault ...` find it from another terminal with no flag
// and no export. It is read by the operator commands, which must not import
// the dev harness itself.
package devstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// FileName is the state file's name, in the work dir and in the home's
// well-known directory.
const FileName = "dev.json"

// EnvFile overrides the well-known file's path (tests; several users of
// one home).
const EnvFile = "DCOS_CONSUL_DEV_FILE"

// State is what a running dev publishes.
type State struct {
	PID          int       `json:"pid"`
	WorkDir      string    `json:"work_dir"`
	SchedulerURL string    `json:"scheduler_url"`
	MasterURL    string    `json:"master_url"`
	MesosDNS     string    `json:"mesos_dns"`
	Started      time.Time `json:"started"`
	// TokenFile holds the scheduler's operator token (mode 0600): the
	// operator commands read it, so mutating ones work with no export.
	TokenFile string `json:"token_file,omitempty"`
	// CosmosURL is dev's stand-in for Cosmos's service update (the
	// operator command `update start` sends the new options there).
	CosmosURL string `json:"cosmos_url,omitempty"`
}

// WellKnown is the well-known state file: $DCOS_CONSUL_DEV_FILE, else
// ~/.dcos-consul/dev.json. lookup is os.LookupEnv in production.
func WellKnown(lookup func(string) (string, bool)) (string, error) {
	if v, ok := lookup(EnvFile); ok && v != "" {
		return v, nil
	}
	home, ok := lookup("HOME")
	if !ok || home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no home directory for ~/.dcos-consul/%s: %w", FileName, err)
		}
		home = h
	}
	return filepath.Join(home, ".dcos-consul", FileName), nil
}

// InWorkDir is the state file of the dev cluster in dir.
func InWorkDir(dir string) string { return filepath.Join(dir, FileName) }

// Write writes s to every path (creating directories), atomically.
func Write(s State, paths ...string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	for _, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
		if err := os.Rename(tmp, p); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
	}
	return nil
}

// ErrNotRunning: the file is missing or names a process that has ended.
var ErrNotRunning = errors.New("no dev cluster is running")

// Read reads the state file at path and checks that its process is alive.
func Read(path string) (State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return State{}, fmt.Errorf("%w (no %s)", ErrNotRunning, path)
	}
	if err != nil {
		return State{}, fmt.Errorf("reading %s: %w", path, err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("reading %s: %w", path, err)
	}
	if !Alive(s.PID) {
		return s, fmt.Errorf("%w (%s names process %d, which has ended)", ErrNotRunning, path, s.PID)
	}
	return s, nil
}

// Remove removes the files at paths that still name process pid (a newer
// dev may have taken the well-known file over).
func Remove(pid int, paths ...string) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var s State
		if json.Unmarshal(b, &s) == nil && s.PID == pid {
			_ = os.Remove(p)
		}
	}
}
