package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func runConsul(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"consul"}, args...))
	err := root.Execute()
	return out.String(), errOut.String(), err
}

// clearDCOSEnv makes the tests independent of the machine's DC/OS CLI.
func clearDCOSEnv(t *testing.T) {
	for _, k := range []string{"DCOS_CONSUL_URL", "DCOS_CONSUL_SERVICE_NAME", "DCOS_URL", "DCOS_ACS_TOKEN", "DCOS_TLS_INSECURE", "DCOS_TLS_CA_PATH", "DCOS_CLUSTER", "DCOS_SSL_VERIFY"} {
		t.Setenv(k, "")
	}
	t.Setenv("DCOS_DIR", t.TempDir())
}

// The DC/OS CLI learns a BIN plugin's summary from `<exe> consul --info`
// on stdout.
func TestConsulInfo(t *testing.T) {
	out, errOut, err := runConsul(t, "--info")
	if err != nil || out != consulInfo+"\n" || errOut != "" {
		t.Fatalf("%q %q %v", out, errOut, err)
	}
	if strings.Contains(consulInfo, "\n") {
		t.Fatal("--info must be one line")
	}
}

// What `dcos consul pod restart` runs: the command name as argv[1], the
// cluster from DCOS_URL and DCOS_ACS_TOKEN, --name with a folder.
func TestConsulAsDCOSPlugin(t *testing.T) {
	clearDCOSEnv(t)
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"pod": "consul-server-1", "tasks": ["consul-server-1"]}`))
	}))
	defer srv.Close()
	t.Setenv("DCOS_URL", srv.URL)
	t.Setenv("DCOS_ACS_TOKEN", "tok")
	out, _, err := runConsul(t, "--name", "/infra/consul", "pod", "restart", "consul-server-1")
	if err != nil || !strings.HasPrefix(out, "Restarting pod consul-server-1: tasks consul-server-1\n") {
		t.Fatalf("%q %v", out, err)
	}
	if len(seen) != 1 || seen[0] != "POST /service/infra/consul/v1/pod/consul-server-1/restart token=tok" {
		t.Fatalf("%v", seen)
	}
	// --url (or DCOS_CONSUL_URL) talks to the scheduler directly.
	t.Setenv("DCOS_CONSUL_URL", srv.URL+"/direct")
	if _, _, err := runConsul(t, "pod", "replace", "consul-server-1", "--json"); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[1] != "POST /direct/v1/pod/consul-server-1/replace token=tok" {
		t.Fatalf("%v", seen)
	}
}

func TestConsulArgs(t *testing.T) {
	clearDCOSEnv(t)
	if _, _, err := runConsul(t, "pod", "info"); err == nil || !strings.Contains(err.Error(), "accepts 1 arg") {
		t.Fatalf("%v", err)
	}
	if _, _, err := runConsul(t, "plan", "show"); err == nil || !strings.Contains(err.Error(), "no scheduler address") {
		t.Fatalf("%v", err)
	}
}

// Every subcommand reaches its route, with its argument.
func TestConsulRoutes(t *testing.T) {
	clearDCOSEnv(t)
	var mu sync.Mutex
	var last string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = r.Method + " " + r.URL.Path
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`)) // decoded into anything; --json prints it
	}))
	defer srv.Close()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"plan", "list"}, "GET /v1/plans"},
		{[]string{"plan", "show"}, "GET /v1/plans/deploy"},
		{[]string{"plan", "show", "recovery"}, "GET /v1/plans/recovery"},
		{[]string{"pod", "list"}, "GET /v1/pod"},
		{[]string{"pod", "status"}, "GET /v1/pod/status"},
		{[]string{"pod", "status", "consul-server-0"}, "GET /v1/pod/consul-server-0/status"},
		{[]string{"pod", "info", "consul-server-0"}, "GET /v1/pod/consul-server-0/info"},
		{[]string{"pod", "restart", "consul-server-0"}, "POST /v1/pod/consul-server-0/restart"},
		{[]string{"pod", "replace", "consul-server-0"}, "POST /v1/pod/consul-server-0/replace"},
		{[]string{"endpoints"}, "GET /v1/endpoints"},
		{[]string{"endpoints", "http"}, "GET /v1/endpoints/http"},
		{[]string{"members"}, "GET /v1/endpoints/http"}, // then the Consul servers listed there
		{[]string{"raft", "peers"}, "GET /v1/endpoints/http"},
	} {
		args := append([]string{"--url", srv.URL, "--json"}, c.args...)
		_, _, err := runConsul(t, args...)
		mu.Lock()
		got := last
		mu.Unlock()
		if got != c.want {
			t.Errorf("%v: %s (%v), want %s", c.args, got, err, c.want)
		}
	}
}
