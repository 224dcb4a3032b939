package agent

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// With executor authentication the agent hands each executor a token in
// MESOS_EXECUTOR_AUTHENTICATION_TOKEN and refuses calls without it (401,
// WWW-Authenticate: Bearer) or with another executor's (403); an executor
// that sends its token runs its task.
func TestExecutorAuthentication(t *testing.T) {
	a, m := newTestAgent(t, func(c *Config) { c.ExecutorAuthentication = true })
	launch(a, executorInfo("e-auth", nil), taskInfo(a, "t-auth", ""))
	waitState(t, m, "t-auth", mesos.TASK_RUNNING)
	st, ok := executorState(a, "e-auth")
	if !ok {
		t.Fatal("executor not listed")
	}
	var token string
	for _, line := range strings.Split(readFile(t, filepath.Join(st.Directory, "env.txt")), "\n") {
		if v, ok := strings.CutPrefix(line, "MESOS_EXECUTOR_AUTHENTICATION_TOKEN="); ok {
			token = v
		}
	}
	if token == "" {
		t.Fatal("no MESOS_EXECUTOR_AUTHENTICATION_TOKEN in the executor's environment")
	}
	post := func(auth, body string) (int, http.Header, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+a.Endpoint()+"/api/v1/executor", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	hb := `{"type":"HEARTBEAT","executor_id":{"value":"e-auth"},"framework_id":{"value":"` + testFramework.ID.Value + `"}}`
	for _, auth := range []string{"", "Bearer wrong", "Basic dTpw"} {
		code, h, body := post(auth, hb)
		if code != http.StatusUnauthorized || h.Get("WWW-Authenticate") != `Bearer realm="mesos-agent-executor"` || body != "401 Unauthorized." {
			t.Errorf("Authorization %q: %d %q %q", auth, code, h.Get("WWW-Authenticate"), body)
		}
	}
	if code, _, body := post("Bearer "+token, hb); code != http.StatusAccepted {
		t.Errorf("with the token: %d %s", code, body)
	}
	// Another executor's token: authenticated, not authorized.
	launch(a, executorInfo("e-other", nil), taskInfo(a, "t-other", ""))
	waitState(t, m, "t-other", mesos.TASK_RUNNING)
	sub := `{"type":"SUBSCRIBE","executor_id":{"value":"e-other"},"framework_id":{"value":"` + testFramework.ID.Value + `"},"subscribe":{}}`
	if code, _, body := post("Bearer "+token, sub); code != http.StatusForbidden {
		t.Errorf("e-auth's token on e-other's SUBSCRIBE: %d %s", code, body)
	}
}
