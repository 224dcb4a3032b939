package executor

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// With MESOS_EXECUTOR_AUTHENTICATION_TOKEN the executor sends it as a
// Bearer token on its calls to the agent, and takes it out of its
// environment; without it, no Authorization header.
func TestExecutorAuthenticationToken(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	ln, err := net.Listen("tcp", "127.3.0.41:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	for _, token := range []string{"t0k-123", ""} {
		e := newExecutor(Config{FrameworkID: "fw", ExecutorID: "ex", AgentEndpoint: ln.Addr().String(), CallTimeout: 5 * time.Second, AuthToken: token},
			zaptest.NewLogger(t), nil)
		e.sendHeartbeat()
		if err := <-e.hbResults; err != nil {
			t.Fatalf("heartbeat: %v", err)
		}
		mu.Lock()
		last := got[len(got)-1]
		mu.Unlock()
		want := ""
		if token != "" {
			want = "Bearer " + token
		}
		if last != want {
			t.Errorf("token %q: Authorization %q, want %q", token, last, want)
		}
	}

	t.Setenv("MESOS_FRAMEWORK_ID", "fw")
	t.Setenv("MESOS_EXECUTOR_ID", "ex")
	t.Setenv("MESOS_DIRECTORY", "/sb")
	t.Setenv("MESOS_SANDBOX", "/sb")
	t.Setenv("MESOS_AGENT_ENDPOINT", "127.3.0.41:5051")
	t.Setenv("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5secs")
	t.Setenv(EnvAuthToken, "from-the-agent")
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.AuthToken != "from-the-agent" {
		t.Errorf("AuthToken %q", c.AuthToken)
	}
	if v, ok := os.LookupEnv(EnvAuthToken); ok {
		t.Errorf("%s still in the environment: %q", EnvAuthToken, v)
	}
}
