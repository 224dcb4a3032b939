package agent

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mexec "github.com/mesos/mesos-go/api/v1/lib/executor"
)

// The test plays the executor itself over raw HTTP/1.1, against an agent
// whose executor process never subscribes (sleep).

func sleeperExecutor(id string) mesos.ExecutorInfo {
	ex := executorInfo(id, nil)
	ex.Command = &mesos.CommandInfo{Value: strp("sleep 60"), Shell: boolp(true)}
	return ex
}

type rawStream struct {
	t      *testing.T
	conn   net.Conn
	r      *bufio.Reader
	status string
	header http.Header
}

// rawSubscribe POSTs SUBSCRIBE on a fresh connection and reads the status
// line and headers itself.
func rawSubscribe(t *testing.T, a *Agent, ct, accept, body string) *rawStream {
	t.Helper()
	conn, err := net.DialTimeout("tcp", a.Endpoint(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req := "POST /api/v1/executor HTTP/1.1\r\nHost: " + a.Endpoint() + "\r\nContent-Type: " + ct + "\r\n"
	if accept != "" {
		req += "Accept: " + accept + "\r\n"
	}
	req += "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	s := &rawStream{t: t, conn: conn, r: bufio.NewReader(conn), header: http.Header{}}
	_ = conn.SetReadDeadline(time.Now().Add(waitLong))
	line, err := s.r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	s.status = strings.TrimRight(line, "\r\n")
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, ": ")
		s.header.Add(k, v)
	}
	return s
}

// chunk reads one HTTP chunk; it must hold exactly one RecordIO record,
// whose payload it returns. A zero-length chunk (end of stream) returns nil.
func (s *rawStream) chunk() []byte {
	s.t.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(waitLong))
	line, err := s.r.ReadString('\n')
	if err != nil {
		s.t.Fatalf("reading chunk size: %v", err)
	}
	size, err := strconv.ParseInt(strings.TrimRight(line, "\r\n"), 16, 64)
	if err != nil {
		s.t.Fatalf("bad chunk size line %q", line)
	}
	data := make([]byte, size+2)
	if _, err := io.ReadFull(s.r, data); err != nil {
		s.t.Fatal(err)
	}
	if string(data[size:]) != "\r\n" {
		s.t.Fatal("chunk not terminated by CRLF")
	}
	data = data[:size]
	if size == 0 {
		return nil
	}
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		s.t.Fatalf("chunk without a RecordIO length line: %q", data)
	}
	n, err := strconv.Atoi(string(data[:nl]))
	if err != nil || n != len(data)-nl-1 {
		s.t.Fatalf("chunk is not exactly one record: prefix %q, %d payload bytes", data[:nl], len(data)-nl-1)
	}
	return data[nl+1:]
}

// jsonEvent reads the next record as JSON, skipping HEARTBEATs unless asked.
func (s *rawStream) jsonEvent(skipHeartbeats bool) map[string]interface{} {
	s.t.Helper()
	for {
		rec := s.chunk()
		if rec == nil {
			return nil
		}
		var ev map[string]interface{}
		if err := json.Unmarshal(rec, &ev); err != nil {
			s.t.Fatalf("record is not JSON: %v: %s", err, rec)
		}
		if skipHeartbeats && ev["type"] == "HEARTBEAT" {
			continue
		}
		return ev
	}
}

func keys(m map[string]interface{}) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func subscribeBody(ex string) string {
	return `{"type":"SUBSCRIBE","executor_id":{"value":"` + ex + `"},"framework_id":{"value":"` + testFramework.ID.Value + `"},"subscribe":{}}`
}

func updateBody(ex, task, state string, id []byte) string {
	return `{"type":"UPDATE","executor_id":{"value":"` + ex + `"},"framework_id":{"value":"` + testFramework.ID.Value +
		`"},"update":{"status":{"task_id":{"value":"` + task + `"},"state":"` + state +
		`","source":"SOURCE_EXECUTOR","uuid":"` + base64.StdEncoding.EncodeToString(id) + `","timestamp":1795580721.4079711}}}`
}

