package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"regexp"
	"strconv"
	"strings"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/consulclient"
	"github.com/dcos-consul/dcos-consul/scheduler/secrets"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// Consul's web UI through the scheduler: the DC/OS UI's "Open Service" opens
// the scheduler's "/" (through Admin Router, at /service/<name>/), and so does
// the address `dcos-consul dev` prints. The scheduler serves there the UI of
// one running Consul agent, through a reverse proxy:
//
//	/              redirects to ui/ (relative: right behind Admin Router too)
//	/ui/...        the agent's /ui/... (its index.html rewritten, below)
//	/consul/v1/... the agent's /v1/..., for the routes the UI calls only
//
// The scheduler's own API is under /v1/, so the UI is told (APIPrefix in its
// configuration document) to call Consul under /consul instead. The UI is
// mounted under whatever prefix the browser sees (nothing directly,
// /service/<name> through Admin Router): the rewritten index.html works that
// prefix out from location.pathname and sets the UI's root URL, API prefix
// and the base of its asset URLs from it.
//
// Credentials: the proxy adds none. The caller's Consul token
// (X-Consul-Token, where the UI puts it, or "Authorization: Bearer <token>")
// passes through, so with ACLs on the UI asks for a token as Consul's own
// does, and Consul's ACLs decide its reads and writes (ConsulACLsDecide).
// What is not a Consul token is removed before the agent sees it: the
// scheduler's operator token, a DC/OS token, cookies (DC/OS's login cookie).

// ConsulAPIPrefix is where the scheduler proxies the Consul HTTP API routes
// that the UI calls.
const ConsulAPIPrefix = "/consul"

// ConsulACLsDecide says who authorizes the writes (any method but GET, HEAD,
// OPTIONS) the UI proxy forwards under /consul/: with ACLs on (default
// deny), Consul itself, on the caller's own Consul token (none: the
// anonymous token, which may not write, so Consul answers 403), and the
// scheduler asks for nothing; with ACLs off nothing in Consul would check
// them, so the scheduler asks for its operator authentication, as on its
// own mutating routes. Turning ACLs off is refused (config.CheckUpdate);
// while they are being turned on (default allow on some or every agent)
// the scheduler still asks for its authentication, until the rollout is
// complete.
func ConsulACLsDecide(v View) bool { return v.Target.ACLEnforced() }

