package scheduler

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

func TestCheckEventNamesWhatIsMissing(t *testing.T) {
	for _, c := range []struct {
		e    scheduler.Event
		want string
	}{
		{scheduler.Event{Type: scheduler.Event_SUBSCRIBED}, "SUBSCRIBED event without its subscribed body"},
		{scheduler.Event{Type: scheduler.Event_SUBSCRIBED, Subscribed: &scheduler.Event_Subscribed{}}, "without a framework_id"},
		{scheduler.Event{Type: scheduler.Event_OFFERS}, "OFFERS event without its offers body"},
		{scheduler.Event{Type: scheduler.Event_OFFERS, Offers: &scheduler.Event_Offers{Offers: []mesos.Offer{{}}}}, "offer 0 without an id"},
		{scheduler.Event{Type: scheduler.Event_UPDATE}, "UPDATE event without its update body"},
		{scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{}}, "without a task_id"},
		{scheduler.Event{Type: scheduler.Event_RESCIND}, "RESCIND event without"},
		{scheduler.Event{Type: scheduler.Event_MESSAGE}, "MESSAGE event without"},
		{scheduler.Event{Type: scheduler.Event_FAILURE}, "FAILURE event without"},
		{scheduler.Event{Type: scheduler.Event_ERROR}, "ERROR event without"},
	} {
		err := checkEvent(&c.e)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.e.Type, err, c.want)
		}
	}
	for _, ok := range []scheduler.Event{
		{Type: scheduler.Event_HEARTBEAT},
		{Type: scheduler.Event_SUBSCRIBED, Subscribed: &scheduler.Event_Subscribed{FrameworkID: &mesos.FrameworkID{Value: "f"}}},
		{Type: scheduler.Event_OFFERS, Offers: &scheduler.Event_Offers{}},
	} {
		if err := checkEvent(&ok); err != nil {
			t.Errorf("%v refused: %v", ok.Type, err)
		}
	}
}

func TestHeartbeatIntervalRefusesUnusableValues(t *testing.T) {
	sub := func(v float64) *scheduler.Event_Subscribed {
		return &scheduler.Event_Subscribed{HeartbeatIntervalSeconds: &v}
	}
	if d, why := heartbeatInterval(sub(15), time.Minute); d != 15*time.Second || why != "" {
		t.Fatalf("15 s: %v %q", d, why)
	}
	for _, bad := range []*scheduler.Event_Subscribed{nil, {}, sub(0), sub(-3), sub(math.NaN()), sub(math.Inf(1)), sub(1e9), sub(1e-300), sub(math.SmallestNonzeroFloat64), sub(0.0009)} {
		if d, why := heartbeatInterval(bad, time.Minute); d != time.Minute || why == "" {
			t.Errorf("%v: %v %q, want the default with a reason", bad, d, why)
		}
	}
}

// A master newer than mesos-go's protos (QUOTA_V2, fields and enum names
// nobody here knows), in JSON and in protobuf: one subscription, kept.
func TestANewerMasterIsSubscribedToOnce(t *testing.T) {
	for i, forceJSON := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", forceJSON), func(t *testing.T) {
			m := startFakeMaster(t, fmt.Sprintf("127.2.200.%d", 10+i))
			m.forceJSON = forceJSON
			m.subscribed = `{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"fake-0000"},"heartbeat_interval_seconds":15.0,"future":{"a":1},
			  "master_info":{"id":"m","ip":16777343,"port":5050,"version":"1.99.0","capabilities":[{"type":"AGENT_UPDATE"},{"type":"QUOTA_V2"},{"type":"WARP_DRIVE"}]}}}`
			m.events = []string{`{"type":"HEARTBEAT"}`}
			stop := runAgainst(t, m.addr, Options{})
			defer stop()
			waitFor(t, "calls after SUBSCRIBED", 20*time.Second, func() bool { _, calls := m.snapshot(); return len(calls) > 0 })
			time.Sleep(2 * time.Second)
			if subs, _ := m.snapshot(); len(subs) != 1 {
				t.Fatalf("%d SUBSCRIBEs: the first subscription did not hold", len(subs))
			}
		})
	}
}

