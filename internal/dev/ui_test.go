package dev

import (
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/dcos-consul/dcos-consul/internal/operator"
)

func get(client *http.Client, url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestDevConsulUIThroughScheduler: the scheduler's "/" (what the DC/OS UI's
// "Open Service" and dev's summary open) serves Consul's web UI from a
// running agent, and the Consul API routes the UI calls, only those, under
// /consul/v1/, with ACLs on (the default): Consul's 403 without a token,
// the answer with one.
func TestDevConsulUIThroughScheduler(t *testing.T) {
	besideOthers(t)
	fc := startFaultCluster(t, 90, 2, 1)
	tasks, _ := fc.healthy(t, 1, 4*time.Minute)
	client := &http.Client{Timeout: 10 * time.Second}

	// "/" redirects to ui/, which is Consul's UI.
	var index string
	eventually(t, time.Minute, "GET / serves Consul's UI", func() error {
		code, body, err := get(client, fc.SchedulerURL+"/")
		if err != nil {
			return err
		}
		if code != http.StatusOK || !strings.Contains(body, "Consul by HashiCorp") {
			return fmt.Errorf("GET / (following redirects): %d %.300s", code, body)
		}
		index = body
		return nil
	})
	if !strings.Contains(index, "dcosConsulBase") || strings.Contains(index, `"/ui/assets/`) {
		t.Errorf("the index is not rewritten for serving under a prefix:\n%.2000s", index)
	}
	code, body, err := get(client, fc.SchedulerURL+"/ui/")
	if err != nil || code != http.StatusOK || !strings.Contains(body, "data-consul-ui-config") {
		t.Fatalf("GET /ui/: %d %v %.300s", code, err, body)
	}
	// A deep link gets the index too (the UI routes in the browser), and
	// the assets it names are served.
	code, body, err = get(client, fc.SchedulerURL+"/ui/dc1/services")
	if err != nil || code != http.StatusOK || !strings.Contains(body, `var seen="/ui/dc1/services"`) {
		t.Fatalf("GET /ui/dc1/services: %d %v %.300s", code, err, body)
	}
	asset := regexp.MustCompile(`src="(assets/consul-ui-[0-9a-f]+\.js)"`).FindStringSubmatch(index)
	if asset == nil {
		t.Fatalf("no consul-ui script in the index:\n%.2000s", index)
	}
	code, body, err = get(client, fc.SchedulerURL+"/ui/"+asset[1])
	if err != nil || code != http.StatusOK || len(body) < 100000 {
		t.Fatalf("GET /ui/%s: %d %v, %d bytes", asset[1], code, err, len(body))
	}

	// KV through the proxy: what the UI reads is allowed; the rest of the
	// Consul API is not reachable through the scheduler.
	kv := consulClient(t, fc.Cluster, tasks[0].AgentIP).KV()
	if _, err := kv.Put(&consul.KVPair{Key: "ui-test/greeting", Value: []byte("hello")}, nil); err != nil {
		t.Fatal(err)
	}
	// ACLs are on (the default): an anonymous read through the proxy gets
	// Consul's own 403, on which the UI asks for a token as Consul's does;
	// with the token in X-Consul-Token (where the UI puts it) it works.
	code, body, err = get(client, fc.SchedulerURL+"/consul/v1/kv/ui-test/greeting?raw")
	if err != nil || code != http.StatusForbidden || !strings.Contains(body, "Permission denied") {
		t.Errorf("anonymous GET /consul/v1/kv/ui-test/greeting?raw: %d %v %q, want Consul's 403", code, err, body)
	}
	req, _ := http.NewRequest(http.MethodGet, fc.SchedulerURL+"/consul/v1/kv/ui-test/greeting?raw", nil)
	req.Header.Set("X-Consul-Token", consulConfig(t, fc.Cluster, net.JoinHostPort(tasks[0].AgentIP, "8500")).Token)
	if resp, err := client.Do(req); err != nil {
		t.Errorf("GET /consul/v1/kv/ui-test/greeting?raw with X-Consul-Token: %v", err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "hello" {
			t.Errorf("GET /consul/v1/kv/ui-test/greeting?raw with X-Consul-Token: %d %q, want 200 hello", resp.StatusCode, b)
		}
	}
	// The UI's writes through the proxy: Consul's ACLs decide on the
	// caller's own token. With the management token in X-Consul-Token (as
	// the UI sends it) a KV PUT works; without a token it is Consul's 403,
	// and so it is with the scheduler's operator token alone (the proxy
	// gives no rights of its own and passes no operator token on).
	mgmt := consulConfig(t, fc.Cluster, net.JoinHostPort(tasks[0].AgentIP, "8500")).Token
	opTok, _ := os.ReadFile(fc.OperatorTokenFile())
	kvURL := fc.SchedulerURL + "/consul/v1/kv/ui-test/written"
	if code, body := send(t, client, http.MethodPut, kvURL, "through the UI", "X-Consul-Token", mgmt); code != http.StatusOK || strings.TrimSpace(body) != "true" {
		t.Errorf("PUT /consul/v1/kv/ui-test/written with the management token: %d %q, want 200 true", code, body)
	} else if p, _, err := kv.Get("ui-test/written", nil); err != nil || p == nil || string(p.Value) != "through the UI" {
		t.Errorf("the KV PUT through the proxy did not land: %v %v", p, err)
	}
	for _, h := range [][]string{nil, {operator.OperatorTokenHeader, strings.TrimSpace(string(opTok))},
		{"Authorization", "Bearer " + strings.TrimSpace(string(opTok))}} {
		code, body := send(t, client, http.MethodPut, fc.SchedulerURL+"/consul/v1/kv/ui-test/anonymous", "x", h...)
		if code != http.StatusForbidden || !strings.Contains(body, "Permission denied") {
			t.Errorf("PUT /consul/v1/kv/ui-test/anonymous with headers %q: %d %q, want Consul's 403", h, code, body)
		}
	}
	if p, _, err := kv.Get("ui-test/anonymous", nil); err != nil || p != nil {
		t.Errorf("a refused KV PUT through the proxy wrote: %v %v", p, err)
	}
	// The UI knows ACLs are on from the agent's configuration in the
	// index (it then shows its login instead of empty pages).
	if cfg := uiConfig(index); !strings.Contains(cfg, `"ACLsEnabled":true`) {
		t.Errorf("the UI's configuration does not say ACLs are on: %q", cfg)
	}
	for _, p := range []string{"/consul/v1/agent/self", "/consul/v1/snapshot", "/consul/v1/acl/../agent/members"} {
		code, body, err = get(client, fc.SchedulerURL+p)
		if err != nil || code == http.StatusOK {
			t.Errorf("GET %s through the scheduler: %d %v %.200s, want it refused", p, code, err, body)
		}
	}
	// The proxy refuses what Consul's UI never calls (403), with or without
	// the scheduler's operator token (the /consul/ routes carry the caller's
	// own Consul token, not the operator's).
	tok, _ := os.ReadFile(fc.OperatorTokenFile())
	for _, c := range []struct {
		token string
		want  int
	}{{"", http.StatusForbidden}, {strings.TrimSpace(string(tok)), http.StatusForbidden}} {
		req, _ := http.NewRequest(http.MethodPut, fc.SchedulerURL+"/consul/v1/agent/leave", nil)
		if c.token != "" {
			req.Header.Set(operator.OperatorTokenHeader, c.token)
		}
		if resp, err := client.Do(req); err != nil || resp.StatusCode != c.want {
			t.Errorf("PUT /consul/v1/agent/leave through the scheduler (operator token given: %v): %v %v, want %d", c.token != "", resp, err, c.want)
		} else {
			resp.Body.Close()
		}
	}
	// The scheduler's own API is where it was (200 once the deploy is
	// complete, 202 while a client is still starting: either is the plan).
	if code, body, err := get(client, fc.SchedulerURL+"/v1/plans/deploy"); err != nil ||
		(code != http.StatusOK && code != http.StatusAccepted) || !strings.Contains(body, `"phases"`) {
		t.Errorf("GET /v1/plans/deploy: %d %v %.200s", code, err, body)
	}
}

// uiConfig is the agent's configuration document in Consul's UI index
// (<script type="application/json" data-consul-ui-config>), without spaces.
func uiConfig(index string) string {
	_, after, ok := strings.Cut(index, "data-consul-ui-config")
	if !ok {
		return ""
	}
	_, doc, _ := strings.Cut(after, ">")
	doc, _, _ = strings.Cut(doc, "</script>")
	return strings.Join(strings.Fields(html.UnescapeString(doc)), "")
}

// send makes one request with body and headers (name, value pairs) and
// returns the status and body.
func send(t *testing.T, client *http.Client, method, url, body string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, url, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDevConsulUIWritesWithoutACL: with ACLs off nothing in Consul checks
// a write, so the proxy's writes need the scheduler's operator
// authentication (401 without it, and nothing written); reads stay open.
func TestDevConsulUIWritesWithoutACL(t *testing.T) {
	besideOthers(t)
	fc := startFaultCluster(t, 92, 2, 1, noACL)
	tasks, _ := fc.healthy(t, 1, 4*time.Minute)
	client := &http.Client{Timeout: 10 * time.Second}
	kv := consulClient(t, fc.Cluster, tasks[0].AgentIP).KV()
	url := fc.SchedulerURL + "/consul/v1/kv/ui-test/open"
	eventually(t, time.Minute, "the UI proxy answers", func() error {
		if code, body := send(t, client, http.MethodGet, url, ""); code != http.StatusNotFound {
			return fmt.Errorf("GET %s: %d %.200s, want Consul's 404 for a missing key", url, code, body)
		}
		return nil
	})
	for _, h := range [][]string{nil, {"X-Consul-Token", "5b8c3e0e-6f1a-4d3b-9a57-1f2e3d4c5b6a"}, {"Authorization", "Bearer wrong"}} {
		if code, body := send(t, client, http.MethodPut, url, "x", h...); code != http.StatusUnauthorized {
			t.Errorf("PUT %s with headers %q and ACLs off: %d %.200s, want 401", url, h, code, body)
		}
	}
	if p, _, err := kv.Get("ui-test/open", nil); err != nil || p != nil {
		t.Errorf("an unauthenticated KV PUT through the proxy wrote: %v %v", p, err)
	}
	tok, err := os.ReadFile(fc.OperatorTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	if code, body := send(t, client, http.MethodPut, url, "by the operator", operator.OperatorTokenHeader, strings.TrimSpace(string(tok))); code != http.StatusOK {
		t.Errorf("PUT %s with the operator token: %d %.200s, want 200", url, code, body)
	}
	if code, body := send(t, client, http.MethodGet, url+"?raw", ""); code != http.StatusOK || body != "by the operator" {
		t.Errorf("GET %s?raw: %d %q, want the value written (reads stay open with ACLs off)", url, code, body)
	}
}
