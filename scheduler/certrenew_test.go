package scheduler

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/reconcile"
)

func TestRenewalPick(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	year := 365 * 24 * time.Hour
	fresh := func(n string) serverCert {
		return serverCert{Name: n, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(year)}
	}
	due := func(n string, left time.Duration) serverCert {
		return serverCert{Name: n, NotBefore: now.Add(left - year), NotAfter: now.Add(left)}
	}
	healthy := &reconcile.RaftHealth{Healthy: true}
	for _, c := range []struct {
		name    string
		running int
		certs   []serverCert
		health  *reconcile.RaftHealth
		want    string
		why     string
	}{
		{"all fresh", 3, []serverCert{fresh("s0"), fresh("s1"), fresh("s2")}, healthy, "", "no server certificate is due"},
		{"the one expiring first", 3, []serverCert{due("s0", 90*24*time.Hour), fresh("s1"), due("s2", 30*24*time.Hour)}, healthy, "s2", "expires at"},
		{"a server down", 2, []serverCert{due("s0", time.Hour), fresh("s1")}, healthy, "", "waiting for all 3 servers"},
		{"one did not answer", 3, []serverCert{due("s0", time.Hour), fresh("s1")}, healthy, "", "waiting for all 3 servers"},
		{"raft unhealthy", 3, []serverCert{due("s0", time.Hour), fresh("s1"), fresh("s2")}, &reconcile.RaftHealth{}, "", "healthy raft"},
		{"no raft view", 3, []serverCert{due("s0", time.Hour), fresh("s1"), fresh("s2")}, nil, "", "healthy raft"},
	} {
		got, why := renewalPick(now, 3, c.running, c.certs, c.health)
		if got != c.want || !strings.Contains(why, c.why) {
			t.Errorf("%s: %q (%s), want %q (%s)", c.name, got, why, c.want, c.why)
		}
	}
	if renewCheckEvery(0) != time.Hour || renewCheckEvery(3*time.Minute) != 10*time.Second {
		t.Error("check interval")
	}
}

func TestRenewalStep(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	wait := 20 * time.Second
	for _, c := range []struct {
		name string
		a    *renewAttempt
		want renewAction
		why  string
	}{
		{"first time", nil, renewMessage, "in place"},
		{"a new incarnation of the task", &renewAttempt{TaskID: "old", Messages: 3, LastSent: now.Add(-time.Hour)}, renewMessage, "in place"},
		{"asked just now", &renewAttempt{TaskID: "t", Messages: 1, LastSent: now.Add(-5 * time.Second)}, renewWait, "waiting for its executor's report"},
		{"reported loaded, not seen yet", &renewAttempt{TaskID: "t", Messages: 1, LastSent: now.Add(-5 * time.Second), Serial: "ab"}, renewWait, "waiting"},
		{"no answer: ask again", &renewAttempt{TaskID: "t", Messages: 1, LastSent: now.Add(-wait)}, renewMessage, "again"},
		{"the executor failed", &renewAttempt{TaskID: "t", Messages: 1, LastSent: now, Failed: "Consul did not reload"}, renewRestart, "Consul did not reload"},
		{"never renewed after 3 requests", &renewAttempt{TaskID: "t", Messages: 3, LastSent: now.Add(-wait)}, renewRestart, "3 times"},
		{"3rd request still pending", &renewAttempt{TaskID: "t", Messages: 3, LastSent: now.Add(-time.Second)}, renewWait, "asked 3 time"},
	} {
		got, why := renewalStep(now, "t", c.a, wait)
		if got != c.want || !strings.Contains(why, c.why) {
			t.Errorf("%s: %v (%s), want %v (%s)", c.name, got, why, c.want, c.why)
		}
	}
	if renewResendAfter(10*time.Second) != 20*time.Second || renewResendAfter(time.Hour) != 2*time.Hour {
		t.Error("resend interval")
	}
}

