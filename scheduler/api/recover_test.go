package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/plan"
	"github.com/dcos-consul/dcos-consul/scheduler/recovery"
)

type recoverSource struct {
	fakeSource
	got []string
}

func (r *recoverSource) Recover(_ context.Context, survivors []string, _ []taskspec.RaftPeer) (RecoverResponse, error) {
	r.got = survivors
	return RecoverResponse{RecoverRequest: RecoverRequest{Survivors: []string{"consul-server-2"}},
		Replaced: []string{"consul-server-0", "consul-server-1"}}, nil
}

func (r *recoverSource) RecoverStatus() *recovery.Quorum { return r.view.Quorum }

// TestHealthSaysQuorumLost: /v1/health answers 417 with the verdict while
// the scheduler sees a lost quorum, and 200 again once it clears; GET
// /v1/recover is the verdict, POST an empty body lets the scheduler name
// the survivors.
func TestHealthSaysQuorumLost(t *testing.T) {
	src := &recoverSource{fakeSource: fakeSource{view: view(plan.Complete)}}
	h := Handler(src, nil)
	if code, _, body := do(t, h, http.MethodGet, "/v1/recover"); code != http.StatusServiceUnavailable {
		t.Fatalf("no verdict yet: %d %s", code, body)
	}
	q := recovery.Assess(recovery.Quorum{SeenLeader: true, LeaderlessSince: time.Unix(0, 0)},
		recovery.Observation{At: time.Unix(60, 0), Configured: 3, Servers: []recovery.Server{{Name: "consul-server-0"}, {Name: "consul-server-1"},
			{Name: "consul-server-2", Reachable: true, LastIndex: 42}}}, recovery.DefaultThreshold)
	src.view.Quorum = &q
	code, obj, body := do(t, h, http.MethodGet, "/v1/health")
	if code != http.StatusExpectationFailed || obj["quorum_lost"] != true || !strings.Contains(body, "consul-server-2 (raft index 42)") {
		t.Fatalf("health while quorum is lost: %d %s", code, body)
	}
	code, obj, body = do(t, h, http.MethodGet, "/v1/recover")
	if code != http.StatusOK || obj["quorum_lost"] != true || obj["freshest"] != "consul-server-2" {
		t.Fatalf("GET /v1/recover: %d %s", code, body)
	}
	code, obj, body = do(t, h, http.MethodPost, "/v1/recover")
	if code != http.StatusOK || len(src.got) != 0 || !strings.Contains(body, `"consul-server-1"`) || obj["survivors"] == nil {
		t.Fatalf("POST /v1/recover: %d %s", code, body)
	}
	back := recovery.Assess(q, recovery.Observation{At: time.Unix(70, 0), Configured: 3, Servers: []recovery.Server{{Name: "consul-server-0"},
		{Name: "consul-server-1"}, {Name: "consul-server-2", Reachable: true, LastIndex: 43, Leader: "10.0.0.3:8300"}}}, recovery.DefaultThreshold)
	src.view.Quorum = &back
	if code, _, body := do(t, h, http.MethodGet, "/v1/health"); code != http.StatusOK {
		t.Fatalf("health once a leader is back: %d %s", code, body)
	}
}
