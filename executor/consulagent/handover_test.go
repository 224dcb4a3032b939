package consulagent

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/agent/structs"
)

// TestHeldInHandOver: what reaches raft through the leader is held
// (writes, reads that must be the leader's); stale reads, raft and
// autopilot operations and Status.* (which the hand-over and the
// scheduler's gate use) pass, and so does anything without Consul's
// request information. The operator's raft changes are writes: held.
func TestHeldInHandOver(t *testing.T) {
	for _, tc := range []struct {
		method string
		args   any
		want   bool
	}{
		{"KVS.Apply", &structs.KVSRequest{}, true},
		{"Catalog.Register", &structs.RegisterRequest{}, true},
		{"KVS.Get", &structs.KeyRequest{}, true},
		{"KVS.Get", &structs.KeyRequest{QueryOptions: structs.QueryOptions{AllowStale: true}}, false},
		{"Status.RaftStats", &struct{}{}, false},
		{"Status.Leader", &structs.DCSpecificRequest{}, false},
		{"Operator.RaftGetConfiguration", &structs.DCSpecificRequest{}, false},
		{"Operator.ServerHealth", &structs.DCSpecificRequest{}, false},
		{"Operator.RaftRemovePeerByAddress", &structs.RaftRemovePeerRequest{}, true},
		{"Internal.Something", "not a request", false},
	} {
		if got := heldInHandOver(tc.method, tc.args); got != tc.want {
			t.Errorf("%s %T: held %v, want %v", tc.method, tc.args, got, tc.want)
		}
	}
}

// TestWriteFence: a request waits while the fence is up and goes on when
// it comes down, or at the fence's deadline; with the fence down nothing
// waits; lower says how many requests waited.
func TestWriteFence(t *testing.T) {
	var f writeFence
	f.wait() // down: returns at once

	if !f.raise(time.Now().Add(time.Minute)) {
		t.Fatal("raise of a fence that was down says it was up")
	}
	if f.raise(time.Now().Add(time.Minute)) {
		t.Fatal("a second raise says the fence was down")
	}
	released := make(chan struct{})
	go func() { f.wait(); close(released) }()
	waitUntil(t, func() bool { return f.held.Load() == 1 })
	select {
	case <-released:
		t.Fatal("a request went on through the fence")
	case <-time.After(50 * time.Millisecond):
	}
	if n := f.lower(); n != 1 {
		t.Errorf("lower says %d requests held, want 1", n)
	}
	select {
	case <-released:
	case <-time.After(10 * time.Second):
		t.Fatal("the request was not released when the fence came down")
	}

	// The deadline releases a request even if nobody lowers the fence.
	f.raise(time.Now().Add(100 * time.Millisecond))
	done := make(chan struct{})
	go func() { f.wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the request was not released at the fence's deadline")
	}
	f.lower()
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}
