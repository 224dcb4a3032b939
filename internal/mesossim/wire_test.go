package mesossim

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// Facts 6, 7, 8: chunked, no Content-Length, per-record Content-Type,
// Mesos-Stream-Id, SUBSCRIBED then HEARTBEAT at once, then every interval;
// exact RecordIO framing on the wire.
func TestSubscribeStreamWireFormat(t *testing.T) {
	o := testOptions(t, 2, true)
	o.HeartbeatInterval = 500 * time.Millisecond
	c := startCluster(t, o)

	conn, err := net.Dial("tcp", strings.TrimPrefix(c.MasterURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"consul-fixture","roles":["consul-role"],"principal":"consul-principal","checkpoint":true,"failover_timeout":604800,"capabilities":[{"type":"MULTI_ROLE"},{"type":"RESERVATION_REFINEMENT"},{"type":"PARTITION_AWARE"},{"type":"TASK_KILLING_STATE"}]}}}`
	req := "POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: " +
		itoa(len(body)) + "\r\n\r\n" + body
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(waitLong))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q, want application/json (the record type, not recordio)", got)
	}
	if resp.Header.Get("Content-Length") != "" || resp.ContentLength != -1 {
		t.Errorf("SUBSCRIBE response has a Content-Length")
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("Transfer-Encoding %v, want chunked", resp.TransferEncoding)
	}
	if sid := resp.Header.Get("Mesos-Stream-Id"); len(sid) != 36 {
		t.Errorf("Mesos-Stream-Id %q is not a UUID", sid)
	}
	r := bufio.NewReader(resp.Body)
	// Record 1: "<len>\n{...SUBSCRIBED...}" with the exact byte length.
	line, _ := r.ReadString('\n')
	n := atoi(t, strings.TrimSuffix(line, "\n"))
	rec := make([]byte, n)
	if _, err := io.ReadFull(r, rec); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(rec), `{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"`) || !strings.HasSuffix(string(rec), "}") {
		t.Fatalf("first record %s", rec)
	}
	if !strings.Contains(string(rec), `"heartbeat_interval_seconds":0.5`) || !strings.Contains(string(rec), `"pid":"master@127.1.0.1:`) {
		t.Errorf("SUBSCRIBED %s", rec)
	}
	start := time.Now()
	rec2, err := readRecord(r)
	if err != nil || string(rec2) != `{"type":"HEARTBEAT"}` {
		t.Fatalf("second record %q %v, want an immediate HEARTBEAT", rec2, err)
	}
	// Offers arrive on the next cycle; another HEARTBEAT within ~interval.
	sawOffers, sawHB := false, false
	for !(sawOffers && sawHB) {
		rec, err := readRecord(r)
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		switch {
		case strings.HasPrefix(string(rec), `{"type":"OFFERS"`):
			sawOffers = true
			if !strings.Contains(string(rec), `"allocation_info":{"role":"consul-role"}`) || !strings.Contains(string(rec), `"path":"/slave(1)"`) {
				t.Errorf("offer shape: %s", rec)
			}
			if strings.Contains(string(rec), `"role":"*"`) || strings.Contains(string(rec), `"reservations"`) {
				t.Errorf("a RESERVATION_REFINEMENT framework got deprecated fields: %s", rec)
			}
		case string(rec) == `{"type":"HEARTBEAT"}`:
			sawHB = true
			if time.Since(start) > 5*time.Second {
				t.Errorf("second heartbeat after %v", time.Since(start))
			}
		}
	}
}

// The protobuf codec: Accept application/x-protobuf gives protobuf records
// and Content-Type; no Accept gives JSON even for a protobuf request.
func TestSubscribeProtobufNegotiation(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, true))
	info := frameworkInfo("pb")
	call := &scheduler.Call{Type: scheduler.Call_SUBSCRIBE, Subscribe: &scheduler.Call_Subscribe{FrameworkInfo: &info}}
	body, _ := call.Marshal()
	for _, tc := range []struct{ accept, want string }{
		{"application/x-protobuf", "application/x-protobuf"},
		{"", "application/json"},
		{"*/*", "application/json"},
		{"application/json;q=0, application/x-protobuf", "application/x-protobuf"},
	} {
		req, _ := http.NewRequest("POST", c.MasterURL()+"/api/v1/scheduler", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/x-protobuf")
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != tc.want {
			t.Errorf("Accept %q: %d %q, want 200 %q", tc.accept, resp.StatusCode, ct, tc.want)
		}
		rec, err := readRecord(bufio.NewReader(resp.Body))
		if err != nil {
			t.Fatal(err)
		}
		var ev scheduler.Event
		if tc.want == "application/x-protobuf" {
			err = ev.Unmarshal(rec)
		} else {
			err = jsonUnmarshal(rec, &ev)
		}
		if err != nil || ev.Type != scheduler.Event_SUBSCRIBED {
			t.Errorf("Accept %q: first event %v %v", tc.accept, ev.Type, err)
		}
		resp.Body.Close()
	}
}

