package mesoscodec

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/client"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// transcriptsDir is ../shared/mesos-transcripts beside the repository:
// what a real Mesos 1.12.0 master and agent sent, recorded byte for byte.
func transcriptsDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
	tr := filepath.Join(dir, "..", "shared", "mesos-transcripts")
	if _, err := os.Stat(tr); err != nil {
		t.Skipf("the recorded transcripts are not here (%v): they sit in ../shared beside the repository in CI", err)
	}
	return tr
}

// recordedEvent is one event record as the master or agent wrote it.
type recordedEvent struct {
	file, raw string
	typ       string
	executor  bool // an executor API event (else a scheduler API event)
}

var (
	executorOnly = map[string]bool{"LAUNCH": true, "LAUNCH_GROUP": true, "KILL": true, "ACKNOWLEDGED": true, "SHUTDOWN": true}
	eventTypes   = map[string]bool{"SUBSCRIBED": true, "OFFERS": true, "INVERSE_OFFERS": true, "RESCIND": true,
		"RESCIND_INVERSE_OFFER": true, "UPDATE": true, "UPDATE_OPERATION_STATUS": true, "MESSAGE": true,
		"FAILURE": true, "ERROR": true, "HEARTBEAT": true, "LAUNCH": true, "LAUNCH_GROUP": true, "KILL": true,
		"ACKNOWLEDGED": true, "SHUTDOWN": true}
)

// recordedEvents finds every one-line JSON event in the transcripts: a
// JSON object with a "type" and no top-level framework_id/executor_id
// (those are calls). Calls, pretty-printed copies and state documents are
// left out.
func recordedEvents(t *testing.T) []recordedEvent {
	dir := transcriptsDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts in %s: %v", dir, err)
	}
	seen := map[string]bool{}
	var out []recordedEvent
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			line := sc.Text()
			for i := strings.Index(line, `{"type":"`); i >= 0; {
				step := 1
				if raw, ok := firstJSON(line[i:]); ok {
					step = len(raw) // a whole object: nothing nested in it is an event
					if e, isEvent := classify(filepath.Base(f), raw); isEvent && !seen[raw] {
						seen[raw] = true
						out = append(out, e)
					}
				}
				next := strings.Index(line[i+step:], `{"type":"`)
				if next < 0 {
					break
				}
				i += step + next
			}
		}
	}
	return out
}

// firstJSON returns the JSON object at the start of s, byte for byte.
func firstJSON(s string) (string, bool) {
	d := json.NewDecoder(strings.NewReader(s))
	var m json.RawMessage
	if d.Decode(&m) != nil {
		return "", false
	}
	return s[:d.InputOffset()], true
}

func classify(file, raw string) (recordedEvent, bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal([]byte(raw), &top) != nil {
		return recordedEvent{}, false
	}
	if _, call := top["framework_id"]; call {
		return recordedEvent{}, false
	}
	if _, call := top["executor_id"]; call {
		return recordedEvent{}, false
	}
	var typ string
	_ = json.Unmarshal(top["type"], &typ)
	if !eventTypes[typ] {
		return recordedEvent{}, false
	}
	e := recordedEvent{file: file, raw: raw, typ: typ, executor: executorOnly[typ]}
	if typ == "SUBSCRIBED" && bytes.Contains(top["subscribed"], []byte(`"executor_info"`)) {
		e.executor = true
	}
	if typ == "MESSAGE" && !bytes.Contains(top["message"], []byte(`"agent_id"`)) {
		e.executor = true
	}
	return e, true
}

// TestEveryRecordedEventDecodes feeds every event that real Mesos 1.12
// sent in the transcripts, byte for byte, to the decoder the scheduler or
// the executor uses, and checks that nothing the protos know was lost.
func TestEveryRecordedEventDecodes(t *testing.T) {
	events := recordedEvents(t)
	byKind := map[string]int{}
	for _, e := range events {
		var m Message = new(scheduler.Event)
		kindName := "scheduler"
		if e.executor {
			m, kindName = new(executor.Event), "executor"
		}
		byKind[kindName+" "+e.typ]++
		records := []string{e.raw}
		dec := NewDecoder(MediaJSON, func() ([]byte, error) {
			r := records[0]
			records = records[1:]
			return []byte(r), nil
		})
		if err := dec.Decode(m.(interface {
			Message
			Unmarshal([]byte) error
			UnmarshalJSON([]byte) error
		})); err != nil {
			t.Errorf("%s: %s event does not decode: %v\n%s", e.file, e.typ, err, e.raw)
			continue
		}
		assertNothingLost(t, e, m)
	}
	t.Logf("decoded %d distinct recorded events: %v", len(events), byKind)
	for _, want := range []string{"scheduler SUBSCRIBED", "scheduler OFFERS", "scheduler UPDATE", "scheduler FAILURE",
		"scheduler ERROR", "scheduler HEARTBEAT", "scheduler RESCIND", "executor SUBSCRIBED", "executor LAUNCH",
		"executor KILL", "executor ACKNOWLEDGED", "executor SHUTDOWN"} {
		if byKind[want] == 0 {
			t.Errorf("no %s event found in the transcripts: the extraction is broken", want)
		}
	}
}

