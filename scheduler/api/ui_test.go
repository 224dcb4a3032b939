package api

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/secrets"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// fakeIndex has the shape of Consul 1.16's rendered index.html.
const fakeIndex = `<!DOCTYPE html>
<html><head>
<link rel="icon" href="/ui/assets/favicon.ico">
</head><body>
<script type="application/json" data-consul-ui-config>
{"ContentPath": "/ui/", "ACLsEnabled": false}
</script>
<script src="/ui/assets/init.js"></script>
</body></html>`

// fakeAgent is a Consul agent's HTTP API as far as the UI proxy goes.
func fakeAgent(t *testing.T) (*httptest.Server, *[]string) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.URL.RequestURI()+" token="+r.Header.Get("X-Consul-Token")+" ae="+r.Header.Get("Accept-Encoding"))
		switch {
		case strings.HasPrefix(r.URL.Path, "/ui/assets/"):
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = io.WriteString(w, "js")
		case strings.HasPrefix(r.URL.Path, "/ui/"):
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, fakeIndex)
		case r.URL.Path == "/v1/kv/greeting":
			_, _ = io.WriteString(w, `[{"Key":"greeting","Value":"aGVsbG8="}]`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func agentView(t *testing.T, srv *httptest.Server) View {
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	p, _ := strconv.Atoi(port)
	v := view("COMPLETE")
	for i := range v.Tasks {
		v.Tasks[i].IP, v.Tasks[i].Ports.HTTP = host, p
	}
	return v
}

func TestUIRedirectsRelative(t *testing.T) {
	h := Handler(&fakeSource{view: view("COMPLETE")}, nil)
	for _, p := range []string{"/", "/ui"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != http.StatusFound || rec.Header().Get("Location") != "ui/" {
			t.Errorf("GET %s: %d Location %q, want 302 to the relative ui/ (right behind Admin Router)", p, rec.Code, rec.Header().Get("Location"))
		}
	}
}

func TestUIProxiesIndexRewritten(t *testing.T) {
	agent, seen := fakeAgent(t)
	h := Handler(&fakeSource{view: agentView(t, agent)}, nil)
	code, _, body := do(t, h, http.MethodGet, "/ui/dc1/services")
	if code != http.StatusOK {
		t.Fatalf("GET /ui/dc1/services: %d %s", code, body)
	}
	for _, want := range []string{`href="assets/favicon.ico"`, `src="assets/init.js"`, `var seen="/ui/dc1/services"`, `c.APIPrefix=b+"/consul"`} {
		if !strings.Contains(body, want) {
			t.Errorf("rewritten index lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, `"/ui/assets/`) {
		t.Errorf("rewritten index still has absolute asset URLs:\n%s", body)
	}
	if code, _, body := do(t, h, http.MethodGet, "/ui/assets/init.js"); code != http.StatusOK || body != "js" {
		t.Errorf("GET an asset: %d %q", code, body)
	}
	if got := (*seen)[0]; !strings.HasPrefix(got, "GET /ui/dc1/services ") {
		t.Errorf("agent saw %q, want the same path", got)
	}
	// A browser's gzip on index.html is not passed on (Go's transport asks
	// for gzip itself and hands the proxy the plain text to rewrite).
	req := httptest.NewRequest(http.MethodGet, "/ui/", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if !strings.Contains(rec.Body.String(), "dcosConsulBase") || rec.Header().Get("Content-Encoding") != "" {
		t.Errorf("GET /ui/ with Accept-Encoding gzip: not rewritten: %v %s", rec.Header(), rec.Body)
	}
}

func TestUIConsulAPIOnlyTheUIsRoutes(t *testing.T) {
	agent, seen := fakeAgent(t)
	h := Handler(&fakeSource{view: agentView(t, agent)}, nil)
	req := httptest.NewRequest(http.MethodGet, "/consul/v1/kv/greeting", nil)
	req.Header.Set("X-Consul-Token", "the-users-token")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "aGVsbG8=") {
		t.Fatalf("GET /consul/v1/kv/greeting: %d %s", rec.Code, rec.Body)
	}
	if got := (*seen)[0]; !strings.HasPrefix(got, "GET /v1/kv/greeting token=the-users-token ") {
		t.Errorf("agent saw %q, want /v1/kv/greeting with the browser's token", got)
	}
	for _, c := range []struct{ method, path string }{
		{http.MethodPut, "/consul/v1/agent/leave"},
		{http.MethodGet, "/consul/v1/agent/self"},
		{http.MethodDelete, "/consul/v1/operator/raft/peer"},
		{http.MethodGet, "/consul/v1/snapshot"},
		{http.MethodPost, "/consul/v1/kv/x"},
		{http.MethodGet, "/consul/v1/kv/../agent/self"},
	} {
		code, obj, body := do(t, h, c.method, c.path)
		if code == http.StatusOK {
			t.Errorf("%s %s: 200, want it refused", c.method, c.path)
		}
		if code == http.StatusForbidden && obj["message"] == "" {
			t.Errorf("%s %s: 403 without a reason: %s", c.method, c.path, body)
		}
	}
	if n := len(*seen); n != 1 {
		t.Errorf("the agent got %d requests, want only the allowed one: %v", n, *seen)
	}
}

func TestUIWithoutAgent(t *testing.T) {
	v := view("IN_PROGRESS")
	v.Tasks = []state.Task{{Name: "consul-server-0", Role: taskspec.RoleServer, State: "TASK_STAGING"}}
	code, obj, _ := do(t, Handler(&fakeSource{view: v}, nil), http.MethodGet, "/ui/")
	if code != http.StatusServiceUnavailable || !strings.Contains(obj["message"].(string), "/v1/plans/deploy") {
		t.Errorf("GET /ui/ with no agent running: %d %v, want 503 pointing at the deploy plan", code, obj)
	}
}

func TestUIAgentChoice(t *testing.T) {
	no, yes := false, true
	tasks := []state.Task{
		{Name: "consul-server-0", State: "TASK_STAGING", IP: "10.0.0.1", Ports: taskspec.Ports{HTTP: 8500}},
		{Name: "consul-server-1", State: "TASK_RUNNING", IP: "10.0.0.2", Ports: taskspec.Ports{HTTP: 8500}, Healthy: &no},
		{Name: "consul-server-2", State: "TASK_RUNNING", IP: "10.0.0.3", Ports: taskspec.Ports{HTTP: 8500}, Healthy: &yes},
	}
	if a, ok, _ := uiAgent(tasks); !ok || a != "10.0.0.3:8500" {
		t.Errorf("uiAgent = %q %v, want the healthy running one", a, ok)
	}
	if a, ok, _ := uiAgent(tasks[:2]); !ok || a != "10.0.0.2:8500" {
		t.Errorf("uiAgent = %q %v, want the running one when none is healthy", a, ok)
	}
}

func TestUIScheduler404sStillSayWhere(t *testing.T) {
	code, obj, _ := do(t, Handler(&fakeSource{view: view("COMPLETE")}, nil), http.MethodGet, "/nope")
	if code != http.StatusNotFound || !strings.Contains(obj["message"].(string), "/v1/plans") {
		t.Errorf("GET /nope: %d %v", code, obj)
	}
}

// TestUIScriptsInABrowserShape runs the two injected scripts with node on a
// minimal DOM, as a browser would at /service/consul/ui/dc1/kv (behind Admin
// Router) and at /ui/dc1/kv (directly): the UI must get the right root URL,
// API prefix and asset base.
func TestUIScriptsInABrowserShape(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	out, err := rewriteUIIndex([]byte(fakeIndex), "/ui/", "/ui/dc1/kv")
	if err != nil {
		t.Fatal(err)
	}
	var scripts []string
	for s := string(out); ; {
		i := strings.Index(s, "<script>")
		if i < 0 {
			break
		}
		j := strings.Index(s[i:], "</script>")
		scripts = append(scripts, s[i+len("<script>"):i+j])
		s = s[i+j:]
	}
	if len(scripts) != 2 {
		t.Fatalf("want 2 injected scripts, got %d", len(scripts))
	}
	for _, c := range []struct{ path, base, root, api string }{
		{"/service/consul/ui/dc1/kv", "/service/consul/ui/", "/service/consul/ui/", "/service/consul/consul"},
		{"/ui/dc1/kv", "/ui/", "/ui/", "/consul"},
	} {
		js := `var cfg={textContent:'{"ContentPath":"/ui/"}'},base=null;
var location={pathname:` + strconv.Quote(c.path) + `},window={};
var document={head:{appendChild:function(e){base=e.href;}},createElement:function(){return {};},
querySelector:function(){return cfg;}};
` + scripts[0] + "\n" + scripts[1] + `
var c=JSON.parse(cfg.textContent);console.log(base+" "+c.ContentPath+" "+c.APIPrefix);`
		f := filepath.Join(t.TempDir(), "ui.js")
		if err := os.WriteFile(f, []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := exec.Command(node, f).CombinedOutput()
		if err != nil {
			t.Fatalf("node: %v: %s", err, got)
		}
		if want := c.base + " " + c.root + " " + c.api; strings.TrimSpace(string(got)) != want {
			t.Errorf("at %s: base, root URL, API prefix = %q, want %q", c.path, strings.TrimSpace(string(got)), want)
		}
	}
}

// TestUIProxyPassesOnlyConsulTokens: a UI write (KV PUT) goes to the agent
// with the caller's Consul token, X-Consul-Token or "Authorization: Bearer
// <secret ID>"; the scheduler's operator token, a DC/OS token and cookies
// never reach the agent, and the proxy adds nothing of its own.
func TestUIProxyPassesOnlyConsulTokens(t *testing.T) {
	type seen struct{ method, path, xToken, auth, cookie, operator string }
	var got []seen
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, seen{r.Method, r.URL.Path, r.Header.Get("X-Consul-Token"), r.Header.Get("Authorization"),
			r.Header.Get("Cookie"), r.Header.Get(secrets.OperatorHeader)})
		_, _ = io.WriteString(w, "true")
	}))
	t.Cleanup(agent.Close)
	h := Handler(&fakeSource{view: agentView(t, agent)}, nil)
	const consulTok = "5b8c3e0e-6f1a-4d3b-9a57-1f2e3d4c5b6a"
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJ1aWQiOiJib2IifQ.c2ln"
	for _, c := range []struct {
		name              string
		headers           map[string]string
		wantX, wantBearer string
	}{
		{"the UI's X-Consul-Token", map[string]string{"X-Consul-Token": consulTok}, consulTok, ""},
		{"a Consul bearer token", map[string]string{"Authorization": "Bearer " + consulTok}, "", "Bearer " + consulTok},
		{"no token", nil, "", ""},
		{"the operator token, both ways", map[string]string{secrets.OperatorHeader: "op-secret", "Authorization": "Bearer op_secret-base64url"}, "", ""},
		{"a DC/OS token", map[string]string{"Authorization": "token=" + jwt, "Cookie": "dcos-acs-auth-cookie=" + jwt}, "", ""},
		{"a DC/OS bearer token beside the UI's", map[string]string{"Authorization": "Bearer " + jwt, "X-Consul-Token": consulTok}, consulTok, ""},
	} {
		got = nil
		req := httptest.NewRequest(http.MethodPut, "/consul/v1/kv/ui/greeting", strings.NewReader("hello"))
		for k, v := range c.headers {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || len(got) != 1 {
			t.Fatalf("%s: PUT /consul/v1/kv/ui/greeting: %d %s, agent saw %v", c.name, rec.Code, rec.Body, got)
		}
		s := got[0]
		if s.method != http.MethodPut || s.path != "/v1/kv/ui/greeting" || s.xToken != c.wantX || s.auth != c.wantBearer || s.cookie != "" || s.operator != "" {
			t.Errorf("%s: the agent saw %+v, want PUT /v1/kv/ui/greeting with X-Consul-Token %q and Authorization %q only", c.name, s, c.wantX, c.wantBearer)
		}
	}
}

func TestConsulBearer(t *testing.T) {
	for h, want := range map[string]bool{
		"Bearer 5b8c3e0e-6f1a-4d3b-9a57-1f2e3d4c5b6a":  true,
		"bearer  5B8C3E0E-6F1A-4D3B-9A57-1F2E3D4C5B6A": true,
		"Bearer anonymous":                           false,
		"Bearer op_secret-base64url":                 false,
		"Bearer a.b.c":                               false,
		"token=5b8c3e0e-6f1a-4d3b-9a57-1f2e3d4c5b6a": false,
		"Basic 5b8c3e0e-6f1a-4d3b-9a57-1f2e3d4c5b6a": false,
		"": false,
	} {
		if got := consulBearer(h); got != want {
			t.Errorf("consulBearer(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestUIOffSaysSo(t *testing.T) {
	agent, seen := fakeAgent(t)
	v := agentView(t, agent)
	v.Target.UI = false
	for _, p := range []string{"/ui/", "/consul/v1/kv/greeting"} {
		code, obj, _ := do(t, Handler(&fakeSource{view: v}, nil), http.MethodGet, p)
		if code != http.StatusNotFound || !strings.Contains(obj["message"].(string), "consul.ui") || len(*seen) != 0 {
			t.Errorf("GET %s with consul.ui off: %d %v (agent saw %v), want 404 naming the option", p, code, obj, *seen)
		}
	}
}
