package realmesos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// authNet is the loopback network of the authentication cluster (the main
// suite's is netPrefix).
const authNet = "127.6.9"

// TestRealMesosFrameworkAuthentication runs a master that requires HTTP
// framework authentication (--authenticate_http_frameworks
// --http_framework_authenticators=basic --credentials): the scheduler with
// a wrong secret gets 401, keeps running and says so in /v1/health and its
// log; restarted with the right secret (from its file) it subscribes as
// its principal and deploys a server. One agent, one server: small.
func TestRealMesosFrameworkAuthentication(t *testing.T) {
	requireMesos(t)
	ctx := context.Background()
	dir, err := os.MkdirTemp(runRoot, "auth-")
	if err != nil {
		t.Fatal(err)
	}
	const principal = "consul-principal"
	secret := fmt.Sprintf("right-secret-%d", time.Now().UnixNano())
	su := &suite{zkRoot: fmt.Sprintf("/dcos-consul-realmesos-auth-%d-%d", os.Getpid(), time.Now().UnixNano()), written: map[string]int{}}
	start := time.Now()
	su.c, err = Start(ctx, Options{Dir: dir, Net: authNet, Agents: 1, ZK: zkAddr, ZKRoot: su.zkRoot,
		FrameworkCredentials: map[string]string{principal: secret}})
	t.Cleanup(func() { su.cleanup(t) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("TIMING master (framework authentication) + 1 agent up in %s", time.Since(start).Round(100*time.Millisecond))
	secretFile := filepath.Join(dir, "framework-secret")
	wrong := fmt.Sprintf("wrong-secret-%d", time.Now().UnixNano())
	if err := os.WriteFile(secretFile, []byte(wrong+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	su.s, err = su.c.NewScheduler(SchedulerOptions{
		Binary: binary, StateZK: zkAddr + su.zkRoot + "/state",
		ExtraEnv: []string{config.EnvServerCount + "=1", config.EnvFrameworkSecretFile + "=" + secretFile},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := su.s.Start(); err != nil {
		t.Fatal(err)
	}

	// Wrong secret: 401, reported, no crash loop.
	eventually(t, time.Minute, "the 401 in /v1/health", func() error {
		if !su.s.Running() {
			t.Fatalf("the scheduler exited on a 401: %v (log %s)", su.s.ExitErr(), su.s.LogPath())
		}
		h, err := su.s.Health(ctx)
		if err != nil {
			return err
		}
		if h.Subscribed || !strings.Contains(h.Error, "401") || !strings.Contains(h.Error, principal) {
			return fmt.Errorf("health %+v", h)
		}
		return nil
	})
	st, err := su.c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fws := st.FrameworksNamed(serviceName); len(fws) != 0 {
		t.Fatalf("the master registered a framework with a wrong secret: %+v", fws)
	}
	log, _ := os.ReadFile(su.s.LogPath())
	if !strings.Contains(string(log), "framework authentication failed") {
		t.Errorf("the scheduler log does not say that authentication failed:\n%s", tail(su.s.LogPath(), 20))
	}
	su.s.Stop(15 * time.Second)

	// The right secret: subscribed as the principal, one healthy server.
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := su.s.Start(); err != nil {
		t.Fatal(err)
	}
	su.subscribed(t, 2*time.Minute)
	tasks, leader := su.healthy(t, 1, 4*time.Minute)
	t.Logf("TIMING authenticated: healthy %s after the scheduler started: %v, leader %s",
		time.Since(begin).Round(100*time.Millisecond), taskNames(tasks), leader)
	raw, err := su.c.RawState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"principal":"`+principal+`"`) {
		t.Errorf("/master/state does not show the framework's principal %q", principal)
	}
	log, _ = os.ReadFile(su.s.LogPath())
	for _, s := range []string{secret, wrong} {
		if strings.Contains(string(log), s) || strings.Contains(string(raw), s) {
			t.Errorf("a framework secret is in the scheduler log or /master/state")
		}
	}
	t.Logf("TIMING whole authentication test: %s", time.Since(start).Round(100*time.Millisecond))
}
