package scheduler

import (
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/dcos-consul/dcos-consul/internal/mesoscodec"
)

// FuzzEvents: any bytes a master might send, as protobuf or JSON, are
// decoded and checked as the scheduler does before handling an event:
// never a panic; an event that passes checkEvent has every body and ID
// the handlers dereference.
func FuzzEvents(f *testing.F) {
	hb := 15.0
	for _, e := range []*scheduler.Event{
		{Type: scheduler.Event_SUBSCRIBED, Subscribed: &scheduler.Event_Subscribed{FrameworkID: &mesos.FrameworkID{Value: "f"}, HeartbeatIntervalSeconds: &hb}},
		{Type: scheduler.Event_OFFERS, Offers: &scheduler.Event_Offers{Offers: []mesos.Offer{{ID: mesos.OfferID{Value: "o"}, AgentID: mesos.AgentID{Value: "a"}}}}},
		{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: "t"}}}},
		{Type: scheduler.Event_RESCIND}, {Type: scheduler.Event_MESSAGE}, {Type: scheduler.Event_FAILURE}, {Type: scheduler.Event_ERROR},
	} {
		b, _ := e.Marshal()
		f.Add(b, false)
	}
	f.Add([]byte(`{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"f"},"heartbeat_interval_seconds":0}}`), true)
	f.Add([]byte(`{"type":"OFFERS"}`), true)
	f.Fuzz(func(t *testing.T, b []byte, asJSON bool) {
		mt := mesoscodec.MediaProtobuf
		if asJSON {
			mt = mesoscodec.MediaJSON
		}
		var e scheduler.Event
		if err := mesoscodec.Unmarshal(mt, b, &e); err != nil {
			return
		}
		if err := checkEvent(&e); err != nil {
			return
		}
		switch e.GetType() {
		case scheduler.Event_SUBSCRIBED:
			_ = e.Subscribed.FrameworkID.Value
			if d, _ := heartbeatInterval(e.Subscribed, 15*time.Second); d <= 0 || d > time.Hour {
				t.Fatalf("heartbeat interval %v from %v", d, e.Subscribed.HeartbeatIntervalSeconds)
			}
		case scheduler.Event_OFFERS:
			for _, o := range e.Offers.Offers {
				_ = o.ID.Value + o.AgentID.Value
			}
		case scheduler.Event_UPDATE:
			_ = e.Update.Status.TaskID.Value
		case scheduler.Event_RESCIND:
			_ = e.Rescind.OfferID.Value
		case scheduler.Event_MESSAGE:
			_ = e.Message.ExecutorID.Value
		case scheduler.Event_FAILURE:
			_ = e.Failure.GetStatus()
		case scheduler.Event_ERROR:
			_ = e.Error.Message
		}
	})
}