func TestCertRenewals(t *testing.T) {
	var c certRenewals
	now := time.Now()
	if c.get("s0") != nil || c.reported("s0", "t0", taskspec.TLSRenewReport{Serial: "1"}) {
		t.Fatal("an attempt out of nothing")
	}
	c.sent("s0", "t0", now)
	c.sent("s0", "t0", now.Add(time.Second))
	if a := c.get("s0"); a == nil || a.Messages != 2 || !a.LastSent.Equal(now.Add(time.Second)) {
		t.Fatalf("%+v", a)
	}
	if c.reported("s0", "t-other", taskspec.TLSRenewReport{Error: "x"}) {
		t.Error("a report of another task counted")
	}
	if !c.reported("s0", "t0", taskspec.TLSRenewReport{Error: "no"}) || c.get("s0").Failed != "no" {
		t.Error("report not kept")
	}
	c.sent("s0", "t1", now) // relaunched: a new attempt
	if a := c.get("s0"); a.Messages != 1 || a.Failed != "" {
		t.Errorf("%+v", a)
	}
	c.sent("s1", "t2", now)
	c.keepOnly("s1")
	if c.get("s0") != nil || c.get("s1") == nil {
		t.Error("keepOnly")
	}
	c.keepOnly("")
	if c.get("s1") != nil {
		t.Error("keepOnly all")
	}
}

func TestTLSRenewReportRoute(t *testing.T) {
	var c certRenewals
	c.sent("consul-server-0", "consul-server-0__a", time.Now())
	h := tlsRenewReportHandler(func(id, tok string) bool { return tok == "cred-"+id },
		func(id string) bool { return id == "consul-server-0__a" }, c.reported, zap.NewNop())
	call := func(method, id, tok, body string) int {
		req := httptest.NewRequest(method, taskspec.TLSRenewPath+"?task_id="+id, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		w := httptest.NewRecorder()
		h(w, req)
		return w.Code
	}
	ok := `{"serial":"ab","not_after":"2027-01-01T00:00:00Z"}`
	for _, x := range []struct {
		name, method, id, tok, body string
		code                        int
	}{
		{"GET", http.MethodGet, "consul-server-0__a", "cred-consul-server-0__a", ok, http.StatusMethodNotAllowed},
		{"no credential", http.MethodPost, "consul-server-0__a", "", ok, http.StatusUnauthorized},
		{"another task's credential", http.MethodPost, "consul-server-0__a", "cred-consul-client-x__b", ok, http.StatusForbidden},
		{"not a live server", http.MethodPost, "consul-client-x__b", "cred-consul-client-x__b", ok, http.StatusForbidden},
		{"not a report", http.MethodPost, "consul-server-0__a", "cred-consul-server-0__a", `[1]`, http.StatusBadRequest},
		{"an empty report", http.MethodPost, "consul-server-0__a", "cred-consul-server-0__a", `{}`, http.StatusBadRequest},
	} {
		if code := call(x.method, x.id, x.tok, x.body); code != x.code {
			t.Errorf("%s: %d, want %d", x.name, code, x.code)
		}
	}
	if a := c.get("consul-server-0"); a.Serial != "" || a.Failed != "" {
		t.Fatalf("a refused report was kept: %+v", a)
	}
	if code := call(http.MethodPost, "consul-server-0__a", "cred-consul-server-0__a", ok); code != http.StatusNoContent {
		t.Fatalf("report: %d", code)
	}
	if a := c.get("consul-server-0"); a.Serial != "ab" || a.NotAfter.Year() != 2027 {
		t.Errorf("report not kept: %+v", a)
	}
	if code := call(http.MethodPost, "consul-server-0__a", "cred-consul-server-0__a", `{"error":"reload failed"}`); code != http.StatusNoContent {
		t.Fatalf("failure report: %d", code)
	}
	if act, _ := renewalStep(time.Now(), "consul-server-0__a", c.get("consul-server-0"), time.Minute); act != renewRestart {
		t.Errorf("after a failure report: %v, want a restart", act)
	}
}