// The error surface of 02-error-surface.txt, byte for byte, plus fact 2
// (400 unknown framework vs 403 disconnected).
func TestErrorSurface(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, true))
	url := c.MasterURL()
	s := subscribe(t, url, frameworkInfo("err", "consul-role"))
	fw := s.fwID
	sub := `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"err-probe"}}}`
	decline := `{"framework_id":{"value":"` + fw + `"},"type":"DECLINE","decline":{"offer_ids":[{"value":"no-such-offer"}]}}`
	unknownFW := `{"framework_id":{"value":"00000000-0000-0000-0000-000000000000-0000"},"type":"DECLINE","decline":{"offer_ids":[{"value":"no-such-offer"}]}}`
	cases := []struct {
		name, method, ctype, accept, stream, body string
		code                                      int
		want                                      string
	}{
		{"2a GET", "GET", "", "application/json", "", "", 405, "405 Method Not Allowed. Expecting one of { 'POST' }, but received 'GET'."},
		{"2b text/plain", "POST", "text/plain", "application/json", "", sub, 415, "Expecting 'Content-Type' of application/json or application/x-protobuf"},
		{"2c broken JSON", "POST", "application/json", "application/json", "", `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root",`, 400, "Failed to parse body into JSON: syntax error at line 1 near: "},
		{"2d unknown framework", "POST", "application/json", "application/json", "", unknownFW, 400, "Framework cannot be found"},
		{"2d' unknown framework + stream id", "POST", "application/json", "application/json", "11111111-2222-3333-4444-555555555555", unknownFW, 400, "Framework cannot be found"},
		{"2e no stream id", "POST", "application/json", "application/json", "", decline, 400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header"},
		{"2e' wrong stream id", "POST", "application/json", "application/json", "11111111-2222-3333-4444-555555555555", decline, 400,
			"The stream ID '11111111-2222-3333-4444-555555555555' included in this request didn't match the stream ID currently associated with framework ID " + fw},
		{"2g no Content-Type", "POST", "", "application/json", "", sub, 400, "Expecting 'Content-Type' to be present"},
		{"2h charset", "POST", "application/json; charset=utf-8", "application/json", "", sub, 415, "Expecting 'Content-Type' of application/json or application/x-protobuf"},
		{"2i Accept text/plain", "POST", "application/json", "text/plain", "", sub, 406, "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'"},
		{"2j unknown enum", "POST", "application/json", "application/json", "", `{"type":"NOT_A_CALL_TYPE"}`, 400, "Failed to validate scheduler::Call: Expecting 'type' to be present"},
		{"2j' wrong field type", "POST", "application/json", "application/json", "", `{"type":"DECLINE","framework_id":"` + fw + `"}`, 400,
			"Failed to convert JSON into Call protobuf: Not expecting a JSON string for field 'framework_id'"},
		{"2k no framework_id", "POST", "application/json", "application/json", "", `{"type":"DECLINE","decline":{"offer_ids":[]}}`, 400, "Failed to validate scheduler::Call: Expecting 'framework_id' to be present"},
		{"2l SUBSCRIBE with stream id", "POST", "application/json", "application/json", s.streamID, sub, 400, "Subscribe calls should not include the 'Mesos-Stream-Id' header"},
		{"2m DECLINE unknown offer", "POST", "application/json", "application/json", s.streamID, decline, 202, ""},
		{"missing user", "POST", "application/json", "application/json", "", `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"name":"x"}}}`, 400,
			"Failed to convert JSON into Call protobuf: Missing required fields: subscribe.framework_info.user"},
		{"ack bad uuid", "POST", "application/json", "application/json", s.streamID,
			`{"framework_id":{"value":"` + fw + `"},"type":"ACKNOWLEDGE","acknowledge":{"agent_id":{"value":"a"},"task_id":{"value":"t"},"uuid":"AAAAAAAAAAAAAAAAAAAAAA=="}}`, 400,
			"Failed to validate scheduler::Call: Not a valid UUID"},
		{"missing sub-message", "POST", "application/json", "application/json", s.streamID, `{"framework_id":{"value":"` + fw + `"},"type":"KILL"}`, 400,
			"Failed to validate scheduler::Call: Expecting 'kill' to be present"},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, url+"/api/v1/scheduler", strings.NewReader(tc.body))
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		req.Header.Set("Accept", tc.accept)
		if tc.stream != "" {
			req.Header.Set("Mesos-Stream-Id", tc.stream)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || string(b) != tc.want {
			t.Errorf("%s: got %d %q, want %d %q", tc.name, resp.StatusCode, b, tc.code, tc.want)
		}
		if tc.code >= 400 && resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("%s: error Content-Type %q", tc.name, resp.Header.Get("Content-Type"))
		}
		if tc.code == 202 && (resp.Header.Get("Content-Type") != "" || resp.Header.Get("Content-Length") != "0") {
			t.Errorf("%s: 202 headers %v", tc.name, resp.Header)
		}
		if tc.code == 405 && resp.Header.Get("Allow") != "POST" {
			t.Errorf("405 without Allow: POST")
		}
	}

	// Fact 2: 403 only for a known framework that is disconnected.
	s.resp.Body.Close()
	eventually(t, waitLong, "framework disconnected", func() bool {
		code, _ := s.call(&scheduler.Call{Type: scheduler.Call_REVIVE})
		return code == http.StatusForbidden
	})
	if code, body := s.call(&scheduler.Call{Type: scheduler.Call_REVIVE}); code != 403 || body != "Framework is not subscribed" {
		t.Errorf("disconnected framework: %d %q", code, body)
	}
}