// assertNothingLost re-encodes the decoded message and checks that every
// leaf value of the recording whose field the protos know came through.
func assertNothingLost(t *testing.T, e recordedEvent, m Message) {
	t.Helper()
	again, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("%s: re-encoding a decoded %s: %v", e.file, e.typ, err)
	}
	var orig, back any
	_ = json.Unmarshal([]byte(e.raw), &orig)
	_ = json.Unmarshal(again, &back)
	for _, p := range lostLeaves(orig, back, reflect.TypeOf(m), e.typ) {
		t.Errorf("%s: %s event: %s lost in decoding\n%s", e.file, e.typ, p, e.raw)
	}
}

func lostLeaves(orig, back any, typ reflect.Type, path string) []string {
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
		typ = typ.Elem()
	}
	switch o := orig.(type) {
	case map[string]any:
		b, _ := back.(map[string]any)
		if typ.Kind() != reflect.Struct {
			return nil
		}
		fields := jsonFields(typ)
		var lost []string
		for k, v := range o {
			f, known := fields[k]
			if !known || isZero(v) {
				continue
			}
			bv, ok := b[k]
			if !ok {
				lost = append(lost, path+"."+k)
				continue
			}
			lost = append(lost, lostLeaves(v, bv, f.typ, path+"."+k)...)
		}
		return lost
	case []any:
		b, _ := back.([]any)
		if len(b) != len(o) {
			return []string{path + " (length)"}
		}
		var lost []string
		for i := range o {
			lost = append(lost, lostLeaves(o[i], b[i], typ, path+"[]")...)
		}
		return lost
	default:
		if !reflect.DeepEqual(orig, back) {
			return []string{path + " (value)"}
		}
		return nil
	}
}

func isZero(v any) bool {
	switch x := v.(type) {
	case bool:
		return !x
	case float64:
		return x == 0
	case string:
		return x == ""
	case nil:
		return true
	}
	return false
}

// TestRecordedSubscribeStreamAsReceived reads the exact bytes a real
// master answered to SUBSCRIBE (headers, chunked body) through the
// response handler both the scheduler and executor use.
func TestRecordedSubscribeStreamAsReceived(t *testing.T) {
	wire, err := os.ReadFile(filepath.Join(transcriptsDir(t), "01-subscribe-stream.wire.bin"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(wire)), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ResponseHandler(nil)(res, client.ResponseClassAuto, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	var types []string
	var sub, offers *scheduler.Event
	for i := 0; i < 3; i++ {
		e := new(scheduler.Event)
		if err := resp.Decode(e); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		types = append(types, e.GetType().String())
		switch e.GetType() {
		case scheduler.Event_SUBSCRIBED:
			sub = e
		case scheduler.Event_OFFERS:
			offers = e
		}
	}
	if strings.Join(types, ",") != "SUBSCRIBED,HEARTBEAT,OFFERS" {
		t.Fatalf("events %v, want SUBSCRIBED,HEARTBEAT,OFFERS", types)
	}
	caps := sub.GetSubscribed().GetMasterInfo().GetCapabilities()
	var names []string
	for _, c := range caps {
		names = append(names, c.GetType().String())
	}
	if got := strings.Join(names, ","); got != "AGENT_UPDATE,AGENT_DRAINING,QUOTA_V2" {
		t.Errorf("master capabilities decoded as %s", got)
	}
	if caps[2].GetType() != mesos.MasterInfo_Capability_Type(3) {
		t.Errorf("QUOTA_V2 kept as %d, want 3 (Mesos 1.12's number)", caps[2].GetType())
	}
	if sub.GetSubscribed().GetFrameworkID().GetValue() != "d10602e3-409b-4ff3-a8c2-2ac0bdb8a688-0000" {
		t.Errorf("framework ID %q", sub.GetSubscribed().GetFrameworkID().GetValue())
	}
	if n := len(offers.GetOffers().GetOffers()); n != 2 {
		t.Errorf("%d offers, want 2", n)
	}
}
