package scheduler

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// TestConsulTokenWithheldWhileACLsAreTurnedOn: while the ACL rollout's
// first phase has not seen its bootstrap the scheduler's Consul calls
// carry no token (Consul refuses an unknown one even under default
// allow); otherwise they carry its token. Both kinds of call: the API
// client's (autopilot) and the bare request (leadership transfer).
func TestConsulTokenWithheldWhileACLsAreTurnedOn(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("X-Consul-Token"))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	withhold := true
	c := httpConsul{log: zaptest.NewLogger(t), token: "sched-token", anonymous: func() bool { return withhold }}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call := func() []string {
		mu.Lock()
		got = nil
		mu.Unlock()
		_ = c.TransferLeader(ctx, []string{addr}, "id")
		_, _ = c.SetAutopilot(ctx, []string{addr}, 3, true)
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
	anon := call()
	if len(anon) == 0 {
		t.Fatal("no request reached the stand-in")
	}
	for _, h := range anon {
		if h != "" {
			t.Fatalf("token sent while withheld: %q", h)
		}
	}
	withhold = false
	hs := call()
	if len(hs) == 0 {
		t.Fatal("no request reached the stand-in")
	}
	for _, h := range hs {
		if h != "sched-token" {
			t.Fatalf("token %q, want the scheduler's", h)
		}
	}
}