// Fact 1: a refused SUBSCRIBE is 200 + stream id + one ERROR event + end.
func TestRefusedSubscribe(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, true))
	for _, tc := range []struct{ body, msg string }{
		{`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"no-multi-role","roles":["consul-role"]}}}`,
			"'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"},
		{`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"x","role":"r","capabilities":[{"type":"MULTI_ROLE"}]}}}`,
			"'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"},
		{`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"x","roles":["a","a"],"capabilities":[{"type":"MULTI_ROLE"}]}}}`,
			"'FrameworkInfo.roles' contains duplicate items: { a }"},
		{`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"x","roles":["-bad"],"capabilities":[{"type":"MULTI_ROLE"}]}}}`,
			"'FrameworkInfo.roles' contains invalid role: Role component '-bad' is invalid because it starts with a dash"},
		{`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"x","role":"a//b"}}}`,
			"'FrameworkInfo.role' is not a valid role: Role 'a//b' cannot contain two adjacent slashes"},
	} {
		resp, err := postJSON(c.MasterURL(), []byte(tc.body), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Mesos-Stream-Id") == "" || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("refused SUBSCRIBE: %d %v", resp.StatusCode, resp.Header)
		}
		r := bufio.NewReader(resp.Body)
		rec, err := readRecord(r)
		want := `{"type":"ERROR","error":{"message":"` + strings.ReplaceAll(tc.msg, "'", "'") + `"}}`
		if err != nil || string(rec) != want {
			t.Errorf("got %q %v, want %q", rec, err, want)
		}
		if _, err := readRecord(r); err != io.EOF {
			t.Errorf("stream not ended after ERROR: %v", err)
		}
		resp.Body.Close()
	}
}

// SUBSCRIBE of a connected framework's ID: the old stream gets ERROR
// "Framework failed over" and ends; the new one is SUBSCRIBED with the
// same ID and a new stream id, and the old stream id is now rejected.
func TestFailoverResubscribe(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, true))
	s1 := subscribe(t, c.MasterURL(), frameworkInfo("fo", "r"))
	info := frameworkInfo("fo-renamed", "r")
	info.ID = &mesos.FrameworkID{Value: s1.fwID}
	info.User = "someone-else" // silently kept as root
	s2 := subscribe(t, c.MasterURL(), info)
	if s2.fwID != s1.fwID || s2.streamID == s1.streamID {
		t.Fatalf("re-subscribe: %s/%s vs %s/%s", s2.fwID, s2.streamID, s1.fwID, s1.streamID)
	}
	ev := s1.next(scheduler.Event_ERROR, waitLong)
	if ev.Error.Message != "Framework failed over" {
		t.Errorf("old stream: %q", ev.Error.Message)
	}
	if err := <-s1.done; err != io.EOF {
		t.Errorf("old stream end: %v", err)
	}
	s1.fwID = s2.fwID
	if code, _ := s1.call(&scheduler.Call{Type: scheduler.Call_REVIVE}); code != 400 {
		t.Errorf("old stream id accepted: %d", code)
	}
	st := getState(t, c.MasterURL())
	fw := st["frameworks"].([]interface{})[0].(map[string]interface{})
	if fw["name"] != "fo-renamed" || fw["user"] != "root" {
		t.Errorf("framework after re-subscribe: name %v user %v", fw["name"], fw["user"])
	}
	// Principal changes are refused.
	info.Principal = strPtr("other")
	s3 := subscribeRaw(t, c.MasterURL(), info)
	if ev := s3.next(scheduler.Event_ERROR, waitLong); ev.Error.Message != "Changing framework's principal is not allowed." {
		t.Errorf("principal change: %q", ev.Error.Message)
	}
}