// Events with a type and no body, and a 0 s heartbeat interval, are
// logged and skipped: the subscription stays.
func TestEventsWithoutBodiesAndAZeroHeartbeatKeepTheSubscription(t *testing.T) {
	m := startFakeMaster(t, "127.2.200.12")
	m.forceJSON = true
	m.subscribed = `{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"fake-0000"},"heartbeat_interval_seconds":0}}`
	m.events = []string{`{"type":"SUBSCRIBED"}`, `{"type":"OFFERS"}`, `{"type":"UPDATE"}`, `{"type":"RESCIND"}`,
		`{"type":"MESSAGE"}`, `{"type":"FAILURE"}`, `{"type":"ERROR"}`, `{"type":"OFFERS","offers":{"offers":[{"hostname":"x"}]}}`, `{"type":"HEARTBEAT"}`}
	stop := runAgainst(t, m.addr, Options{HeartbeatMisses: 2})
	defer stop()
	waitFor(t, "calls after SUBSCRIBED", 20*time.Second, func() bool { _, calls := m.snapshot(); return len(calls) > 0 })
	time.Sleep(3 * time.Second)
	if subs, _ := m.snapshot(); len(subs) != 1 {
		t.Fatalf("%d SUBSCRIBEs: bad events or a 0 s heartbeat interval dropped the subscription", len(subs))
	}
}

// A SUBSCRIBED that cannot be decoded still names the framework: the next
// SUBSCRIBE is that framework's, never a new one (issue 8: a real master
// was left with six frameworks).
func TestUndecodableSubscribedKeepsTheFrameworkID(t *testing.T) {
	m := startFakeMaster(t, "127.2.200.13")
	m.forceJSON = true
	m.subscribed = `{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"fake-0000"},"heartbeat_interval_seconds":"fifteen"}}`
	stop := runAgainst(t, m.addr, Options{ResubscribeMax: 500 * time.Millisecond})
	defer stop()
	waitFor(t, "a second SUBSCRIBE", 20*time.Second, func() bool { subs, _ := m.snapshot(); return len(subs) >= 2 })
	subs, _ := m.snapshot()
	for _, sub := range subs[1:] {
		if !strings.Contains(sub, `"framework_id":{"value":"fake-0000"}`) {
			t.Fatalf("re-SUBSCRIBE as a new framework: %s", sub)
		}
	}
}

// A master that takes calls and does not answer holds the sender, not the
// event loop: the API answers, and the subscription is dropped and made
// again once the stall outlasts two call timeouts.
func TestAStalledMasterDoesNotFreezeTheScheduler(t *testing.T) {
	m := startFakeMaster(t, "127.2.200.14")
	m.stall = time.Minute
	ln, err := net.Listen("tcp", "127.2.200.15:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := runAgainst(t, m.addr, Options{CallTimeout: 2 * time.Second, ResubscribeMax: 500 * time.Millisecond, Listener: ln})
	defer stop()
	api := "http://" + ln.Addr().String()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		start := time.Now()
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(api + "/v1/health")
		if err != nil {
			t.Fatalf("/v1/health while the master stalls: %v", err)
		}
		resp.Body.Close()
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("/v1/health took %s while the master stalls", took)
		}
		time.Sleep(500 * time.Millisecond)
	}
	waitFor(t, "a new subscription after the stall", 30*time.Second, func() bool { subs, _ := m.snapshot(); return len(subs) >= 2 })
}

// The re-subscribe backoff starts small and is bounded: after a master
// failover the scheduler subscribes at most ResubscribeMax after the new
// master is elected (it was up to 8 s: 1, 2, 4, 8 s).
func TestResubscribeBackoffStartsSmallAndIsBounded(t *testing.T) {
	max := 2 * time.Second
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second}
	for i, w := range want {
		if got := resubscribeBackoff(i, max); got != w {
			t.Errorf("after %d failures: %s, want %s", i, got, w)
		}
	}
	if got := resubscribeBackoff(1000, max); got != max {
		t.Errorf("after 1000 failures: %s, want the cap %s", got, max)
	}
	if got := resubscribeBackoff(0, 100*time.Millisecond); got != 100*time.Millisecond {
		t.Errorf("a cap below the first wait: %s, want the cap", got)
	}
	// A failover of 10 s (the old master's ZooKeeper session) costs at most
	// one backoff after the election.
	var waited time.Duration
	n := 0
	for ; waited < 10*time.Second; n++ {
		waited += resubscribeBackoff(n, max)
	}
	if late := waited - 10*time.Second; late > max {
		t.Errorf("subscribed %s after the election, want at most %s", late, max)
	}
	if n > 10 {
		t.Errorf("%d SUBSCRIBEs in a 10 s failover: too many for the master", n)
	}
}
