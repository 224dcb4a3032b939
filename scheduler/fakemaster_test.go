package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	mesosscheduler "github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap/zaptest"

	"github.com/dcos-consul/dcos-consul/internal/mesoscodec"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// fakeMaster speaks just enough of the scheduler API to test the driver's
// connection handling: calls in JSON or protobuf as the real master takes
// them, SUBSCRIBE answered in the type Accept asks for (JSON whenever it
// is acceptable, or always JSON with forceJSON) with SUBSCRIBED, the
// scripted events, and then silence (no heartbeats); other calls get 202
// (or wait stall first) and are recorded.
type fakeMaster struct {
	mu         sync.Mutex
	subscribes []string // request bodies, as JSON
	calls      []string // call types
	redirectTo string   // when set, every request gets 307 to this host:port
	subscribed string   // the SUBSCRIBED event (JSON); default: framework fake-0000, 15 s heartbeats
	events     []string // JSON events sent after SUBSCRIBED, on every subscription
	forceJSON  bool
	stall      time.Duration // how long non-SUBSCRIBE calls wait before their 202
	srv        *http.Server
	addr       string
}

func startFakeMaster(t *testing.T, ip string) *fakeMaster {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeMaster{addr: ln.Addr().String()}
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve)}
	go f.srv.Serve(ln)
	t.Cleanup(func() { f.srv.Close() })
	return f
}

func (f *fakeMaster) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/master/state" {
		// Only the scheduler API is faked (the start-up look for a
		// previous framework finds nothing).
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	redirect, stall := f.redirectTo, f.stall
	f.mu.Unlock()
	if redirect != "" {
		w.Header().Set("Location", "//"+redirect+r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
		f.mu.Lock()
		f.calls = append(f.calls, "redirected")
		f.mu.Unlock()
		return
	}
	var call mesosscheduler.Call
	if err := mesoscodec.Unmarshal(r.Header.Get("Content-Type"), body, &call); err != nil {
		http.Error(w, "Failed to parse body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if call.GetType() == mesosscheduler.Call_SUBSCRIBE {
		f.subscribe(w, r, &call)
		return
	}
	if stall > 0 {
		select {
		case <-time.After(stall):
		case <-r.Context().Done():
		}
	}
	f.mu.Lock()
	f.calls = append(f.calls, call.GetType().String())
	f.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (f *fakeMaster) subscribe(w http.ResponseWriter, r *http.Request, call *mesosscheduler.Call) {
	asJSON, _ := json.Marshal(call)
	f.mu.Lock()
	f.subscribes = append(f.subscribes, string(asJSON))
	events := append([]string{f.subscribed}, f.events...)
	media := mesoscodec.MediaProtobuf
	if f.forceJSON || strings.Contains(strings.Join(r.Header.Values("Accept"), ","), mesoscodec.MediaJSON) {
		media = mesoscodec.MediaJSON
	}
	f.mu.Unlock()
	if events[0] == "" {
		events[0] = `{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"fake-0000"},"heartbeat_interval_seconds":15.0}}`
	}
	w.Header().Set("Content-Type", media)
	w.Header().Set("Mesos-Stream-Id", fmt.Sprintf("stream-%d", time.Now().UnixNano()))
	w.WriteHeader(200)
	for _, ev := range events {
		b := []byte(ev)
		if media == mesoscodec.MediaProtobuf {
			var e mesosscheduler.Event
			if err := mesoscodec.Unmarshal(mesoscodec.MediaJSON, b, &e); err != nil {
				panic(fmt.Sprintf("fake master: scripted event %s: %v", ev, err))
			}
			b, _ = e.Marshal()
		}
		fmt.Fprintf(w, "%d\n%s", len(b), b)
	}
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

func (f *fakeMaster) snapshot() (subs []string, calls []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.subscribes...), append([]string(nil), f.calls...)
}

func runAgainst(t *testing.T, master string, opts Options) (stop func()) {
	t.Helper()
	return runAgainstURL(t, "http://"+master, opts)
}

func runAgainstURL(t *testing.T, master string, opts Options) (stop func()) {
	t.Helper()
	cfg := config.Defaults()
	cfg.MesosMaster = master
	cfg.ExecutorURI = "http://127.2.0.1:1/dcos-consul"
	if opts.Listener == nil {
		ln, err := net.Listen("tcp", "127.2.200.1:0")
		if err != nil {
			t.Fatal(err)
		}
		opts.Listener = ln
	}
	opts.Store = newMemStore()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunWith(ctx, cfg, zaptest.NewLogger(t), opts) }()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("scheduler did not stop")
		}
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s", what, timeout)
}

func TestHeartbeatWatchdogResubscribesWithTheSameFrameworkID(t *testing.T) {
	m := startFakeMaster(t, "127.2.200.2")
	stop := runAgainst(t, m.addr, Options{HeartbeatInterval: 300 * time.Millisecond, HeartbeatMisses: 2, ResubscribeMax: 500 * time.Millisecond})
	defer stop()
	waitFor(t, "a second SUBSCRIBE after the master went silent", 20*time.Second, func() bool {
		subs, _ := m.snapshot()
		return len(subs) >= 2
	})
	subs, calls := m.snapshot()
	if strings.Contains(subs[0], "fake-0000") {
		t.Fatalf("first SUBSCRIBE already had a framework id: %s", subs[0])
	}
	if !strings.Contains(subs[1], `"framework_id":{"value":"fake-0000"}`) {
		t.Fatalf("re-SUBSCRIBE without the framework id: %s", subs[1])
	}
	for _, want := range []string{`"MULTI_ROLE"`, `"PARTITION_AWARE"`, `"TASK_KILLING_STATE"`, `"roles":["consul-role"]`, `"failover_timeout":604800`, `"principal":"consul-principal"`, `"checkpoint":true`} {
		if !strings.Contains(subs[1], want) {
			t.Errorf("SUBSCRIBE lacks %s: %s", want, subs[1])
		}
	}
	if len(calls) == 0 || calls[0] != "RECONCILE" && calls[0] != "REVIVE" {
		t.Errorf("calls after SUBSCRIBED: %v", calls)
	}
}

func TestCallsFollowTheLeaderAfterARedirect(t *testing.T) {
	leader := startFakeMaster(t, "127.2.200.3")
	follower := startFakeMaster(t, "127.2.200.4")
	follower.redirectTo = leader.addr
	stop := runAgainst(t, follower.addr, Options{})
	defer stop()
	waitFor(t, "SUBSCRIBE and calls at the leader", 20*time.Second, func() bool {
		subs, calls := leader.snapshot()
		return len(subs) == 1 && len(calls) >= 2
	})
	_, fcalls := follower.snapshot()
	if len(fcalls) != 1 {
		t.Fatalf("the follower saw %v: every call after the first redirect must go to the leader", fcalls)
	}
}
