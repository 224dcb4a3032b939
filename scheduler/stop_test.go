package scheduler

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// TestStopIsPrompt: a scheduler stop (SIGTERM from Marathon) returns well
// under 5 s even with an API connection opened but silent (Marathon's
// health checker, a pre-dialled client) and an operator command waiting
// for the loop. Before, http.Server.Shutdown waited 5 s for the silent
// connection.
func TestStopIsPrompt(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.MesosMaster = "http://127.0.0.1:1" // nothing there: the loop waits in its backoff
	cfg.ExecutorURI = "http://127.0.0.1:1/dcos-consul"
	st := newMemStore()
	rec := state.Task{Name: "consul-server-0", Role: taskspec.RoleServer, TaskID: "consul-server-0__1", State: "TASK_RUNNING", AgentID: "a1"}
	if err := putJSON(context.Background(), st, taskKey(rec.Name), rec); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- RunWith(ctx, cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), Options{Store: st, Listener: ln,
			onStart: func(*Scheduler) { close(started) }})
	}()
	<-started
	// A connection that never sends a request.
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// An operator command in flight.
	cmdDone := make(chan int, 1)
	go func() {
		resp, err := http.Post("http://"+ln.Addr().String()+"/v1/pod/consul-server-0/restart", "application/json", nil)
		if err != nil {
			cmdDone <- -1
			return
		}
		resp.Body.Close()
		cmdDone <- resp.StatusCode
	}()
	time.Sleep(300 * time.Millisecond)
	stopAt := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunWith: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the scheduler did not stop within 10 s")
	}
	if d := time.Since(stopAt); d > 2*time.Second {
		t.Errorf("the scheduler took %s to stop, want well under 5 s", d)
	}
	b, err := st.Get(context.Background(), taskKey(rec.Name))
	if err != nil || !contains(b, `"state":"TASK_RUNNING"`) {
		t.Errorf("the stop changed the task record: %s %v", b, err)
	}
	select {
	case code := <-cmdDone:
		t.Logf("operator command answered %d", code)
	case <-time.After(5 * time.Second):
		t.Error("the operator command was not answered")
	}
}
