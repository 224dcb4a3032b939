package executor

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"

	"github.com/dcos-consul/dcos-consul/internal/mesoscodec"
)

// fakeAgent speaks the agent side of the v1 executor API the way a Mesos
// 1.12 agent does (see /work/shared/mesos-transcripts/09-11): JSON or
// protobuf calls, a chunked RecordIO SUBSCRIBE stream in the type the
// Accept header asks for (JSON whenever it is acceptable) and no
// Content-Length, 202 for UPDATE/HEARTBEAT/MESSAGE, and the call
// validation of the real agent (uuid of 16 bytes, source EXECUTOR, no
// STAGING). Tests drive it: send events, drop the stream, go down.
type fakeAgent struct {
	t        *testing.T
	addr     string
	srv      *http.Server
	fwID     string
	execID   string
	autoAck  bool
	killing  bool // announce TASK_KILLING_STATE
	mu       sync.Mutex
	down     bool
	stream   chan executor.Event // the live subscription's event queue
	closeCur chan struct{}
	subs     []executor.Call_Subscribe
	updates  []mesos.TaskStatus
	badCalls []string
	hbCalls  int
	messages [][]byte // MESSAGE calls' data, executor to scheduler
	hbFail   bool
	notify   chan struct{} // pinged on every call
}

func newFakeAgent(t *testing.T, ip string) *fakeAgent {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	fa := &fakeAgent{t: t, addr: l.Addr().String(), fwID: "fw-0000", execID: "consul-server-0__exec",
		autoAck: true, killing: true, notify: make(chan struct{}, 1)}
	fa.srv = &http.Server{Handler: http.HandlerFunc(fa.serve)}
	go fa.srv.Serve(l)
	t.Cleanup(func() { fa.srv.Close() })
	return fa
}

func (fa *fakeAgent) ping() {
	select {
	case fa.notify <- struct{}{}:
	default:
	}
}

