package dev

import (
	"os/exec"
	"strings"
	"testing"
)

// TestProductionDoesNotImportTheHarness keeps the simulator and dev out of
// the scheduler and executor packages: they are a test and development
// harness, and the production code must not come to depend on their
// behaviour.
func TestProductionDoesNotImportTheHarness(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps",
		"github.com/dcos-consul/dcos-consul/scheduler/...",
		"github.com/dcos-consul/dcos-consul/executor/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "/internal/mesossim") || strings.HasSuffix(pkg, "/internal/dev") {
			t.Errorf("production code imports %s", pkg)
		}
	}
}
