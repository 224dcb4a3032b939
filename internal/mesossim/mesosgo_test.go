package mesossim

import (
	"context"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// mesos-go v0.0.11's JSON codec cannot read a real 1.12 master's SUBSCRIBED
// (its protos lack QUOTA_V2; issue 8): the simulator, which now speaks as
// the real master, must show the same failure, not hide it.
func TestMesosGoJSONCodecRefusesRealSubscribed(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, true))
	cli := httpcli.New(
		httpcli.Endpoint(c.MasterURL()+"/api/v1/scheduler"),
		httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeJSON]),
		httpcli.Do(httpcli.With(httpcli.Timeout(10*time.Second))),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	info := paInfo("mesos-go-json")
	resp, err := httpsched.NewCaller(cli).Call(ctx, calls.Subscribe(&info))
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer resp.Close()
	var ev scheduler.Event
	err = resp.Decode(&ev)
	if err == nil || !strings.Contains(err.Error(), `"QUOTA_V2"`) {
		t.Fatalf("mesos-go's JSON decoder read SUBSCRIBED (%v, %v); a real master's would fail on QUOTA_V2", ev.Type, err)
	}
}

// The mesos-go v0.0.11 client stack (httpcli + httpsched + calls) with the
// protobuf codec: subscribe, receive offers, launch with a CUSTOM executor,
// acknowledge, reconcile, kill, decline, teardown.
func TestMesosGoClient(t *testing.T) {
	for _, codec := range []encoding.MediaType{codecs.MediaTypeProtobuf} {
		t.Run(string(codec), func(t *testing.T) {
			c := startCluster(t, testOptions(t, 1, true))
			cli := httpcli.New(
				httpcli.Endpoint(c.MasterURL()+"/api/v1/scheduler"),
				httpcli.Codec(codecs.ByMediaType[codec]),
				httpcli.Do(httpcli.With(httpcli.Timeout(10*time.Second))),
			)
			caller := httpsched.NewCaller(cli)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			info := paInfo("mesos-go")
			resp, err := caller.Call(ctx, calls.Subscribe(&info))
			if err != nil {
				t.Fatalf("subscribe: %v", err)
			}
			defer resp.Close()
			events := make(chan *scheduler.Event, 1000)
			go func() {
				defer close(events)
				for {
					var ev scheduler.Event
					if err := resp.Decode(&ev); err != nil {
						return
					}
					events <- &ev
				}
			}()
			next := func(typ scheduler.Event_Type) *scheduler.Event {
				t.Helper()
				timeout := time.After(waitLong)
				for {
					select {
					case ev, ok := <-events:
						if !ok {
							t.Fatalf("stream ended waiting for %s", typ)
						}
						if ev.Type == typ {
							return ev
						}
					case <-timeout:
						t.Fatalf("no %s", typ)
					}
				}
			}
			fwID := next(scheduler.Event_SUBSCRIBED).Subscribed.FrameworkID.Value
			call := func(cl *scheduler.Call) {
				t.Helper()
				cl.FrameworkID = &mesos.FrameworkID{Value: fwID}
				r, err := caller.Call(ctx, cl)
				if err != nil {
					t.Fatalf("%s: %v", cl.Type, err)
				}
				if r != nil {
					r.Close()
				}
			}
			offer := next(scheduler.Event_OFFERS).Offers.Offers[0]
			task := taskInfo("t", offer.AgentID.Value, customExecutor("e", role), res("cpus", 0.5, role), res("mem", 64, role))
			call(calls.Accept(calls.OfferOperations{calls.OpLaunch(task)}.WithOffers(offer.ID)))
			for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING} {
				st := next(scheduler.Event_UPDATE).Update.Status
				if st.GetState() != want || len(st.UUID) != 16 {
					t.Fatalf("update %s uuid %x, want %s", st.GetState(), st.UUID, want)
				}
				call(calls.Acknowledge(st.AgentID.Value, st.TaskID.Value, st.UUID))
			}
			call(calls.Reconcile(calls.ReconcileTasks(map[string]string{"t": offer.AgentID.Value})))
			if st := next(scheduler.Event_UPDATE).Update.Status; st.GetState() != mesos.TASK_RUNNING || st.GetReason() != mesos.REASON_RECONCILIATION || len(st.UUID) != 0 {
				t.Errorf("reconcile: %s %s uuid %x", st.GetState(), st.GetReason(), st.UUID)
			}
			call(calls.Kill("t", offer.AgentID.Value))
			for {
				st := next(scheduler.Event_UPDATE).Update.Status
				call(calls.Acknowledge(st.AgentID.Value, st.TaskID.Value, st.UUID))
				if st.GetState() == mesos.TASK_KILLED {
					break
				}
			}
			o2 := next(scheduler.Event_OFFERS).Offers.Offers[0]
			call(calls.Decline(o2.ID).With(calls.RefuseSeconds(time.Hour)))
			call(&scheduler.Call{Type: scheduler.Call_TEARDOWN})
			for range events {
			}
			st := getState(t, c.MasterURL())
			if len(st["completed_frameworks"].([]interface{})) != 1 {
				t.Errorf("framework not torn down")
			}
		})
	}
}