func post(t *testing.T, a *Agent, ct, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+a.Endpoint()+"/api/v1/executor", strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestSubscribeStreamWireFormat(t *testing.T) {
	a, m := newTestAgent(t, func(c *Config) { c.ExecutorHeartbeat = 300 * time.Millisecond })
	launch(a, sleeperExecutor("e-wire"), taskInfo(a, "t-wire", ""))
	waitFor(t, "sleeper process", func() bool { st, ok := executorState(a, "e-wire"); return ok && st.PID > 0 })

	s := rawSubscribe(t, a, "application/json", "application/json", subscribeBody("e-wire"))
	if s.status != "HTTP/1.1 200 OK" {
		t.Fatalf("status line %q", s.status)
	}
	if s.header.Get("Transfer-Encoding") != "chunked" || s.header.Get("Content-Type") != "application/json" ||
		s.header.Get("Date") == "" {
		t.Errorf("headers = %v", s.header)
	}
	for _, h := range []string{"Content-Length", "Mesos-Stream-Id"} {
		if _, ok := s.header[h]; ok {
			t.Errorf("SUBSCRIBE response has %s", h)
		}
	}

	sub := s.jsonEvent(true)
	if sub["type"] != "SUBSCRIBED" {
		t.Fatalf("first event %v", sub)
	}
	body := sub["subscribed"].(map[string]interface{})
	if got := strings.Join(keys(body), ","); got != "agent_info,container_id,executor_info,framework_info" {
		t.Errorf("SUBSCRIBED fields = %s", got)
	}
	ai := body["agent_info"].(map[string]interface{})
	if ai["hostname"] != a.cfg.Hostname || ai["port"] != float64(5051) ||
		ai["id"].(map[string]interface{})["value"] != a.cfg.ID.Value || len(ai["resources"].([]interface{})) != 3 {
		t.Errorf("agent_info = %v", ai)
	}
	ei := body["executor_info"].(map[string]interface{})
	if ei["type"] != "CUSTOM" || ei["framework_id"].(map[string]interface{})["value"] != testFramework.ID.Value {
		t.Errorf("executor_info = %v", ei)
	}
	fi := body["framework_info"].(map[string]interface{})
	if fi["name"] != "exec-fixture" || fi["checkpoint"] != true {
		t.Errorf("framework_info = %v", fi)
	}
	st, _ := executorState(a, "e-wire")
	if body["container_id"].(map[string]interface{})["value"] != filepathBase(st.Directory) {
		t.Errorf("container_id %v is not the sandbox's run id %s", body["container_id"], st.Directory)
	}

	launchEv := s.jsonEvent(true)
	if launchEv["type"] != "LAUNCH" {
		t.Fatalf("second event %v", launchEv)
	}
	if got := strings.Join(keys(launchEv["launch"].(map[string]interface{})), ","); got != "task" {
		t.Errorf("LAUNCH carries %s, want task only", got)
	}

	id := newUUID()
	resp, rbody := post(t, a, "application/json", updateBody("e-wire", "t-wire", "TASK_RUNNING", id), nil)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Content-Length") != "0" ||
		resp.Header.Get("Content-Type") != "" || rbody != "" {
		t.Errorf("UPDATE answered %d %v %q", resp.StatusCode, resp.Header, rbody)
	}
	ack := s.jsonEvent(true)
	wantAck := `map[acknowledged:map[task_id:map[value:t-wire] uuid:` + base64.StdEncoding.EncodeToString(id) + `] type:ACKNOWLEDGED]`
	if fmt.Sprint(ack) != wantAck {
		t.Errorf("ack event = %v, want %s", ack, wantAck)
	}
	u := waitState(t, m, "t-wire", mesos.TASK_RUNNING).status
	// The agent adds no executor_id the executor left out (a live 1.12 agent).
	if !bytes.Equal(u.UUID, id) || u.ExecutorID != nil || u.GetTimestamp() != 1795580721.4079711 {
		t.Errorf("forwarded update = %+v", u)
	}

	hb := s.jsonEvent(false)
	if fmt.Sprint(hb) != "map[type:HEARTBEAT]" {
		t.Errorf("expected a HEARTBEAT, got %v", hb)
	}

	// A second SUBSCRIBE takes over; the first stream ends.
	s2 := rawSubscribe(t, a, "application/json", "", subscribeBody("e-wire"))
	if s2.status != "HTTP/1.1 200 OK" || s2.header.Get("Content-Type") != "application/json" {
		t.Fatalf("re-subscribe: %s %v", s2.status, s2.header)
	}
	if ev := s2.jsonEvent(true); ev["type"] != "SUBSCRIBED" {
		t.Fatalf("re-subscribe first event %v", ev)
	}
	for {
		ev := s.jsonEvent(true)
		if ev == nil {
			break // zero-length chunk: the old stream ended
		}
	}
}

func filepathBase(p string) string { return p[strings.LastIndex(p, "/")+1:] }

func TestSubscribeProtobuf(t *testing.T) {
	a, _ := newTestAgent(t, nil)
	launch(a, sleeperExecutor("e-pb"), taskInfo(a, "t-pb", ""))
	waitFor(t, "sleeper process", func() bool { st, ok := executorState(a, "e-pb"); return ok && st.PID > 0 })
	call := mexec.Call{
		Type:        mexec.Call_SUBSCRIBE,
		ExecutorID:  mesos.ExecutorID{Value: "e-pb"},
		FrameworkID: *testFramework.ID,
		Subscribe:   &mexec.Call_Subscribe{},
	}
	b, err := call.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s := rawSubscribe(t, a, "application/x-protobuf", "application/x-protobuf", string(b))
	if s.status != "HTTP/1.1 200 OK" || s.header.Get("Content-Type") != "application/x-protobuf" {
		t.Fatalf("%s %v", s.status, s.header)
	}
	var ev mexec.Event
	if err := ev.Unmarshal(s.chunk()); err != nil || ev.Type != mexec.Event_SUBSCRIBED {
		t.Fatalf("first record: %v %v", ev.Type, err)
	}
	if err := ev.Unmarshal(s.chunk()); err != nil || ev.Type != mexec.Event_LAUNCH || ev.Launch.Task.TaskID.Value != "t-pb" {
		t.Fatalf("second record: %v %v", ev.Type, err)
	}
}

// The error surface of POST /api/v1/executor (the agent's Http::executor).
func TestExecutorAPIErrors(t *testing.T) {
	a, _ := newTestAgent(t, nil)
	launch(a, sleeperExecutor("e-err"), taskInfo(a, "t-err", ""))
	fw := testFramework.ID.Value
	good := newUUID()
	bad := make([]byte, 16) // version nibble 0: not a UUID
	cases := []struct {
		name, method, ct, body string
		hdr                    map[string]string
		code                   int
		msg                    string
	}{
		{"GET", "GET", "", "", nil, 405, "405 Method Not Allowed. Expecting one of { 'POST' }, but received 'GET'."},
		{"no content type", "POST", "", subscribeBody("e-err"), nil, 400, "Expecting 'Content-Type' to be present"},
		{"text/plain", "POST", "text/plain", subscribeBody("e-err"), nil, 415, "Expecting 'Content-Type' of application/json or application/x-protobuf"},
		{"charset", "POST", "application/json; charset=utf-8", subscribeBody("e-err"), nil, 415, "Expecting 'Content-Type' of application/json or application/x-protobuf"},
		{"broken JSON", "POST", "application/json", `{"type":"SUBSCRIBE",`, nil, 400, "Failed to parse body into JSON: "},
		{"broken protobuf", "POST", "application/x-protobuf", "\xff\xff\xff", nil, 400, "Failed to parse body into Call protobuf"},
		{"missing ids", "POST", "application/json", `{"type":"SUBSCRIBE","subscribe":{}}`, nil, 400, "Failed to convert JSON into Call protobuf: Missing required fields: executor_id, framework_id"},
		{"missing state", "POST", "application/json", `{"type":"UPDATE","executor_id":{"value":"e-err"},"framework_id":{"value":"` + fw + `"},"update":{"status":{"task_id":{"value":"t"}}}}`, nil, 400, "Failed to convert JSON into Call protobuf: Missing required fields: update.status.state"},
		{"unknown type name", "POST", "application/json", `{"type":"BOGUS","executor_id":{"value":"e-err"},"framework_id":{"value":"` + fw + `"}}`, nil, 400, "Failed to validate Executor::Call: Expecting 'type' to be present"},
		{"subscribe without body", "POST", "application/json", `{"type":"SUBSCRIBE","executor_id":{"value":"e-err"},"framework_id":{"value":"` + fw + `"}}`, nil, 400, "Failed to validate Executor::Call: Expecting 'subscribe' to be present"},
		{"not acceptable", "POST", "application/json", subscribeBody("e-err"), map[string]string{"Accept": "text/plain"}, 406, "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'"},
		{"heartbeat", "POST", "application/json", `{"type":"HEARTBEAT","executor_id":{"value":"x"},"framework_id":{"value":"y"}}`, nil, 202, ""},
		{"unknown framework", "POST", "application/json", strings.Replace(subscribeBody("e-err"), fw, "nope", 1), nil, 400, "Framework cannot be found"},
		{"unknown executor", "POST", "application/json", subscribeBody("nope"), nil, 400, "Executor cannot be found"},
		{"update before subscribe", "POST", "application/json", updateBody("e-err", "t-err", "TASK_RUNNING", good), nil, 403, "Executor is not subscribed"},
		{"unknown keys are ignored", "POST", "application/json", strings.Replace(updateBody("e-err", "t-err", "TASK_RUNNING", good), `"type":"UPDATE"`, `"type":"UPDATE","foo":{"bar":[1,2]}`, 1), nil, 403, "Executor is not subscribed"},
		{"unknown task state", "POST", "application/json", updateBody("e-err", "t-err", "TASK_BOGUS", good), nil, 400, "Failed to convert JSON into Call protobuf: "},
		{"bad uuid", "POST", "application/json", updateBody("e-err", "t-err", "TASK_RUNNING", bad), nil, 400, "Failed to validate Executor::Call: Not a valid UUID"},
		{"staging", "POST", "application/json", updateBody("e-err", "t-err", "TASK_STAGING", good), nil, 400,
			"Failed to validate Executor::Call: Received TASK_STAGING from executor e-err of framework " + fw + " which is not allowed"},
		{"wrong source", "POST", "application/json", strings.Replace(updateBody("e-err", "t-err", "TASK_RUNNING", good), "SOURCE_EXECUTOR", "SOURCE_AGENT", 1), nil, 400,
			"Failed to validate Executor::Call: Received Call from executor e-err of framework " + fw + " with invalid source, expecting 'SOURCE_EXECUTOR'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, "http://"+a.Endpoint()+"/api/v1/executor", strings.NewReader(c.body))
			if c.ct != "" {
				req.Header.Set("Content-Type", c.ct)
			}
			for k, v := range c.hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.code {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, b, c.code)
			}
			if c.code >= 400 {
				if resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
					t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
				}
				prefixOnly := c.name == "broken JSON" || c.name == "unknown task state"
				if !strings.HasPrefix(string(b), c.msg) || (!prefixOnly && string(b) != c.msg) {
					t.Errorf("body %q, want %q", b, c.msg)
				}
			}
			if c.code == 405 && resp.Header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q", resp.Header.Get("Allow"))
			}
		})
	}
}

