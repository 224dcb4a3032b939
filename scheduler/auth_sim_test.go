package scheduler

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/httpcli/apierrors"

	"github.com/dcos-consul/dcos-consul/internal/mesossim"
	"github.com/dcos-consul/dcos-consul/scheduler/api"
)

// A master that requires framework authentication: with the principal's
// secret (from a file) the scheduler subscribes and deploys; with a wrong
// one it keeps running, reports the 401 in /v1/health and subscribes as
// soon as the secret is right (the next scheduler start).
func TestSimFrameworkAuthentication(t *testing.T) {
	secret := "s3cret-" + fmt.Sprint(time.Now().UnixNano())
	h := startSim(t, 2, func(o *mesossim.Options) {
		o.FrameworkCredentials = map[string]string{"consul-principal": secret}
	})
	h.cfg.ServerCount = 1
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.cfg.FrameworkSecretFile = file
	h.start()
	h.eventually("the 401 in the health view", 30*time.Second, func(v api.View) error {
		if v.Subscribed {
			return errors.New("subscribed with a wrong secret")
		}
		if !strings.Contains(v.Err, "refused the credentials") || !strings.Contains(v.Err, "consul-principal") {
			return fmt.Errorf("error %q", v.Err)
		}
		return nil
	})
	code, body := h.get("/v1/health")
	var health map[string]any
	_ = json.Unmarshal(body, &health)
	if code != 500 || !strings.Contains(fmt.Sprint(health["error"]), "401") {
		t.Fatalf("/v1/health: %d %s", code, body)
	}
	if strings.Contains(string(body), secret) || strings.Contains(string(body), "wrong") {
		t.Fatalf("/v1/health shows a secret: %s", body)
	}
	select {
	case err := <-h.done:
		t.Fatalf("the scheduler stopped on a 401: %v", err)
	default:
	}
	h.stop()

	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.eventually("1 server and 1 client running", 60*time.Second, deployed(1, 1))
	if v := h.sched.Snapshot(); v.Err != "" {
		t.Fatalf("health error after subscribing: %q", v.Err)
	}
}

func TestAuthFailureMessages(t *testing.T) {
	e401 := fmt.Errorf("SUBSCRIBE: %w", apierrors.CodeNotAuthenticated.Error("401 Unauthorized."))
	if got := authFailure(e401, "p", false); !strings.Contains(got, "no secret is configured") || !strings.Contains(got, `"p"`) {
		t.Errorf("no secret sent: %q", got)
	}
	if got := authFailure(e401, "p", true); !strings.Contains(got, "refused the credentials") {
		t.Errorf("secret sent: %q", got)
	}
	for _, err := range []error{errors.New("connection refused"), apierrors.CodeMesosUnavailable.Error("")} {
		if got := authFailure(err, "p", true); got != "" {
			t.Errorf("%v: %q, want no auth failure", err, got)
		}
	}
}
