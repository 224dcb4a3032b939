package dev

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/devstate"
)

// TestDevConsoleInATerminal drives `dcos-consul dev` in a pseudo-terminal
// (tmux) as a new user would, and reads the screen: no JSON log line, a
// status line that reaches "leader elected", the summary; then, from a
// second shell with no flag and no export, `dcos-consul consul plan show`
// and `dev status` work, the faults of `dev fault` heal, and `dev stop` ends
// everything. Consul's HTTPS port is moved (--env CONSUL_PORT_HTTPS; TLS is
// on by default, so the API is HTTPS only), which dev's own leader check
// must follow, as the summary must follow its DNS port (--env
// CONSUL_PORT_DNS).
func TestDevConsoleInATerminal(t *testing.T) {
	besideOthers(t)
	if testing.Short() {
		t.Skip("runs a whole dev cluster with real Consul")
	}
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed")
	}
	home, work := t.TempDir(), t.TempDir()
	sock := fmt.Sprintf("dcos-consul-dev-test-%d", os.Getpid())
	tm := func(args ...string) (string, error) {
		out, err := exec.Command(tmux, append([]string{"-L", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	// A second shell's environment: the user's, minus anything that says
	// where a scheduler is, with this test's home.
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k == "HOME" || strings.HasPrefix(k, "DCOS_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+home)

	shell := fmt.Sprintf("env -u DCOS_URL -u DCOS_CONSUL_URL -u DCOS_DIR HOME=%s TERM=xterm %s dev --work-dir %s --master-ip 127.5.93.1 --agents 2 --servers 1 --dns-refresh 1s --env CONSUL_PORT_HTTPS=8511 --env CONSUL_PORT_DNS=8653; echo DEV-EXITED $?; sleep 600",
		home, binary, work)
	if out, err := tm("new-session", "-d", "-x", "200", "-y", "60", shell); err != nil {
		t.Fatalf("tmux new-session: %v %s", err, out)
	}
	t.Cleanup(func() {
		_, _ = tm("kill-server")
		if t.Failed() {
			dumpLogs(t, work)
		}
	})
	screen := func() string {
		out, _ := tm("capture-pane", "-p", "-S", "-500")
		return out
	}
	checkNoJSON := func(s string) {
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "{") {
				t.Fatalf("a JSON log line on the console: %s\nscreen:\n%s", l, s)
			}
		}
	}
	eventually(t, 4*time.Minute, "the status line says the leader is elected and the summary is shown", func() error {
		s := screen()
		checkNoJSON(s)
		if strings.Contains(s, "DEV-EXITED") {
			t.Fatalf("dev exited:\n%s", s)
		}
		for _, want := range []string{"leader elected", "Consul is up after", "Consul UI", "Things to try", "dcos-consul dev fault kill-server"} {
			if !strings.Contains(s, want) {
				return fmt.Errorf("no %q on the screen yet:\n%s", want, s)
			}
		}
		return nil
	})
	s := screen()
	t.Logf("screen:\n%s", s)
	if !strings.Contains(s, work+"/dev.log") {
		t.Errorf("the log file's path is not on the screen")
	}
	if !strings.Contains(s, "Consul HTTP API   https://127.5.93.") || !strings.Contains(s, ":8511   (TLS: curl --cacert") {
		t.Errorf("the summary does not give Consul's HTTPS API on the port set with --env CONSUL_PORT_HTTPS=8511")
	}
	if !strings.Contains(s, " -p 8653 consul.service.consul") {
		t.Errorf("the summary does not give Consul's DNS on the port set with --env CONSUL_PORT_DNS=8653")
	}

	// A second shell: no flag, no export.
	second := func(args ...string) (string, error) {
		cmd := exec.Command(binary, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := second("consul", "plan", "show")
	if err != nil || !strings.Contains(out, "COMPLETE") {
		t.Fatalf("dcos-consul consul plan show from a second shell: %v\n%s", err, out)
	}
	out, err = second("dev", "status")
	if err != nil || !strings.Contains(out, "leader elected") || !strings.Contains(out, "Consul UI") {
		t.Fatalf("dcos-consul dev status: %v\n%s", err, out)
	}
	st, err := devstate.Read(filepath.Join(home, ".dcos-consul", devstate.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.SchedulerURL, "http://127.5.93.1:") {
		t.Errorf("the scheduler API is at %s, want dev's loopback address", st.SchedulerURL)
	}
	// The UI address of the summary answers.
	if resp, err := http.Get(st.SchedulerURL + "/"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s/: %v %v", st.SchedulerURL, resp, err)
	} else {
		resp.Body.Close()
	}

	// Faults, from the second shell; the cluster heals.
	taskOf := func(pod string) string {
		out, err := second("consul", "pod", "info", pod, "--json")
		if err != nil {
			return ""
		}
		return out
	}
	before := taskOf("consul-server-0")
	out, err = second("dev", "fault", "kill-server")
	if err != nil || !strings.Contains(out, "Killed the executor of consul-server-0") {
		t.Fatalf("dev fault kill-server: %v\n%s", err, out)
	}
	healed := func(what string, agents int) {
		eventually(t, 3*time.Minute, what, func() error {
			out, err := second("dev", "status")
			if err != nil || !strings.Contains(out, fmt.Sprintf("agents %d | tasks: %d running |", agents, agents)) || !strings.Contains(out, "leader elected") {
				return fmt.Errorf("%v\n%s", err, out)
			}
			return nil
		})
	}
	healed("consul-server-0 relaunched", 2)
	if after := taskOf("consul-server-0"); after == before || after == "" {
		t.Errorf("consul-server-0 has the same task after kill-server:\n%s", after)
	}
	var client0 string
	if out, err := second("consul", "pod", "list"); err == nil {
		for _, l := range strings.Fields(out) {
			if strings.HasPrefix(l, "consul-client-") {
				client0 = l
			}
		}
	}
	out, err = second("dev", "fault", "remove-agent", client0)
	if err != nil || !strings.Contains(out, "Removed agent") {
		t.Fatalf("dev fault remove-agent %s: %v\n%s", client0, err, out)
	}
	healed("the agent gone", 1)
	// and the master restarted (dev's status keeps the one agent left)
	out, err = second("dev", "fault", "restart-master")
	if err != nil || !strings.Contains(out, "restarting") {
		t.Fatalf("dev fault restart-master: %v\n%s", err, out)
	}
	healed("the scheduler back after the master's restart", 1)

	out, err = second("dev", "stop")
	if err != nil || !strings.Contains(out, "Stopped.") {
		t.Fatalf("dcos-consul dev stop: %v\n%s", err, out)
	}
	eventually(t, time.Minute, "dev exits", func() error {
		if s := screen(); !strings.Contains(s, "DEV-EXITED 0") {
			return fmt.Errorf("not exited:\n%s", s)
		}
		return nil
	})
	checkNoJSON(screen())
	client := &http.Client{Timeout: 2 * time.Second}
	for _, u := range []string{st.SchedulerURL + "/v1/health", st.MasterURL + "/master/state"} {
		if resp, err := client.Get(u); err == nil {
			resp.Body.Close()
			t.Errorf("%s still answers after dev stop", u)
		}
	}
	if _, err := os.Stat(filepath.Join(home, ".dcos-consul", devstate.FileName)); err == nil {
		t.Errorf("the well-known state file is left behind")
	}
	out, err = second("consul", "plan", "show")
	if err == nil || !strings.Contains(out, "no scheduler address") {
		t.Errorf("after dev stop, consul plan show: %v\n%s", err, out)
	}
}
