package realmesos

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// tlsNet is the loopback network of the TLS renewal cluster.
const tlsNet = "127.6.11"

// TestRealMesosTLSRenewalMessage: on a real master and agent, a server's
// certificate (2 minutes here) is renewed in place: the scheduler's
// MESSAGE call reaches the server's executor as a MESSAGE event (the real
// master and agent deliver it to a running executor), the executor loads
// a new certificate and reports it, and the server task is never
// relaunched. One agent, one server: small.
func TestRealMesosTLSRenewalMessage(t *testing.T) {
	requireMesos(t)
	ctx := context.Background()
	dir, err := os.MkdirTemp(runRoot, "tlsrenew-")
	if err != nil {
		t.Fatal(err)
	}
	su := &suite{zkRoot: fmt.Sprintf("/dcos-consul-realmesos-tls-%d-%d", os.Getpid(), time.Now().UnixNano()), written: map[string]int{}}
	start := time.Now()
	su.c, err = Start(ctx, Options{Dir: dir, Net: tlsNet, Agents: 1, ZK: zkAddr, ZKRoot: su.zkRoot})
	t.Cleanup(func() { su.cleanup(t) })
	if err != nil {
		t.Fatal(err)
	}
	su.s, err = su.c.NewScheduler(SchedulerOptions{
		Binary: binary, StateZK: zkAddr + su.zkRoot + "/state",
		ExtraEnv: []string{config.EnvServerCount + "=1", config.EnvTLS + "=true", config.EnvTLSServerCertLifetime + "=2m"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := su.s.Start(); err != nil {
		t.Fatal(err)
	}
	su.subscribed(t, 2*time.Minute)
	var first task
	eventually(t, 4*time.Minute, "consul-server-0 RUNNING and healthy", func() error {
		st, err := su.c.State(ctx)
		if err != nil {
			return err
		}
		for _, f := range st.FrameworksNamed(serviceName) {
			for _, tk := range f.Tasks {
				if tk.Name == "consul-server-0" && tk.State == "TASK_RUNNING" {
					if h := tk.Healthy(); h != nil && *h {
						first = task{Name: tk.Name, ID: tk.ID}
						return nil
					}
				}
			}
		}
		return fmt.Errorf("not yet")
	})
	t.Logf("TIMING server healthy %s after the cluster start (task %s)", time.Since(start).Round(100*time.Millisecond), first.ID)
	eventually(t, 4*time.Minute, "an in-place renewal reported in the scheduler log", func() error {
		b, _ := os.ReadFile(su.s.LogPath())
		if strings.Contains(string(b), "TLS certificate renewed in place") {
			return nil
		}
		return fmt.Errorf("not yet; scheduler log tail:\n%s", tail(su.s.LogPath(), 5))
	})
	t.Logf("TIMING renewed in place %s after the cluster start", time.Since(start).Round(100*time.Millisecond))
	b, _ := os.ReadFile(su.s.LogPath())
	if strings.Contains(string(b), "renewing a Consul server's TLS certificate: restarting it") {
		t.Error("the renewal fell back to a restart")
	}
	st, err := su.c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range running(st) {
		if tk.Name == first.Name && tk.ID != first.ID {
			t.Errorf("consul-server-0 runs as task %s, was %s: relaunched", tk.ID, first.ID)
		}
	}
	if tks := running(st); len(tks) != 1 || tks[0].ID != first.ID {
		t.Errorf("running tasks after the renewal: %+v, want only %s", tks, first.ID)
	}
}
