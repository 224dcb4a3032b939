package operator

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/secrets"
)

// TestOperatorToken: mutating commands and the management token need the
// token file; without it the error says what to set; a token file others
// can read is refused.
func TestOperatorToken(t *testing.T) {
	sec, _, err := secrets.Fill(secrets.Secrets{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := secrets.NewHolder(sec)
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/keyring/rotate", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"primary": "sha256:1111", "removed": ["sha256:2222"], "via": "10.0.0.1:8500"}`))
	})
	mux.Handle("/v1/acl/management-token", secrets.ManagementTokenHandler(h))
	srv := httptest.NewServer(secrets.RequireOperator(h, mux))
	defer srv.Close()

	dir := t.TempDir()
	file := filepath.Join(dir, "operator-token")
	if err := os.WriteFile(file, []byte(sec.OperatorToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmds := func(tokenFile string) (*Commands, *bytes.Buffer, error) {
		env := LookupEnv(func(k string) (string, bool) {
			if k == EnvTokenFile && tokenFile != "" {
				return tokenFile, true
			}
			return "", false
		})
		loc, err := Locate(srv.URL, "consul", env)
		if err != nil {
			return nil, nil, err
		}
		cl, err := NewClient(loc, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		return &Commands{Client: cl, Out: &out}, &out, nil
	}
	ctx := context.Background()
	c, _, _ := cmds("")
	for name, f := range map[string]func(context.Context) error{"rotate": c.KeyringRotate, "management-token": c.ACLManagementToken} {
		err := f(ctx)
		if err == nil || !strings.Contains(err.Error(), EnvTokenFile) {
			t.Errorf("%s without the token: %v, want a hint naming %s", name, err, EnvTokenFile)
		}
	}
	c, out, err := cmds(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.KeyringRotate(ctx); err != nil || !strings.Contains(out.String(), "sha256:1111") {
		t.Fatalf("rotate: %v %q", err, out)
	}
	out.Reset()
	if err := c.ACLManagementToken(ctx); err != nil || strings.TrimSpace(out.String()) != sec.ManagementToken {
		t.Fatalf("management-token: %v", err)
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cmds(file); err == nil || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), sec.OperatorToken) {
		t.Fatalf("a world-readable token file: %v", err)
	}
}