// A task delivered to the executor but never reported (still STAGING) and
// not listed on re-SUBSCRIBE becomes TASK_DROPPED / REASON_AGENT_RESTARTED
// (TASK_LOST without PARTITION_AWARE) and the executor, left with nothing
// to run, is shut down (mesos-api.md corrections; a live 1.12 agent).
func TestResubscribeWithoutStagingTask(t *testing.T) {
	a, m := newTestAgent(t, nil)
	launch(a, sleeperExecutor("e-st"), taskInfo(a, "t-st", ""))
	waitFor(t, "sleeper process", func() bool { st, ok := executorState(a, "e-st"); return ok && st.PID > 0 })
	s := rawSubscribe(t, a, "application/json", "", subscribeBody("e-st"))
	s.jsonEvent(true) // SUBSCRIBED
	if ev := s.jsonEvent(true); ev["type"] != "LAUNCH" {
		t.Fatalf("want LAUNCH, got %v", ev)
	}
	s.conn.Close()
	// With nothing else to run, the executor gets SHUTDOWN, not SUBSCRIBED
	// (as a live 1.12 agent answered).
	s2 := rawSubscribe(t, a, "application/json", "", subscribeBody("e-st"))
	if ev := s2.jsonEvent(true); ev["type"] != "SHUTDOWN" {
		t.Fatalf("want SHUTDOWN, got %v", ev)
	}
	d := waitState(t, m, "t-st", mesos.TASK_DROPPED).status
	if d.GetReason() != mesos.REASON_AGENT_RESTARTED || d.GetSource() != mesos.SOURCE_AGENT ||
		d.GetMessage() != "Task launched during agent restart" {
		t.Errorf("update = %+v", d)
	}
	// A SUBSCRIBE to a terminating executor gets SHUTDOWN and the stream ends.
	s3 := rawSubscribe(t, a, "application/json", "", subscribeBody("e-st"))
	if ev := s3.jsonEvent(true); ev["type"] != "SHUTDOWN" {
		t.Fatalf("want SHUTDOWN, got %v", ev)
	}
	if ev := s3.jsonEvent(true); ev != nil {
		t.Fatalf("want end of stream, got %v", ev)
	}
}

