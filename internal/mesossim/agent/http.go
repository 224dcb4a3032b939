package agent

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mexec "github.com/mesos/mesos-go/api/v1/lib/executor"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/mesossim/stoutjson"
)

// The executor HTTP API, POST /api/v1/executor (mesos-api.md 5.1, the
// agent's Http::executor): same media-type rules as the scheduler API, no
// Mesos-Stream-Id, SUBSCRIBE answered as a chunked RecordIO stream with one
// record per chunk.

const (
	mediaJSON     = "application/json"
	mediaProtobuf = "application/x-protobuf"
)

// subscription is one executor SUBSCRIBE stream. Events are queued here and
// written by the request's handler goroutine.
type subscription struct {
	mu     sync.Mutex
	events []*mexec.Event
	notify chan struct{}
	done   chan struct{}
	closed bool
}

func newSubscription() *subscription {
	return &subscription{notify: make(chan struct{}, 1), done: make(chan struct{})}
}

// push queues an event; a nil or closed subscription drops it (events sent
// while an executor is disconnected are lost, as in Mesos).
func (s *subscription) push(ev *mexec.Event) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.events = append(s.events, ev)
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// close ends the stream after the queued events are written.
func (s *subscription) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
}

func (s *subscription) take() []*mexec.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	evs := s.events
	s.events = nil
	return evs
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(msg)))
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}

// accepts reports whether the Accept header allows mediaType (no header,
// */* and type/* count).
func accepts(r *http.Request, mediaType string) bool {
	vals := r.Header.Values("Accept")
	if len(vals) == 0 {
		return true
	}
	major := strings.SplitN(mediaType, "/", 2)[0]
	for _, v := range vals {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
					continue
				}
			}
			if mt == mediaType || mt == "*/*" || mt == major+"/*" {
				return true
			}
		}
	}
	return false
}

func (a *Agent) serveExecutorAPI(w http.ResponseWriter, r *http.Request) {
	if !a.executorTokenValid(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+executorRealm+`"`)
		httpError(w, http.StatusUnauthorized, "401 Unauthorized.")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		httpError(w, http.StatusMethodNotAllowed,
			fmt.Sprintf("405 Method Not Allowed. Expecting one of { 'POST' }, but received '%s'.", r.Method))
		return
	}
	ct := r.Header.Get("Content-Type")
	if len(r.Header.Values("Content-Type")) == 0 {
		httpError(w, http.StatusBadRequest, "Expecting 'Content-Type' to be present")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		httpError(w, http.StatusBadRequest, "Failed to read body: "+err.Error())
		return
	}
	var call mexec.Call
	switch ct {
	case mediaProtobuf:
		if err := call.Unmarshal(body); err != nil {
			httpError(w, http.StatusBadRequest, "Failed to parse body into Call protobuf")
			return
		}
	case mediaJSON:
		if msg := decodeJSONCall(body, &call); msg != "" {
			httpError(w, http.StatusBadRequest, msg)
			return
		}
	default:
		httpError(w, http.StatusUnsupportedMediaType, "Expecting 'Content-Type' of application/json or application/x-protobuf")
		return
	}
	if msg := validateCall(&call); msg != "" {
		httpError(w, http.StatusBadRequest, "Failed to validate Executor::Call: "+msg)
		return
	}
	respType := ""
	switch call.GetType() {
	case mexec.Call_SUBSCRIBE:
		switch {
		case accepts(r, mediaJSON):
			respType = mediaJSON
		case accepts(r, mediaProtobuf):
			respType = mediaProtobuf
		default:
			httpError(w, http.StatusNotAcceptable, "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'")
			return
		}
	case mexec.Call_HEARTBEAT:
		w.WriteHeader(http.StatusAccepted)
		return
	}

	a.mu.Lock()
	if a.recovering && call.GetType() != mexec.Call_SUBSCRIBE {
		a.mu.Unlock()
		httpError(w, http.StatusServiceUnavailable, "Agent has not finished recovery")
		return
	}
	f := a.framework(call.FrameworkID.Value)
	if f == nil {
		a.mu.Unlock()
		httpError(w, http.StatusBadRequest, "Framework cannot be found")
		return
	}
	e := f.executors[call.ExecutorID.Value]
	if e == nil {
		a.mu.Unlock()
		httpError(w, http.StatusBadRequest, "Executor cannot be found")
		return
	}
	if a.cfg.ExecutorAuthentication && bearerToken(r) != e.authToken {
		a.mu.Unlock()
		httpError(w, http.StatusForbidden, "Executor is not authorized for this call")
		return
	}
	if e.state == execRegistering && call.GetType() != mexec.Call_SUBSCRIBE {
		a.mu.Unlock()
		httpError(w, http.StatusForbidden, "Executor is not subscribed")
		return
	}
	switch call.GetType() {
	case mexec.Call_SUBSCRIBE:
		sub := a.subscribe(f, e, call.Subscribe)
		a.mu.Unlock()
		a.stream(w, r, e, sub, respType)
		return
	case mexec.Call_UPDATE:
		a.executorUpdate(e, call.Update.Status)
		a.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		return
	case mexec.Call_MESSAGE:
		if !a.offline() && !a.stopped {
			agentID, fw, ex, data := a.cfg.ID, e.fwID, e.info.ExecutorID, call.Message.Data
			a.emit(func() { a.master.ExecutorMessage(agentID, fw, ex, data) })
		}
		a.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		return
	default:
		a.mu.Unlock()
		httpError(w, http.StatusNotImplemented, "")
	}
}