func (fa *fakeAgent) serve(w http.ResponseWriter, r *http.Request) {
	defer fa.ping()
	fa.mu.Lock()
	down := fa.down
	fa.mu.Unlock()
	if down {
		// An agent that is restarting: the connection just fails.
		if hj, ok := w.(http.Hijacker); ok {
			c, _, _ := hj.Hijack()
			c.Close()
			return
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/api/v1/executor" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct != mesoscodec.MediaJSON && ct != mesoscodec.MediaProtobuf {
		fa.bad("content type " + ct)
		http.Error(w, "Expecting 'Content-Type' of application/json or application/x-protobuf", http.StatusUnsupportedMediaType)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var call executor.Call
	if err := mesoscodec.Unmarshal(ct, body, &call); err != nil {
		fa.bad("unparsable call: " + err.Error())
		http.Error(w, "Failed to parse body into Call protobuf", http.StatusBadRequest)
		return
	}
	if call.FrameworkID.Value != fa.fwID || call.ExecutorID.Value != fa.execID {
		fa.bad(fmt.Sprintf("call for framework %q executor %q", call.FrameworkID.Value, call.ExecutorID.Value))
		http.Error(w, "Executor cannot be found", http.StatusBadRequest)
		return
	}
	switch call.Type {
	case executor.Call_HEARTBEAT:
		fa.mu.Lock()
		fa.hbCalls++
		fail := fa.hbFail
		fa.mu.Unlock()
		if fail {
			http.Error(w, "Agent is recovering", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	case executor.Call_UPDATE:
		st := call.Update.Status
		if msg := validateUpdate(call.ExecutorID, st); msg != "" {
			fa.bad(msg)
			http.Error(w, "Failed to validate Executor::Call: "+msg, http.StatusBadRequest)
			return
		}
		fa.mu.Lock()
		fa.updates = append(fa.updates, st)
		ack := fa.autoAck
		fa.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		if ack {
			fa.ack(st)
		}
	case executor.Call_MESSAGE:
		if call.Message == nil {
			fa.bad("MESSAGE without 'message'")
			http.Error(w, "Expecting 'message' to be present", http.StatusBadRequest)
			return
		}
		fa.mu.Lock()
		fa.messages = append(fa.messages, call.Message.Data)
		fa.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	case executor.Call_SUBSCRIBE:
		fa.subscribe(w, r, *call.Subscribe)
	default:
		fa.bad("call type " + call.Type.String())
		http.Error(w, "unsupported", http.StatusNotImplemented)
	}
}

func validateUpdate(exec mesos.ExecutorID, st mesos.TaskStatus) string {
	switch {
	case len(st.UUID) != 16:
		return "'uuid' must be 16 bytes"
	case st.Source == nil || *st.Source != mesos.SOURCE_EXECUTOR:
		return "Received Call from executor with TaskStatus not from executor"
	case st.State == nil || *st.State == mesos.TASK_STAGING:
		return "Received TASK_STAGING from executor"
	case st.ExecutorID != nil && st.ExecutorID.Value != exec.Value:
		return "ExecutorID in Call and TaskStatus mismatch"
	}
	return ""
}

func (fa *fakeAgent) bad(msg string) {
	fa.mu.Lock()
	fa.badCalls = append(fa.badCalls, msg)
	fa.mu.Unlock()
}

func (fa *fakeAgent) subscribe(w http.ResponseWriter, r *http.Request, sub executor.Call_Subscribe) {
	stream := make(chan executor.Event, 64)
	closeCh := make(chan struct{})
	fa.mu.Lock()
	if fa.closeCur != nil {
		close(fa.closeCur) // a second SUBSCRIBE takes over
	}
	fa.subs = append(fa.subs, sub)
	fa.stream, fa.closeCur = stream, closeCh
	fa.mu.Unlock()

	media := mesoscodec.MediaProtobuf
	for _, a := range r.Header.Values("Accept") {
		if a == mesoscodec.MediaJSON || a == "*/*" {
			media = mesoscodec.MediaJSON
		}
	}
	w.Header().Set("Content-Type", media)
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	write := func(ev executor.Event) bool {
		var b []byte
		var err error
		if media == mesoscodec.MediaJSON {
			b, err = json.Marshal(ev)
		} else {
			b, err = ev.Marshal()
		}
		if err != nil {
			fa.t.Errorf("marshal event: %v", err)
			return false
		}
		if _, err := io.WriteString(w, strconv.Itoa(len(b))+"\n"); err != nil {
			return false
		}
		if _, err := w.Write(b); err != nil {
			return false
		}
		fl.Flush()
		return true
	}
	fw := mesos.FrameworkInfo{User: "root", Name: "consul", ID: &mesos.FrameworkID{Value: fa.fwID}}
	if fa.killing {
		fw.Capabilities = []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_TASK_KILLING_STATE}}
	}
	subscribed := executor.Event{Type: executor.Event_SUBSCRIBED, Subscribed: &executor.Event_Subscribed{
		ExecutorInfo:  mesos.ExecutorInfo{Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: fa.execID}},
		FrameworkInfo: fw,
		AgentInfo:     mesos.AgentInfo{Hostname: "127.3.0.1", ID: &mesos.AgentID{Value: "agent-S0"}},
		ContainerID:   &mesos.ContainerID{Value: "c1"},
	}}
	if !write(subscribed) {
		return
	}
	// The agent acknowledges replayed updates it now has.
	fa.mu.Lock()
	ack := fa.autoAck
	fa.mu.Unlock()
	if ack {
		for _, u := range sub.UnacknowledgedUpdates {
			fa.ack(u.Status)
		}
	}
	for {
		select {
		case ev := <-stream:
			if !write(ev) {
				return
			}
		case <-closeCh:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// send queues an event on the live stream.
func (fa *fakeAgent) send(ev executor.Event) {
	fa.mu.Lock()
	s := fa.stream
	fa.mu.Unlock()
	if s == nil {
		fa.t.Fatalf("no subscription to send %s on", ev.Type)
	}
	s <- ev
}

func (fa *fakeAgent) ack(st mesos.TaskStatus) {
	fa.mu.Lock()
	s := fa.stream
	fa.mu.Unlock()
	if s != nil {
		s <- executor.Event{Type: executor.Event_ACKNOWLEDGED,
			Acknowledged: &executor.Event_Acknowledged{TaskID: st.TaskID, UUID: st.UUID}}
	}
}

// dropStream ends the live subscription (as an agent process dying does).
func (fa *fakeAgent) dropStream() {
	fa.mu.Lock()
	if fa.closeCur != nil {
		close(fa.closeCur)
		fa.closeCur, fa.stream = nil, nil
	}
	fa.mu.Unlock()
}

func (fa *fakeAgent) setDown(down bool) {
	fa.mu.Lock()
	fa.down = down
	fa.mu.Unlock()
	if down {
		fa.dropStream()
	}
}

func (fa *fakeAgent) setAutoAck(b bool) {
	fa.mu.Lock()
	fa.autoAck = b
	fa.mu.Unlock()
}

func (fa *fakeAgent) snapshot() (subs []executor.Call_Subscribe, updates []mesos.TaskStatus, bad []string, hb int) {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return append(subs, fa.subs...), append(updates, fa.updates...), append(bad, fa.badCalls...), fa.hbCalls
}

// waitFor polls cond (under no lock) until it holds or timeout.
func (fa *fakeAgent) waitFor(timeout time.Duration, what string, cond func() bool) {
	fa.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			_, ups, bad, _ := fa.snapshot()
			fa.t.Fatalf("timed out after %v waiting for %s; updates so far: %s; bad calls: %v", timeout, what, describe(ups), bad)
		}
		select {
		case <-fa.notify:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitState waits for an update with the given state (and healthy value
// when wantHealthy is not nil) and returns it.
func (fa *fakeAgent) waitState(timeout time.Duration, state mesos.TaskState, wantHealthy *bool) mesos.TaskStatus {
	fa.t.Helper()
	var found mesos.TaskStatus
	fa.waitFor(timeout, state.String(), func() bool {
		_, ups, _, _ := fa.snapshot()
		for _, u := range ups {
			if *u.State == state && (wantHealthy == nil || (u.Healthy != nil && *u.Healthy == *wantHealthy)) {
				found = u
				return true
			}
		}
		return false
	})
	return found
}

func describe(ups []mesos.TaskStatus) string {
	s := ""
	for _, u := range ups {
		h := ""
		if u.Healthy != nil {
			h = fmt.Sprintf(" healthy=%v", *u.Healthy)
		}
		s += fmt.Sprintf("[%s %s%s %q] ", u.TaskID.Value, u.State, h, u.GetMessage())
	}
	return s
}

func launchEvent(id string, data []byte) executor.Event {
	return executor.Event{Type: executor.Event_LAUNCH, Launch: &executor.Event_Launch{Task: mesos.TaskInfo{
		Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: mesos.AgentID{Value: "agent-S0"}, Data: data,
	}}}
}