// The same with another task running: the STAGING one is dropped, the
// executor gets SUBSCRIBED and carries on (as a live 1.12 agent did).
func TestResubscribeWithoutStagingTaskKeepsBusyExecutor(t *testing.T) {
	a, m := newTestAgent(t, nil)
	ex := sleeperExecutor("e-st2")
	launch(a, ex, taskInfo(a, "t-run", ""))
	waitFor(t, "sleeper process", func() bool { st, ok := executorState(a, "e-st2"); return ok && st.PID > 0 })
	s := rawSubscribe(t, a, "application/json", "", subscribeBody("e-st2"))
	s.jsonEvent(true) // SUBSCRIBED
	s.jsonEvent(true) // LAUNCH t-run
	if resp, body := post(t, a, "application/json", updateBody("e-st2", "t-run", "TASK_RUNNING", newUUID()), nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("UPDATE: %d %s", resp.StatusCode, body)
	}
	waitState(t, m, "t-run", mesos.TASK_RUNNING)
	launch(a, ex, taskInfo(a, "t-stage", ""))
	for {
		ev := s.jsonEvent(true)
		if ev["type"] == "LAUNCH" {
			break
		}
	}
	s.conn.Close()
	s2 := rawSubscribe(t, a, "application/json", "", subscribeBody("e-st2"))
	if ev := s2.jsonEvent(true); ev["type"] != "SUBSCRIBED" {
		t.Fatalf("want SUBSCRIBED, got %v", ev)
	}
	d := waitState(t, m, "t-stage", mesos.TASK_DROPPED).status
	if d.GetReason() != mesos.REASON_AGENT_RESTARTED {
		t.Errorf("update = %+v", d)
	}
	time.Sleep(500 * time.Millisecond)
	if st, ok := executorState(a, "e-st2"); !ok || st.Terminated || st.Tasks["t-run"] != mesos.TASK_RUNNING {
		t.Errorf("executor after re-subscribe: %+v %v", st, ok)
	}
}

