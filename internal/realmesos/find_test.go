package realmesos

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFindInstallScriptBesideTheRepository(t *testing.T) {
	root := t.TempDir()
	repo := filepath.Join(root, "repo")
	pkg := filepath.Join(repo, "internal", "realmesos")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, ok := FindInstallScript(pkg); ok {
		t.Fatalf("found %s with no shared/mesos beside the repository", p)
	}
	want := filepath.Join(root, "shared", "mesos", "install.sh")
	if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(want, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, ok := FindInstallScript(pkg); !ok || p != want {
		t.Fatalf("FindInstallScript(%s) = %q, %v; want %q", pkg, p, ok, want)
	}
}
