package mesossim

import (
	"bufio"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/dcos-consul/dcos-consul/internal/mesossim/stoutjson"
)

// The records of 01-subscribe-stream.txt (real Mesos 1.12.0), verbatim.
const (
	realSubscribed = `{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"d10602e3-409b-4ff3-a8c2-2ac0bdb8a688-0000"},"heartbeat_interval_seconds":15.0,"master_info":{"id":"d10602e3-409b-4ff3-a8c2-2ac0bdb8a688","ip":16777343,"port":5060,"pid":"master@127.0.0.1:5060","hostname":"localhost","version":"1.12.0","address":{"hostname":"localhost","ip":"127.0.0.1","port":5060},"capabilities":[{"type":"AGENT_UPDATE"},{"type":"AGENT_DRAINING"},{"type":"QUOTA_V2"}]}}}`
	realOffers     = `{"type":"OFFERS","offers":{"offers":[{"id":{"value":"d10602e3-409b-4ff3-a8c2-2ac0bdb8a688-O0"},"framework_id":{"value":"d10602e3-409b-4ff3-a8c2-2ac0bdb8a688-0000"},"agent_id":{"value":"d10602e3-409b-4ff3-a8c2-2ac0bdb8a688-S1"},"hostname":"127.0.0.22","url":{"scheme":"http","address":{"hostname":"127.0.0.22","ip":"127.0.0.22","port":5061},"path":"/slave(1)"},"resources":[{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":8000,"end":9000},{"begin":31000,"end":32000}]},"allocation_info":{"role":"consul-role"}},{"name":"cpus","type":"SCALAR","scalar":{"value":4.0},"allocation_info":{"role":"consul-role"}},{"name":"mem","type":"SCALAR","scalar":{"value":8192.0},"allocation_info":{"role":"consul-role"}},{"name":"disk","type":"SCALAR","scalar":{"value":20000.0},"allocation_info":{"role":"consul-role"}}],"allocation_info":{"role":"consul-role"}},{"id":{"value":"d10602e3-409b-4ff3-a8c2-2ac0bdb8a688-O1"},"framework_id":{"value":"d10602e3-409b-4ff3-a8c2-2ac0bdb8a688-0000"},"agent_id":{"value":"d10602e3-409b-4ff3-a8c2-2ac0bdb8a688-S0"},"hostname":"127.0.0.21","url":{"scheme":"http","address":{"hostname":"127.0.0.21","ip":"127.0.0.21","port":5061},"path":"/slave(1)"},"resources":[{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":8000,"end":9000},{"begin":31000,"end":32000}]},"allocation_info":{"role":"consul-role"}},{"name":"cpus","type":"SCALAR","scalar":{"value":4.0},"allocation_info":{"role":"consul-role"}},{"name":"mem","type":"SCALAR","scalar":{"value":8192.0},"allocation_info":{"role":"consul-role"}},{"name":"disk","type":"SCALAR","scalar":{"value":20000.0},"allocation_info":{"role":"consul-role"}}],"allocation_info":{"role":"consul-role"}}]}}`
)

// volatile are the leaves (paths of keys, array indices left out) whose
// values differ between any two clusters: IDs, addresses, ports.
var volatile = map[string]bool{
	"subscribed.framework_id.value":           true,
	"subscribed.master_info.id":               true,
	"subscribed.master_info.ip":               true,
	"subscribed.master_info.port":             true,
	"subscribed.master_info.pid":              true,
	"subscribed.master_info.hostname":         true,
	"subscribed.master_info.address.hostname": true,
	"subscribed.master_info.address.ip":       true,
	"subscribed.master_info.address.port":     true,
	"offers.offers.id.value":                  true,
	"offers.offers.framework_id.value":        true,
	"offers.offers.agent_id.value":            true,
	"offers.offers.hostname":                  true,
	"offers.offers.url.address.hostname":      true,
	"offers.offers.url.address.ip":            true,
	"offers.offers.url.address.port":          true,
}

// shape is the record with its volatile leaves masked.
func shape(t *testing.T, rec string) string {
	t.Helper()
	out, err := stoutjson.Mask(rec, volatile)
	if err != nil {
		t.Fatalf("shape: %v in %s", err, rec)
	}
	return out
}