// A late update for a task whose terminal update was acknowledged is still
// forwarded, and the executor gets no ACKNOWLEDGED for it (corrections).
func TestLateUpdateAfterTerminalAck(t *testing.T) {
	a, m := newTestAgent(t, nil)
	launch(a, sleeperExecutor("e-late"), taskInfo(a, "t-late", ""))
	waitFor(t, "sleeper process", func() bool { st, ok := executorState(a, "e-late"); return ok && st.PID > 0 })
	s := rawSubscribe(t, a, "application/json", "", subscribeBody("e-late"))
	s.jsonEvent(true)
	s.jsonEvent(true)
	post(t, a, "application/json", updateBody("e-late", "t-late", "TASK_FINISHED", newUUID()), nil)
	if ev := s.jsonEvent(true); ev["type"] != "ACKNOWLEDGED" {
		t.Fatalf("want ACKNOWLEDGED, got %v", ev)
	}
	waitFor(t, "task forgotten", func() bool {
		st, _ := executorState(a, "e-late")
		return len(st.Tasks) == 0
	})
	late := newUUID()
	resp, _ := post(t, a, "application/json", updateBody("e-late", "t-late", "TASK_RUNNING", late), nil)
	if resp.StatusCode != 202 {
		t.Fatalf("late update answered %d", resp.StatusCode)
	}
	waitFor(t, "late update forwarded", func() bool {
		for _, u := range m.updatesFor("t-late") {
			if bytes.Equal(u.status.UUID, late) {
				return true
			}
		}
		return false
	})
	// The next thing on the stream is a message, not an ACKNOWLEDGED.
	a.Message(*testFramework.ID, mesos.ExecutorID{Value: "e-late"}, []byte("ping"))
	if ev := s.jsonEvent(true); ev["type"] != "MESSAGE" {
		t.Fatalf("want MESSAGE, got %v", ev)
	}
}