// decodeJSONCall parses a JSON call as the real agent does (stout's rules,
// package stoutjson): unknown keys ignored, an unknown enum name on the
// optional `type` dropped (so validation then says it is missing), missing
// required fields reported by path.
func decodeJSONCall(body []byte, call *mexec.Call) string {
	v, err := stoutjson.Parse(body)
	if err != nil {
		return "Failed to parse body into JSON: " + err.Error()
	}
	if err := stoutjson.Decode(v, call); err != nil {
		return "Failed to convert JSON into Call protobuf: " + err.Error()
	}
	return ""
}

// validateCall is common::validation::validateExecutorCall.
func validateCall(c *mexec.Call) string {
	if c.Type == stoutjson.EnumUnset {
		return "Expecting 'type' to be present"
	}
	if c.ExecutorID.Value == "" {
		return "Expecting 'executor_id' to be present"
	}
	if c.FrameworkID.Value == "" {
		return "Expecting 'framework_id' to be present"
	}
	switch c.GetType() {
	case mexec.Call_SUBSCRIBE:
		if c.Subscribe == nil {
			return "Expecting 'subscribe' to be present"
		}
	case mexec.Call_UPDATE:
		if c.Update == nil {
			return "Expecting 'update' to be present"
		}
		st := c.Update.Status
		if st.State == nil || st.TaskID.Value == "" {
			return "Not initialized: update.status.task_id, update.status.state"
		}
		if len(st.UUID) == 0 {
			return "Expecting 'uuid' to be present"
		}
		if !validUUID(st.UUID) {
			return "Not a valid UUID"
		}
		if st.ExecutorID != nil && st.ExecutorID.Value != c.ExecutorID.Value {
			return "ExecutorID in Call: " + c.ExecutorID.Value +
				" does not match ExecutorID in TaskStatus: " + st.ExecutorID.Value
		}
		if st.GetSource() != mesos.SOURCE_EXECUTOR || st.Source == nil {
			return "Received Call from executor " + c.ExecutorID.Value + " of framework " +
				c.FrameworkID.Value + " with invalid source, expecting 'SOURCE_EXECUTOR'"
		}
		if st.GetState() == mesos.TASK_STAGING {
			return "Received TASK_STAGING from executor " + c.ExecutorID.Value + " of framework " +
				c.FrameworkID.Value + " which is not allowed"
		}
	case mexec.Call_MESSAGE:
		if c.Message == nil {
			return "Expecting 'message' to be present"
		}
	}
	return ""
}

// subscribe handles SUBSCRIBE for a found executor and returns the stream to
// serve (mesos-api.md 5.4, 5.6). Caller holds mu.
func (a *Agent) subscribe(f *framework, e *executor, req *mexec.Call_Subscribe) *subscription {
	sub := newSubscription()
	e.reregistered = true
	if a.stopped || f.terminating || e.state == execTerminating || e.state == execTerminated {
		sub.push(eventShutdown())
		sub.close()
		return sub
	}
	if e.state == execRegistering {
		if e.killedBeforeUse {
			a.shutdownExecutor(e)
			sub.push(eventShutdown())
			sub.close()
			return sub
		}
		e.state = execRunning
		e.subscribed = true
		a.event("executor subscribed", execFields(e)...)
		if e.regTimer != nil {
			e.regTimer.Stop()
			e.regTimer = nil
		}
		e.sub = sub
		sub.push(a.eventSubscribed(f, e))
		a.deliverQueued(e)
		return sub
	}
	// Re-subscription of a running executor: the new connection takes over.
	nu, nt := 0, 0
	if req != nil {
		nu, nt = len(req.UnacknowledgedUpdates), len(req.UnacknowledgedTasks)
	}
	a.event("executor re-subscribed", append(execFields(e), zap.Int("unacknowledged_updates", nu),
		zap.Int("unacknowledged_tasks", nt))...)
	if e.sub != nil {
		e.sub.close()
	}
	e.sub = sub
	listed := map[string]bool{}
	if req != nil {
		for _, t := range req.UnacknowledgedTasks {
			listed[t.TaskID.Value] = true
		}
	}
	// Delivered tasks still STAGING that the executor does not list are
	// lost (TASK_DROPPED / TASK_LOST, REASON_AGENT_RESTARTED). An executor
	// left with nothing to run then gets SHUTDOWN instead of SUBSCRIBED;
	// one with other live tasks carries on (both checked on a live 1.12
	// agent).
	var lost []string
	for id, t := range e.tasks {
		if !t.queued && t.state == mesos.TASK_STAGING && !listed[id] {
			lost = append(lost, id)
		}
	}
	sort.Strings(lost)
	for _, id := range lost {
		a.agentUpdate(e.fwID, e, e.tasks[id].info.TaskID, lostOrDropped(f.info), mesos.REASON_AGENT_RESTARTED, "Task launched during agent restart")
	}
	if len(lost) > 0 && !hasLiveTasks(e) {
		a.shutdownExecutor(e)
		return sub
	}
	sub.push(a.eventSubscribed(f, e))
	if req != nil {
		for _, u := range req.UnacknowledgedUpdates {
			a.executorUpdate(e, u.Status)
		}
	}
	return sub
}

