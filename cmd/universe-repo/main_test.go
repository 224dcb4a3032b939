package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dcos-consul/dcos-consul/internal/universe"
)

func TestMarathonMode(t *testing.T) {
	out := filepath.Join(t.TempDir(), "marathon.json")
	if err := run([]string{"-root", "../..", "-marathon", out}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../marathon.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Error("-marathon with the defaults does not reproduce marathon.json")
	}

	opts := filepath.Join(t.TempDir(), "options.json")
	os.WriteFile(opts, []byte(`{"servers": {"count": 5}, "consul": {"datacenter": "east"}}`), 0o644)
	if err := run([]string{"-root", "../..", "-marathon", out, "-options", opts, "-base-url", "http://h:8080"}); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(out)
	for _, want := range []string{`"SERVER_COUNT": "5"`, `"CONSUL_DATACENTER": "east"`, `"http://h:8080/`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("rendered app lacks %s", want)
		}
	}

	// Options the schema allows but the scheduler refuses are refused now.
	os.WriteFile(opts, []byte(`{"ports": {"dns": 8500}}`), 0o644)
	err = run([]string{"-root", "../..", "-marathon", out, "-options", opts})
	if err == nil || !strings.Contains(err.Error(), "CONSUL_PORT_DNS") {
		t.Errorf("duplicate port: %v", err)
	}
	os.WriteFile(opts, []byte(`{"servers": {"count": 2}}`), 0o644)
	err = run([]string{"-root", "../..", "-marathon", out, "-options", opts})
	if err == nil || !strings.Contains(err.Error(), "/servers/count") {
		t.Errorf("bad count: %v", err)
	}
}

func TestRepoMode(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "dcos-consul")
	os.WriteFile(bin, []byte("binary"), 0o755)
	out := t.TempDir()
	if err := run([]string{"-root", "../..", "-out", out, "-binary", bin, "-base-url", "http://10.0.0.5:8080"}); err != nil {
		t.Fatal(err)
	}
	index, err := os.ReadFile(filepath.Join(out, universe.RepoFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := universe.Validate(universe.SchemaRepoV4, index); err != nil {
		t.Fatal(err)
	}
}