// The simulated master's SUBSCRIBED and OFFERS say what a real 1.12 master
// says (01-subscribe-stream.txt): same keys, same order, same values (IDs
// and addresses aside), QUOTA_V2 included, numbers written as 4.0.
func TestSubscribedAndOffersAsRealMaster(t *testing.T) {
	o := testOptions(t, 2, true)
	c := startCluster(t, o)
	body := `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"consul-fixture","roles":["consul-role"],"principal":"consul-principal","checkpoint":true,"failover_timeout":604800,"capabilities":[{"type":"MULTI_ROLE"},{"type":"RESERVATION_REFINEMENT"},{"type":"PARTITION_AWARE"},{"type":"TASK_KILLING_STATE"}]}}}`
	resp, err := postJSON(c.MasterURL(), []byte(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	next := func() string {
		t.Helper()
		type res struct {
			b   []byte
			err error
		}
		ch := make(chan res, 1)
		go func() { b, err := readRecord(r); ch <- res{b, err} }()
		select {
		case x := <-ch:
			if x.err != nil {
				t.Fatal(x.err)
			}
			return string(x.b)
		case <-time.After(waitLong):
			t.Fatal("no record")
		}
		return ""
	}
	sub := next()
	if got, want := shape(t, sub), shape(t, strings.Replace(realSubscribed, `15.0`, `15.0`, 1)); got != want {
		t.Errorf("SUBSCRIBED\n got %s\nwant %s", got, want)
	}
	if hb := next(); hb != `{"type":"HEARTBEAT"}` {
		t.Fatalf("second record %s", hb)
	}
	offers := next()
	if got, want := shape(t, offers), shape(t, realOffers); got != want {
		t.Errorf("OFFERS\n got %s\nwant %s", got, want)
	}
	// The same through the protobuf codec: QUOTA_V2 is enum number 3.
	var ev scheduler.Event
	v, _ := stoutjson.Parse([]byte(sub))
	if err := stoutjson.Decode(v, &ev); err != nil {
		t.Fatal(err)
	}
	caps := ev.Subscribed.MasterInfo.Capabilities
	if len(caps) != 3 || caps[2].Type != mesos.MasterInfo_Capability_Type(3) || ev.Subscribed.MasterInfo.GetVersion() != "1.12.0" {
		t.Errorf("master_info %+v", ev.Subscribed.MasterInfo)
	}
}

// A real master sends all the offers of one allocation cycle to a framework
// in one OFFERS event (01-subscribe-stream.txt: one event, one offer per
// agent), however large: here 1,500 agents, more than the simulator's
// former cut at 1,000 offers per event.
func TestOneOffersEventPerCycle(t *testing.T) {
	const agents = 1500
	o := testOptions(t, agents, true)
	o.AllocationInterval = time.Hour // only the cycle SUBSCRIBE triggers
	c := startCluster(t, o)
	s := subscribe(t, c.MasterURL(), frameworkInfo("one-event", role))
	ev := s.next(scheduler.Event_OFFERS, waitLong)
	if n := len(ev.Offers.Offers); n != agents {
		t.Fatalf("first OFFERS event holds %d offers, want all %d", n, agents)
	}
	if extra := s.nextOr(scheduler.Event_OFFERS, time.Second); extra != nil {
		t.Errorf("a second OFFERS event in the same cycle (%d offers)", len(extra.Offers.Offers))
	}
	t.Logf("one OFFERS event, %d offers, %d bytes of JSON", agents, len(stoutjson.Encode(ev)))
}

// Through the protobuf codec the same SUBSCRIBED carries QUOTA_V2 as the
// number Mesos 1.12's mesos.proto gives it (3), which v0.0.11's generated
// code keeps as an unnamed enum value.
func TestSubscribedProtobufCarriesQuotaV2(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, true))
	body := `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"pb"}}}`
	resp, err := postJSON(c.MasterURL(), []byte(body), map[string]string{"Accept": "application/x-protobuf"})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		t.Fatalf("Content-Type %q", ct)
	}
	rec, err := readRecord(bufio.NewReader(resp.Body))
	if err != nil {
		t.Fatal(err)
	}
	var ev scheduler.Event
	if err := ev.Unmarshal(rec); err != nil {
		t.Fatal(err)
	}
	var got []int32
	for _, c := range ev.GetSubscribed().GetMasterInfo().Capabilities {
		got = append(got, int32(c.Type))
	}
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 || ev.Subscribed.MasterInfo.GetVersion() != "1.12.0" {
		t.Errorf("protobuf master_info capabilities %v version %s, want [1 2 3] 1.12.0", got, ev.Subscribed.MasterInfo.GetVersion())
	}
}