// hasLiveTasks: the executor has a queued or unfinished task.
func hasLiveTasks(e *executor) bool {
	for _, t := range e.tasks {
		if !isTerminal(t.state) {
			return true
		}
	}
	return false
}

// stream writes the SUBSCRIBE response: 200, chunked (no Content-Length),
// Content-Type of the records, one RecordIO record per chunk, HEARTBEAT
// events every ExecutorHeartbeat.
func (a *Agent) stream(w http.ResponseWriter, r *http.Request, e *executor, sub *subscription, mediaType string) {
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	hb := time.NewTicker(a.cfg.ExecutorHeartbeat)
	defer hb.Stop()
	defer func() {
		a.mu.Lock()
		if e.sub == sub {
			e.sub = nil
		}
		a.mu.Unlock()
		sub.close()
	}()
	write := func(evs []*mexec.Event) bool {
		for _, ev := range evs {
			rec, err := encodeEvent(ev, mediaType)
			if err != nil {
				continue
			}
			if _, err := w.Write(rec); err != nil {
				return false
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		return true
	}
	for {
		select {
		case <-sub.notify:
			if !write(sub.take()) {
				return
			}
		case <-hb.C:
			if !write([]*mexec.Event{{Type: mexec.Event_HEARTBEAT}}) {
				return
			}
		case <-sub.done:
			write(sub.take())
			return
		case <-r.Context().Done():
			return
		}
	}
}

// encodeEvent is one RecordIO record: decimal length, '\n', the event.
func encodeEvent(ev *mexec.Event, mediaType string) ([]byte, error) {
	var b []byte
	var err error
	if mediaType == mediaProtobuf {
		b, err = ev.Marshal()
	} else {
		b = stoutjson.Encode(ev) // as the real agent writes it
	}
	if err != nil {
		return nil, err
	}
	rec := make([]byte, 0, len(b)+12)
	rec = strconv.AppendInt(rec, int64(len(b)), 10)
	rec = append(rec, '\n')
	return append(rec, b...), nil
}

func (a *Agent) agentInfo() mesos.AgentInfo {
	port := int32(a.cfg.Port)
	id := a.cfg.ID
	return mesos.AgentInfo{
		Hostname:   a.cfg.Hostname,
		Port:       &port,
		Resources:  a.cfg.Resources,
		Attributes: a.cfg.Attributes,
		ID:         &id,
	}
}

func (a *Agent) eventSubscribed(f *framework, e *executor) *mexec.Event {
	return &mexec.Event{
		Type: mexec.Event_SUBSCRIBED,
		Subscribed: &mexec.Event_Subscribed{
			ExecutorInfo:  e.info,
			FrameworkInfo: f.info,
			AgentInfo:     a.agentInfo(),
			ContainerID:   &mesos.ContainerID{Value: e.containerID},
		},
	}
}

func eventLaunch(t mesos.TaskInfo) *mexec.Event {
	return &mexec.Event{Type: mexec.Event_LAUNCH, Launch: &mexec.Event_Launch{Task: t}}
}

func eventLaunchGroup(ts []mesos.TaskInfo) *mexec.Event {
	return &mexec.Event{Type: mexec.Event_LAUNCH_GROUP,
		LaunchGroup: &mexec.Event_LaunchGroup{TaskGroup: mesos.TaskGroupInfo{Tasks: ts}}}
}

func eventKill(id mesos.TaskID, p *mesos.KillPolicy) *mexec.Event {
	return &mexec.Event{Type: mexec.Event_KILL, Kill: &mexec.Event_Kill{TaskID: id, KillPolicy: p}}
}

func eventAcknowledged(id mesos.TaskID, u []byte) *mexec.Event {
	return &mexec.Event{Type: mexec.Event_ACKNOWLEDGED,
		Acknowledged: &mexec.Event_Acknowledged{TaskID: id, UUID: u}}
}

func eventMessage(data []byte) *mexec.Event {
	return &mexec.Event{Type: mexec.Event_MESSAGE, Message: &mexec.Event_Message{Data: data}}
}

func eventShutdown() *mexec.Event { return &mexec.Event{Type: mexec.Event_SHUTDOWN} }
