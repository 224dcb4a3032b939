package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dcos-consul/dcos-consul/scheduler/plan"
)

// FuzzAPI sends any method, path, query and body to the scheduler's API:
// never a panic; every /v1/ answer is JSON with a status below 500 (the
// fake scheduler is healthy, so a 5xx can only be the API's own fault);
// a request reaches the scheduler's restart, replace or plan operations
// only as a POST to the route that names them; a refusal names the path
// or what was wrong.
func FuzzAPI(f *testing.F) {
	for _, s := range []struct{ method, target string }{
		{"GET", "/v1/plans"}, {"GET", "/v1/plans/deploy"}, {"POST", "/v1/plans/deploy/start?phase=servers&step=consul-server-0"},
		{"POST", "/v1/plans/update/forceComplete"}, {"PUT", "/v1/plans/deploy/restart"}, {"GET", "/v1/pod"},
		{"GET", "/v1/pod/status"}, {"GET", "/v1/pod/consul-server-0/info"}, {"POST", "/v1/pod/consul-server-0/replace"},
		{"DELETE", "/v1/pod/consul-server-0/restart"}, {"GET", "/v1/endpoints"}, {"GET", "/v1/endpoints/http"},
		{"GET", "/v1/health"}, {"GET", "/v1/configurations/target"}, {"GET", "/v1/configurations/c1"},
		{"GET", "/v1/state/frameworkId"}, {"GET", "/v1/plans/%2e%2e/start"}, {"POST", "/v1/pod//restart"},
		{"GET", "/v1/plans/deploy/start/x"}, {"HEAD", "/v1/configurations/zz"}, {"OPTIONS", "/v1/pod"},
	} {
		f.Add(s.method, s.target, "")
	}
	f.Add("POST", "/v1/plans/deploy/interrupt", `{"phase":"x"}`)
	f.Fuzz(func(t *testing.T, method, target, body string) {
		if !validMethod(method) {
			return
		}
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(u.Path, "/v1/") {
			return
		}
		src := &fakeSource{view: view(plan.Complete)}
		h := Handler(src, prometheus.NewRegistry())
		req := httptest.NewRequest(http.MethodGet, "/", strings.NewReader(body))
		req.Method, req.URL, req.RequestURI = method, u, target
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, method, u, rec)
		if method != http.MethodPost && (len(src.restarts) > 0 || len(src.planCmds) > 0) {
			t.Fatalf("%s %s reached the scheduler: %v %v", method, target, src.restarts, src.planCmds)
		}
		for _, c := range src.planCmds {
			if !planVerbs[c.Verb] || c.Plan == "" || strings.Contains(c.Plan, "/") {
				t.Fatalf("%s %s: plan command %+v", method, target, c)
			}
		}
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, r := range m {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

func checkAnswer(t *testing.T, method string, u *url.URL, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("%s %s: %d %s", method, u, rec.Code, rec.Body.String())
	}
	if method == http.MethodHead || rec.Code == http.StatusMovedPermanently || rec.Code == http.StatusTemporaryRedirect {
		return
	}
	b, _ := io.ReadAll(rec.Body)
	if !json.Valid(b) {
		t.Fatalf("%s %s: %d, not JSON: %q", method, u, rec.Code, b)
	}
	if rec.Code >= 400 {
		var e struct{ Message string }
		if json.Unmarshal(b, &e) != nil || e.Message == "" {
			t.Fatalf("%s %s: %d without a message: %s", method, u, rec.Code, b)
		}
	}
}