// Fact 4: a resend of the head update carries the agent's latest state, so
// the master learns a terminal state (and frees the resources) before the
// scheduler has seen or acknowledged it.
func TestLatestStateAheadOfScheduler(t *testing.T) {
	o := testOptions(t, 1, true)
	o.StatusUpdateRetry = 300 * time.Millisecond
	c := startCluster(t, o)
	s := subscribe(t, c.MasterURL(), paInfo("latest"))
	a := c.Agents()[0]
	of := offerFrom(t, s, a.ID)
	s.accept([]mesos.Offer{of}, 0, launch(taskInfo("t", a.ID, customExecutor("e", role), res("cpus", 1, role), res("mem", 64, role))))
	starting := s.update("t", waitLong)
	if starting.GetState() != mesos.TASK_STARTING {
		t.Fatalf("first update %s", starting.GetState())
	}
	// Do not acknowledge: RUNNING and then KILLED queue behind STARTING.
	s.mustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: "t"}}})
	eventually(t, waitLong, "master state TASK_KILLED via latest_state", func() bool {
		st := getState(t, c.MasterURL())
		fw := st["frameworks"].([]interface{})[0].(map[string]interface{})
		tasks := fw["tasks"].([]interface{})
		if len(tasks) != 1 || tasks[0].(map[string]interface{})["state"] != "TASK_KILLED" {
			return false
		}
		used := st["slaves"].([]interface{})[0].(map[string]interface{})["used_resources"].(map[string]interface{})
		return used["cpus"].(float64) < 0.5 // only the executor's 0.1 is left
	})
	// The scheduler still sees only STARTING (resent), until it acks.
	for i := 0; i < 2; i++ {
		st := s.update("t", waitLong)
		if st.GetState() != mesos.TASK_STARTING || string(st.UUID) != string(starting.UUID) {
			t.Fatalf("resend %d: %s, want the same STARTING", i, st.GetState())
		}
	}
	s.ack(starting)
	var states []mesos.TaskState
	for {
		st := s.update("t", waitLong)
		if st.GetState() == mesos.TASK_STARTING {
			continue // a resend that crossed the ack
		}
		states = append(states, st.GetState())
		s.ack(st)
		if st.GetState() == mesos.TASK_KILLED {
			break
		}
	}
	if states[len(states)-1] != mesos.TASK_KILLED {
		t.Errorf("states after ack: %v", states)
	}
}

// After a re-subscription the agents re-send pending unacknowledged
// updates at once (not at their next 10 s retry); while the framework was
// disconnected its updates were not forwarded but the master kept the
// task's state.
func TestPendingUpdatesResentOnResubscribe(t *testing.T) {
	c := startCluster(t, testOptions(t, 1, true))
	s := subscribe(t, c.MasterURL(), paInfo("resend"))
	a := c.Agents()[0]
	of := offerFrom(t, s, a.ID)
	s.accept([]mesos.Offer{of}, 0, launch(taskInfo("t", a.ID, customExecutor("e", role), res("cpus", 0.1, role), res("mem", 32, role))))
	st := s.update("t", waitLong)
	s.resp.Body.Close()
	time.Sleep(200 * time.Millisecond)
	info := paInfo("resend")
	info.ID = &mesos.FrameworkID{Value: s.fwID}
	start := time.Now()
	s2 := subscribe(t, c.MasterURL(), info)
	again := s2.update("t", waitLong)
	if string(again.UUID) != string(st.UUID) || time.Since(start) > 5*time.Second {
		t.Errorf("resent %s after %v (uuid match %v)", again.GetState(), time.Since(start), string(again.UUID) == string(st.UUID))
	}
	s2.ack(again)
	if st := s2.update("t", waitLong); st.GetState() != mesos.TASK_RUNNING {
		t.Errorf("after ack: %s", st.GetState())
	}
}