// consulBearer says whether an Authorization header carries what Consul
// takes for an ACL token: "Bearer <secret ID>", a secret ID being a UUID
// (Consul refuses any other). The scheduler's operator token (base64url)
// and DC/OS tokens (JWTs) are never one: the proxy drops them.
func consulBearer(h string) bool {
	scheme, v, ok := strings.Cut(strings.TrimSpace(h), " ")
	return ok && strings.EqualFold(scheme, "bearer") && uuidPattern.MatchString(strings.TrimSpace(v))
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// uiRoute is one Consul HTTP API route the UI calls: a path (a prefix when it
// ends with "/") and the methods it uses there.
type uiRoute struct {
	path    string
	methods string
}

// uiRoutes are the Consul API routes Consul 1.16's web UI calls (read from
// its assets: agent/uiserver/dist). Anything else is refused by the proxy:
// the scheduler's address is no general door to the Consul API (no agent
// leave, no service registration, no snapshot, no raft peer removal).
var uiRoutes = []uiRoute{
	{"/v1/acl/", "GET PUT POST DELETE"},
	{"/v1/catalog/connect/", "GET"},
	{"/v1/catalog/datacenters", "GET"},
	{"/v1/connect/intentions", "GET"},
	{"/v1/connect/intentions/exact", "GET PUT DELETE"},
	{"/v1/coordinate/nodes", "GET"},
	{"/v1/discovery-chain/", "GET"},
	{"/v1/health/service/", "GET"},
	{"/v1/internal/acl/authorize", "POST"},
	{"/v1/internal/ui/", "GET"},
	{"/v1/kv/", "GET PUT DELETE"},
	{"/v1/namespace/", "GET PUT DELETE"},
	{"/v1/namespaces", "GET"},
	{"/v1/operator/autopilot/state", "GET"},
	{"/v1/operator/license", "GET"},
	{"/v1/partition/", "GET PUT DELETE"},
	{"/v1/partitions", "GET"},
	{"/v1/peering/", "GET POST DELETE"},
	{"/v1/peerings", "GET"},
	{"/v1/session/destroy/", "PUT"},
	{"/v1/session/info/", "GET"},
	{"/v1/session/node/", "GET"},
	{"/v1/status/leader", "GET"},
}

// uiAPIAllowed says whether the UI proxy forwards method on Consul API path
// (without the /consul prefix), and if not, why.
func uiAPIAllowed(method, path string) (bool, string) {
	if strings.Contains(path, "..") || strings.Contains(path, "//") {
		return false, fmt.Sprintf("path %q is not clean", path)
	}
	if method == http.MethodHead {
		method = http.MethodGet
	}
	for _, r := range uiRoutes {
		match := path == r.path || path == strings.TrimSuffix(r.path, "/") ||
			(strings.HasSuffix(r.path, "/") && strings.HasPrefix(path, r.path))
		if !match {
			continue
		}
		for _, m := range strings.Fields(r.methods) {
			if m == method {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%s %s is not a call Consul's UI makes (it uses %s there)", method, path, r.methods)
	}
	return false, fmt.Sprintf("%s is not a route Consul's UI calls; the scheduler proxies only those (use a Consul agent's own address for the rest of the API)", path)
}

// uiAgent picks the Consul agent whose HTTP API serves the UI: the first
// running task (servers first, then clients, in name order) whose health
// check does not say it is unhealthy and whose address and HTTP port are
// known. ok is false, with why, when there is none.
func uiAgent(tasks []state.Task) (addr string, ok bool, why string) {
	var fallback string
	for _, t := range tasks {
		a, ok := consulclient.Addr(t.IP, t.Ports)
		if !t.Running() || !ok {
			continue
		}
		if strings.HasPrefix(a, "https://") && t.Role != taskspec.RoleServer {
			// With TLS a client's HTTPS certificate comes from Consul's
			// own CA (auto_encrypt), not the service's: only servers'
			// verify against the CA the scheduler trusts.
			continue
		}
		if t.Healthy == nil || *t.Healthy {
			return a, true, ""
		}
		if fallback == "" {
			fallback = a
		}
	}
	if fallback != "" {
		return fallback, true, ""
	}
	return "", false, "no Consul agent is running yet (GET /v1/plans/deploy says what the deployment waits for)"
}

// uiHeadScript sets the document's base URL to <prefix>/ui/, where prefix is
// what the browser's path has before the path the scheduler received
// (Admin Router strips /service/<name>). The received path is given as a
// JSON string; the prefix is kept for the second script.
const uiHeadScript = `<script>(function(){var seen=%s,p=location.pathname,b="";` +
	`if(p.length>=seen.length&&p.slice(p.length-seen.length)===seen){b=p.slice(0,p.length-seen.length);}` +
	`window.dcosConsulBase=b;var e=document.createElement("base");e.href=b+"/ui/";document.head.appendChild(e);})();</script>`

// uiConfigScript rewrites the UI's configuration document before the UI
// reads it: its root URL and the prefix of its API calls.
const uiConfigScript = `<script>(function(){var e=document.querySelector("[data-consul-ui-config]"),` +
	`c=JSON.parse(e.textContent),b=window.dcosConsulBase||"";c.ContentPath=b+"/ui/";c.APIPrefix=b+%s;` +
	`e.textContent=JSON.stringify(c);})();</script>`

// rewriteUIIndex rewrites Consul's rendered index.html so that the UI works
// under the scheduler: asset URLs become relative to a <base> set at load
// time, and the UI's configuration gets the prefix of the page and the
// prefix of the proxied API. contentPath is the agent's ui_config
// content_path ("/ui/"); seenPath is the escaped path the scheduler received.
func rewriteUIIndex(html []byte, contentPath, seenPath string) ([]byte, error) {
	head := bytes.Index(html, []byte("<head>"))
	cfg := bytes.Index(html, []byte("data-consul-ui-config"))
	if head < 0 || cfg < 0 {
		return nil, fmt.Errorf("not Consul's UI index.html (no <head> or no data-consul-ui-config)")
	}
	end := bytes.Index(html[cfg:], []byte("</script>"))
	if end < 0 {
		return nil, fmt.Errorf("Consul's UI index.html: the data-consul-ui-config script does not end")
	}
	end += cfg + len("</script>")
	seen, _ := json.Marshal(seenPath) // escapes <, > and &: safe inside <script>
	prefix, _ := json.Marshal(ConsulAPIPrefix)
	var out bytes.Buffer
	out.Write(html[:head+len("<head>")])
	fmt.Fprintf(&out, uiHeadScript, seen)
	out.Write(html[head+len("<head>") : end])
	fmt.Fprintf(&out, uiConfigScript, prefix)
	out.Write(html[end:])
	for _, q := range []string{`"`, `'`} {
		out = *bytes.NewBuffer(bytes.ReplaceAll(out.Bytes(), []byte(q+contentPath+"assets/"), []byte(q+"assets/")))
	}
	return out.Bytes(), nil
}

// uiProxy serves /, /ui/... and /consul/v1/... from a Consul agent.
type uiProxy struct {
	src   Source
	proxy *httputil.ReverseProxy
}

type uiTargetKey struct{}

func newUIProxy(src Source) *uiProxy {
	u := &uiProxy{src: src}
	u.proxy = &httputil.ReverseProxy{
		Transport: uiTransport{},
		Rewrite: func(pr *httputil.ProxyRequest) {
			target := pr.In.Context().Value(uiTargetKey{}).(string)
			scheme, host := consulclient.Split(target)
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = scheme, host, host
			pr.Out.URL.Path = strings.TrimPrefix(pr.Out.URL.Path, ConsulAPIPrefix)
			pr.Out.URL.RawPath = ""
			// Only the caller's Consul token goes on (package comment).
			pr.Out.Header.Del(secrets.OperatorHeader)
			pr.Out.Header.Del("Cookie")
			if !consulBearer(pr.Out.Header.Get("Authorization")) {
				pr.Out.Header.Del("Authorization")
			}
			if !strings.HasPrefix(pr.Out.URL.Path, "/ui/assets/") {
				// index.html is rewritten: it must come uncompressed.
				pr.Out.Header.Del("Accept-Encoding")
				pr.Out.Header.Del("If-None-Match")
				pr.Out.Header.Del("If-Modified-Since")
			}
			pr.SetXForwarded()
		},
		ModifyResponse: u.modify,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, http.StatusBadGateway, fmt.Sprintf("Consul agent %s: %v", r.Context().Value(uiTargetKey{}), err))
		},
	}
	return u
}

func (u *uiProxy) modify(resp *http.Response) error {
	ct := resp.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "text/html") || resp.Header.Get("Content-Encoding") != "" ||
		!strings.HasPrefix(resp.Request.URL.Path, "/ui/") || resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading the UI's index.html: %w", err)
	}
	seen := resp.Request.Header.Get(uiSeenHeader)
	out, err := rewriteUIIndex(body, "/ui/", seen)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	resp.Header.Del("ETag")
	resp.Header.Set("Cache-Control", "no-cache")
	return nil
}

