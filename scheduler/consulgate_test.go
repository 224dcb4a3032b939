package scheduler

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/api"
	"github.com/dcos-consul/dcos-consul/scheduler/backup"
	"github.com/dcos-consul/dcos-consul/scheduler/secrets"
)

// gateMux has the shape of httpHandler's mux: the scheduler's own routes,
// and "/" for the UI and its Consul API proxy. Each handler records what
// reached it.
func gateMux(reached *[]string) *http.ServeMux {
	mux := http.NewServeMux()
	rec := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			*reached = append(*reached, name+" "+r.Method+" "+r.URL.Path)
		}
	}
	for _, p := range []string{taskspec.SecretsPath, ManagementTokenPath, secrets.CAPath, KeyringRotatePath, backup.ExecutorPath,
		"/v1/plans/", "/v1/pod/", "/v1/recover", "/v1/snapshots/", "/v1/plans", "/v1/pod"} {
		mux.Handle(p, rec("scheduler"))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, api.ConsulAPIPrefix+"/") {
			rec("consul")(w, r)
			return
		}
		rec("scheduler")(w, r)
	})
	return mux
}

// unauthenticated stands for the operator authentication, refusing all.
var unauthenticated = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusUnauthorized)
})

// TestConsulACLGate: with ACLs on, the UI proxy's /consul/ routes skip the
// operator authentication (Consul's ACLs decide on the caller's token);
// with ACLs off they need it; the scheduler's own routes need it either
// way, also behind paths that only start with /consul/.
func TestConsulACLGate(t *testing.T) {
	for _, c := range []struct {
		path   string
		acl    bool
		reach  string // what an unauthenticated write reaches: "consul" or "" (401)
		detail string
	}{
		{"/consul/v1/kv/x", true, "consul", "ACLs on: Consul decides"},
		{"/consul/v1/acl/token", true, "consul", "ACLs on: Consul decides"},
		{"/consul/v1/kv/x", false, "", "ACLs off: the operator's authentication"},
		{"/consul/v1/acl/token", false, "", "ACLs off: the operator's authentication"},
		{"/v1/pod/consul-server-0/restart", true, "", "a scheduler route"},
		{"/v1/plans/deploy/start", true, "", "a scheduler route"},
		{KeyringRotatePath, true, "", "a scheduler route"},
		{"/v1/recover", true, "", "a scheduler route"},
		{"/v1/snapshots/x/restore", true, "", "a scheduler route"},
		{ManagementTokenPath, true, "", "a scheduler route"},
		{"/v1/kv/x", true, "", "Consul's path without the prefix is the scheduler's"},
		{"/consul", true, "", "not under /consul/"},
		{"/consulx/v1/kv/x", true, "", "not under /consul/"},
		{"/Consul/v1/kv/x", true, "", "paths are case-sensitive"},
		{"/ui/", true, "", "the UI's pages are read-only"},
		{"/consul/../v1/pod/consul-server-0/restart", true, "", "not clean"},
		{"/consul/v1/../../v1/plans/deploy/start", true, "", "not clean"},
		{"/consul/./v1/pod/x/replace", true, "", "not clean"},
	} {
		for _, m := range []string{http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodPatch} {
			var reached []string
			mux := gateMux(&reached)
			h := consulACLGate(mux, unauthenticated, func() bool { return c.acl })
			req := httptest.NewRequest(m, "/", nil)
			req.URL = &url.URL{Path: c.path}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := ""
			switch {
			case len(reached) == 1 && strings.HasPrefix(reached[0], "consul "):
				got = "consul"
			case len(reached) > 0:
				got = "scheduler: " + strings.Join(reached, ", ")
			case rec.Code == http.StatusMovedPermanently || rec.Code == http.StatusPermanentRedirect:
				got = "redirect"
			case rec.Code != http.StatusUnauthorized:
				got = "code " + http.StatusText(rec.Code)
			}
			if got != c.reach {
				t.Errorf("%s %s (ACLs on: %v; %s): reached %q, want %q", m, c.path, c.acl, c.detail, got, c.reach)
			}
		}
	}
}

// FuzzConsulACLGate: whatever the method and path, with ACLs on or off, an
// unauthenticated request that changes something reaches no scheduler
// route; it reaches the Consul API proxy only with ACLs on and only under
// /consul/.
func FuzzConsulACLGate(f *testing.F) {
	for _, p := range []string{"/consul/v1/kv/x", "/consul/../v1/pod/x/restart", "/consul/%2e%2e/v1/recover", "/v1/plans/deploy/start",
		"/consul//v1/pod/x/restart", "/consul/v1/kv/x/../../../../v1/keyring/rotate", "/%63onsul/v1/kv/x"} {
		f.Add("PUT", p, true)
		f.Add("POST", p, false)
	}
	f.Fuzz(func(t *testing.T, method, target string, acl bool) {
		if method == "" || strings.ContainsAny(method, " \t\r\n") {
			return
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		switch method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodConnect:
			return // reads are open; CONNECT is not routed by path
		}
		var reached []string
		h := consulACLGate(gateMux(&reached), unauthenticated, func() bool { return acl })
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Method, req.URL, req.RequestURI = method, u, target
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		for _, r := range reached {
			if !strings.HasPrefix(r, "consul ") {
				t.Fatalf("%s %s (ACLs on: %v) reached %s without authentication", method, target, acl, r)
			}
			if !acl {
				t.Fatalf("%s %s reached the Consul API proxy without authentication with ACLs off", method, target)
			}
		}
	})
}
