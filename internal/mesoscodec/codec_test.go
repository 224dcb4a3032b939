package mesoscodec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestJSONDropsEnumNamesNobodyKnows(t *testing.T) {
	// A master newer than any proto here: an unknown capability, an
	// unknown field, an unknown task state.
	raw := `{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"fw-1"},"brand_new_field":{"x":1},
	  "master_info":{"id":"m","ip":1,"port":5050,"capabilities":[{"type":"AGENT_UPDATE"},{"type":"TELEPORT"}]}}}`
	var e scheduler.Event
	if err := Unmarshal(MediaJSON, []byte(raw), &e); err != nil {
		t.Fatal(err)
	}
	caps := e.GetSubscribed().GetMasterInfo().GetCapabilities()
	if len(caps) != 2 || caps[0].GetType() != mesos.MasterInfo_Capability_AGENT_UPDATE || caps[1].GetType() != 0 {
		t.Fatalf("capabilities %v: want AGENT_UPDATE kept and the unknown name dropped as stout drops it", caps)
	}
	if e.GetSubscribed().GetFrameworkID().GetValue() != "fw-1" {
		t.Fatal("framework ID lost")
	}

	raw = `{"type":"UPDATE","update":{"status":{"task_id":{"value":"t"},"state":"TASK_TELEPORTED","uuid":"AAAAAAAAAAAAAAAAAAAAAA=="}}}`
	e = scheduler.Event{}
	if err := Unmarshal(MediaJSON, []byte(raw), &e); err != nil {
		t.Fatal(err)
	}
	if st := e.GetUpdate().GetStatus(); st.TaskID.Value != "t" {
		t.Fatal("task ID lost")
	}
}

func TestJSONStillRefusesWhatIsNotJSON(t *testing.T) {
	var e scheduler.Event
	if err := Unmarshal(MediaJSON, []byte(`{"type":`), &e); err == nil {
		t.Fatal("broken JSON decoded")
	}
	if err := Unmarshal(MediaJSON, []byte(`{"type":"SUBSCRIBED","subscribed":{"heartbeat_interval_seconds":"soon"}}`), &e); err == nil {
		t.Fatal("a string where a number belongs decoded")
	}
	if err := Unmarshal("text/plain", []byte(`{}`), &e); err == nil || !strings.Contains(err.Error(), "text/plain") {
		t.Fatalf("unsupported media type: %v", err)
	}
}

func TestProtobufKeepsUnknownEnumValuesAndSkipsUnknownFields(t *testing.T) {
	e := scheduler.Event{Type: scheduler.Event_SUBSCRIBED, Subscribed: &scheduler.Event_Subscribed{
		FrameworkID: &mesos.FrameworkID{Value: "fw-9"},
		MasterInfo: &mesos.MasterInfo{ID: "m", IP: 1, Port: proto.Uint32(5050), Capabilities: []mesos.MasterInfo_Capability{
			{Type: 3}, {Type: 77}}},
	}}
	b, err := proto.Marshal(&e)
	if err != nil {
		t.Fatal(err)
	}
	// Fields from a newer proto: Event field 99 (bytes) and 98 (varint).
	b = protowire.AppendTag(b, 99, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("from the future"))
	b = protowire.AppendTag(b, 98, protowire.VarintType)
	b = protowire.AppendVarint(b, 12345)
	var got scheduler.Event
	if err := Unmarshal(MediaProtobuf+"; charset=binary", b, &got); err != nil {
		t.Fatal(err)
	}
	caps := got.GetSubscribed().GetMasterInfo().GetCapabilities()
	if len(caps) != 2 || caps[0].GetType().String() != "QUOTA_V2" || caps[1].GetType() != 77 {
		t.Fatalf("capabilities %v: want QUOTA_V2 (3) and 77 kept", caps)
	}
}

func TestSubscribedFrameworkIDIsReadFromAnEventThatDoesNotDecode(t *testing.T) {
	good, _ := proto.Marshal(&scheduler.Event{Type: scheduler.Event_SUBSCRIBED,
		Subscribed: &scheduler.Event_Subscribed{FrameworkID: &mesos.FrameworkID{Value: "fw-7"}}})
	// Event field 1 (type) again, with a wire type that cannot be: the
	// event fails to decode, its framework ID can still be read.
	bad := protowire.AppendTag(append([]byte{}, good...), 1, protowire.BytesType)
	bad = protowire.AppendBytes(bad, []byte("x"))
	records := [][]byte{bad}
	dec := NewDecoder(MediaProtobuf, func() ([]byte, error) { r := records[0]; records = records[1:]; return r, nil })
	err := dec.Decode(new(scheduler.Event))
	var de *DecodeError
	if !errors.As(err, &de) || de.FrameworkID != "fw-7" {
		t.Fatalf("err %v: want a DecodeError naming fw-7", err)
	}

	raw := []byte(`{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"fw-8"},"heartbeat_interval_seconds":"x"}}`)
	records = [][]byte{raw}
	dec = NewDecoder(MediaJSON, func() ([]byte, error) { r := records[0]; records = records[1:]; return r, nil })
	if err := dec.Decode(new(scheduler.Event)); !errors.As(err, &de) || de.FrameworkID != "fw-8" {
		t.Fatalf("JSON: err %v: want a DecodeError naming fw-8", err)
	}
}

func TestRecordReader(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 40<<20) // an OFFERS event of a very large cluster
	var stream bytes.Buffer
	fmt.Fprintf(&stream, "5\nhello0\n\n 3\nabc%d\n", len(big))
	stream.Write(big)
	stream.WriteString("2\nok")
	rr := NewRecordReader(&stream, 0)
	for _, want := range []string{"hello", "abc"} {
		got, err := rr.Next()
		if err != nil || string(got) != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
	}
	got, err := rr.Next()
	if err != nil || len(got) != len(big) {
		t.Fatalf("40 MiB record: %d bytes, %v", len(got), err)
	}
	if got, err := rr.Next(); err != nil || string(got) != "ok" {
		t.Fatalf("after the big record: %q, %v", got, err)
	}
	if _, err := rr.Next(); err != io.EOF {
		t.Fatalf("end: %v, want io.EOF", err)
	}

	for _, bad := range []string{"12", "3\nab", "x\n", "99999999999999999999999\n", "5", "-1\nx"} {
		rr := NewRecordReader(strings.NewReader(bad), 0)
		if _, err := rr.Next(); err == nil || err == io.EOF {
			t.Errorf("%q: err %v, want a framing error", bad, err)
		}
	}
	if _, err := NewRecordReader(strings.NewReader("11\nhello world"), 10).Next(); err == nil {
		t.Error("a record over the limit was read")
	}
}
