// Package realmesos runs dcos-consul on a real Apache Mesos cluster on
// loopback: a real master (replicated log, ZooKeeper leader detection),
// real agents with the posix launcher, real Mesos-DNS, the real
// `dcos-consul scheduler` process, and the real `dcos-consul executor`
// fetched by the agents' real fetcher. Its tests (realmesos_test.go) check
// what the simulator-based tests of internal/dev check, against the real
// master's answers.
//
// It is a test harness: the production scheduler and executor never import
// it. Mesos comes from /opt/mesos, installed by ../shared/mesos/install.sh
// (see /work/shared/mesos/README.md and docs/real-mesos.md).
package realmesos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Prefix is where install.sh puts Mesos; its binaries look for their
// libraries there (RUNPATH), so the prefix is fixed.
const Prefix = "/opt/mesos"

// RequireEnv, set to 1 (CI sets it in .ci/run when ../shared/mesos
// exists), turns a missing or unrunnable Mesos into a failure instead of a
// skip.
const RequireEnv = "DCOS_CONSUL_REQUIRE_REAL_MESOS"

// Required reports whether $DCOS_CONSUL_REQUIRE_REAL_MESOS asks for the
// real-Mesos suite to run.
func Required() bool {
	v := os.Getenv(RequireEnv)
	return v != "" && v != "0" && v != "false"
}

// Installed reports whether Prefix holds a master, an agent and Mesos-DNS
// that run here (each prints its version: its libraries load).
func Installed() error {
	for _, c := range []struct{ path, flag string }{
		{"sbin/mesos-master", "--version"}, {"sbin/mesos-agent", "--version"}, {"bin/mesos-dns", "-version"},
	} {
		p := filepath.Join(Prefix, c.path)
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("no %s: %w", p, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, p, c.flag).CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("%s %s does not run: %w: %s", p, c.flag, err, out)
		}
	}
	return nil
}

// FindInstallScript returns <repo>/../shared/mesos/install.sh, where CI
// puts it beside the fresh clone; <repo> is the first directory at or
// above dir that holds go.mod.
func FindInstallScript(dir string) (string, bool) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			p := filepath.Join(filepath.Dir(d), "shared", "mesos", "install.sh")
			_, err := os.Stat(p)
			return p, err == nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", false
		}
		d = parent
	}
}

// Ensure makes Mesos available: it is there, or the install.sh beside the
// repository holding dir installs it (idempotent; needs root and apt the first time). The error
// says what is missing and what was tried.
func Ensure(ctx context.Context, dir string) error {
	missing := Installed()
	if missing == nil {
		return nil
	}
	script, ok := FindInstallScript(dir)
	if !ok {
		return fmt.Errorf("real Mesos is not usable (%v) and there is no ../shared/mesos/install.sh beside the repository", missing)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", script).CombinedOutput()
	if err != nil {
		return fmt.Errorf("installing real Mesos with %s: %w\n%s", script, err, out)
	}
	if err := Installed(); err != nil {
		return fmt.Errorf("%s ran but Mesos is still missing: %w\n%s", script, err, out)
	}
	return nil
}
