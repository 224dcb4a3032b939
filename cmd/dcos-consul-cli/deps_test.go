package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestSmallDependencies: the CLI plugin stays small (a few MB, built for
// six platforms) only while it does not pull in the scheduler's packages,
// whose configuration code imports Consul's agent: one import of
// scheduler/plan from a package the operator commands use made it 73 MB
// (docs/BENCHMARKS.md, "Artifact size").
func TestSmallDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v: %s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/hashicorp/consul/agent", "github.com/dcos-consul/dcos-consul/scheduler/config",
			"github.com/dcos-consul/dcos-consul/scheduler/state", "github.com/dcos-consul/dcos-consul/executor"} {
			if p == bad || strings.HasPrefix(p, bad+"/") {
				t.Errorf("the CLI plugin depends on %s (via the operator commands' imports): it would carry Consul's agent code", p)
			}
		}
	}
}
