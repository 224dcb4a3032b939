package operator

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// adminRouter stands in for DC/OS Admin Router in front of the scheduler:
// it checks the ACS token, strips /service/<name> and proxies to the
// scheduler, answering as Admin Router does when it cannot.
func adminRouter(t *testing.T, sched http.Handler, service, token string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch auth := r.Header.Get("Authorization"); {
		case auth == "":
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("WWW-Authenticate", "acsjwt")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte("<html><body><h1>401 Unauthorized</h1></body></html>"))
		case auth != "token="+token:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte("<html><body><h1>403 Forbidden</h1></body></html>"))
		case strings.HasPrefix(r.URL.Path, "/service/"+service+"/"):
			r.URL.Path = strings.TrimPrefix(r.URL.Path, "/service/"+service)
			sched.ServeHTTP(w, r)
		default:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("<html><body><h1>404 Not Found</h1>service not found</body></html>"))
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func throughDCOS(t *testing.T, ar *httptest.Server, service, token string) (*Commands, error) {
	t.Helper()
	env := mapEnv(map[string]string{EnvDCOSURL: ar.URL + "/", EnvDCOSToken: token})
	loc, err := Locate("", ServiceName(service, env), env)
	if err != nil {
		return nil, err
	}
	c, err := NewClient(loc, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return &Commands{Client: c, Out: &strings.Builder{}}, nil
}

// Through Admin Router: /service/<name>/, the token as "token=...", a
// Marathon folder in the name.
func TestThroughAdminRouter(t *testing.T) {
	s := startScheduler(t)
	ar := adminRouter(t, s.Config.Handler, "prod/consul", "good-token")
	c, err := throughDCOS(t, ar, "/prod/consul", "good-token")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PodList(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.Out.(*strings.Builder).String(); !strings.HasPrefix(got, "consul-server-0\n") {
		t.Fatalf("%q", got)
	}
	if r := s.requests(); len(r) != 1 || r[0].path != "/v1/pod" || r[0].auth != "token=good-token" {
		t.Fatalf("%v", r)
	}
}

func TestAuthErrors(t *testing.T) {
	s := startScheduler(t)
	ar := adminRouter(t, s.Config.Handler, "consul", "good-token")
	c, _ := throughDCOS(t, ar, "", "")
	err := c.PlanShow(ctx, "")
	if err == nil || !strings.Contains(err.Error(), "401 Unauthorized") || !strings.Contains(err.Error(), "`dcos auth login`") ||
		!strings.Contains(err.Error(), "No DC/OS token was sent") {
		t.Fatalf("%v", err)
	}
	c, _ = throughDCOS(t, ar, "", "expired")
	err = c.PlanShow(ctx, "")
	if err == nil || !strings.Contains(err.Error(), "403 Forbidden") || !strings.Contains(err.Error(), "token was refused") ||
		!strings.Contains(err.Error(), "`dcos auth login`") {
		t.Fatalf("%v", err)
	}
	if len(s.requests()) != 0 {
		t.Fatalf("the scheduler was reached: %v", s.requests())
	}
}

func TestNoSuchService(t *testing.T) {
	s := startScheduler(t)
	ar := adminRouter(t, s.Config.Handler, "consul", "tok")
	c, _ := throughDCOS(t, ar, "consul-b", "tok")
	err := c.PodInfo(ctx, "consul-server-0")
	if err == nil || !strings.Contains(err.Error(), `DC/OS has no service named "consul-b"`) || !strings.Contains(err.Error(), "/service/consul-b/v1/pod/consul-server-0/info") {
		t.Fatalf("%v", err)
	}
	// Not an API 404: no pod listing was attempted.
	if IsNotFound(err) {
		t.Fatal("Admin Router's 404 taken for the API's")
	}
}

func TestBadGateway(t *testing.T) {
	ar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>502 Bad Gateway</html>"))
	}))
	defer ar.Close()
	c, _ := throughDCOS(t, ar, "", "tok")
	err := c.PlanShow(ctx, "")
	if err == nil || !strings.Contains(err.Error(), "502 Bad Gateway") || !strings.Contains(err.Error(), "may be starting or restarting") {
		t.Fatalf("%v", err)
	}
}

// Something other than the scheduler at the address.
func TestNotJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<html><title>Consul by HashiCorp</title></html>"))
	}))
	defer srv.Close()
	c, _ := commands(t, srv.URL, false)
	err := c.PlanShow(ctx, "")
	if err == nil || !strings.Contains(err.Error(), "the answer is not JSON (text/html:") || !strings.Contains(err.Error(), "Is "+srv.URL+" (from --url) the dcos-consul scheduler API?") {
		t.Fatalf("%v", err)
	}

	// JSON, but not the API's shape.
	js := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"deploy": true}`))
	}))
	defer js.Close()
	c, _ = commands(t, js.URL, false)
	if err := c.PodList(ctx); err == nil || !strings.Contains(err.Error(), "not in the scheduler API's shape") {
		t.Fatalf("%v", err)
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, _ := commands(t, "http://"+addr, false)
	err = c.PodList(ctx)
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "cannot reach the scheduler at http://"+addr+"/v1/pod (address from --url)") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("%v", err)
	}
}
