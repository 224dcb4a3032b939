package stoutjson

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mexec "github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// testdata/events.txt holds every scheduler and executor event record of
// /work/shared/mesos-transcripts (real Mesos 1.12.0), one per line:
// "<scheduler|executor> <transcript file> <record, verbatim>".
func transcriptEvents(t *testing.T) [][3]string {
	f, err := os.Open("testdata/events.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][3]string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), " ", 3)
		if len(parts) != 3 {
			t.Fatalf("bad line %q", sc.Text())
		}
		out = append(out, [3]string{parts[0], parts[1], parts[2]})
	}
	if len(out) < 100 {
		t.Fatalf("only %d events", len(out))
	}
	return out
}

// Everything a real 1.12 master and agent sent decodes into mesos-go's
// structs and encodes back byte for byte: the converter can say all of it
// (including QUOTA_V2, which v0.0.11's protos lack), in Mesos' key order
// and number format.
func TestTranscriptEventsRoundTrip(t *testing.T) {
	for _, ev := range transcriptEvents(t) {
		side, file, rec := ev[0], ev[1], ev[2]
		v, err := Parse([]byte(rec))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var msg interface{} = &scheduler.Event{}
		if side == "executor" {
			msg = &mexec.Event{}
		}
		if err := Decode(v, msg); err != nil {
			t.Errorf("%s: decode: %v\n%s", file, err, rec)
			continue
		}
		if got := string(Encode(msg)); !sameJSON(got, rec) {
			t.Errorf("%s: %s event re-encoded differently\n got %s\nwant %s", file, side, got, rec)
		}
	}
}

// sameJSON: the same tokens in the same order; numbers may differ only in
// their last digit's rendering (Mesos prints doubles with rapidjson's Grisu2,
// which is not always the shortest form: 1795580721.4079712 where Go writes
// ...711; both parse to the same double), never in value or in whether they
// are written as integers (4 vs 4.0).
func sameJSON(a, b string) bool {
	if a == b {
		return true
	}
	da, db := json.NewDecoder(strings.NewReader(a)), json.NewDecoder(strings.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	for {
		ta, ea := da.Token()
		tb, eb := db.Token()
		if ea != nil || eb != nil {
			return ea == io.EOF && eb == io.EOF
		}
		na, oka := ta.(json.Number)
		nb, okb := tb.(json.Number)
		if oka && okb {
			fa, _ := strconv.ParseFloat(string(na), 64)
			fb, _ := strconv.ParseFloat(string(nb), 64)
			if fa != fb || strings.ContainsAny(string(na), ".e") != strings.ContainsAny(string(nb), ".e") {
				return false
			}
			continue
		}
		if ta != tb {
			return false
		}
	}
}

func TestExtraEnumValues(t *testing.T) {
	port := uint32(5050)
	mi := mesos.MasterInfo{ID: "m", IP: 1, Port: &port, Capabilities: []mesos.MasterInfo_Capability{
		{Type: mesos.MasterInfo_Capability_AGENT_UPDATE}, {Type: MasterCapabilityQuotaV2}}}
	js := string(Encode(&mi))
	if want := `{"id":"m","ip":1,"port":5050,"capabilities":[{"type":"AGENT_UPDATE"},{"type":"QUOTA_V2"}]}`; js != want {
		t.Errorf("got %s want %s", js, want)
	}
	v, _ := Parse([]byte(js))
	var back mesos.MasterInfo
	if err := Decode(v, &back); err != nil || back.Capabilities[1].Type != MasterCapabilityQuotaV2 {
		t.Errorf("decoded %+v %v", back, err)
	}
	// Protobuf carries the number as is.
	b, err := mi.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var pb mesos.MasterInfo
	if err := pb.Unmarshal(b); err != nil || pb.Capabilities[1].Type != 3 {
		t.Errorf("protobuf %+v %v", pb, err)
	}
	// A number neither knows is written as its number.
	if got := enumName("mesos.MasterInfo_Capability_Type", 77); got != "77" {
		t.Errorf("unknown enum number: %s", got)
	}
}

func TestMask(t *testing.T) {
	vol := map[string]bool{"a.id": true, "a.list.v": true}
	got, err := Mask(`{"a":{"id":"x1","list":[{"v":1,"w":2.0},{"v":3,"w":[]}],"n":4.0},"b":null}`, vol)
	if want := `{"a":{"id":"*","list":[{"v":"*","w":2.0},{"v":"*","w":[]}],"n":4.0},"b":null}`; err != nil || got != want {
		t.Errorf("Mask = %s %v\nwant %s", got, err, want)
	}
	other, _ := Mask(`{"a":{"id":"x2","list":[{"v":9,"w":2.0},{"v":3,"w":[]}],"n":4}}`, vol)
	if other == got {
		t.Error("4 and 4.0 (and a missing key) masked alike")
	}
	if _, err := Mask(`{"a":`, vol); err == nil {
		t.Error("broken JSON accepted")
	}
}