// Work launched before the executor subscribes is queued and delivered
// after SUBSCRIBED in order: LAUNCH per task, LAUNCH_GROUP per group. A KILL
// of a queued group member kills the whole group before delivery.
func TestQueuedLaunchesAndGroups(t *testing.T) {
	a, m := newTestAgent(t, nil)
	ex := sleeperExecutor("e-q")
	// A big record still travels as exactly one chunk.
	launch(a, ex, taskInfo(a, "t-1", strings.Repeat("x", 20000)))
	group := []mesos.TaskInfo{taskInfo(a, "g-a", ""), taskInfo(a, "g-b", "")}
	for i := range group {
		e := ex
		group[i].Executor = &e
	}
	a.Launch(Launch{Framework: testFramework, Executor: ex, Tasks: group, Group: true})
	doomed := []mesos.TaskInfo{taskInfo(a, "k-a", ""), taskInfo(a, "k-b", "")}
	a.Launch(Launch{Framework: testFramework, Executor: ex, Tasks: doomed, Group: true})
	a.Kill(*testFramework.ID, mesos.TaskID{Value: "k-b"}, nil)
	for _, id := range []string{"k-a", "k-b"} {
		k := waitState(t, m, id, mesos.TASK_KILLED).status
		if k.GetReason() != mesos.REASON_TASK_KILLED_DURING_LAUNCH || k.GetSource() != mesos.SOURCE_AGENT {
			t.Errorf("%s: %+v", id, k)
		}
	}
	st, _ := executorState(a, "e-q")
	if st.Tasks["t-1"] != mesos.TASK_STAGING || st.Tasks["g-a"] != mesos.TASK_STAGING {
		t.Errorf("queued tasks not STAGING: %v", st.Tasks)
	}
	waitFor(t, "sleeper process", func() bool { st, ok := executorState(a, "e-q"); return ok && st.PID > 0 })
	s := rawSubscribe(t, a, "application/json", "", subscribeBody("e-q"))
	if ev := s.jsonEvent(true); ev["type"] != "SUBSCRIBED" {
		t.Fatalf("got %v", ev)
	}
	if ev := s.jsonEvent(true); ev["type"] != "LAUNCH" {
		t.Fatalf("got %v", ev)
	}
	ev := s.jsonEvent(true)
	if ev["type"] != "LAUNCH_GROUP" {
		t.Fatalf("got %v", ev)
	}
	tasks := ev["launch_group"].(map[string]interface{})["task_group"].(map[string]interface{})["tasks"].([]interface{})
	if len(tasks) != 2 {
		t.Errorf("group has %d tasks", len(tasks))
	}
	// Nothing else: the killed group is never delivered.
	a.Message(*testFramework.ID, mesos.ExecutorID{Value: "e-q"}, []byte("ping"))
	if ev := s.jsonEvent(true); ev["type"] != "MESSAGE" {
		t.Fatalf("got %v", ev)
	}
}