// uiSeenHeader carries, on the request to the agent, the path the scheduler
// received, for the index rewrite. The agent ignores it.
const uiSeenHeader = "X-Dcos-Consul-Ui-Path"

func (u *uiProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/" || p == "/ui":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: only GET is allowed here", r.Method, p))
			return
		}
		// Relative, so that it stays under /service/<name>/ behind Admin Router.
		// From "/" and from "/ui" alike, "ui/" is <prefix>/ui/.
		w.Header().Set("Location", "ui/")
		w.WriteHeader(http.StatusFound)
		return
	case strings.HasPrefix(p, ConsulAPIPrefix+"/"):
		if ok, why := uiAPIAllowed(r.Method, strings.TrimPrefix(p, ConsulAPIPrefix)); !ok {
			writeError(w, http.StatusForbidden, why)
			return
		}
	case strings.HasPrefix(p, "/ui/"):
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s (see /ui/, /v1/plans, /v1/pod, /v1/endpoints, /v1/health, /metrics)", r.Method, p))
		return
	}
	v := u.src.Snapshot()
	if !v.Target.UI {
		// The /consul/ routes are there for the UI only.
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s: Consul's web UI is off (option consul.ui), and so are the Consul API routes it calls; the scheduler's API is under /v1/", p))
		return
	}
	target, ok, why := uiAgent(v.Tasks)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "Consul's UI: "+why)
		return
	}
	r = r.Clone(context.WithValue(r.Context(), uiTargetKey{}, target))
	r.Header.Del(uiSeenHeader)
	if strings.HasPrefix(p, "/ui/") {
		r.Header.Set(uiSeenHeader, r.URL.EscapedPath())
	}
	u.proxy.ServeHTTP(w, r)
}

// uiTransport sends each request with the Consul client transport of the
// moment (HTTPS verified against the service's CA when TLS is on).
type uiTransport struct{}

func (uiTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return consulclient.HTTPClient(0).Transport.RoundTrip(r)
}
